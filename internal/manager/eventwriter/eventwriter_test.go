package eventwriter

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/test/testenv"
)

// On a real API server: Events are created as client-go's recorder makes
// them (reporting controller and instance, the object's reference, the
// note), each once; one the API server refuses is counted and logged, not
// retried, and the others still go out.
func TestWritesEvents(t *testing.T) {
	env, err := testenv.Start(controlplane.Options{WithoutIstioCRDs: true}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logged []string
	log := funcr.New(func(prefix, args string) { logged = append(logged, args) }, funcr.Options{})
	w := New(env.Client, scheme.New(), log)
	done := make(chan error)
	go func() { done <- w.Start(ctx) }()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	cr := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1", ResourceVersion: "7"}}
	rec := w.Recorder("kubist")
	rec.Eventf(cr, nil, corev1.EventTypeNormal, "Step", "Policy", "canary %s at %d%%", "v2", 10)
	// The API server refuses a note over 1 KB: counted, logged, not retried.
	errorsBefore := testutil.ToFloat64(dropped.WithLabelValues("error"))
	rec.Eventf(cr, nil, corev1.EventTypeWarning, "RollBack", "Policy", "%s", strings.Repeat("x", 2000))
	rec.Eventf(cr, nil, corev1.EventTypeWarning, "RollBack", "Policy", "%s", "error rate 0.4 is above maxErrorRate 0.05")
	// Neither Normal nor Warning: refused before any write.
	rec.Eventf(cr, nil, "Info", "Step", "Policy", "%s", "not written")

	var list eventsv1.EventList
	testenv.Eventually(t, 30*time.Second, "two Events written", func() error {
		if err := env.Client.List(ctx, &list, client.InNamespace("shop")); err != nil {
			return err
		}
		if len(list.Items) != 2 {
			return fmt.Errorf("%d Events", len(list.Items))
		}
		return nil
	})
	byReason := map[string]eventsv1.Event{}
	for _, e := range list.Items {
		byReason[e.Reason] = e
	}
	step, back := byReason["Step"], byReason["RollBack"]
	if step.Note != "canary v2 at 10%" || step.Type != corev1.EventTypeNormal || step.Action != "Policy" {
		t.Errorf("Step Event: note %q type %q action %q", step.Note, step.Type, step.Action)
	}
	if step.ReportingController != "kubist" || !strings.HasPrefix(step.ReportingInstance, "kubist-") {
		t.Errorf("Step Event reported by %q, instance %q", step.ReportingController, step.ReportingInstance)
	}
	if r := step.Regarding; r.Kind != "CanaryRelease" || r.APIVersion != v1alpha1.GroupVersion.String() || r.Name != "web" || r.Namespace != "shop" || r.UID != "u1" {
		t.Errorf("Step Event regards %+v", r)
	}
	if step.EventTime.IsZero() || !strings.HasPrefix(step.Name, "web.") {
		t.Errorf("Step Event name %q, time %s", step.Name, step.EventTime)
	}
	if back.Note != "error rate 0.4 is above maxErrorRate 0.05" || back.Type != corev1.EventTypeWarning {
		t.Errorf("RollBack Event: note %q type %q", back.Note, back.Type)
	}
	if got := testutil.ToFloat64(dropped.WithLabelValues("error")) - errorsBefore; got != 1 {
		t.Errorf("refused Events counted: %v, want 1", got)
	}
	joined := strings.Join(logged, "\n")
	for _, want := range []string{`"msg"="event not written" "error"=`, `"type"="Info"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("log lacks %s:\n%s", want, joined)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A full queue drops the Event at once, counted and logged: the executor
// that made it never waits on the API server.
func TestFullQueueDrops(t *testing.T) {
	var logged []string
	w := New(nil, scheme.New(), funcr.New(func(_, args string) { logged = append(logged, args) }, funcr.Options{}))
	rec := w.Recorder("kubist")
	cr := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	before := testutil.ToFloat64(dropped.WithLabelValues("queue"))
	start := time.Now()
	for range QueueSize + 3 {
		rec.Eventf(cr, nil, corev1.EventTypeNormal, "Step", "Policy", "canary v2 at 10%%")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("queueing %d Events took %s", QueueSize+3, d)
	}
	if got := testutil.ToFloat64(dropped.WithLabelValues("queue")) - before; got != 3 {
		t.Errorf("dropped %v, want 3", got)
	}
	if len(w.queue) != QueueSize {
		t.Errorf("queued %d, want %d", len(w.queue), QueueSize)
	}
	if len(logged) != 3 || !strings.Contains(logged[0], "event dropped") {
		t.Errorf("logged: %q", logged)
	}
}
