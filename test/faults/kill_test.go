//go:build faults

package faults

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/test/e2e"
	"github.com/kubist-io/kubist/test/testenv"
)

// managerProcess is `kubist manager` in its own process, restartable.
type managerProcess struct {
	*testenv.Process
	metricsURL string
}

// newManagerProcess runs the binary against the control plane with args
// added to a small footprint of its own: no webhooks (the objects are
// created by the test), metrics on a free port, info logs to a file.
func newManagerProcess(t *testing.T, binary string, env *testenv.Env, name string, args ...string) *managerProcess {
	t.Helper()
	metrics, err := controlplane.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return &managerProcess{
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics),
		Process: testenv.NewProcess(t, "manager "+name, binary, append([]string{"manager",
			"--kubeconfig=" + env.Kubectl.Kubeconfig, "--webhooks=false", "--health-probe-bind-address=0",
			fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metrics), "--leader-election-namespace=" + controlplane.WebhookNamespace,
			"--zap-devel=false",
		}, args...)...),
	}
}

// progressingCanaries creates n trees, each with a TimedCanaryRelease of
// 10 steps of 10% every period, and returns their namespaces.
func progressingCanaries(t *testing.T, env *testenv.Env, prefix string, n int, period time.Duration) []string {
	t.Helper()
	var manifest strings.Builder
	namespaces := make([]string, n)
	for i := range namespaces {
		namespaces[i] = fmt.Sprintf("%s-%02d", prefix, i)
		manifest.WriteString(e2e.TreeManifest(namespaces[i]) + "---\n" +
			e2e.CanaryManifest(namespaces[i], fmt.Sprintf("    - name: TimedCanaryRelease\n      parameters: {step: 10, period: %s}\n", period)) + "---\n")
	}
	apply(t, env, manifest.String())
	return namespaces
}

// checkCanariesFinished: every canary is promoted, its VirtualService
// serves the canary alone, and its history shows each step once.
func checkCanariesFinished(t *testing.T, c client.Client, namespaces []string, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, "every canary promoted", func() error {
		for _, ns := range namespaces {
			if cr := canary(t, c, ns); cr.Status.Phase != v1alpha1.CanaryPromoted {
				return fmt.Errorf("%s: phase %s at %d%%", ns, cr.Status.Phase, cr.Status.CanaryWeight)
			}
			if w := servedWeights(t, c, ns); w["v2"] != 100 || w["v1"] != 0 {
				return fmt.Errorf("%s: the VirtualService serves %v", ns, w)
			}
		}
		return nil
	})
	for _, ns := range namespaces {
		checkHistory(t, c, canary(t, c, ns), 10)
	}
}

// servedWeights reads the weights of the VirtualService's default rule.
func servedWeights(t *testing.T, c client.Client, ns string) map[string]int64 {
	t.Helper()
	vs := &unstructured.Unstructured{}
	vs.SetAPIVersion("networking.istio.io/v1")
	vs.SetKind("VirtualService")
	out := map[string]int64{}
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "web"}, vs); err != nil {
		return out
	}
	rules, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		if rule["name"] != "default" {
			continue
		}
		routes, _, _ := unstructured.NestedSlice(rule, "route")
		for _, d := range routes {
			route, _ := d.(map[string]any)
			subset, _, _ := unstructured.NestedString(route, "destination", "subset")
			w, found, _ := unstructured.NestedInt64(route, "weight")
			if !found && len(routes) == 1 {
				w = 100
			}
			out[subset] = w
		}
	}
	return out
}

// TestManagerKilled: the manager is killed with SIGKILL at random moments,
// 20 times, while 20 canaries progress; each restart resumes. Every canary
// finishes promoted, and its history holds each step exactly once.
func TestManagerKilled(t *testing.T) {
	binary, err := testenv.BuildKubist(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := startEnv(t, controlplane.Options{})
	namespaces := progressingCanaries(t, env, "killed", 20, time.Second)
	m := newManagerProcess(t, binary, env, "killed", "--leader-elect=false", "--resync-period=30s")

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("kill moments from seed %d", seed)
	var ups []time.Duration
	for range 20 {
		m.Start()
		up := time.Duration(200+rng.IntN(2800)) * time.Millisecond
		ups = append(ups, up)
		time.Sleep(up)
		m.Stop(syscall.SIGKILL)
	}
	t.Logf("20 SIGKILLs after %v", ups)
	progressed := 0
	for _, ns := range namespaces {
		if canary(t, env.Client, ns).Status.CanaryWeight > 0 {
			progressed++
		}
	}
	t.Logf("%d of 20 canaries stepped while the manager was being killed", progressed)
	if progressed == 0 {
		t.Fatal("no canary stepped between the kills: the test killed nothing in flight")
	}
	m.Start()
	checkCanariesFinished(t, env.Client, namespaces, 2*time.Minute)
}

// leaderElectionEnv is the kubist binary and a control plane with the
// namespace of the leader-election Lease.
func leaderElectionEnv(t *testing.T) (string, *testenv.Env) {
	t.Helper()
	binary, err := testenv.BuildKubist(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := startEnv(t, controlplane.Options{})
	if err := env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controlplane.WebhookNamespace}}); err != nil {
		t.Fatal(err)
	}
	return binary, env
}

// TestAPIServerDown: kube-apiserver stops for 20 s while 20 canaries
// progress under a leader-elected manager, and comes back on the same etcd.
// The manager loses its lease and exits, and is started again as a kubelet
// would; every canary finishes promoted, each step in its history once.
func TestAPIServerDown(t *testing.T) {
	binary, env := leaderElectionEnv(t)
	namespaces := progressingCanaries(t, env, "outage", 20, time.Second)
	m := newManagerProcess(t, binary, env, "outage", "--leader-elect=true", "--resync-period=30s")
	m.KeepRunning()
	m.Start()
	testenv.Eventually(t, time.Minute, "canaries under way", func() error {
		for _, ns := range namespaces {
			if canary(t, env.Client, ns).Status.CanaryWeight >= 30 {
				return nil
			}
		}
		return errors.New("no canary at 30% yet")
	})
	var weights []int32
	for _, ns := range namespaces {
		weights = append(weights, canary(t, env.Client, ns).Status.CanaryWeight)
	}
	t.Logf("canary weights when kube-apiserver stops: %v", weights)
	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Second)
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	checkCanariesFinished(t, env.Client, namespaces, 3*time.Minute)
	t.Logf("the manager was started again %d times", m.Restarts())
}

// leads says whether the process holds the lease, by its own metric; an
// error while it does not serve metrics.
func (m *managerProcess) leads() (bool, error) {
	v, err := testenv.MetricSum(m.metricsURL, "", "leader_election_master_status")
	return v == 1, err
}

// leading is nil when m holds the lease, else why not.
func leading(m *managerProcess) error {
	ok, err := m.leads()
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("not leading")
	}
	return nil
}

// TestLeaderKilled: two leader-elected managers; the leader is killed
// with SIGKILL, so it never releases its Lease. The other takes over once
// the Lease expires as it sees it: client-go counts the lease duration from
// when the waiting replica observed the last renewal, which it reads every
// retry period (with up to 20% jitter), and it tries to acquire at the
// same pace. So the takeover comes within the lease duration and three
// retry periods of the kill. Every canary finishes with each step once.
func TestLeaderKilled(t *testing.T) {
	const leaseDuration, retryPeriod = 15 * time.Second, 2 * time.Second // controller-runtime's defaults
	binary, env := leaderElectionEnv(t)
	namespaces := progressingCanaries(t, env, "takeover", 10, time.Second)
	a := newManagerProcess(t, binary, env, "a", "--leader-elect=true", "--resync-period=30s")
	b := newManagerProcess(t, binary, env, "b", "--leader-elect=true", "--resync-period=30s")
	a.Start()
	testenv.Eventually(t, time.Minute, "manager a leads", func() error {
		return leading(a)
	})
	b.Start()
	testenv.Eventually(t, time.Minute, "manager b serves, waiting", func() error {
		_, err := b.leads()
		return err
	})
	testenv.Eventually(t, time.Minute, "canaries under way", func() error {
		for _, ns := range namespaces {
			if canary(t, env.Client, ns).Status.CanaryWeight >= 30 {
				return nil
			}
		}
		return errors.New("no canary at 30% yet")
	})
	if ok, _ := b.leads(); ok {
		t.Fatal("both managers lead")
	}

	a.Stop(syscall.SIGKILL)
	killed := time.Now()
	testenv.Eventually(t, leaseDuration+3*retryPeriod+10*time.Second, "manager b takes over", func() error {
		return leading(b)
	})
	takeover := time.Since(killed)
	t.Logf("manager b leads %s after the leader was killed", takeover.Round(100*time.Millisecond))
	if bound := leaseDuration + 3*retryPeriod; takeover > bound {
		t.Errorf("takeover took %s, longer than the lease duration and three retry periods (%s)", takeover, bound)
	}
	checkCanariesFinished(t, env.Client, namespaces, 2*time.Minute)
}

// TestActionsUnderKills: three Promote actions wait for each of 10
// canaries that only people move (steps an hour apart) while the manager
// is killed with SIGKILL 10 times at random moments. Every action ends
// Applied, and each canary's history holds each of them once: 10% from
// its first step, then 20, 30 and 40% from the three promotions, each
// recorded with its action.
func TestActionsUnderKills(t *testing.T) {
	binary, err := testenv.BuildKubist(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := startEnv(t, controlplane.Options{})
	namespaces := progressingCanaries(t, env, "acted", 10, time.Hour)
	m := newManagerProcess(t, binary, env, "acted", "--leader-elect=false", "--resync-period=30s")
	m.Start()
	testenv.Eventually(t, time.Minute, "every canary at its first step", func() error {
		for _, ns := range namespaces {
			if w := canary(t, env.Client, ns).Status.CanaryWeight; w != 10 {
				return fmt.Errorf("%s at %d%%", ns, w)
			}
		}
		return nil
	})
	m.Stop(syscall.SIGKILL)

	// As the admission webhook would: who asked, and when, in order.
	start := time.Now()
	for _, ns := range namespaces {
		for i := range 3 {
			a := &v1alpha1.ReleaseAction{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("web-v2-promote-%d", i)},
				Spec: v1alpha1.ReleaseActionSpec{Target: v1alpha1.ActionTarget{Kind: "CanaryRelease", Name: "web-v2"},
					Action: v1alpha1.ActionPromote, RequestedBy: "oncall",
					RequestedAt: &metav1.MicroTime{Time: start.Add(time.Duration(i) * time.Millisecond)}},
			}
			if err := env.Client.Create(t.Context(), a); err != nil {
				t.Fatal(err)
			}
		}
	}
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("kill moments from seed %d", seed)
	for range 10 {
		m.Start()
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		m.Stop(syscall.SIGKILL)
	}
	var actions v1alpha1.ReleaseActionList
	if err := env.Client.List(t.Context(), &actions); err != nil {
		t.Fatal(err)
	}
	applied := 0
	for _, a := range actions.Items {
		if a.Status.Phase == v1alpha1.ActionApplied {
			applied++
		}
	}
	t.Logf("%d of %d actions applied and marked while the manager was being killed", applied, len(actions.Items))
	if applied == 0 {
		t.Fatal("no action was applied between the kills: the test killed nothing in flight")
	}
	m.Start()
	testenv.Eventually(t, 2*time.Minute, "every action applied", func() error {
		var actions v1alpha1.ReleaseActionList
		if err := env.Client.List(t.Context(), &actions); err != nil {
			return err
		}
		for _, a := range actions.Items {
			if a.Status.Phase != v1alpha1.ActionApplied {
				return fmt.Errorf("%s/%s is %q: %s", a.Namespace, a.Name, a.Status.Phase, a.Status.Message)
			}
		}
		return nil
	})
	for _, ns := range namespaces {
		cr := canary(t, env.Client, ns)
		var weights []int32
		var applied []string
		for _, h := range history(t, env.Client, cr) {
			weights = append(weights, h.Weights["v2"])
			if h.Action != "" {
				applied = append(applied, h.ActionName)
			}
		}
		if fmt.Sprint(weights) != "[10 20 30 40]" || fmt.Sprint(applied) != "[web-v2-promote-0 web-v2-promote-1 web-v2-promote-2]" {
			t.Fatalf("%s: history weights %v, actions %v; want [10 20 30 40] and each promotion once, in order", ns, weights, applied)
		}
	}
}

// TestNewVersionsUnderKills: ten Routes with a release template, and the
// manager killed with SIGKILL 15 times at random moments while two new
// versions appear in each (v3, then v4 during v3's release). Each Route
// starts each version's release exactly once, v4's after v3's, and both
// promote: the Route's status records each start once, its history each
// end once, and each release's history each step once.
func TestNewVersionsUnderKills(t *testing.T) {
	binary, err := testenv.BuildKubist(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := startEnv(t, controlplane.Options{})
	var manifest strings.Builder
	namespaces := make([]string, 10)
	for i := range namespaces {
		namespaces[i] = fmt.Sprintf("versions-%02d", i)
		manifest.WriteString(e2e.TreeManifest(namespaces[i]) + "---\n")
	}
	apply(t, env, manifest.String())
	ready := func(ns, version string) {
		t.Helper()
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-" + version}}
		if err := localmesh.MarkAvailable(t.Context(), env.Client, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range namespaces {
		ready(ns, "v1")
		ready(ns, "v2")
		patch := func(kind, p string) {
			t.Helper()
			if res, err := env.Kubectl.Run(nil, "patch", kind, "web", "-n", ns, "--type=merge", "-p", p); err != nil || res.ExitCode != 0 {
				t.Fatalf("patch %s: %v %s", kind, err, res.Stderr)
			}
		}
		patch("destination", `{"spec": {"subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}},
			{"name": "v3", "labels": {"version": "v3"}}, {"name": "v4", "labels": {"version": "v4"}}]}}`)
		patch("route", `{"spec": {"release": {"destination": "web", "httpRoute": "default",
			"policies": [{"name": "TimedCanaryRelease", "parameters": {"step": 50, "period": "2s"}}]}}}`)
	}
	// A new version is one created after the Route, in whole seconds.
	time.Sleep(1100 * time.Millisecond)
	m := newManagerProcess(t, binary, env, "versions", "--leader-elect=false", "--resync-period=30s")
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("kill moments from seed %d", seed)
	for i := range 15 {
		m.Start()
		switch i {
		case 2, 7:
			version := map[int]string{2: "v3", 7: "v4"}[i]
			for _, ns := range namespaces {
				apply(t, env, e2e.DeploymentManifest(ns, version))
				ready(ns, version)
			}
		}
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		m.Stop(syscall.SIGKILL)
	}
	started := 0
	var list v1alpha1.CanaryReleaseList
	if err := env.Client.List(t.Context(), &list); err != nil {
		t.Fatal(err)
	}
	started = len(list.Items)
	t.Logf("%d releases started while the manager was being killed", started)
	if started == 0 {
		t.Fatal("no release started between the kills: the test killed nothing in flight")
	}
	m.Start()
	testenv.Eventually(t, 2*time.Minute, "v3 then v4 promoted on every Route", func() error {
		for _, ns := range namespaces {
			route := &v1alpha1.Route{}
			if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "web"}, route); err != nil {
				return err
			}
			var ended []string
			for _, r := range route.Status.Releases {
				ended = append(ended, fmt.Sprintf("%s %s→%s %s", r.Release, r.Baseline, r.Subset, r.Outcome))
			}
			if want := []string{"CanaryRelease/web-v3 v1→v3 Promoted", "CanaryRelease/web-v4 v3→v4 Promoted"}; !slices.Equal(ended, want) {
				return fmt.Errorf("%s: ended %v, want %v", ns, ended, want)
			}
		}
		return nil
	})
	for _, ns := range namespaces {
		route := &v1alpha1.Route{}
		if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "web"}, route); err != nil {
			t.Fatal(err)
		}
		var subsets []string
		for _, s := range route.Status.Started {
			subsets = append(subsets, s.Subset)
		}
		if !slices.Equal(subsets, []string{"v3", "v4"}) {
			t.Errorf("%s: started %v, want v3 and v4 once each", ns, subsets)
		}
		for _, name := range []string{"web-v3", "web-v4"} {
			cr := &v1alpha1.CanaryRelease{}
			if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, cr); err != nil {
				t.Fatal(err)
			}
			var steps []string
			for _, h := range history(t, env.Client, cr) {
				steps = append(steps, fmt.Sprintf("%d %s", h.Weights[cr.Spec.Subset], h.Phase))
			}
			if want := []string{"50 Progressing", "100 Promoted"}; !slices.Equal(steps, want) {
				t.Errorf("%s/%s: steps %v, want each once: %v", ns, name, steps, want)
			}
		}
	}
}

// TestPlanUnderKills: a ReleasePlan of two Routes over three
// VirtualClusters in three waves, and the manager killed with SIGKILL 10
// times at random moments while it runs. Every wave starts once, in
// order, each after the previous one was promoted; each release the plan
// starts is created once and steps each step once.
func TestPlanUnderKills(t *testing.T) {
	binary, err := testenv.BuildKubist(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := startEnv(t, controlplane.Options{})
	step := "      - {name: TimedCanaryRelease, parameters: {step: 25, period: 1s}}"
	apply(t, env, e2e.FleetManifest("kills", map[string]string{"kills-a": "{ring: canary}", "kills-b": "{region: eu}", "kills-c": "{region: us}"},
		map[string]string{"web": step, "api": step})+`---
apiVersion: kubist.io/v1alpha1
kind: ReleasePlan
metadata: {name: kills-v2}
spec:
  project: kills
  routes: [web, api]
  subset: v2
  policies: [{name: WavePacing, parameters: {soak: 2s, parallelism: 0, onFailure: Halt}}]
  waves:
    - {name: canary, clusters: {matchLabels: {ring: canary}}}
    - {name: eu, clusters: {matchLabels: {region: eu}}}
    - {name: rest}
`)
	m := newManagerProcess(t, binary, env, "plan", "--leader-elect=false", "--resync-period=30s")
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("kill moments from seed %d", seed)
	plan := &v1alpha1.ReleasePlan{}
	during := 0 // kills while the plan had not promoted yet
	for range 10 {
		m.Start()
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		if err := env.Client.Get(t.Context(), types.NamespacedName{Name: "kills-v2"}, plan); err == nil && plan.Status.Phase != v1alpha1.PlanPromoted {
			during++
		}
		m.Stop(syscall.SIGKILL)
	}
	if err := env.Client.Get(t.Context(), types.NamespacedName{Name: "kills-v2"}, plan); err != nil {
		t.Fatal(err)
	}
	t.Logf("after the kills: %s; %d of the 10 kills came while the plan ran", plan.Status.Summary, during)
	if plan.Status.Wave == 0 || during < 8 {
		t.Fatalf("%d kills while the plan ran, %d waves started: the test killed too little in flight", during, plan.Status.Wave)
	}
	m.Start()
	testenv.Eventually(t, 2*time.Minute, "the plan promoted", func() error {
		if err := env.Client.Get(t.Context(), types.NamespacedName{Name: "kills-v2"}, plan); err != nil {
			return err
		}
		if plan.Status.Phase != v1alpha1.PlanPromoted {
			return fmt.Errorf("plan %s", plan.Status.Summary)
		}
		return nil
	})
	var started []string
	for _, h := range plan.Status.History {
		if strings.HasSuffix(h.Message, " started") {
			started = append(started, h.Message)
		}
	}
	if want := []string{"wave 1/3 canary started", "wave 2/3 eu started", "wave 3/3 rest started"}; !slices.Equal(started, want) {
		t.Errorf("the plan's history records the starts %q, want %q", started, want)
	}
	for i, w := range plan.Status.Waves {
		if w.Started == nil || w.Promoted == nil {
			t.Fatalf("wave %s: started %v, promoted %v", w.Name, w.Started, w.Promoted)
		}
		if i > 0 && w.Started.Before(plan.Status.Waves[i-1].Promoted) {
			t.Errorf("wave %s started at %s, before wave %s was promoted at %s", w.Name, w.Started, plan.Status.Waves[i-1].Name, plan.Status.Waves[i-1].Promoted)
		}
		for _, member := range w.Members {
			for _, r := range member.Releases {
				cr := &v1alpha1.CanaryRelease{}
				if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: member.Namespace, Name: r.Name}, cr); err != nil {
					t.Fatal(err)
				}
				var steps []string
				for _, h := range history(t, env.Client, cr) {
					steps = append(steps, fmt.Sprintf("%d %s", h.Weights["v2"], h.Phase))
				}
				if want := []string{"25 Progressing", "50 Progressing", "75 Progressing", "100 Promoted"}; !slices.Equal(steps, want) {
					t.Errorf("%s/%s stepped %v, want %v", cr.Namespace, cr.Name, steps, want)
				}
			}
		}
	}
	t.Logf("%d restarts; waves started at %s, %s, %s", m.Restarts(), plan.Status.Waves[0].Started, plan.Status.Waves[1].Started, plan.Status.Waves[2].Started)
}
