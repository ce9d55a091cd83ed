package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/reconciler"
	"github.com/kubist-io/kubist/test/testenv"
)

// healthCanary runs a HealthBasedCanaryRelease in its own tree while the
// exporter reports the canary subset's traffic (none when codes is nil).
func healthCanary(ns string, codes map[string]int) {
	GinkgoHelper()
	if exporter == nil {
		Skip("prometheus is not installed (apt-get install prometheus); CI installs it")
	}
	if codes != nil {
		exporter.AddTraffic(testenv.SubsetTraffic{Namespace: ns, Service: "web", Version: "v2", Codes: codes, Latency: map[float64]int{50: 10}})
	}
	kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
	kubectl([]byte(CanaryManifest(ns, `    - name: HealthBasedCanaryRelease
      parameters: {step: 40, period: 1s, maxErrorRate: 0.1, minRequests: 20}
  executor:
    name: CanaryReleaseExecutor
    parameters: {metricsWindow: 10s, meshGracePeriod: 1s}`)), "apply", "-f", "-")
}

func canaryStatus(g Gomega, ns string) v1alpha1.CanaryRelease {
	var c v1alpha1.CanaryRelease
	g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &c)).To(Succeed())
	return c
}

// historyOf is a release's whole history, as kubist get shows it: its
// ReleaseHistory pages' steps, then its status's.
func historyOf(g Gomega, rel v1alpha1.Release) []v1alpha1.ReleaseStep {
	h, err := testenv.History(ctx(), env.Client, rel)
	g.Expect(err).NotTo(HaveOccurred())
	return h
}

var _ = Describe("HealthBasedCanaryRelease on a real Prometheus", func() {
	It("promotes a healthy canary", func() {
		healthCanary("healthy", map[string]int{"200": 100})
		Eventually(func(g Gomega) {
			c := canaryStatus(g, "healthy")
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
			metrics := meta.FindStatusCondition(c.Status.Conditions, reconciler.ConditionMetricsAvailable)
			g.Expect(metrics).NotTo(BeNil())
			g.Expect(metrics.Status).To(BeEquivalentTo("True"))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Eventually(func() map[string]int32 { return servedWeights("healthy") }).Should(Equal(map[string]int32{"v2": 100}))
	})

	It("rolls back a canary whose exporter reports 50% errors", func() {
		healthCanary("unhealthy", map[string]int{"200": 50, "500": 50})
		Eventually(func(g Gomega) {
			c := canaryStatus(g, "unhealthy")
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryRolledBack))
			g.Expect(c.Status.Weights).To(Equal(map[string]int32{"v1": 100, "v2": 0}))
			last := c.Status.History[len(c.Status.History)-1]
			g.Expect(last.Policy).To(Equal("HealthBasedCanaryRelease"))
			g.Expect(last.Message).To(ContainSubstring("error rate 50% is above maxErrorRate 0.1 (10%)"))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Eventually(func() map[string]int32 { return servedWeights("unhealthy") }).Should(Equal(map[string]int32{"v1": 100}))
	})

	It("holds a canary without data, saying so", func() {
		healthCanary("nodata", nil)
		hold := func(g Gomega) {
			c := canaryStatus(g, "nodata")
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryProgressing))
			g.Expect(c.Status.CanaryWeight).To(BeEquivalentTo(40), "the first step goes ahead; then it holds")
			g.Expect(c.Status.Decisions).To(HaveLen(1))
			g.Expect(c.Status.Decisions[0].Outcome).To(Equal("Hold"))
			g.Expect(c.Status.Decisions[0].Message).To(Equal("holding: no metrics for subset v2"))
		}
		Eventually(hold).WithTimeout(30 * time.Second).Should(Succeed())
		Consistently(hold).WithTimeout(4*time.Second).WithPolling(500*time.Millisecond).Should(Succeed(), "no promotion and no rollback without data")
		Eventually(func() map[string]int32 { return servedWeights("nodata") }).Should(Equal(map[string]int32{"v1": 60, "v2": 40}))
	})
})

var _ = Describe("An Experiment on a real Prometheus", func() {
	It("moves the traffic to the subset with the lower error rate and names it the winner", func() {
		if exporter == nil {
			Skip("prometheus is not installed (apt-get install prometheus); CI installs it")
		}
		const ns = "experiment"
		exporter.AddTraffic(
			testenv.SubsetTraffic{Namespace: ns, Service: "web", Version: "v1", Codes: map[string]int{"200": 100}},
			testenv.SubsetTraffic{Namespace: ns, Service: "web", Version: "v2", Codes: map[string]int{"200": 80, "500": 20}},
		)
		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: Experiment
metadata: {name: ab, namespace: experiment}
spec:
  route: web
  destination: web
  subsets: [v1, v2]
  goal: {metric: errorRate}
  httpRoute: default
  executor:
    name: ExperimentExecutor
    parameters: {metricsWindow: 10s}
  policies:
    - name: WelchExperiment
      parameters: {step: 50, period: 1s}
`), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			var e v1alpha1.Experiment
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "ab"}, &e)).To(Succeed())
			g.Expect(e.Status.Phase).To(Equal(v1alpha1.ExperimentConcluded), "%+v", e.Status.Decisions)
			g.Expect(e.Status.Winner).To(Equal("v1"))
			g.Expect(e.Status.Weights).To(Equal(map[string]int32{"v1": 100, "v2": 0}))
			g.Expect(e.Status.Statistics).To(HaveLen(2))
			g.Expect(e.Status.Statistics[0].Mean).To(Equal("0"))
			g.Expect(e.Status.Statistics[1].Mean).To(Equal("0.2"))
			g.Expect(e.Status.Statistics[1].N).To(BeNumerically(">", 100))
			g.Expect(e.Status.Statistics[1].PValue).NotTo(BeEmpty())
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Eventually(func() map[string]int32 { return servedWeights(ns) }).Should(Equal(map[string]int32{"v1": 100}))

		By("runs after the conclusion keep it")
		kubectl(nil, "annotate", "-n", ns, "experiment", "ab", "example.com/touched=1")
		Consistently(func(g Gomega) {
			var e v1alpha1.Experiment
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "ab"}, &e)).To(Succeed())
			g.Expect(e.Status.Winner).To(Equal("v1"))
			g.Expect(e.Status.Phase).To(Equal(v1alpha1.ExperimentConcluded))
			g.Expect(e.Status.Statistics[1].PValue).NotTo(BeEmpty())
		}).WithTimeout(3 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	})
})
