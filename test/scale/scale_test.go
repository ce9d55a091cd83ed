// Package scale benchmarks the manager against a real control plane with
// ten thousand Kubist resources: the first full pass, a steady-state pass
// (time and writes), the manager's peak memory, and how soon a canary step
// that falls due is carried by its VirtualService. `make bench-scale`
// runs it; `make test` only compiles it.
package scale

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/test/testenv"
)

// The tree: projects × clusters × virtual clusters, and in each virtual
// cluster one Application and perVC Destinations, Routes and canaries.
const (
	clustersPerProject = 10
	vcsPerCluster      = 10
	perVC              = 3
	resyncPeriod       = 45 * time.Second
)

// latencyPeriod is the canaries' step period: TimedCanaryRelease's default
// of 30s, or KUBIST_SCALE_PERIOD (10s makes 1,000 canaries step three
// times as often, 100 steps a second).
var latencyPeriod = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("KUBIST_SCALE_PERIOD")); err == nil && d > 0 {
		return d
	}
	return 30 * time.Second
}()

// projects is 10, or KUBIST_SCALE_PROJECTS for a smaller tree.
var projects = func() int {
	if n, err := strconv.Atoi(os.Getenv("KUBIST_SCALE_PROJECTS")); err == nil && n > 0 {
		return n
	}
	return 10
}()

func BenchmarkScale(b *testing.B) { minutesLong(b, runScale) }

// minutesLong runs a bench that takes minutes, when make bench-scale
// runs it (KUBIST_BENCH_SCALE=1).
func minutesLong(b *testing.B, run func(*testing.B)) {
	if os.Getenv("KUBIST_BENCH_SCALE") != "1" {
		b.Skip("minutes long: make bench-scale runs it (KUBIST_BENCH_SCALE=1)")
	}
	for b.Loop() {
		run(b)
	}
}

// startControlPlane starts the bench's control plane, sized for the tree.
func startControlPlane(b *testing.B, dir string) *testenv.Env {
	log.SetLogger(logr.Discard())
	env, err := testenv.Start(controlplane.Options{APIServerArgs: map[string][]string{
		"max-requests-inflight": {"1600"}, "max-mutating-requests-inflight": {"800"},
		// 3,000 Services need more addresses than envtest's default /24.
		"service-cluster-ip-range": {"10.0.0.0/16"},
		// For KUBIST_SCALE_APISERVER_PROFILE.
		"profiling": {"true"},
	}}, dir)
	if err != nil {
		b.Fatal(err)
	}
	return env
}

func runScale(b *testing.B) {
	dir := b.TempDir()
	env := startControlPlane(b, dir)
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	start := time.Now()
	total := createTree(ctx, b, env.Client)
	b.Logf("created %d Kubist resources (and their namespaces and Deployments) in %s", total, time.Since(start).Round(time.Second))

	// The manager as it runs in production: its own process.
	binary, err := testenv.BuildKubist(dir)
	if err != nil {
		b.Fatal(err)
	}
	port, err := controlplane.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	// KUBIST_SCALE_LOG keeps the manager's log (errors only) after the run.
	logPath := cmp.Or(os.Getenv("KUBIST_SCALE_LOG"), filepath.Join(dir, "manager.log"))
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	mgr := exec.CommandContext(ctx, binary, "manager", "--kubeconfig", env.Kubectl.Kubeconfig,
		"--leader-elect=false", "--webhooks=false", "--health-probe-bind-address=0",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port),
		"--resync-period="+resyncPeriod.String(), "--zap-log-level=error",
		"--kube-api-qps=1000", "--kube-api-burst=2000", "--workers="+cmp.Or(os.Getenv("KUBIST_SCALE_WORKERS"), "4"),
		"--pprof-bind-address="+os.Getenv("KUBIST_SCALE_PPROF"))
	mgr.Stdout, mgr.Stderr = logFile, logFile
	// The Go runtime's memory settings, for the manager alone, as the
	// chart's Deployment sets them.
	memEnv, memArgs := memorySettings(b)
	mgr.Env, mgr.Args = append(os.Environ(), memEnv...), append(mgr.Args, memArgs...)
	// KUBIST_SCALE_MANAGER_ARGS adds flags, e.g. to compare a setting.
	mgr.Args = append(mgr.Args, strings.Fields(os.Getenv("KUBIST_SCALE_MANAGER_ARGS"))...)
	b.Logf("the manager's memory settings: %s", cmp.Or(strings.Join(append(memEnv, memArgs...), " "), "Go's defaults"))
	passStart := time.Now()
	if err := mgr.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = mgr.Process.Kill(); _ = mgr.Wait() }()
	memory := sampleMemory(ctx, mgr.Process.Pid, metricsURL)

	// First pass: every resource Ready, every VirtualService carrying its
	// promoted canary.
	waitFor(b, 20*time.Minute, func() (bool, string) {
		ready, err := readyCount(ctx, env.Client)
		if err != nil {
			return false, err.Error()
		}
		promoted, err := promotedServices(ctx, env.Client)
		if err != nil {
			return false, err.Error()
		}
		want := projects * clustersPerProject * vcsPerCluster * perVC
		return ready == total && promoted == want, fmt.Sprintf("%d/%d Ready, %d/%d VirtualServices promoted", ready, total, promoted, want)
	})
	firstPass := time.Since(passStart)
	b.ReportMetric(firstPass.Seconds(), "first-pass-s")

	// Steady state: the next root run, from the first Project it runs to
	// the last executor run it causes, and the writes it makes.
	steady, writes, runs, firstRoot := steadyPass(b, metricsURL)
	b.ReportMetric(steady.Seconds(), "steady-pass-s")
	b.ReportMetric(writes, "steady-pass-writes")
	b.ReportMetric(runs, "steady-pass-runs")

	watcher, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	// At rest: what the processes use with no step due, over a root
	// run's period (the step phase has the same root runs).
	resting := processCPU(b, map[string]int{"manager": mgr.Process.Pid})
	time.Sleep(resyncPeriod)
	atRest := resting()
	b.Logf("CPU seconds at rest: %s", atRest)
	cpu := processCPU(b, map[string]int{"manager": mgr.Process.Pid})
	stopProfile := apiServerProfile(ctx, b, env)
	managerBefore := scrape(b, http.DefaultClient, metricsURL, managerWatched)
	apiClient, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	apiBefore := scrape(b, apiClient, strings.TrimSuffix(env.Config.Host, "/")+"/metrics", apiServerWatched)
	p50, p99, samples := stepLatency(ctx, b, watcher, firstRoot, mgr.Process.Pid)
	stopProfile()
	phase := cpu()
	b.Logf("CPU seconds during the step-latency phase: %s", phase)
	steps, sum := perStep(phase, atRest, samples)
	b.Logf("CPU per step beyond the rate at rest: %s", steps)
	b.ReportMetric(sum, "cpu-ms-per-step")
	b.Logf("the manager during the step-latency phase:\n%s", strings.Join(scrape(b, http.DefaultClient, metricsURL, managerWatched).since(managerBefore), "\n"))
	b.Logf("the API server during the step-latency phase:\n%s", strings.Join(scrape(b, apiClient, strings.TrimSuffix(env.Config.Host, "/")+"/metrics", apiServerWatched).since(apiBefore), "\n"))
	b.ReportMetric(float64(p50.Milliseconds()), "step-p50-ms")
	b.ReportMetric(float64(p99.Milliseconds()), "step-p99-ms")
	b.ReportMetric(float64(samples), "steps")

	hwm, ok := procStatus(mgr.Process.Pid)["VmHWM"]
	if !ok {
		b.Fatal("no VmHWM in the manager's /proc status")
	}
	b.ReportMetric(hwm/(1<<20), "peak-rss-MiB")
	peaks := memory()
	b.ReportMetric(peaks.heapInUse/(1<<20), "peak-heap-inuse-MiB")
	b.ReportMetric(peaks.heapGoal/(1<<20), "peak-heap-goal-MiB")
	b.ReportMetric(peaks.atPeak.file/(1<<20), "peak-rss-file-MiB")
	// What can get the manager OOM-killed is its anonymous memory (heap,
	// stacks, runtime), not the binary's clean pages, which the kernel
	// reclaims under pressure: per 1,000 resources of the tree.
	b.ReportMetric(peaks.rssAnon/(1<<20), "peak-anon-MiB")
	b.ReportMetric(peaks.rssAnon/(1<<20)/float64(total)*1000, "anon-MiB-per-1000")
	b.ReportMetric(peaks.heapInUse/(1<<20)/float64(total)*1000, "heap-inuse-MiB-per-1000")
	softLimit := "none"
	if peaks.softLimit < math.MaxInt64 {
		softLimit = fmt.Sprintf("%.0f MiB", peaks.softLimit/(1<<20))
	}
	b.Logf("the manager's memory at its highest: resident %.1f MiB; %.1f MiB anonymous (heap, stacks, runtime), %.1f MiB of its binary; Go heap in use %.1f MiB, heap goal %.1f MiB (GOGC %.0f, soft limit %s)",
		hwm/(1<<20), peaks.rssAnon/(1<<20), peaks.atPeak.file/(1<<20), peaks.heapInUse/(1<<20), peaks.heapGoal/(1<<20), peaks.gcPercent, softLimit)
	b.Logf("the highest resident set sampled (every second): %.1f MiB anonymous and %.1f MiB of the binary; the binary's resident pages at their highest: %.1f MiB, at the end: %.1f MiB",
		peaks.atPeak.anon/(1<<20), peaks.atPeak.file/(1<<20), peaks.rssFile/(1<<20), peaks.lastFile/(1<<20))
	b.Logf("first pass %s; steady pass %s with %v writes (%v executor runs); step latency p50 %s p99 %s over %d steps",
		firstPass.Round(time.Millisecond), steady.Round(time.Millisecond), writes, runs, p50, p99, samples)
	var footprint strings.Builder
	var size, resident float64
	for i, m := range binaryFootprint(b, dir, mgr.Process.Pid) {
		size, resident = size+m.size, resident+m.resident
		if i < 15 {
			fmt.Fprintf(&footprint, "\n    %-50s %6.1f MiB, %6.1f MiB resident", m.module, m.size/(1<<20), m.resident/(1<<20))
		}
	}
	b.Logf("the binary's code and read-only data by module (symbols: %.1f MiB, %.1f MiB resident):%s", size/(1<<20), resident/(1<<20), footprint.String())
}

// createTree creates the tree with 16 clients at once; it returns the
// number of Kubist resources.
func createTree(ctx context.Context, b *testing.B, c client.Client) int {
	var objs []client.Object
	for p := range projects {
		pname := fmt.Sprintf("p%d", p)
		objs = append(objs, &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: pname}})
		for cl := range clustersPerProject {
			cname := fmt.Sprintf("%s-c%d", pname, cl)
			objs = append(objs, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cname}, Spec: v1alpha1.ClusterSpec{Project: pname}})
			for v := range vcsPerCluster {
				objs = append(objs, vcObjects(fmt.Sprintf("%s-v%d", cname, v), cname)...)
			}
		}
	}
	kubist := 0
	for _, o := range objs {
		if _, ok := o.(v1alpha1.Object); ok {
			kubist++
		}
	}
	// Parents first, so that children never wait on a missing parent.
	var stages [][]client.Object
	var stage []client.Object
	for _, o := range objs {
		switch o.(type) {
		case *v1alpha1.Project, *v1alpha1.Cluster, *v1alpha1.VirtualCluster, *corev1.Namespace:
			stages = appendStage(stages, 0, o)
		default:
			stage = append(stage, o)
		}
	}
	stages = append(stages, stage)
	for _, s := range stages {
		createAll(ctx, b, c, s)
	}
	return kubist
}

func appendStage(stages [][]client.Object, i int, o client.Object) [][]client.Object {
	for len(stages) <= i {
		stages = append(stages, nil)
	}
	stages[i] = append(stages[i], o)
	return stages
}

func createAll(ctx context.Context, b *testing.B, c client.Client, objs []client.Object) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(objs) {
					return
				}
				if err := c.Create(ctx, objs[i]); err != nil {
					errs <- fmt.Errorf("create %T %s: %w", objs[i], objs[i].GetName(), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// vcObjects is one virtual cluster: its namespace, two Deployments, the
// Application, and perVC Destinations, Routes and TimedCanaryReleases
// that promote in one step.
func vcObjects(name, cluster string) []client.Object {
	objs := []client.Object{
		&v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.VirtualClusterSpec{Cluster: cluster}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}},
		&v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: name}},
	}
	for _, version := range []string{"v1", "v2"} {
		labels := map[string]string{"app": "web", "version": version}
		objs = append(objs, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web-" + version, Namespace: name, Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.com/web:" + version}}},
				},
			},
		})
	}
	for i := range perVC {
		d := fmt.Sprintf("web-%d", i)
		objs = append(objs,
			&v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: d, Namespace: name}, Spec: v1alpha1.DestinationSpec{
				Application: "web", Ports: []v1alpha1.DestinationPort{{Name: "http", Port: 8080}},
				Subsets: []v1alpha1.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}, {Name: "v2", Labels: map[string]string{"version": "v2"}}},
			}},
			route(d, name, d),
			canary(d, name, d, d, 100, time.Second),
		)
	}
	return objs
}

func route(name, namespace, destination string) *v1alpha1.Route {
	return &v1alpha1.Route{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: v1alpha1.RouteSpec{
		Hosts: []string{destination},
		HTTP:  []v1alpha1.HTTPRoute{{Name: "default", Route: []v1alpha1.RouteDestination{{Destination: destination, Subset: "v1", Weight: ptr.To(int32(100))}}}},
	}}
}

func canary(name, namespace, route, destination string, step int, period time.Duration) *v1alpha1.CanaryRelease {
	return &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: v1alpha1.CanaryReleaseSpec{
		Route: route, Destination: destination, Subset: "v2", Baseline: "v1",
		Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{{Name: "TimedCanaryRelease", Parameters: v1alpha1.Parameters{
			"step": {Raw: []byte(strconv.Itoa(step))}, "period": {Raw: []byte(strconv.Quote(period.String()))},
		}}}},
	}}
}

// readyCount counts the Kubist resources whose Ready condition is True.
func readyCount(ctx context.Context, c client.Client) (int, error) {
	n := 0
	for _, list := range []client.ObjectList{
		&v1alpha1.ProjectList{}, &v1alpha1.ClusterList{}, &v1alpha1.VirtualClusterList{}, &v1alpha1.ApplicationList{},
		&v1alpha1.DestinationList{}, &v1alpha1.RouteList{}, &v1alpha1.CanaryReleaseList{},
	} {
		if err := c.List(ctx, list); err != nil {
			return 0, err
		}
		err := meta.EachListItem(list, func(o runtime.Object) error {
			if cond := meta.FindStatusCondition(o.(v1alpha1.Object).GetCommonStatus().Conditions, v1alpha1.ConditionReady); cond != nil && cond.Status == metav1.ConditionTrue {
				n++
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

// promotedServices counts the VirtualServices that send all traffic to v2.
func promotedServices(ctx context.Context, c client.Client) (int, error) {
	var list networkingv1.VirtualServiceList
	if err := c.List(ctx, &list); err != nil {
		return 0, err
	}
	n := 0
	for _, vs := range list.Items {
		if len(vs.Spec.Http) == 1 && len(vs.Spec.Http[0].Route) == 1 && vs.Spec.Http[0].Route[0].Destination.Subset == "v2" {
			n++
		}
	}
	return n, nil
}

func waitFor(b *testing.B, timeout time.Duration, done func() (bool, string)) {
	if last, ok := waitUntil(b, timeout, done); !ok {
		b.Fatalf("not done after %s: %s", timeout, last)
	}
}

// waitUntil polls done every 5 s until it is true or timeout passes; it
// returns the last status and whether done became true.
func waitUntil(b *testing.B, timeout time.Duration, done func() (bool, string)) (string, bool) {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, status := done()
		if ok {
			return status, true
		}
		if status != last {
			b.Logf("%s  %s", time.Now().Format(time.TimeOnly), status)
			last = status
		}
		// Listing 11,000 objects costs the API server: not too often.
		time.Sleep(5 * time.Second)
	}
	return last, false
}

// managerMetrics reads the manager's executor runs (all, and of Projects)
// and writes.
func managerMetrics(b *testing.B, url string) (runs, projectRuns, writes float64) {
	return countRuns(scrape(b, http.DefaultClient, url, steadyWatched))
}

// countRuns sums a snapshot's executor runs (all, and of Projects) and
// writes.
func countRuns(s snapshot) (runs, projectRuns, writes float64) {
	for key, v := range s.counters {
		switch {
		case strings.HasPrefix(key, "kubist_executor_runs_total{"):
			runs += v
			if strings.Contains(key, "kind=Project,") {
				projectRuns += v
			}
		case strings.HasPrefix(key, "kubist_writes_total{"):
			writes += v
		}
	}
	return runs, projectRuns, writes
}

// The manager's counters a steady pass reports.
var steadyWatched = map[string]bool{"kubist_executor_runs_total": true, "kubist_writes_total": true, "kubist_policy_decisions_total": true}

// steadyPass waits for quiet, then for the next root run, and measures it
// from the first Project run to the last executor run it causes; it
// returns when that root run started, too.
func steadyPass(b *testing.B, url string) (time.Duration, float64, float64, time.Time) {
	// Quiet: no executor run for 3 s.
	runs, projects0, writes0 := managerMetrics(b, url)
	for quietSince := time.Now(); time.Since(quietSince) < 3*time.Second; {
		time.Sleep(50 * time.Millisecond)
		r, p, w := managerMetrics(b, url)
		if r != runs {
			runs, projects0, writes0, quietSince = r, p, w, time.Now()
		}
	}
	runs0 := runs
	before := scrape(b, http.DefaultClient, url, steadyWatched)
	deadline := time.Now().Add(2 * resyncPeriod)
	var start time.Time
	for start.IsZero() {
		if time.Now().After(deadline) {
			b.Fatal("no root run within two resync periods")
		}
		time.Sleep(20 * time.Millisecond)
		if r, p, _ := managerMetrics(b, url); p > projects0 {
			start, runs = time.Now(), r
		}
	}
	last := time.Now()
	for time.Since(last) < 2*time.Second {
		time.Sleep(20 * time.Millisecond)
		if r, _, _ := managerMetrics(b, url); r != runs {
			runs, last = r, time.Now()
		}
	}
	_, _, writes := managerMetrics(b, url)
	b.Logf("steady pass, counters that grew:\n%s", strings.Join(scrape(b, http.DefaultClient, url, steadyWatched).since(before), "\n"))
	return last.Sub(start), writes - writes0, runs - runs0, start
}

// stepLatency starts 1,000 TimedCanaryReleases at once (one new Route and
// canary in each virtual cluster, 10 steps of 10% every 10 s) and measures,
// for every step after the first, the time from the step falling due
// (the previous step's time plus the period) to a watch on the
// VirtualServices seeing the new weight.
func stepLatency(ctx context.Context, b *testing.B, c client.WithWatch, firstRoot time.Time, manager int) (time.Duration, time.Duration, int) {
	phaseStart := time.Now()
	timelineCtx, stopTimeline := context.WithCancel(ctx)
	timeline := cpuTimeline(timelineCtx, b, manager)
	w, err := c.Watch(ctx, &networkingv1.VirtualServiceList{}, client.MatchingLabels{v1alpha1.LabelOwnerName: "latency"})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	observed := map[string][]seen{}
	// When the canary's status carried each weight: the step's own part
	// of the latency, before the Route's.
	stepped := map[string][]seen{}
	cw, err := c.Watch(ctx, &v1alpha1.CanaryReleaseList{}, client.MatchingFields{"metadata.name": "latency"})
	if err != nil {
		b.Fatal(err)
	}
	defer cw.Stop()
	go func() {
		for ev := range cw.ResultChan() {
			cr, ok := ev.Object.(*v1alpha1.CanaryRelease)
			if !ok || cr.Name != "latency" {
				continue
			}
			w := cr.Status.Weights["v2"]
			mu.Lock()
			list := stepped[cr.Namespace]
			if len(list) == 0 || list[len(list)-1].weight != w {
				stepped[cr.Namespace] = append(list, seen{w, time.Now()})
			}
			mu.Unlock()
		}
	}()
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			vs := ev.Object.(*networkingv1.VirtualService)
			for _, d := range vs.Spec.Http[0].Route {
				if d.Destination.Subset == "v2" {
					mu.Lock()
					list := observed[vs.Namespace]
					if len(list) == 0 || list[len(list)-1].weight != d.Weight {
						observed[vs.Namespace] = append(list, seen{d.Weight, time.Now()})
					}
					mu.Unlock()
				}
			}
		}
	}()

	var objs []client.Object
	var namespaces []string
	for p := range projects {
		for cl := range clustersPerProject {
			for v := range vcsPerCluster {
				ns := fmt.Sprintf("p%d-c%d-v%d", p, cl, v)
				namespaces = append(namespaces, ns)
				objs = append(objs, route("latency", ns, "web-0"), canary("latency", ns, "latency", "web-0", 10, latencyPeriod))
			}
		}
	}
	// Started evenly over one period, as releases start in a real fleet:
	// steps fall due at an even rate. (All created at once, they
	// would all step in the same instant, a measure of throughput.)
	routes := make([]client.Object, 0, len(namespaces))
	canaries := make([]client.Object, 0, len(namespaces))
	for i := 0; i < len(objs); i += 2 {
		routes, canaries = append(routes, objs[i]), append(canaries, objs[i+1])
	}
	createAll(ctx, b, c, routes)
	tick := latencyPeriod / time.Duration(len(canaries))
	next := time.Now()
	for i, cr := range canaries {
		next = next.Add(tick)
		time.Sleep(time.Until(next))
		if err := c.Create(ctx, cr); err != nil {
			b.Fatalf("create canary %d: %v", i, err)
		}
	}
	// Done when every canary's status reached 100, as the watch saw it:
	// listing thousands of canaries would load the machine under test.
	// Past the bound, the figures count the steps taken by then (a step
	// not yet taken is later than any of them): a machine too small for
	// the fleet still says how late its steps were.
	bound := 2*latencyPeriod*10 + 5*time.Minute
	status, done := waitUntil(b, bound, func() (bool, string) {
		mu.Lock()
		promoted := 0
		for _, st := range stepped {
			if len(st) > 0 && st[len(st)-1].weight == 100 {
				promoted++
			}
		}
		mu.Unlock()
		return promoted == len(namespaces), fmt.Sprintf("%d/%d latency canaries promoted", promoted, len(namespaces))
	})
	if !done {
		b.Logf("not all promoted after %s (%s): the step figures below leave out the steps not taken, so they understate the lateness", bound, status)
		b.ReportMetric(1, "unfinished")
	}
	time.Sleep(time.Second) // the last VirtualService updates

	var latencies, stepLatencies []time.Duration
	var dues []time.Time
	lateSteps, lateAtStatus := 0, 0
	for _, ns := range namespaces {
		var cr v1alpha1.CanaryRelease
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "latency"}, &cr); err != nil {
			b.Fatal(err)
		}
		history, err := testenv.History(ctx, c, &cr)
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		obs := observed[ns]
		mu.Unlock()
		for i := 1; i < len(history); i++ {
			due := history[i-1].Time.Add(latencyPeriod)
			weight := history[i].Weights["v2"]
			// Under load a Route may compose two steps at once: a step is
			// carried when the VirtualService reaches its weight or beyond.
			j := slices.IndexFunc(obs, func(s seen) bool { return s.weight >= weight })
			if j < 0 && !done {
				continue // stepped as the bound ran out: not yet on the mesh
			}
			if j < 0 {
				b.Fatalf("%s: the VirtualService never carried weight %d", ns, weight)
			}
			latencies = append(latencies, obs[j].at.Sub(due))
			dues = append(dues, due)
			mu.Lock()
			st := stepped[ns]
			mu.Unlock()
			if k := slices.IndexFunc(st, func(s seen) bool { return s.weight >= weight }); k >= 0 {
				stepLatencies = append(stepLatencies, st[k].at.Sub(due))
				if late := obs[j].at.Sub(due); late > lateStep {
					lateSteps++
					if st[k].at.Sub(due) > lateStep {
						lateAtStatus++
					}
				}
			}
		}
	}
	stopTimeline()
	lateAfterRoot(b, dues, latencies, rootRuns(firstRoot, phaseStart, time.Now()), timeline())
	if len(dues) > 0 {
		first := slices.MinFunc(dues, func(a, b time.Time) int { return a.Compare(b) })
		mu.Lock()
		b.Logf("the longest silences of the bench's watches (no new weight seen; after the first step fell due): VirtualServices %s; canaries' status %s",
			silences(observed, first), silences(stepped, first))
		mu.Unlock()
	}
	slices.Sort(stepLatencies)
	if n := len(stepLatencies); n > 0 {
		b.Logf("due to the canary's status: p50 %s p99 %s; of the %d steps on the mesh later than %s, %d were late at the canary's status already (the step's run), the others only at the VirtualService (the Route's run)",
			stepLatencies[n/2], stepLatencies[n*99/100], lateSteps, lateStep, lateAtStatus)
	}
	slices.Sort(latencies)
	if len(latencies) == 0 {
		b.Fatal("no steps measured")
	}
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	return pct(0.50), pct(0.99), len(latencies)
}

// seen is when a watch saw a weight.
type seen struct {
	weight int32
	at     time.Time
}

// silences are the three longest gaps between the changes a watch saw,
// with when they began (seconds after from): the same gap in both of the
// bench's watches says that the steps stalled before their status writes.
func silences(changes map[string][]seen, from time.Time) string {
	var times []time.Time
	for _, list := range changes {
		for _, e := range list {
			times = append(times, e.at)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	type gap struct {
		at  time.Time
		len time.Duration
	}
	var gaps []gap
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, gap{times[i-1], times[i].Sub(times[i-1])})
	}
	slices.SortFunc(gaps, func(a, b gap) int { return cmp.Compare(b.len, a.len) })
	var out []string
	for _, g := range gaps[:min(3, len(gaps))] {
		out = append(out, fmt.Sprintf("%s at %.0fs", g.len.Round(time.Millisecond), g.at.Sub(from).Seconds()))
	}
	return strings.Join(out, ", ")
}

// lateStep is the step latency target: a step later than this is late.
const lateStep = 250 * time.Millisecond

// rootRuns are the root runs between from and to: the manager's root run
// is a ticker of period resyncPeriod, so they follow the one the steady
// pass saw (first) a period apart. (Scraping the manager's /metrics every
// few seconds to see them would load it far more than a Prometheus does,
// every 30 s with the chart's ServiceMonitor.)
func rootRuns(first, from, to time.Time) []time.Time {
	var out []time.Time
	for t := first; !t.After(to); t = t.Add(resyncPeriod) {
		if !t.Before(from) {
			out = append(out, t)
		}
	}
	return out
}

// lateAfterRoot logs how many of the steps later than the target fell due
// in the seconds after a root run started, and when in the phase the late
// steps fell due (counts per 10 s): where the tail comes from.
func lateAfterRoot(b *testing.B, dues []time.Time, latencies []time.Duration, roots []time.Time, cpu []cpuSample) {
	const target, window = lateStep, 5 * time.Second
	if len(dues) == 0 {
		return
	}
	first := slices.MinFunc(dues, func(a, b time.Time) int { return a.Compare(b) })
	late, near := 0, 0
	byTime := map[int]int{}
	for i, l := range latencies {
		if l <= target {
			continue
		}
		late++
		byTime[int(dues[i].Sub(first)/(10*time.Second))]++
		if slices.ContainsFunc(roots, func(r time.Time) bool { d := dues[i].Sub(r); return d > -time.Second && d < window }) {
			near++
		}
	}
	var when []string
	for _, k := range slices.Sorted(maps.Keys(byTime)) {
		when = append(when, fmt.Sprintf("%ds:%d", k*10, byTime[k]))
	}
	// Each process's CPU per 10 s of the phase, beside its late steps.
	busy := map[int]cpuUse{}
	for _, s := range cpu {
		k := int(s.at.Sub(first) / (10 * time.Second))
		u, ok := busy[k]
		if !ok {
			u = cpuUse{seconds: map[string]float64{}}
		}
		u.wall += s.use.wall
		for name, v := range s.use.seconds {
			u.seconds[name] += v
		}
		busy[k] = u
	}
	var rows []string
	for _, k := range slices.Sorted(maps.Keys(busy)) {
		u := busy[k]
		rows = append(rows, fmt.Sprintf("\n    %4ds %4d late; CPU %%: manager %3.0f, kube-apiserver %3.0f, etcd %3.0f, bench %3.0f",
			k*10, byTime[k], 100*u.seconds["manager"]/u.wall, 100*u.seconds["kube-apiserver"]/u.wall, 100*u.seconds["etcd"]/u.wall, 100*u.seconds["bench"]/u.wall))
	}
	defer b.Logf("the phase by 10 s (by when steps fell due):%s", strings.Join(rows, ""))
	var rootAt []string
	for _, r := range roots {
		rootAt = append(rootAt, fmt.Sprintf("%.0fs", r.Sub(first).Seconds()))
	}
	b.Logf("%d root runs in the phase (at %s after the first step fell due); %d steps over %s, %d of them due within %s of a root run's start; late steps by when they fell due: %s",
		len(roots), strings.Join(rootAt, " "), late, target, near, window, strings.Join(when, " "))
}

// processCPU snapshots the CPU time of the manager, the control plane's
// processes and this one; the function it returns reports what each used
// since.
// parentOf is a process's parent's pid; 0 when it cannot be read.
func parentOf(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command's closing parenthesis: state, ppid, …
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

func processCPU(b *testing.B, pids map[string]int) func() cpuUse {
	pids["bench"] = os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		// The bench's own control plane: its children, not another
		// test's processes left running.
		if name := strings.TrimSpace(string(comm)); (name == "kube-apiserver" || name == "etcd") && parentOf(pid) == os.Getpid() {
			pids[name] = pid
		}
	}
	read := func() map[string]float64 {
		out := map[string]float64{}
		for name, pid := range pids {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue
			}
			// Fields after the command's closing parenthesis: utime and
			// stime are the 12th and 13th, in clock ticks (100 a second).
			fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
			utime, _ := strconv.ParseFloat(fields[11], 64)
			stime, _ := strconv.ParseFloat(fields[12], 64)
			out[name] = (utime + stime) / 100
		}
		return out
	}
	before, start := read(), time.Now()
	return func() cpuUse {
		after := read()
		use := cpuUse{wall: time.Since(start).Seconds(), seconds: map[string]float64{}}
		for name, v := range after {
			use.seconds[name] = v - before[name]
		}
		return use
	}
}

// cpuSample is what each process used in one second of a phase.
type cpuSample struct {
	at  time.Time
	use cpuUse
}

// cpuTimeline samples the processes' CPU every second until ctx is done;
// the function it returns gives the samples (after ctx is done).
func cpuTimeline(ctx context.Context, b *testing.B, manager int) func() []cpuSample {
	var samples []cpuSample
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			at, since := time.Now(), processCPU(b, map[string]int{"manager": manager})
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			samples = append(samples, cpuSample{at: at, use: since()})
		}
	}()
	return func() []cpuSample { <-done; return samples }
}

// cpuUse is the CPU seconds each process used over wall seconds.
type cpuUse struct {
	wall    float64
	seconds map[string]float64
}

func (u cpuUse) String() string {
	var parts []string
	for name, v := range u.seconds {
		parts = append(parts, fmt.Sprintf("%s %.1f (%.0f%%)", name, v, 100*v/u.wall))
	}
	slices.Sort(parts)
	return fmt.Sprintf("over %.0f s: %s", u.wall, strings.Join(parts, ", "))
}

// perStep is the CPU milliseconds per step of the API server, the manager
// and etcd beyond what they use at rest (the same root runs, no step), and
// their sum.
func perStep(phase, rest cpuUse, steps int) (string, float64) {
	var parts []string
	sum := 0.0
	for _, name := range []string{"kube-apiserver", "manager", "etcd"} {
		ms := 1000 * (phase.seconds[name] - rest.seconds[name]/rest.wall*phase.wall) / float64(steps)
		sum += ms
		parts = append(parts, fmt.Sprintf("%s %.1f ms", name, ms))
	}
	return fmt.Sprintf("%s; sum %.1f ms", strings.Join(parts, ", "), sum), sum
}

// apiServerProfile writes a 30 s CPU profile of the API server to the file
// KUBIST_SCALE_APISERVER_PROFILE names, if any.
func apiServerProfile(ctx context.Context, b *testing.B, env *testenv.Env) func() {
	path := os.Getenv("KUBIST_SCALE_APISERVER_PROFILE")
	if path == "" {
		return func() {}
	}
	rc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(env.Config.Host, "/")+"/debug/pprof/profile?seconds=30", nil)
		if err != nil {
			b.Error(err)
			return
		}
		resp, err := rc.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		defer func() { _ = resp.Body.Close() }()
		f, err := os.Create(path)
		if err != nil {
			b.Error(err)
			return
		}
		defer func() { _ = f.Close() }()
		if _, err := io.Copy(f, resp.Body); err != nil {
			b.Error(err)
		}
	}()
	return func() { <-done }
}

// snapshot is the manager's counters and histograms that tell where a
// step's time goes: its executors, its work queues, its API calls.
type snapshot struct {
	counters   map[string]float64
	histograms map[string]*dto.Histogram
}

var managerWatched = map[string]bool{"kubist_executor_lateness_seconds": true, "kubist_executor_duration_seconds": true,
	"kubist_writes_total": true, "kubist_policy_decisions_total": true, "controller_runtime_reconcile_total": true,
	"workqueue_queue_duration_seconds": true, "workqueue_work_duration_seconds": true, "rest_client_requests_total": true}

// The API server's request latencies by verb and resource (without the
// long-running watches), and etcd's.
var apiServerWatched = map[string]bool{"apiserver_request_duration_seconds": true, "etcd_request_duration_seconds": true,
	"apiserver_flowcontrol_request_wait_duration_seconds": true}

func scrape(b *testing.B, c *http.Client, url string, watched map[string]bool) snapshot {
	out, err := fetchMetrics(c, url, watched)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// fetchMetrics reads the watched metrics of an endpoint.
func fetchMetrics(c *http.Client, url string, watched map[string]bool) (snapshot, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return snapshot{}, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := c.Do(req)
	if err != nil {
		return snapshot{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return snapshot{}, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return snapshot{}, fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return snapshot{}, fmt.Errorf("GET %s: %w: %.200s", url, err, body)
	}
	out := snapshot{counters: map[string]float64{}, histograms: map[string]*dto.Histogram{}}
	for name, f := range families {
		if !watched[name] {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if l.GetName() == "verb" && (l.GetValue() == "WATCH" || l.GetValue() == "CONNECT") {
					labels = nil
					break
				}
				if keptLabels[l.GetName()] {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
			}
			if labels == nil && len(m.GetLabel()) > 0 {
				continue
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out.counters[key] += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out.histograms[key] = mergeHistograms(out.histograms[key], m.GetHistogram())
			}
		}
	}
	return out, nil
}

// keptLabels are the labels a snapshot keeps; series that differ in others
// (host, scope, component, …) are summed.
var keptLabels = map[string]bool{"kind": true, "executor": true, "object": true, "policy": true, "outcome": true,
	"controller": true, "result": true, "code": true, "method": true, "verb": true, "resource": true,
	"subresource": true, "operation": true, "type": true, "priority_level": true}

// mergeHistograms adds b's samples to a's (same buckets); a may be nil.
func mergeHistograms(a, b *dto.Histogram) *dto.Histogram {
	if a == nil {
		return b
	}
	count := a.GetSampleCount() + b.GetSampleCount()
	out := &dto.Histogram{SampleCount: &count}
	for i, bk := range a.GetBucket() {
		c := bk.GetCumulativeCount() + b.GetBucket()[i].GetCumulativeCount()
		out.Bucket = append(out.Bucket, &dto.Bucket{UpperBound: bk.UpperBound, CumulativeCount: &c})
	}
	return out
}

// since lists the counters that grew and, for histograms that gained
// samples, the count and the bucket bounds of the median and the 99th
// percentile of the new samples.
func (s snapshot) since(before snapshot) []string {
	var out []string
	for k, v := range s.counters {
		if d := v - before.counters[k]; d != 0 {
			out = append(out, fmt.Sprintf("%s +%g", k, d))
		}
	}
	for k, h := range s.histograms {
		prev := map[float64]uint64{}
		var prevCount uint64
		if p := before.histograms[k]; p != nil {
			prevCount = p.GetSampleCount()
			for _, bk := range p.GetBucket() {
				prev[bk.GetUpperBound()] = bk.GetCumulativeCount()
			}
		}
		n := h.GetSampleCount() - prevCount
		if n == 0 {
			continue
		}
		quantile := func(q float64) string {
			for _, bk := range h.GetBucket() {
				if float64(bk.GetCumulativeCount()-prev[bk.GetUpperBound()]) >= q*float64(n) {
					return fmt.Sprintf("≤%gs", bk.GetUpperBound())
				}
			}
			return "beyond the last bucket"
		}
		out = append(out, fmt.Sprintf("%s n=%d p50 %s p99 %s", k, n, quantile(0.5), quantile(0.99)))
	}
	slices.Sort(out)
	return out
}

// memorySettings are the manager's environment and flags for the Go
// runtime's memory, as the chart's Deployment sets them by default, with
// KUBIST_SCALE_MEMORY_LIMIT for another container limit, or
// KUBIST_SCALE_GOMEMLIMIT for a GOMEMLIMIT ("off": Go's defaults, neither
// a limit nor the chart's GOGC).
func memorySettings(b *testing.B) (env, args []string) {
	limit := os.Getenv("KUBIST_SCALE_GOMEMLIMIT")
	if limit == "off" {
		return nil, nil
	}
	env, args, err := testenv.ChartMemorySettings(limit, os.Getenv("KUBIST_SCALE_MEMORY_LIMIT"))
	if err != nil {
		b.Fatal(err)
	}
	return env, args
}
