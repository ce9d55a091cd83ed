package scale

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/test/testenv"
)

// BenchmarkStepFloor measures the reference the manager's CPU per step is
// compared with (docs/scale.md): test/scale/floor, a controller-runtime
// program that makes only a step's two writes (a CanaryRelease's status,
// then its VirtualService) and reads their watch events, for as many
// canaries as BenchmarkScale's step-latency phase, started the same way,
// stepping as often, on a control plane started the same way; its CPU per
// step is counted as BenchmarkScale counts the manager's (beyond its rate
// at rest, over the steps after each canary's first).
func BenchmarkStepFloor(b *testing.B) { minutesLong(b, runFloor) }

func runFloor(b *testing.B) {
	dir := b.TempDir()
	env := startControlPlane(b, dir)
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	n := projects * clustersPerProject * vcsPerCluster
	namespaces := make([]client.Object, n)
	for i := range namespaces {
		namespaces[i] = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("f%d", i)}}
	}
	createAll(ctx, b, env.Client, namespaces)

	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	binary := filepath.Join(dir, "floor")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", binary, "./test/scale/floor")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build the floor: %v\n%s", err, out)
	}
	logFile, err := os.Create(filepath.Join(dir, "floor.log"))
	if err != nil {
		b.Fatal(err)
	}
	floor := exec.CommandContext(ctx, binary, "--kubeconfig", env.Kubectl.Kubeconfig, "--period", latencyPeriod.String())
	floor.Stdout, floor.Stderr = logFile, logFile
	// The Go runtime's memory settings the manager runs with.
	memEnv, memArgs := memorySettings(b)
	floor.Env = append(os.Environ(), memEnv...)
	b.Logf("the floor's memory settings: %v (the manager's flags %v do not apply)", memEnv, memArgs)
	if err := floor.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- floor.Wait() }()
	defer func() { _ = floor.Process.Kill(); b.Logf("the floor, stopped: %v", <-exited) }()
	alive := func() {
		select {
		case err := <-exited:
			exited <- err
			out, _ := os.ReadFile(logFile.Name())
			b.Fatalf("the floor exited: %v\n%s", err, out)
		default:
		}
	}
	pids := map[string]int{"manager": floor.Process.Pid}
	time.Sleep(5 * time.Second) // its caches
	alive()
	resting := processCPU(b, pids)
	time.Sleep(20 * time.Second)
	atRest := resting()
	alive()

	w, err := envWatch(env)
	if err != nil {
		b.Fatal(err)
	}
	cw, err := w.Watch(ctx, &v1alpha1.CanaryReleaseList{})
	if err != nil {
		b.Fatal(err)
	}
	defer cw.Stop()
	var mu sync.Mutex
	promoted := map[string]bool{}
	go func() {
		for ev := range cw.ResultChan() {
			if cr, ok := ev.Object.(*v1alpha1.CanaryRelease); ok && cr.Status.Weights["v2"] == 100 {
				mu.Lock()
				promoted[cr.Namespace] = true
				mu.Unlock()
			}
		}
	}()
	cpu := processCPU(b, pids)
	tick := latencyPeriod / time.Duration(n)
	next := time.Now()
	for i := range n {
		next = next.Add(tick)
		time.Sleep(time.Until(next))
		cr := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "latency", Namespace: "f" + strconv.Itoa(i)},
			Spec: v1alpha1.CanaryReleaseSpec{Route: "latency", Destination: "web-0", Subset: "v2", Baseline: "v1"}}
		if err := env.Client.Create(ctx, cr); err != nil {
			b.Fatalf("create canary %d: %v", i, err)
		}
	}
	waitFor(b, 2*latencyPeriod*10+5*time.Minute, func() (bool, string) {
		alive()
		mu.Lock()
		defer mu.Unlock()
		return len(promoted) == n, fmt.Sprintf("%d/%d floor canaries promoted", len(promoted), n)
	})
	phase := cpu()
	steps := 9 * n
	b.Logf("the floor's CPU seconds at rest: %s; during the steps: %s", atRest, phase)
	perStepText, _ := perStep(phase, atRest, steps)
	b.Logf("CPU per step beyond the rate at rest (the floor as \"manager\"): %s", perStepText)
	ms := 1000 * (phase.seconds["manager"] - atRest.seconds["manager"]/atRest.wall*phase.wall) / float64(steps)
	b.ReportMetric(ms, "floor-cpu-ms-per-step")
	b.ReportMetric(float64(steps), "steps")
}

// envWatch is a client of the control plane that can watch.
func envWatch(env *testenv.Env) (client.WithWatch, error) {
	return client.NewWithWatch(env.Config, client.Options{Scheme: env.Client.Scheme()})
}
