package e2e

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// explodeModule compiles, and then enumerates 10^10 pairs: only the
// sandbox's deadline ends it.
const explodeModule = `# METADATA
# title: Explode
# description: Counts pairs until the deadline cuts it off.
# custom:
#   kinds: [CanaryRelease]
package policies.explode

decision := {"state": object.union(input.state, {"pairs": count([1 |
	some a in numbers.range(1, 100000)
	some b in numbers.range(1, 100000)
	a == b + 1
])})}
`

var _ = Describe("The policy sandbox", func() {
	It("cuts off a Policy that explodes at its deadline: the CanaryRelease says so in its status and a Warning Event, and the manager keeps reconciling the others", func() {
		kubectl(policyManifest("explode", explodeModule), "apply", "-f", "-")
		// Other specs list the policies there are: leave none behind.
		DeferCleanup(func() {
			kubectl(nil, "delete", "canaryrelease", "web-v2", "-n", "sandbox-explode", "--ignore-not-found", "--wait")
			kubectl(nil, "delete", "policy", "explode", "--wait")
			Eventually(func() bool {
				_, ok := engine.Registry.Policy("explode")
				return ok
			}).Should(BeFalse())
		})
		Eventually(func(g Gomega) {
			p := &v1alpha1.Policy{}
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Name: "explode"}, p)).To(Succeed())
			c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionCompiled)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())

		const exploding, healthy = "sandbox-explode", "sandbox-healthy"
		kubectl([]byte(TreeManifest(exploding)+"---\n"+CanaryManifest(exploding, "    - name: explode\n")), "apply", "-f", "-")
		kubectl([]byte(TreeManifest(healthy)+"---\n"+CanaryManifest(healthy, "    - name: TimedCanaryRelease\n      parameters: {step: 10, period: 1s}\n")), "apply", "-f", "-")

		By("the exploding canary reports the deadline on PoliciesApplied and Ready")
		Eventually(func(g Gomega) {
			var c v1alpha1.CanaryRelease
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: exploding, Name: "web-v2"}, &c)).To(Succeed())
			applied := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionPoliciesApplied)
			g.Expect(applied).NotTo(BeNil())
			g.Expect(applied.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(applied.Message).To(ContainSubstring("policy explode: evaluation exceeded its deadline of 100ms"))
			ready := readyCondition(&c)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal("PolicyError"))
		}).Should(Succeed())

		By("a Warning Event says the same")
		Eventually(func(g Gomega) {
			var events eventsv1.EventList
			g.Expect(env.Client.List(ctx(), &events, client.InNamespace(exploding))).To(Succeed())
			found := false
			for _, e := range events.Items {
				if e.Regarding.Kind == "CanaryRelease" && e.Regarding.Name == "web-v2" && e.Type == "Warning" &&
					e.Reason == "PolicyError" && strings.Contains(e.Note, "deadline") {
					found = true
				}
			}
			g.Expect(found).To(BeTrue(), "no Warning Event PolicyError on the CanaryRelease")
		}).Should(Succeed())

		By("meanwhile the other canary walks its steps to promotion")
		Eventually(func(g Gomega) {
			var c v1alpha1.CanaryRelease
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: healthy, Name: "web-v2"}, &c)).To(Succeed())
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
		}, "60s").Should(Succeed())
		// The Route composes the promoted weights just after the status says so.
		Eventually(func() map[string]int32 { return servedWeights(healthy) }).Should(Equal(map[string]int32{"v2": 100}))

		By("the exploding canary is still held, its weights untouched")
		Expect(servedWeights(exploding)).To(Equal(map[string]int32{"v1": 100}))
	})
})
