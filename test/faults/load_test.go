//go:build faults

package faults

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/test/testenv"
)

const (
	loadClients  = 200
	loadDuration = 60 * time.Second
)

// TestLoad: 200 clients, each with its own connection, apply Kubist
// objects through the real API server for 60 s, both webhooks served by
// the manager process (with the chart's memory settings:
// testenv.ChartMemorySettings) while it
// reconciles them. Every apply of a valid object is admitted; the figures
// are the apply latency (API server, both webhooks, etcd) and the
// manager's peak memory, which stays under the chart's 384Mi limit.
func TestLoad(t *testing.T) {
	binary, err := testenv.BuildKubist(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := startEnv(t, controlplane.Options{Webhooks: true})
	host, port, certDir := env.WebhookServing()
	certs := env.WebhookCerts()
	memEnv, memArgs, err := testenv.ChartMemorySettings("", "")
	if err != nil {
		t.Fatal(err)
	}
	m := newManagerProcess(t, binary, env, "load", append([]string{"--leader-elect=false", "--webhooks=true",
		"--namespace=" + certs.Namespace, "--webhook-port=" + strconv.Itoa(port), "--webhook-cert-dir=" + certDir,
		"--webhook-cert-secret=" + certs.SecretName, "--webhook-cert-ips=" + host, "--webhook-configuration=" + certs.WebhookConfiguration,
		"--zap-log-level=error"}, memArgs...)...)
	m.Env = memEnv
	m.Start()
	testenv.Eventually(t, time.Minute, "the manager's webhooks", func() error {
		res, err := env.Kubectl.Run([]byte("apiVersion: kubist.io/v1alpha1\nkind: Project\nmetadata: {name: probe}\n"), "apply", "--dry-run=server", "-f", "-")
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return errors.New(res.Stderr)
		}
		return nil
	})
	apply(t, env, "apiVersion: v1\nkind: Namespace\nmetadata: {name: load}\n---\n"+
		"apiVersion: kubist.io/v1alpha1\nkind: Project\nmetadata: {name: load}\n---\n"+
		"apiVersion: kubist.io/v1alpha1\nkind: Cluster\nmetadata: {name: load}\nspec: {project: load}\n---\n"+
		"apiVersion: kubist.io/v1alpha1\nkind: VirtualCluster\nmetadata: {name: load}\nspec: {cluster: load}\n")

	var peakRSS atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if rss := m.RSS(); rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()

	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  []string
		applies   atomic.Int64
	)
	deadline := time.Now().Add(loadDuration)
	var wg sync.WaitGroup
	for i := range loadClients {
		cfg := rest.CopyConfig(env.Config)
		// A dialer of its own: client-go then gives this client its own
		// transport and connections instead of sharing one.
		cfg.Dial = (&net.Dialer{}).DialContext
		cfg.QPS, cfg.Burst = 100, 200
		c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			var mine []time.Duration
			for rev := 0; time.Now().Before(deadline); rev++ {
				obj := loadObject(i, rev)
				start := time.Now()
				err := c.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("load"), client.ForceOwnership)
				mine = append(mine, time.Since(start))
				applies.Add(1)
				if err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s %s: %v", obj.GetKind(), obj.GetName(), err))
					mu.Unlock()
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(stopSampling)
	<-sampled
	m.Stop(syscall.SIGTERM)

	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	t.Logf("%d clients, %s: %d applies (%.0f/s), p50 %s, p99 %s, max %s; %d failed; manager peak RSS %.1f MiB",
		loadClients, loadDuration, applies.Load(), float64(applies.Load())/loadDuration.Seconds(),
		pct(0.50).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond), latencies[len(latencies)-1].Round(time.Millisecond),
		len(failures), float64(peakRSS.Load())/(1<<20))
	if len(failures) > 0 {
		t.Errorf("%d applies of valid objects failed, e.g.:\n%s", len(failures), strings.Join(failures[:min(len(failures), 5)], "\n"))
	}
	if peakRSS.Load() == 0 {
		t.Error("the manager's memory was never sampled")
	}
	if limit := int64(384 << 20); peakRSS.Load() > limit {
		t.Errorf("the manager's peak RSS %.1f MiB is over the chart's memory limit, 384 MiB", float64(peakRSS.Load())/(1<<20))
	}
}

// loadObject is client i's object at revision rev: a Project and an
// Application in turn, each changed at every revision, so every apply
// goes through both webhooks.
func loadObject(i, rev int) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("kubist.io/v1alpha1")
	obj.SetAnnotations(map[string]string{"load.kubist.io/revision": strconv.Itoa(rev)})
	if rev%2 == 0 {
		obj.SetKind("Project")
		obj.SetName(fmt.Sprintf("load-%03d", i))
		obj.Object["spec"] = map[string]any{"description": fmt.Sprintf("client %d, revision %d", i, rev)}
		return obj
	}
	obj.SetKind("Application")
	obj.SetNamespace("load")
	obj.SetName(fmt.Sprintf("app-%03d", i))
	obj.Object["spec"] = map[string]any{"selector": map[string]any{"app": fmt.Sprintf("app-%03d", i)}}
	return obj
}
