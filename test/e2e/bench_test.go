package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/internal/manager/app"
	"github.com/kubist-io/kubist/test/testenv"
)

// BenchmarkKubectlApplyWebhook measures what Kubist's webhooks add to a
// kubectl apply of a CanaryRelease through the real API server: batches of
// applies with the webhook configurations registered and unregistered,
// interleaved, each apply a new object. One iteration is the whole
// measurement; it reports the medians and their difference.
func BenchmarkKubectlApplyWebhook(b *testing.B) {
	const batches, perBatch = 3, 15
	ctx := context.Background()
	env, err := testenv.Start(controlplane.Options{Webhooks: true}, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	mgr, err := StartManager(env, true)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = mgr.Stop() }()
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	mustKubectl(b, env, nil, "apply", "-f", filepath.Join(root, "config", "samples"))

	var mutating admissionregistrationv1.MutatingWebhookConfigurationList
	var validating admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := env.Client.List(ctx, &mutating); err != nil {
		b.Fatal(err)
	}
	if err := env.Client.List(ctx, &validating); err != nil {
		b.Fatal(err)
	}
	register := func(on bool) {
		for i := range mutating.Items {
			setWebhook(b, env.Client, &mutating.Items[i], on)
		}
		for i := range validating.Items {
			setWebhook(b, env.Client, &validating.Items[i], on)
		}
		waitForAdmission(b, env, on)
	}

	canary := func(name string) []byte {
		return []byte(fmt.Sprintf(`apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: %s, namespace: bookinfo}
spec:
  route: reviews
  destination: reviews
  subset: v2
  policies:
    - name: HealthBasedCanaryRelease
      parameters: {step: 10, maxErrorRate: 0.05}
    - name: BusinessHoursGate
      parameters: {timezone: Europe/Amsterdam}
    - name: ManualGate
`, name))
	}
	for b.Loop() {
		var with, without []time.Duration
		n := 0
		for batch := 0; batch < batches; batch++ {
			for _, on := range []bool{true, false} {
				register(on)
				for i := 0; i < perBatch; i++ {
					n++
					start := time.Now()
					mustKubectl(b, env, canary(fmt.Sprintf("bench-%d", n)), "apply", "-f", "-")
					if on {
						with = append(with, time.Since(start))
					} else {
						without = append(without, time.Since(start))
					}
				}
			}
		}
		register(true)
		mw, mo := median(with), median(without)
		b.ReportMetric(float64(mw.Microseconds())/1000, "with-webhook-ms")
		b.ReportMetric(float64(mo.Microseconds())/1000, "without-webhook-ms")
		b.ReportMetric(float64((mw-mo).Microseconds())/1000, "added-ms")
	}
}

// setWebhook points a configuration's webhooks at Kubist's resources (on)
// or at a group nothing serves (off), which unregisters them for Kubist.
func setWebhook(b *testing.B, c client.Client, obj client.Object, on bool) {
	b.Helper()
	group := "kubist.io"
	if !on {
		group = "unused.kubist.io"
	}
	setGroup := func(rules []admissionregistrationv1.RuleWithOperations) {
		for i := range rules {
			rules[i].APIGroups = []string{group}
		}
	}
	switch o := obj.(type) {
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		for i := range o.Webhooks {
			setGroup(o.Webhooks[i].Rules)
		}
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		for i := range o.Webhooks {
			setGroup(o.Webhooks[i].Rules)
		}
	}
	if err := c.Update(context.Background(), obj); err != nil {
		b.Fatal(err)
	}
}

// waitForAdmission waits until the API server calls (on) or stops calling
// (off) Kubist's webhooks, seen through a server-side dry run of an object
// only the webhook refuses.
func waitForAdmission(b *testing.B, env *testenv.Env, on bool) {
	b.Helper()
	invalid := []byte(`apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: probe, namespace: bookinfo}
spec: {route: reviews, destination: reviews, subset: v2, policies: [{name: NoSuchPolicy}]}
`)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		res, err := env.Kubectl.Run(invalid, "apply", "--dry-run=server", "-f", "-")
		if err != nil {
			b.Fatal(err)
		}
		if refused := res.ExitCode != 0 && strings.Contains(res.Stderr, "NoSuchPolicy"); refused == on {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("the API server did not switch Kubist's webhooks %v in a minute", on)
}

func mustKubectl(b *testing.B, env *testenv.Env, stdin []byte, args ...string) {
	b.Helper()
	res, err := env.Kubectl.Run(stdin, args...)
	if err != nil || res.ExitCode != 0 {
		b.Fatalf("kubectl %v: %v %s", args, err, res.Stderr)
	}
}

func median(d []time.Duration) time.Duration { return percentile(d, 50) }

// BenchmarkRouteAdmission measures what the check on the target cluster
// (a server-side dry run of the VirtualService a Route makes, which
// istiod's webhook judges) adds to a Route's admission: server-side dry
// runs of a new Route through the real API server, Kubist's webhooks and
// istiod, in batches with the check on and off (the manager restarted
// between them), interleaved. One iteration is the whole measurement; it
// reports the p50 and p99 of each and the difference of the p50s.
func BenchmarkRouteAdmission(b *testing.B) {
	const batches, perBatch, warmUp = 3, 100, 5
	ctrllog.SetLogger(logr.Discard())
	ctx := context.Background()
	env, err := testenv.Start(controlplane.Options{Webhooks: true, WithoutIstioCRDs: true}, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	checked := func(on bool) ManagerOptions {
		return func(o *app.Options) {
			if !on {
				o.ClusterCheckTimeout = 0
			}
		}
	}
	mgr, err := StartManager(env, true, checked(true))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = mgr.Stop() }()

	// Istio's charts installed by the sample Cluster's executor, istiod
	// run as their Deployment's pod, its webhook failing closed.
	istio, err := localmesh.FindIstio("")
	if err != nil {
		b.Fatal(err)
	}
	charts, err := localmesh.ServeCharts(b.TempDir(), istio.ChartDirs())
	if err != nil {
		b.Fatal(err)
	}
	defer charts.Close()
	cluster, err := sampleCluster(root, charts.URL)
	if err != nil {
		b.Fatal(err)
	}
	mustKubectl(b, env, []byte(cluster), "apply", "-f", "-")
	installCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	istiod, err := localmesh.StartIstiod(installCtx, istio, env.Client, localmesh.IstiodOptions{Kubeconfig: env.Kubeconfig, WorkDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = istiod.Stop() }()
	if err := istiod.WaitForValidation(installCtx); err != nil {
		b.Fatal(err)
	}
	mustKubectl(b, env, nil, "apply", "-f", filepath.Join(root, "config", "samples"))

	route := func(name, host string) *v1alpha1.Route {
		return &v1alpha1.Route{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bookinfo", Name: name},
			Spec: v1alpha1.RouteSpec{Hosts: []string{host}, HTTP: []v1alpha1.HTTPRoute{{Name: "default",
				Route: []v1alpha1.RouteDestination{{Destination: "reviews", Subset: "v1"}}}}},
		}
	}
	admit := func(name string) time.Duration {
		start := time.Now()
		if err := env.Client.Create(ctx, route(name, name), client.DryRunAll); err != nil {
			b.Fatalf("admission of Route %s: %v", name, err)
		}
		return time.Since(start)
	}
	// What is measured goes through istiod when the check is on: a host
	// only Istio refuses is refused then, and admitted without the check.
	probe := func(on bool) {
		err := env.Client.Create(ctx, route("probe", "web_app"), client.DryRunAll)
		if refused := err != nil && strings.Contains(err.Error(), `admission webhook "validation.istio.io" denied the request`); refused != on {
			b.Fatalf("with the check %v, a Route with the host web_app: %v", on, err)
		}
	}
	for b.Loop() {
		var with, without []time.Duration
		n := 0
		for range batches {
			for _, on := range []bool{true, false} {
				if err := mgr.Stop(); err != nil {
					b.Fatal(err)
				}
				if mgr, err = StartManager(env, true, checked(on)); err != nil {
					b.Fatal(err)
				}
				probe(on)
				for range warmUp {
					n++
					admit(fmt.Sprintf("bench-%d", n))
				}
				for range perBatch {
					n++
					took := admit(fmt.Sprintf("bench-%d", n))
					if on {
						with = append(with, took)
					} else {
						without = append(without, took)
					}
				}
			}
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(percentile(with, 50)), "checked-p50-ms")
		b.ReportMetric(ms(percentile(with, 99)), "checked-p99-ms")
		b.ReportMetric(ms(percentile(without, 50)), "unchecked-p50-ms")
		b.ReportMetric(ms(percentile(without, 99)), "unchecked-p99-ms")
		b.ReportMetric(ms(percentile(with, 50)-percentile(without, 50)), "added-p50-ms")
	}
}
