// Package faults injects faults into a running Kubist — Prometheus gone,
// a workload cluster gone, the webhook server gone — on real control
// planes, with the real manager, kubectl and Prometheus, and checks what
// docs/reliability.md promises for each.
package faults

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/internal/manager/app"
	"github.com/kubist-io/kubist/reconciler"
	"github.com/kubist-io/kubist/test/e2e"
	"github.com/kubist-io/kubist/test/testenv"
)

func TestMain(m *testing.M) {
	// The in-process managers and envtest log through controller-runtime.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

func startEnv(t *testing.T, opts controlplane.Options) *testenv.Env {
	t.Helper()
	env, err := testenv.Start(opts, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	return env
}

func startManager(t *testing.T, env *testenv.Env, adjust ...e2e.ManagerOptions) {
	t.Helper()
	m, err := e2e.StartManager(env, true, adjust...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop() })
}

func apply(t *testing.T, env *testenv.Env, manifest string) {
	t.Helper()
	res, err := env.Kubectl.Run([]byte(manifest), "apply", "-f", "-")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("kubectl apply: %v\n%s%s", err, res.Stdout, res.Stderr)
	}
}

// consistently fails the test when check fails at any time over d.
func consistently(t *testing.T, d time.Duration, what string, check func() error) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if err := check(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

func canary(t *testing.T, c client.Client, ns string) *v1alpha1.CanaryRelease {
	t.Helper()
	cr := &v1alpha1.CanaryRelease{}
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, cr); err != nil {
		t.Fatal(err)
	}
	return cr
}

// history is a canary's whole history, as kubist get shows it.
func history(t *testing.T, c client.Client, cr *v1alpha1.CanaryRelease) []v1alpha1.ReleaseStep {
	t.Helper()
	h, err := testenv.History(t.Context(), c, cr)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func condition(conds []metav1.Condition, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(conds, typ); c != nil {
		return *c
	}
	return metav1.Condition{Type: typ, Status: "Unknown", Reason: "NotReported"}
}

// TestWebhookDown: with no webhook server behind the configurations, the
// API server refuses Kubist kinds with an error naming the webhook, and
// admits everything outside kubist.io as before.
func TestWebhookDown(t *testing.T) {
	env := startEnv(t, controlplane.Options{Webhooks: true})
	res, err := env.Kubectl.Run([]byte("apiVersion: kubist.io/v1alpha1\nkind: Project\nmetadata: {name: refused}\n"), "apply", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode == 0 {
		t.Fatal("a Project was admitted with no webhook server running")
	}
	for _, want := range []string{`failed calling webhook "mproject.kubist.io"`, "connection refused"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, res.Stderr)
		}
	}
	var p v1alpha1.Project
	if err := env.Client.Get(t.Context(), types.NamespacedName{Name: "refused"}, &p); err == nil {
		t.Error("the refused Project was stored")
	}
	apply(t, env, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: untouched, namespace: default}\ndata: {a: b}\n")
	apply(t, env, "apiVersion: v1\nkind: Namespace\nmetadata: {name: untouched}\n")
}

// TestPrometheusStoppedMidCanary: a health-based canary holds while
// Prometheus is gone — no step, no promotion, no rollback — with
// MetricsAvailable=False saying why, and goes on when it is back.
func TestPrometheusStoppedMidCanary(t *testing.T) {
	if _, err := localmesh.PrometheusBinary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	exporter := testenv.NewIstioExporter(testenv.SubsetTraffic{Namespace: "prom", Service: "web", Version: "v2", Codes: map[string]int{"200": 100}, Latency: map[float64]int{50: 10}})
	t.Cleanup(exporter.Close)
	prom, err := localmesh.StartPrometheus(t.TempDir(), 200*time.Millisecond, exporter.Target())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prom.Stop)
	env := startEnv(t, controlplane.Options{Webhooks: true})
	startManager(t, env, func(o *app.Options) { o.PrometheusURL = prom.URL })
	c := env.Client

	apply(t, env, e2e.TreeManifest("prom")+"---\n"+e2e.CanaryManifest("prom", `    - name: HealthBasedCanaryRelease
      parameters: {step: 20, period: 2s, maxErrorRate: 0.1, minRequests: 20}
  executor:
    name: CanaryReleaseExecutor
    parameters: {metricsWindow: 10s, meshGracePeriod: 1s}`))
	testenv.Eventually(t, time.Minute, "the canary's first steps on real metrics", func() error {
		cr := canary(t, c, "prom")
		if cr.Status.CanaryWeight < 40 {
			return errorf("canary at %d%%, phase %s", cr.Status.CanaryWeight, cr.Status.Phase)
		}
		return nil
	})

	prom.Stop()
	var held int32
	testenv.Eventually(t, 30*time.Second, "MetricsAvailable=False", func() error {
		cr := canary(t, c, "prom")
		if m := condition(cr.Status.Conditions, reconciler.ConditionMetricsAvailable); m.Status != metav1.ConditionFalse || m.Reason != reconciler.ReasonPrometheusUnavailable {
			return errorf("MetricsAvailable %s/%s", m.Status, m.Reason)
		}
		held = cr.Status.CanaryWeight
		return nil
	})
	cr := canary(t, c, "prom")
	if m := condition(cr.Status.Conditions, reconciler.ConditionMetricsAvailable); !strings.Contains(m.Message, "metrics are unavailable") {
		t.Errorf("MetricsAvailable says %q", m.Message)
	}
	// Several periods of the policy pass: nothing moves.
	consistently(t, 6*time.Second, "the canary holds without metrics", func() error {
		cr := canary(t, c, "prom")
		if cr.Status.Phase != v1alpha1.CanaryProgressing || cr.Status.CanaryWeight != held {
			return errorf("phase %s at %d%%, held at %d%%", cr.Status.Phase, cr.Status.CanaryWeight, held)
		}
		return nil
	})

	if err := prom.Restart(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, "promotion once Prometheus is back", func() error {
		cr := canary(t, c, "prom")
		if cr.Status.Phase != v1alpha1.CanaryPromoted {
			return errorf("phase %s at %d%%", cr.Status.Phase, cr.Status.CanaryWeight)
		}
		if m := condition(cr.Status.Conditions, reconciler.ConditionMetricsAvailable); m.Status != metav1.ConditionTrue {
			return errorf("MetricsAvailable %s/%s", m.Status, m.Reason)
		}
		return nil
	})
	checkHistory(t, c, canary(t, c, "prom"), 20)
}

// checkHistory: the canary's weight rose by step at each step of its
// history, none skipped, none twice.
func checkHistory(t *testing.T, c client.Client, cr *v1alpha1.CanaryRelease, step int32) {
	t.Helper()
	want := step
	steps := history(t, c, cr)
	for _, h := range steps {
		w, ok := h.Weights[cr.Spec.Subset]
		if !ok || h.Phase == string(v1alpha1.CanaryPromoted) && w == 100 && want > 100 {
			continue
		}
		if w != min(want, 100) {
			t.Fatalf("history of %s/%s: weight %d where %d was next: %+v", cr.Namespace, cr.Name, w, want, steps)
		}
		want += step
	}
	if want <= 100 {
		t.Fatalf("history of %s/%s ends below 100%%: %+v", cr.Namespace, cr.Name, steps)
	}
}

// TestWorkloadClusterUnreachable: a Cluster whose API server cannot be
// reached says so on its conditions; the tree on another cluster keeps
// reconciling.
func TestWorkloadClusterUnreachable(t *testing.T) {
	env := startEnv(t, controlplane.Options{Webhooks: true})
	startManager(t, env)
	c := env.Client
	port, err := controlplane.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// The control plane's own kubeconfig, pointed at a port nothing
	// listens on.
	cfg, err := clientcmd.Load(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, cluster := range cfg.Clusters {
		cluster.Server = "https://127.0.0.1:" + itoa(port)
	}
	kubeconfig, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: controlplane.WebhookNamespace, Name: "gone-kubeconfig"},
		Data:       map[string][]byte{"kubeconfig": kubeconfig},
	}); err != nil {
		t.Fatal(err)
	}
	apply(t, env, `apiVersion: kubist.io/v1alpha1
kind: Project
metadata: {name: gone}
---
apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: gone}
spec:
  project: gone
  kubeconfigSecretRef: {name: gone-kubeconfig}
`)
	apply(t, env, e2e.TreeManifest("alive")+"---\n"+e2e.CanaryManifest("alive", "    - name: TimedCanaryRelease\n      parameters: {step: 25, period: 1s}\n"))

	testenv.Eventually(t, time.Minute, "the unreachable Cluster reports it", func() error {
		var cl v1alpha1.Cluster
		if err := c.Get(t.Context(), types.NamespacedName{Name: "gone"}, &cl); err != nil {
			return err
		}
		ready := condition(cl.Status.Conditions, v1alpha1.ConditionReady)
		if ready.Status != metav1.ConditionFalse || ready.Reason != reconciler.ReasonUnreachable ||
			!strings.Contains(ready.Message, "cluster gone is unreachable at https://127.0.0.1:"+itoa(port)) {
			return errorf("Ready %s/%s: %s", ready.Status, ready.Reason, ready.Message)
		}
		return nil
	})
	testenv.Eventually(t, time.Minute, "the other cluster's canary promoted", func() error {
		if cr := canary(t, c, "alive"); cr.Status.Phase != v1alpha1.CanaryPromoted {
			return errorf("phase %s at %d%%", cr.Status.Phase, cr.Status.CanaryWeight)
		}
		return nil
	})
	checkHistory(t, c, canary(t, c, "alive"), 25)
	var cl v1alpha1.Cluster
	if err := c.Get(t.Context(), types.NamespacedName{Name: "gone"}, &cl); err != nil {
		t.Fatal(err)
	}
	t.Logf("the unreachable Cluster: %s", condition(cl.Status.Conditions, v1alpha1.ConditionReady).Message)
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func itoa(i int) string { return strconv.Itoa(i) }
