package e2e

import (
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/reconciler"
)

// badRetries is a Route policy that gives the first HTTP rule a retry
// condition Envoy does not know: admission cannot see it, istiod refuses
// the VirtualService it makes.
const badRetries = `# METADATA
# title: BadRetries
# description: Retries the first rule on a condition Envoy does not know.
# custom:
#   kinds: [Route]
package policies.bad_retries

decision := {"state": object.union(input.state, {"http": array.concat(
	[object.union(input.state.http[0], {"retries": {"attempts": 3, "retryOn": "sometimes"}})],
	array.slice(input.state.http, 1, count(input.state.http)),
)})}
`

var _ = Describe("Istio's validation of what Kubist writes", func() {
	It("refuses, through kubectl, a VirtualService istiod finds invalid, with Istio's own message", func() {
		stderr := kubectlFails([]byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: invalid-retry, namespace: default}
spec:
  hosts: [reviews]
  http:
    - route: [{destination: {host: reviews}}]
      retries: {attempts: 3, retryOn: sometimes}
`), "apply", "-f", "-")
		Expect(stderr).To(ContainSubstring(`admission webhook "validation.istio.io" denied the request: configuration is invalid: "sometimes" is not a valid retryOn policy`))
	})

	It("admits every VirtualService and DestinationRule Kubist writes for the samples and the e2e trees", func() {
		kubectl(nil, "apply", "-f", filepath.Join(repoRoot, "config", "samples"))
		kubectl([]byte(TreeManifest("admitted")), "apply", "-f", "-")
		kubectl([]byte(CanaryManifest("admitted", `    - name: TimedCanaryRelease
      parameters: {step: 30, period: 1s}`)), "apply", "-f", "-")
		for _, key := range []types.NamespacedName{{Namespace: "bookinfo", Name: "reviews"}, {Namespace: "admitted", Name: "web"}} {
			Eventually(func(g Gomega) {
				var vs networkingv1.VirtualService
				g.Expect(env.Client.Get(ctx(), key, &vs)).To(Succeed())
				var dr networkingv1.DestinationRule
				g.Expect(env.Client.Get(ctx(), key, &dr)).To(Succeed())
			}).Should(Succeed(), "%s", key)
		}
		Eventually(func(g Gomega) {
			g.Expect(canaryStatus(g, "admitted").Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
		}).Should(Succeed())

		By("Istio's webhooks fail closed, so each of these writes passed istiod's validation; istiod admits each of them again")
		Expect(istiod.WaitForValidation(ctx())).To(Succeed())
		var vss networkingv1.VirtualServiceList
		Expect(env.Client.List(ctx(), &vss, client.MatchingLabels{v1alpha1.LabelManaged: "true"})).To(Succeed())
		var drs networkingv1.DestinationRuleList
		Expect(env.Client.List(ctx(), &drs, client.MatchingLabels{v1alpha1.LabelManaged: "true"})).To(Succeed())
		Expect(len(vss.Items)).To(BeNumerically(">=", 2))
		Expect(len(drs.Items)).To(BeNumerically(">=", 2))
		for _, vs := range vss.Items {
			Expect(dryRunUpdate(vs)).To(Succeed(), "VirtualService %s/%s", vs.Namespace, vs.Name)
		}
		for _, dr := range drs.Items {
			Expect(dryRunUpdate(dr)).To(Succeed(), "DestinationRule %s/%s", dr.Namespace, dr.Name)
		}
	})

	It("reports Ready=False with Istio's message on a Route whose policies make a VirtualService Istio refuses", func() {
		kubectl(policyManifest("bad-retries", badRetries), "apply", "-f", "-")
		DeferCleanup(func() { kubectl(nil, "delete", "policy", "bad-retries", "--ignore-not-found") })
		Eventually(func() bool { _, ok := engine.Registry.Policy("bad-retries"); return ok }).Should(BeTrue())
		kubectl([]byte(TreeManifest("refused")), "apply", "-f", "-")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: web, namespace: refused}
spec:
  hosts: [web]
  policies: [{name: bad-retries}]
  http:
    - name: default
      route: [{destination: web, subset: v1}]
`), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			var r v1alpha1.Route
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "refused", Name: "web"}, &r)).To(Succeed())
			ready := readyCondition(&r)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(reconciler.ReasonRejected))
			g.Expect(ready.Message).To(ContainSubstring(`VirtualService refused/web`))
			g.Expect(ready.Message).To(ContainSubstring(`admission webhook "validation.istio.io" denied the request: configuration is invalid: "sometimes" is not a valid retryOn policy`))
		}).WithTimeout(time.Minute).Should(Succeed())
		By("the VirtualService keeps what Istio admitted before the policy")
		var vs networkingv1.VirtualService
		Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "refused", Name: "web"}, &vs)).To(Succeed())
		Expect(vs.Spec.Http[0].Retries).To(BeNil())
	})
})

// dryRunUpdate submits an object as it stands again, without storing it,
// so that every admission webhook checks it; canaries of other specs may
// change it meanwhile, so a conflict reads it afresh and submits again.
func dryRunUpdate(obj client.Object) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		return env.Client.Update(ctx(), obj, client.DryRunAll)
	})
}
