package lazylog

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	uberzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// zapLogger is the manager's logger (controller-runtime's zap, with the
// caller), writing JSON without times to out.
func zapLogger(out *bytes.Buffer) logr.Logger { return zapAt(out, -2) }

// zapAt is that logger at a level: -2 writes V(2) lines, 0 (info, the
// chart's default) none of V(1).
func zapAt(out *bytes.Buffer, level int8) logr.Logger {
	cfg := zapcore.EncoderConfig{MessageKey: "msg", LevelKey: "level", NameKey: "logger", CallerKey: "caller",
		EncodeLevel: zapcore.LowercaseLevelEncoder, EncodeCaller: zapcore.ShortCallerEncoder}
	return zap.New(zap.WriteTo(out), zap.Level(zapcore.Level(level)), zap.Encoder(zapcore.NewJSONEncoder(cfg)),
		zap.RawZapOpts(uberzapAddCaller()...))
}

// logAll logs, from one line each, what a reconcile's logger is given.
func logAll(l logr.Logger) {
	l = l.WithName("controller").WithValues("controller", "canaryrelease", "CanaryRelease", klog.KRef("shop", "web"))
	l = l.WithValues("reconcileID", "4f1c")
	l.Info("reconciled", "weight", 30)
	l.V(1).Info("detail", "n", 2)
	l.V(3).Info("not written")
	l.WithName("policy").WithValues("policy", "TimedCanaryRelease").Error(errors.New("boom"), "failed", "step", 3)
	sibling := l.WithValues("a", 1)
	_ = l.WithValues("b", 2)
	sibling.Info("sibling") // must not carry b
	l.WithCallDepth(0).Info("depth")
}

func TestSameOutputAsEager(t *testing.T) {
	var eager, lazy bytes.Buffer
	logAll(zapLogger(&eager))
	logAll(New(zapLogger(&lazy)))
	if eager.String() != lazy.String() {
		t.Fatalf("lazy logger wrote\n%s\nthe eager one\n%s", lazy.String(), eager.String())
	}
	for _, want := range []string{`"controller":"canaryrelease"`, `"reconcileID":"4f1c"`, `"weight":30`, `"caller":"lazylog/lazylog_test.go:`, `"msg":"sibling","controller":"canaryrelease","CanaryRelease":{"name":"web","namespace":"shop"},"reconcileID":"4f1c","a":1}`} {
		if !strings.Contains(lazy.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, lazy.String())
		}
	}
	if strings.Contains(lazy.String(), "not written") || strings.Contains(lazy.String(), `"b":2`) {
		t.Errorf("output has what it must not:\n%s", lazy.String())
	}
}

// BenchmarkReconcileLogger is what a reconcile that logs nothing at the
// info level pays for its logger: controller-runtime's two WithValues.
func BenchmarkReconcileLogger(b *testing.B) {
	for name, l := range map[string]logr.Logger{"eager": zapAt(&bytes.Buffer{}, 0), "lazy": New(zapAt(&bytes.Buffer{}, 0))} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := l.WithValues("controller", "canaryrelease", "CanaryRelease", klog.KRef("shop", "web"), "namespace", "shop", "name", "web")
				r = r.WithValues("reconcileID", "4f1c")
				r.V(1).Info("not written")
			}
		})
	}
}

func uberzapAddCaller() []uberzap.Option { return []uberzap.Option{uberzap.AddCaller()} }
