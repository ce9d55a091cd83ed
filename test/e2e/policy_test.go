package e2e

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// policyManifest wraps a Rego module into a Policy object named name.
func policyManifest(name, module string) []byte {
	indented := "    " + strings.ReplaceAll(strings.TrimRight(module, "\n"), "\n", "\n    ")
	return []byte("apiVersion: kubist.io/v1alpha1\nkind: Policy\nmetadata:\n  name: " + name + "\nspec:\n  rego: |\n" + indented + "\n")
}

var _ = Describe("Policy objects", Ordered, func() {
	// The example of rego/README.md, admitted as the Policy max-weight.
	var module string

	BeforeAll(func() {
		source, err := os.ReadFile(filepath.Join(repoRoot, "rego", "examples", "max_weight", "max_weight.rego"))
		Expect(err).NotTo(HaveOccurred())
		module = string(source)
	})

	compiled := func(g Gomega) *metav1.Condition {
		p := &v1alpha1.Policy{}
		g.Expect(env.Client.Get(ctx(), types.NamespacedName{Name: "max-weight"}, p)).To(Succeed())
		c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionCompiled)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.ObservedGeneration).To(Equal(p.Generation))
		return c
	}

	It("compiles an applied Policy into the registry and reports Compiled=True", func() {
		kubectl(policyManifest("max-weight", module), "apply", "-f", "-")

		Eventually(func(g Gomega) {
			c := compiled(g)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal("Compiled"))
		}).Should(Succeed())
		p, ok := engine.Registry.Policy("max-weight")
		Expect(ok).To(BeTrue())
		Expect(p.Kinds).To(Equal([]string{"CanaryRelease"}))
		Expect(engine.Registry.PolicyNamesFor("CanaryRelease")).To(ContainElement("max-weight"))

		res := kubectl(nil, "get", "kpol", "max-weight")
		Expect(res.Stdout).To(MatchRegexp(`max-weight\s+\["CanaryRelease"\]\s+True`))
	})

	It("refuses a module that does not compile at admission, with line and column, and keeps the admitted one", func() {
		broken := strings.Replace(module, `canary.with_canary_weight(input.state, input.parameters.max)`,
			`http.send({"method": "GET", "url": "http://127.0.0.1:1"}).body`, 1)
		Expect(kubectlFails(policyManifest("max-weight", broken), "apply", "-f", "-")).To(ContainSubstring(`spec.rego: Invalid value: "(module)": policy/max-weight.rego:20:11: undefined function http.send`))

		Consistently(func(g Gomega) {
			g.Expect(compiled(g).Status).To(Equal(metav1.ConditionTrue))
			_, ok := engine.Registry.Policy("max-weight")
			g.Expect(ok).To(BeTrue())
		}, "1s").Should(Succeed())
	})

	It("forgets a deleted Policy", func() {
		kubectl(policyManifest("max-weight", module), "apply", "-f", "-")
		Eventually(func() bool { _, ok := engine.Registry.Policy("max-weight"); return ok }).Should(BeTrue())

		kubectl(nil, "delete", "policy", "max-weight")
		Eventually(func() bool { _, ok := engine.Registry.Policy("max-weight"); return ok }).Should(BeFalse())
	})
})
