package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("kubist validate --kubeconfig", func() {
	It("knows the cluster's Policy objects and warns about references missing there", func() {
		module, err := os.ReadFile(filepath.Join(repoRoot, "rego", "examples", "max_weight", "max_weight.rego"))
		Expect(err).NotTo(HaveOccurred())
		kubectl(policyManifest("cluster-cap", string(module)), "apply", "-f", "-")
		DeferCleanup(func() {
			kubectl(nil, "delete", "policy", "cluster-cap")
			Eventually(func() bool { _, ok := engine.Registry.Policy("cluster-cap"); return ok }).Should(BeFalse())
		})
		kubectl(nil, "apply", "-f", filepath.Join(repoRoot, "config", "samples"))

		file := filepath.Join(GinkgoT().TempDir(), "canary.yaml")
		Expect(os.WriteFile(file, []byte(`apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: capped, namespace: bookinfo}
spec:
  route: reviews
  destination: reviews
  subset: v2
  policies: [{name: TimedCanaryRelease}, {name: cluster-cap, parameters: {max: 40}}]
---
apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: dangling, namespace: bookinfo}
spec: {route: ratings, destination: reviews, subset: v2}
`), 0o600)).To(Succeed())

		// Offline alone, cluster-cap is unknown.
		out, err := exec.Command(kubistBinary(), "validate", "-f", file).CombinedOutput()
		Expect(err).To(HaveOccurred())
		Expect(string(out)).To(ContainSubstring(`spec.policies[1].name: Invalid value: "cluster-cap": no policy named cluster-cap`))

		// Against the cluster, it is known, and the missing Route is a warning.
		out, err = exec.Command(kubistBinary(), "validate", "--kubeconfig", env.Kubectl.Kubeconfig, "-f", file).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		lines := strings.Split(string(out), "\n")
		Expect(lines).To(ContainElement(HaveSuffix(`CanaryRelease/dangling: Warning: spec.route: Route "ratings" does not exist yet; the CanaryRelease waits for it`)))
		Expect(string(out)).NotTo(ContainSubstring("CanaryRelease/capped: Warning"))
		Expect(string(out)).To(ContainSubstring("2 Kubist objects checked, 0 invalid"))

		// kubist policy list shows it beside the predefined policies.
		out, err = exec.Command(kubistBinary(), "policy", "list", "--kubeconfig", env.Kubectl.Kubeconfig).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(MatchRegexp(`(?m)^cluster-cap\s+CanaryRelease\s+Caps the canary's weight`))
		Expect(string(out)).To(MatchRegexp(`(?m)^TimedCanaryRelease\s+CanaryRelease\s+`))
	})
})

var _ = Describe("the command-line tool", func() {
	It("says what is wrong in one line, as kubectl does, and keeps the manager's log flags to the manager", func() {
		home := GinkgoT().TempDir()
		cmd := exec.Command(kubistBinary(), "tree")
		cmd.Env = append(os.Environ(), "HOME="+home, "KUBECONFIG=", "KUBERNETES_SERVICE_HOST=")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		Expect(errors.As(err, &exit)).To(BeTrue(), "kubist tree without a kubeconfig must fail: %v", err)
		Expect(exit.ExitCode()).To(Equal(1))
		Expect(stdout.String()).To(BeEmpty())
		Expect(stderr.String()).To(Equal("error: no configuration has been provided: pass --kubeconfig, set KUBECONFIG, or write ~/.kube/config\n"))

		for _, sub := range []string{"tree", "get", "validate", "policy", "canary", "dashboard"} {
			out, err := exec.Command(kubistBinary(), sub, "--help").CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
			Expect(string(out)).NotTo(ContainSubstring("--zap-"), "kubist %s --help", sub)
		}
		for _, sub := range []string{"manager", "dev"} {
			out, err := exec.Command(kubistBinary(), sub, "--help").CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
			Expect(string(out)).To(ContainSubstring("--zap-log-level"), "kubist %s --help", sub)
		}
	})

	It("checks offline what a ReleaseAction can apply to, without a cluster", func() {
		file := filepath.Join(GinkgoT().TempDir(), "actions.yaml")
		Expect(os.WriteFile(file, []byte(`apiVersion: kubist.io/v1alpha1
kind: ReleaseAction
metadata: {name: conclude, namespace: operate}
spec: {target: {kind: CanaryRelease, name: web-v2}, action: Conclude, winner: v2}
---
apiVersion: kubist.io/v1alpha1
kind: ReleaseAction
metadata: {name: abort-full, namespace: operate}
spec: {target: {kind: CanaryRelease, name: web-v2}, action: Abort, full: true}
---
apiVersion: kubist.io/v1alpha1
kind: ReleaseAction
metadata: {name: promote, namespace: operate}
spec: {target: {kind: CanaryRelease, name: web-v2}, action: Promote}
`), 0o600)).To(Succeed())
		out, err := exec.Command(kubistBinary(), "validate", "-f", file).CombinedOutput()
		Expect(err).To(HaveOccurred(), string(out))
		Expect(string(out)).To(ContainSubstring(`ReleaseAction/conclude: spec.action: Invalid value: "Conclude": Conclude does not apply to a CanaryRelease; it takes Promote, Abort, Pause, Resume, Approve, Retry`))
		Expect(string(out)).To(ContainSubstring(`ReleaseAction/abort-full: spec.full: Invalid value: true: full is for Promote, not Abort: leave it out`))
		Expect(string(out)).NotTo(ContainSubstring("ReleaseAction/promote:"))
		Expect(string(out)).To(ContainSubstring("3 Kubist objects checked, 2 invalid"))
	})
})
