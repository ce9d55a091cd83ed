package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

var _ = Describe("Policies a Project sets for the releases below it", func() {
	const ns = "frozen"

	It("adds the Project's FreezeGate to a release's chain, holds every step while the Project is frozen, lets an abort through", func() {
		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: Project
metadata: {name: frozen}
spec:
  releasePolicies: [{name: FreezeGate}]
`), "apply", "-f", "-")
		kubectl([]byte(CanaryManifest(ns, `    - name: TimedCanaryRelease
      parameters: {step: 5, period: 2s}`)), "apply", "-f", "-")

		By("the effective chain: the release's own policy, then the Project's gate")
		Eventually(func(g Gomega) {
			c := canaryStatus(g, ns)
			g.Expect(c.Status.EffectivePolicies).To(Equal([]v1alpha1.EffectivePolicy{{Name: "TimedCanaryRelease"}, {Name: "FreezeGate", From: "Project frozen"}}))
			g.Expect(c.Status.Weights["v2"]).To(BeNumerically(">=", 5))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(kubectlKubist("get", "canary", "web-v2", "-n", ns).Stdout).To(MatchRegexp(`Policies:\s+TimedCanaryRelease → FreezeGate \(Project frozen\)`))

		By("kubist validate --kubeconfig prints the chain a release would run with there")
		file := filepath.Join(GinkgoT().TempDir(), "canary.yaml")
		Expect(os.WriteFile(file, []byte(CanaryManifest(ns, `    - name: TimedCanaryRelease`)), 0o600)).To(Succeed())
		out, err := exec.Command(kubistBinary(), "validate", "--kubeconfig", env.Kubectl.Kubeconfig, "-f", file).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(ContainSubstring("CanaryRelease/web-v2: chain: TimedCanaryRelease → FreezeGate (Project frozen)"))

		By("kubist freeze: the release holds, saying why")
		res := kubectlKubist("freeze", ns, "--reason", "incident 42")
		Expect(res.Stdout).To(Equal("project.kubist.io/frozen frozen: incident 42\n"))
		var held int32
		Eventually(func(g Gomega) {
			c := canaryStatus(g, ns)
			g.Expect(c.Status.Decisions).To(HaveLen(2))
			g.Expect(c.Status.Decisions[1].Outcome).To(Equal("Gate"))
			g.Expect(c.Status.Decisions[1].Message).To(Equal("Project frozen is frozen: incident 42: keeping the weights served now"))
			held = c.Status.Weights["v2"]
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(held).To(BeNumerically("<", 100))
		Consistently(func(g Gomega) int32 { return canaryStatus(g, ns).Status.Weights["v2"] }).
			WithTimeout(6*time.Second).WithPolling(500*time.Millisecond).Should(Equal(held), "three periods, no step")
		shown := kubectlKubist("get", "canary", "web-v2", "-n", ns).Stdout
		GinkgoWriter.Print(shown)
		Expect(shown).To(MatchRegexp(`Gates:\s+FreezeGate: Project frozen is frozen: incident 42: keeping the weights served now`))
		Expect(kubectlKubist("tree").Stdout).To(MatchRegexp(`Project frozen\s.*FROZEN \(incident 42\)`), "kubist tree says the Project is frozen")

		By("a person's abort passes the freeze: every request back to v1")
		kubectlKubist("canary", "abort", "web-v2", "-n", ns)
		Eventually(func(g Gomega) {
			c := canaryStatus(g, ns)
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryAborted))
			g.Expect(c.Status.Weights).To(Equal(map[string]int32{"v1": 100, "v2": 0}))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("kubist unfreeze, and a retry steps again")
		Expect(kubectlKubist("unfreeze", ns).Stdout).To(Equal("project.kubist.io/frozen unfrozen: its releases step again\n"))
		kubectlKubist("canary", "retry", "web-v2", "-n", ns)
		Eventually(func(g Gomega) {
			c := canaryStatus(g, ns)
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryProgressing))
			g.Expect(c.Status.Weights["v2"]).To(BeNumerically(">=", 10))
		}).WithTimeout(30 * time.Second).Should(Succeed())
	})

	It("refuses a Project's releasePolicies that name no policy of releases, through kubectl", func() {
		stderr := kubectlFails([]byte(`apiVersion: kubist.io/v1alpha1
kind: Project
metadata: {name: wrong-level}
spec:
  releasePolicies: [{name: SubsetDetector}, {name: FreezeGate, parameters: {windows: [{from: tomorrow}]}}]
`), "apply", "-f", "-")
		Expect(stderr).To(ContainSubstring(`spec.releasePolicies[0].name: Invalid value: "SubsetDetector": policy SubsetDetector applies to Destination, not to releases`))
		Expect(stderr).To(ContainSubstring(`spec.releasePolicies[1].parameters.windows[0].from: Invalid value: "tomorrow"`))
	})
})
