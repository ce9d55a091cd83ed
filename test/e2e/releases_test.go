package e2e

import (
	"context"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
)

// meshTree starts a TreeManifest in ns, with manifests applied over it,
// and its two versions of web serving on loopback, registered with
// istiod; it returns a client that resolves web through istiod's xDS,
// once plain requests reach v1, and the backends by version.
func meshTree(ns string, manifests ...string) (*localmesh.Client, map[string]*localmesh.Backend) {
	GinkgoHelper()
	kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
	for _, m := range manifests {
		kubectl([]byte(m), "apply", "-f", "-")
	}
	backends := map[string]*localmesh.Backend{}
	for _, v := range []string{"v1", "v2"} {
		b, err := localmesh.StartBackend(ns, "web", v, telemetry)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(b.Stop)
		Expect(b.Register(ctx(), env.Client, "web", "http")).To(Succeed())
		backends[v] = b
	}
	return dialUntilV1(istiod, ns, "web"), backends
}

// dialUntilV1 is a client that resolves service of namespace through an
// istiod's xDS, once its plain requests reach v1.
func dialUntilV1(through *localmesh.Istiod, namespace, service string) *localmesh.Client {
	GinkgoHelper()
	c, err := localmesh.DialXDS(through.XDSAddress, namespace, service+"."+namespace+".svc.cluster.local:8080")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	Eventually(func(g Gomega) {
		callCtx, cancel := context.WithTimeout(ctx(), 2*time.Second)
		defer cancel()
		v, err := c.Call(callCtx, nil)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(v).To(Equal("v1"))
	}).WithTimeout(time.Minute).Should(Succeed(), "%s/%s through istiod", namespace, service)
	return c
}

// generate sends rate requests a second with the headers through the
// client until the spec ends or Stop.
func generate(c *localmesh.Client, rate, workers int, headers map[string]string) *localmesh.Generator {
	GinkgoHelper()
	g, err := localmesh.StartGenerator(c, rate, workers, headers)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(g.Stop)
	return g
}

// routesMarked checks, eventually, that a plain request reaches v1 and a
// request with the headers v2.
func routesMarked(c *localmesh.Client, headers map[string]string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		callCtx, cancel := context.WithTimeout(ctx(), 2*time.Second)
		defer cancel()
		v, err := c.Call(callCtx, nil)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(v).To(Equal("v1"))
		v, err = c.Call(callCtx, headers)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(v).To(Equal("v2"))
	}).WithTimeout(time.Minute).Should(Succeed())
}

// virtualService reads the VirtualService web of ns.
func virtualService(g Gomega, ns string) *networkingv1.VirtualService {
	var vs networkingv1.VirtualService
	g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &vs)).To(Succeed())
	return &vs
}

// ruleNames are a VirtualService's HTTP rules' names, in order.
func ruleNames(vs *networkingv1.VirtualService) []string {
	var out []string
	for _, r := range vs.Spec.Http {
		out = append(out, r.Name)
	}
	return out
}

// versionsSent counts a generator's samples sent in [from, to) by version.
func versionsSent(samples []localmesh.Sample, from, to time.Time) map[string]int {
	got, _ := shares(samples, from, to)
	return got
}

var _ = Describe("BlueGreenRelease", func() {
	It("previews the canary on a header-matched route, then switches all traffic in one step", func() {
		const ns = "bluegreen"
		c, _ := meshTree(ns)
		plain := generate(c, 60, 2, nil)
		preview := generate(c, 20, 1, map[string]string{"x-kubist-preview": "v2"})
		kubectl([]byte(CanaryManifest(ns, `    - name: BlueGreenRelease
      parameters: {previewWindow: 8s, minRequests: 10, maxErrorRate: 0.05}
  executor:
    name: CanaryReleaseExecutor
    parameters: {metricsWindow: 10s, meshGracePeriod: 1s}`)), "apply", "-f", "-")

		By("the preview rule goes ahead of the default rule, which keeps everything on v1; Istio admits it")
		var opened time.Time
		Eventually(func(g Gomega) {
			vs := virtualService(g, ns)
			g.Expect(ruleNames(vs)).To(Equal([]string{"default-preview", "default"}))
			p := vs.Spec.Http[0]
			g.Expect(p.Match[0].Headers["x-kubist-preview"].GetExact()).To(Equal("v2"))
			g.Expect(p.Route[0].Destination.Subset).To(Equal("v2"))
			g.Expect(defaultRuleWeights(vs)).To(Equal(map[string]int32{"v1": 100}))
			cr := canaryStatus(g, ns)
			g.Expect(cr.Status.Preview).NotTo(BeNil())
			g.Expect(cr.Status.Phase).To(Equal(v1alpha1.CanaryProgressing))
			opened = cr.Status.Preview.Since.Time
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(dryRunUpdate(virtualService(Default, ns))).To(Succeed(), "istiod's validation admits the VirtualService again")

		By("switched once the canary stayed healthy on the preview requests for the window")
		var promoted v1alpha1.CanaryRelease
		Eventually(func(g Gomega) {
			promoted = canaryStatus(g, ns)
			g.Expect(promoted.Status.Phase).To(Equal(v1alpha1.CanaryPromoted), "%+v", promoted.Status.Decisions)
			g.Expect(promoted.Status.Preview).To(BeNil())
		}).WithTimeout(90 * time.Second).Should(Succeed())
		h := promoted.Status.History
		Expect(h).To(HaveLen(2), "a preview and one switch: %+v", h)
		Expect(h[0].Policy).To(Equal("BlueGreenRelease"))
		Expect(h[0].Weights).To(Equal(map[string]int32{"v1": 100, "v2": 0}))
		Expect(h[1].Weights).To(Equal(map[string]int32{"v1": 0, "v2": 100}))
		Expect(h[1].Message).To(ContainSubstring("healthy over the preview window"))
		Expect(h[1].Time.Sub(opened)).To(BeNumerically(">=", 8*time.Second))
		Eventually(func(g Gomega) {
			vs := virtualService(g, ns)
			g.Expect(ruleNames(vs)).To(Equal([]string{"default"}))
			g.Expect(defaultRuleWeights(vs)).To(Equal(map[string]int32{"v2": 100}))
		}).Should(Succeed())
		switched := time.Now()
		time.Sleep(3 * time.Second)
		plain.Stop()
		preview.Stop()

		By("during the preview, plain requests reached v1 only and preview requests v2 only; after the switch, v2 serves all")
		plainSamples, previewSamples := plain.Take(), preview.Take()
		during := versionsSent(plainSamples, opened.Add(2*time.Second), h[1].Time.Time)
		Expect(during).To(HaveKey("v1"))
		Expect(during).NotTo(HaveKey("v2"))
		Expect(during).NotTo(HaveKey("error"))
		previewed := versionsSent(previewSamples, opened.Add(2*time.Second), h[1].Time.Time)
		Expect(previewed["v2"]).To(BeNumerically(">", 50))
		Expect(previewed).To(HaveLen(1), "preview requests: %v", previewed)
		after := versionsSent(plainSamples, switched.Add(time.Second), time.Now())
		Expect(after).To(HaveLen(1), "after the switch: %v", after)
		Expect(after["v2"]).To(BeNumerically(">", 50))
		AddReportEntry("blue/green", fmt.Sprintf("preview %s → switch %s; during the preview plain %v, preview %v; after the switch %v",
			opened.Format(time.RFC3339Nano), h[1].Time.Format(time.RFC3339Nano), during, previewed, after))
	})
})

var _ = Describe("MirrorThenShift", func() {
	It("mirrors a share of the requests to the canary before the first shift, through a VirtualService Istio admits", func() {
		const ns = "mirror"
		c, _ := meshTree(ns)
		plain := generate(c, 60, 2, nil)
		kubectl([]byte(CanaryManifest(ns, `    - name: TimedCanaryRelease
      parameters: {step: 50, period: 2s}
    - name: MirrorThenShift
      parameters: {percent: 40, duration: 6s}`)), "apply", "-f", "-")

		By("while mirroring, the default rule mirrors 40% to v2 and keeps every request's answer on v1")
		var since time.Time
		Eventually(func(g Gomega) {
			vs := virtualService(g, ns)
			rule := vs.Spec.Http[0]
			g.Expect(rule.Mirror).NotTo(BeNil())
			g.Expect(rule.Mirror.Host).To(Equal("web." + ns + ".svc.cluster.local"))
			g.Expect(rule.Mirror.Subset).To(Equal("v2"))
			g.Expect(rule.MirrorPercentage.GetValue()).To(Equal(40.0))
			g.Expect(defaultRuleWeights(vs)).To(Equal(map[string]int32{"v1": 100}))
			cr := canaryStatus(g, ns)
			g.Expect(cr.Status.Mirror).NotTo(BeNil())
			since = cr.Status.Mirror.Since.Time
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(dryRunUpdate(virtualService(Default, ns))).To(Succeed(), "istiod's validation admits the mirroring VirtualService")

		By("after the duration, the first shift, and no more mirroring")
		var cr v1alpha1.CanaryRelease
		Eventually(func(g Gomega) {
			cr = canaryStatus(g, ns)
			g.Expect(cr.Status.Weights["v2"]).To(BeNumerically(">=", 50))
			g.Expect(cr.Status.Mirror).To(BeNil())
			vs := virtualService(g, ns)
			g.Expect(vs.Spec.Http[0].Mirror).To(BeNil())
		}).WithTimeout(30 * time.Second).Should(Succeed())
		h := cr.Status.History
		Expect(h[0].Policy).To(Equal("MirrorThenShift"))
		Expect(h[0].Weights).To(Equal(map[string]int32{"v1": 100, "v2": 0}))
		Expect(h[0].Message).To(HavePrefix("mirroring 40% of the requests to v2"))
		Expect(h[1].Weights).To(Equal(map[string]int32{"v1": 50, "v2": 50}))
		Expect(h[1].Time.Sub(since)).To(BeNumerically(">=", 6*time.Second), "the first shift waits for the duration")
		plain.Stop()
		// The mirrored copies' answers are dropped: users see v1 only until
		// the shift. (Proxyless gRPC does not send copies: see the docs.)
		during := versionsSent(plain.Take(), since.Add(time.Second), h[1].Time.Time)
		Expect(during).To(HaveKey("v1"))
		Expect(during).To(HaveLen(1), "answers while mirroring: %v", during)
	})
})

var _ = Describe("A sticky canary", func() {
	It("sets a cookie on the canary's responses and keeps requests carrying it on the canary", func() {
		const ns = "sticky"
		c, _ := meshTree(ns)
		kubectl([]byte(CanaryManifest(ns, `    - name: TimedCanaryRelease
      parameters: {step: 20, period: 1h}
  sessionAffinity: {cookieName: kubist-canary, maxAge: 600}`)), "apply", "-f", "-")

		By("a cookie rule goes ahead of the weighted rule, and the canary's route sets the cookie; Istio admits it")
		Eventually(func(g Gomega) {
			vs := virtualService(g, ns)
			g.Expect(ruleNames(vs)).To(Equal([]string{"default-sticky", "default"}))
			g.Expect(vs.Spec.Http[0].Match[0].Headers["cookie"].GetRegex()).To(ContainSubstring("kubist-canary=v2"))
			g.Expect(vs.Spec.Http[0].Route[0].Destination.Subset).To(Equal("v2"))
			g.Expect(defaultRuleWeights(vs)).To(Equal(map[string]int32{"v1": 80, "v2": 20}))
			canary := vs.Spec.Http[1].Route[1]
			g.Expect(canary.Destination.Subset).To(Equal("v2"))
			g.Expect(canary.Headers.GetResponse().GetAdd()).To(HaveKeyWithValue("Set-Cookie", "kubist-canary=v2; Max-Age=600; Path=/"))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(dryRunUpdate(virtualService(Default, ns))).To(Succeed(), "istiod's validation admits the sticky VirtualService")

		By("requests with the cookie always reach v2; the others split by the weights")
		time.Sleep(2 * time.Second)
		sticky := sample(Default, c, 200, map[string]string{"cookie": "session=abc; kubist-canary=v2"})
		Expect(sticky).To(Equal(map[string]int{"v2": 200}))
		others := sample(Default, c, 400, nil)
		Expect(float64(others["v2"])/4).To(BeNumerically("~", 20, 8), "without the cookie: %v", others)
		AddReportEntry("sticky", fmt.Sprintf("with the cookie %v; without %v", sticky, others))

		By("promoted, the sticky rule goes")
		res := kubectlKubist("canary", "promote", "web-v2", "-n", ns, "--full")
		Expect(res.ExitCode).To(Equal(0), res.Stderr)
		Eventually(func(g Gomega) {
			vs := virtualService(g, ns)
			g.Expect(ruleNames(vs)).To(Equal([]string{"default"}))
			g.Expect(defaultRuleWeights(vs)).To(Equal(map[string]int32{"v2": 100}))
		}).WithTimeout(30 * time.Second).Should(Succeed())
	})
})

// specWins brings the default rule of the Route web back to v1 after a
// release promoted v2, as a person does in Git: commit v2 to the spec,
// then revert it to v1; a change of the spec wins over the stable subset
// a release left.
func specWins(namespace string) {
	GinkgoHelper()
	var route v1alpha1.Route
	Expect(env.Client.Get(ctx(), client.ObjectKey{Namespace: namespace, Name: "web"}, &route)).To(Succeed())
	rule := slices.IndexFunc(route.Spec.HTTP, func(r v1alpha1.HTTPRoute) bool { return r.Name == "default" })
	Expect(rule).To(BeNumerically(">=", 0), "the Route web has a rule named default")
	for _, subset := range []string{"v2", "v1"} {
		kubectl(nil, "patch", "route", "web", "-n", namespace, "--type=json",
			"-p", fmt.Sprintf(`[{"op": "replace", "path": "/spec/http/%d/route/0/subset", "value": %q}]`, rule, subset))
		Eventually(func(g Gomega) {
			g.Expect(routeOf(g, namespace).Status.Stable).To(ContainElement(And(
				HaveField("Rule", "default"), HaveField("Subset", subset), HaveField("SpecSubset", subset))))
		}).Should(Succeed())
	}
}
