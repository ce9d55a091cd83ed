package e2e

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/reconciler"
)

// gatewayTree is a TreeManifest's Destination with a Service per subset
// and its Route on GatewayAPIRouteExecutor: testers (header user: tester)
// reach v2, the rest v1.
const gatewayTree = `apiVersion: kubist.io/v1alpha1
kind: Destination
metadata: {name: web, namespace: %[1]s}
spec:
  application: web
  ports: [{name: http, port: 8080}]
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
  executor:
    name: DestinationExecutor
    parameters: {subsetServices: true}
---
apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: web, namespace: %[1]s}
spec:
  hosts: [web]
  executor: {name: GatewayAPIRouteExecutor}
  http:
    - name: testers
      match: [{headers: {user: {exact: tester}}}]
      route: [{destination: web, subset: v2}]
    - name: default
      route: [{destination: web, subset: v1, weight: 100}]
      timeout: 5s
`

// httpRouteWeights are the default rule's backend weights by subset
// Service of the HTTPRoute web.
func httpRouteWeights(g Gomega, ns string) map[string]int32 {
	var hr gatewayv1.HTTPRoute
	g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &hr)).To(Succeed())
	out := map[string]int32{}
	for _, rule := range hr.Spec.Rules {
		if rule.Name == nil || *rule.Name != "default" {
			continue
		}
		for _, b := range rule.BackendRefs {
			out[string(b.Name)] = *b.Weight
		}
	}
	return out
}

// sample sends n requests one after the other and counts them by version.
//
// Inside an Eventually, pass its Gomega: while istiod's push converges, a
// call may fail (a route may name a cluster the client has not received
// yet), and that must make the attempt fail, not the test.
func sample(g Gomega, c *localmesh.Client, n int, headers map[string]string) map[string]int {
	GinkgoHelper()
	out := map[string]int{}
	for range n {
		callCtx, cancel := context.WithTimeout(ctx(), 2*time.Second)
		v, err := c.Call(callCtx, headers)
		cancel()
		g.Expect(err).NotTo(HaveOccurred())
		out[v]++
	}
	return out
}

var _ = Describe("GatewayAPIRouteExecutor through istiod", Ordered, func() {
	const ns = "gateway"
	var c *localmesh.Client

	BeforeAll(func() {
		c, _ = meshTree(ns, fmt.Sprintf(gatewayTree, ns))
	})

	It("applies an HTTPRoute with a backendRef per subset Service, which istiod accepts, and no VirtualService", func() {
		var hr gatewayv1.HTTPRoute
		Eventually(func(g Gomega) {
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &hr)).To(Succeed())
		}).Should(Succeed())
		Expect(hr.Labels).To(HaveKeyWithValue(v1alpha1.LabelManaged, "true"))
		Expect(hr.Spec.ParentRefs).To(HaveLen(1))
		Expect(*hr.Spec.ParentRefs[0].Kind).To(Equal(gatewayv1.Kind("Service")))
		Expect(hr.Spec.ParentRefs[0].Name).To(Equal(gatewayv1.ObjectName("web")))
		Expect(hr.Spec.Rules).To(HaveLen(2))
		Expect(hr.Spec.Rules[0].Matches[0].Headers).To(ConsistOf(gatewayv1.HTTPHeaderMatch{
			Type: ptrTo(gatewayv1.HeaderMatchExact), Name: "user", Value: "tester"}))
		Expect(string(hr.Spec.Rules[0].BackendRefs[0].Name)).To(Equal("web-v2"))
		Expect(*hr.Spec.Rules[1].Timeouts.Request).To(Equal(gatewayv1.Duration("5s")))
		Expect(httpRouteWeights(Default, ns)).To(Equal(map[string]int32{"web-v1": 100}))

		By("the Destination applies a Service per subset, selecting the subset's labels")
		for _, v := range []string{"v1", "v2"} {
			var svc corev1.Service
			Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-" + v}, &svc)).To(Succeed())
			Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": "web", "version": v}))
			Expect(svc.Labels).To(HaveKeyWithValue(v1alpha1.LabelSubset, v))
		}
		By("istiod accepts it: the Route's RouteAccepted mirrors the HTTPRoute's status")
		Eventually(func(g Gomega) {
			var r v1alpha1.Route
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &r)).To(Succeed())
			accepted := meta.FindStatusCondition(r.Status.Conditions, reconciler.ConditionRouteAccepted)
			g.Expect(accepted).NotTo(BeNil())
			g.Expect(accepted.Status).To(Equal(metav1.ConditionTrue), accepted.Message)
			g.Expect(accepted.Message).To(ContainSubstring("istio.io/"))
			g.Expect(r.Status.HTTPRoute).To(Equal(ns + "/web"))
			g.Expect(r.Status.VirtualService).To(BeEmpty())
			g.Expect(readyCondition(&r).Status).To(Equal(metav1.ConditionTrue))
		}).WithTimeout(time.Minute).Should(Succeed())
		Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &hr)).To(Succeed())
		Expect(hr.Status.Parents).NotTo(BeEmpty())
		err := env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &networkingv1.VirtualService{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no VirtualService: %v", err)

		By("kubectl shows the HTTPRoute in the wide view")
		Expect(kubectl(nil, "get", "route.kubist.io", "web", "-n", ns, "-o", "wide").Stdout).To(ContainSubstring(ns + "/web"))

		By("requests resolved through istiod follow the HTTPRoute: plain ones reach v1, testers v2")
		routesMarked(c, map[string]string{"user": "tester"})
		Expect(sample(Default, c, 100, nil)).To(Equal(map[string]int{"v1": 100}))
	})

	It("promotes a CanaryRelease on it, real requests following each step's weights", func() {
		const period = 8 * time.Second
		kubectl([]byte(CanaryManifest(ns, `    - name: TimedCanaryRelease
      parameters: {step: 50, period: `+period.String()+`}`)), "apply", "-f", "-")
		By("at 50 %, the HTTPRoute weighs both subset Services and the requests split about evenly")
		Eventually(func(g Gomega) {
			g.Expect(httpRouteWeights(g, ns)).To(Equal(map[string]int32{"web-v1": 50, "web-v2": 50}))
		}).WithTimeout(period + 10*time.Second).Should(Succeed())
		// istiod pushes the change within a second or so; the step holds
		// for a period.
		time.Sleep(1500 * time.Millisecond)
		half := sample(Default, c, 400, nil)
		Expect(half["v1"] + half["v2"]).To(Equal(400))
		Expect(float64(half["v2"])/4).To(BeNumerically("~", 50, 10), "requests at 50/50: %v", half)
		AddReportEntry("gateway-api", fmt.Sprintf("at weights 50/50 the requests split %v", half))

		By("promoted, the HTTPRoute sends everything to v2 and so do the requests")
		Eventually(func(g Gomega) {
			g.Expect(canaryStatus(g, ns).Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
			g.Expect(httpRouteWeights(g, ns)).To(Equal(map[string]int32{"web-v2": 100}))
		}).WithTimeout(2 * period).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(sample(g, c, 20, nil)).To(Equal(map[string]int{"v2": 20}))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		Expect(sample(Default, c, 200, nil)).To(Equal(map[string]int{"v2": 200}))
		var r v1alpha1.Route
		Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &r)).To(Succeed())
		// The release ended: the Route sends the rule's traffic to its
		// stable subset, which the promotion made v2.
		Expect(r.Status.ComposedFrom).To(BeEmpty())
		Expect(r.Status.Stable).To(ContainElement(And(HaveField("Destination", "web"), HaveField("Subset", "v2"),
			HaveField("Release", "CanaryRelease/web-v2"), HaveField("Outcome", "Promoted"))))
	})

	It("switches the Route back to RouteExecutor: a VirtualService replaces the HTTPRoute", func() {
		kubectl(nil, "patch", "route.kubist.io", "web", "-n", ns, "--type=merge", "-p", `{"spec":{"executor":{"name":"RouteExecutor"}}}`)
		Eventually(func(g Gomega) {
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &networkingv1.VirtualService{})).To(Succeed())
			err := env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &gatewayv1.HTTPRoute{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the HTTPRoute goes: %v", err)
			var r v1alpha1.Route
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &r)).To(Succeed())
			g.Expect(r.Status.HTTPRoute).To(BeEmpty())
			g.Expect(meta.FindStatusCondition(r.Status.Conditions, reconciler.ConditionRouteAccepted)).To(BeNil())
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(sample(g, c, 20, nil)).To(Equal(map[string]int{"v2": 20}))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})
})

func ptrTo[T any](v T) *T { return &v }
