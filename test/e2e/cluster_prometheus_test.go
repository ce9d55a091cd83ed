package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/reconciler"
	"github.com/kubist-io/kubist/test/testenv"
)

var _ = Describe("A Cluster's own Prometheus", func() {
	const ns = "regional"

	It("is where its releases read their metrics, through the URL and token of its Secret", func() {
		if exporter == nil {
			Skip("prometheus is not installed; CI builds it")
		}
		By("a second real Prometheus, for this cluster only, where v2 fails half its requests; the manager's has no figures for it")
		regional := testenv.NewIstioExporter(testenv.SubsetTraffic{Namespace: ns, Service: "web", Version: "v2",
			Codes: map[string]int{"200": 50, "500": 50}, Latency: map[float64]int{50: 10}})
		DeferCleanup(regional.Close)
		prom, err := localmesh.StartPrometheus(GinkgoT().TempDir(), 200*time.Millisecond, regional.Target())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(prom.Stop)
		// In front of it, a proxy that wants the Secret's bearer token.
		target, err := url.Parse(prom.URL)
		Expect(err).NotTo(HaveOccurred())
		var authorized, refused atomic.Int64
		forward := httputil.NewSingleHostReverseProxy(target)
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer s3cret" {
				refused.Add(1)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			authorized.Add(1)
			forward.ServeHTTP(w, r)
		}))
		DeferCleanup(proxy.Close)

		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: regional}
spec:
  project: regional
  prometheusSecretRef: {name: regional-prometheus}
`), "apply", "-f", "-")
		kubectl([]byte(CanaryManifest(ns, `    - name: HealthBasedCanaryRelease
      parameters: {step: 40, period: 1s, maxErrorRate: 0.1, minRequests: 20}
  executor:
    name: CanaryReleaseExecutor
    parameters: {metricsWindow: 10s, meshGracePeriod: 1s}`)), "apply", "-f", "-")

		By("without the Secret, no metrics: the release holds, saying which Secret it needs")
		Eventually(func(g Gomega) {
			c := canaryStatus(g, ns)
			m := meta.FindStatusCondition(c.Status.Conditions, reconciler.ConditionMetricsAvailable)
			g.Expect(m).NotTo(BeNil())
			g.Expect(m.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(m.Message).To(ContainSubstring("Secret kubist-system/regional-prometheus (spec.prometheusSecretRef of Cluster regional) does not exist"))
			g.Expect(c.Status.Phase).NotTo(Equal(v1alpha1.CanaryRolledBack))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("with it, the release reads the cluster's Prometheus and rolls back on its figures")
		Expect(env.Client.Create(ctx(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kubist-system", Name: "regional-prometheus"},
			Data:       map[string][]byte{"url": []byte(proxy.URL), "token": []byte("s3cret")},
		})).To(Succeed())
		Eventually(func(g Gomega) {
			c := canaryStatus(g, ns)
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryRolledBack))
			last := historyOf(g, &c)
			g.Expect(last[len(last)-1].Message).To(MatchRegexp(`canary v2 error rate 5\d(\.\d+)?% is above maxErrorRate 0.1`))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Expect(authorized.Load()).To(BeNumerically(">", 0))
		Expect(refused.Load()).To(BeZero(), "every query carried the Secret's token")
	})
})
