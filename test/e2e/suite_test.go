package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/kubist-io/kubist/catalog"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/internal/manager/app"
	"github.com/kubist-io/kubist/internal/manager/notify"
	"github.com/kubist-io/kubist/test/testenv"
)

var (
	env      *testenv.Env
	repoRoot string
	engine   catalog.Engine
	// exporter serves Istio-shaped metrics that prometheus scrapes and the
	// manager's canaries read; nil where Prometheus is not installed.
	exporter *testenv.IstioExporter
	// ops records the executors' reads and writes; mgr is the manager.
	ops = newOperations()
	mgr *Manager
	// istio is the istiod build and its charts; istiod runs as the pod of
	// the Deployment the sample Cluster's executor installed, and every
	// Istio object written here is validated by it.
	istio       *localmesh.Istio
	istiod      *localmesh.Istiod
	istioCharts *localmesh.ChartRepository
	// telemetry is the Istio series of what the traffic specs' backends
	// serve; prometheus scrapes it.
	telemetry *localmesh.Telemetry
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Kubist end-to-end suite")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var err error
	repoRoot, err = testenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())

	// Istio's CRDs come from its base chart, as on a user's cluster.
	env, err = testenv.Start(controlplane.Options{Webhooks: true, WithoutIstioCRDs: true}, GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred(), "the control plane must start; `make envtest` builds it")
	DeferCleanup(func() { Expect(env.Stop()).To(Succeed()) })

	// A real Prometheus scraping an Istio-shaped exporter, for the canaries
	// that decide on metrics. Only a local run may go without it.
	var prometheusURL string
	if _, err := localmesh.PrometheusBinary(); err == nil || os.Getenv("CI") == "true" {
		exporter = testenv.NewIstioExporter()
		DeferCleanup(exporter.Close)
		// What the backends of the traffic specs serve, as their sidecars
		// would report it.
		telemetry, err = localmesh.NewTelemetry()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(telemetry.Close)
		prom, err := localmesh.StartPrometheus(GinkgoT().TempDir(), 200*time.Millisecond, exporter.Target(), telemetry.Address)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(prom.Stop)
		prometheusURL = prom.URL
	}

	// The manager with every controller and the webhooks, as `kubist manager` runs it.
	mgr, err = StartManager(env, true, func(o *app.Options) {
		o.PrometheusURL = prometheusURL
		o.ImportGrace = 3 * time.Second
		o.WrapClient = ops.wrap
		// Receivers that come back are retried within a second.
		o.Notifications = notify.Options{Timeout: time.Second, RetryMin: 100 * time.Millisecond, RetryMax: 500 * time.Millisecond}
	})
	Expect(err).NotTo(HaveOccurred())
	engine = mgr.Engine
	DeferCleanup(func() { Expect(mgr.Stop()).To(Succeed()) })

	installIstio()
})

// installIstio has the sample Cluster's executor install Istio's real
// charts from a chart repository on loopback, then runs istiod as the
// process of the Deployment they made, and waits until Istio's validating
// webhooks fail closed: from then on istiod validates every Istio object.
func installIstio() {
	var err error
	istio, err = localmesh.FindIstio("")
	Expect(err).NotTo(HaveOccurred(), "`make istio` builds istiod and lays out its charts")
	istioCharts, err = localmesh.ServeCharts(GinkgoT().TempDir(), istio.ChartDirs())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(istioCharts.Close)
	cluster, err := sampleCluster(repoRoot, istioCharts.URL)
	Expect(err).NotTo(HaveOccurred())
	kubectl([]byte(cluster), "apply", "-f", "-")

	installCtx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	istiod, err = localmesh.StartIstiod(installCtx, istio, env.Client, localmesh.IstiodOptions{
		Kubeconfig: env.Kubeconfig, WorkDir: GinkgoT().TempDir(),
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			GinkgoWriter.Println(tailString(istiod.Log(), 8<<10))
		}
		Expect(istiod.Stop()).To(Succeed())
	})
	Expect(istiod.WaitForValidation(installCtx)).To(Succeed())
}

// sampleCluster is the sample Project and Cluster, the Cluster's executor
// installing Istio's charts from repository.
func sampleCluster(root, repository string) (string, error) {
	var out []string
	for _, f := range []string{"01-project.yaml", "02-cluster.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, "config", "samples", f))
		if err != nil {
			return "", err
		}
		out = append(out, string(data))
	}
	cluster := strings.Replace(out[1], "\n      installIstio: true", "\n      installIstio: true\n      chartRepository: "+repository, 1)
	if cluster == out[1] {
		return "", errors.New("the sample Cluster does not set installIstio: true")
	}
	return out[0] + "\n---\n" + cluster, nil
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// ensureNamespace creates a namespace for a spec's objects unless it exists.
func ensureNamespace(ctx context.Context, name string) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	Expect(client.IgnoreAlreadyExists(env.Client.Create(ctx, ns))).To(Succeed())
}

// ctx is a context for one client call in a spec.
func ctx() context.Context { return context.Background() }

// kubectl runs the real kubectl and expects it to succeed.
func kubectl(stdin []byte, args ...string) testenv.Result {
	GinkgoHelper()
	res, err := env.Kubectl.Run(stdin, args...)
	Expect(err).NotTo(HaveOccurred())
	Expect(res.ExitCode).To(Equal(0), "kubectl %v: %s", args, res.Stderr)
	return res
}

// kubectlFails runs the real kubectl, expects it to fail, and returns what
// it printed on stderr.
func kubectlFails(stdin []byte, args ...string) string {
	GinkgoHelper()
	res, err := env.Kubectl.Run(stdin, args...)
	Expect(err).NotTo(HaveOccurred())
	Expect(res.ExitCode).NotTo(Equal(0), "kubectl %v must fail; stdout: %s", args, res.Stdout)
	return res.Stderr
}
