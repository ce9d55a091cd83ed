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
	kubectl([]byte(treeManifest(ns)), "apply", "-f", "-")
	kubectl([]byte(canaryManifest(ns, `    - name: HealthBasedCanaryRelease
      parameters: {step: 40, period: 1s, maxErrorRate: 0.1, minRequests: 20}
  executor:
    name: CanaryReleaseExecutor
    parameters: {metricsWindow: 10s}`)), "apply", "-f", "-")
}

func canaryStatus(g Gomega, ns string) v1alpha1.CanaryRelease {
	var c v1alpha1.CanaryRelease
	g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &c)).To(Succeed())
	return c
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
			g.Expect(last.Message).To(ContainSubstring("error rate 0.5 is above maxErrorRate 0.1"))
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
