package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/test/testenv"
)

// kubectlKubistCommand is `kubectl kubist ARGS` through the real kubectl,
// which finds the kubist binary as its plugin kubectl-kubist on PATH, as a
// user who installed the plugin would run it.
func kubectlKubistCommand(c context.Context, args ...string) *exec.Cmd {
	GinkgoHelper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("kubist-plugin-%d", os.Getpid()))
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	link := filepath.Join(dir, "kubectl-kubist")
	if target, err := os.Readlink(link); err != nil || target != kubistBinary() {
		_ = os.Remove(link)
		Expect(os.Symlink(kubistBinary(), link)).To(Succeed())
	}
	cmd := exec.CommandContext(c, env.Kubectl.Path, append(append([]string{"kubist"}, args...), "--kubeconfig", env.Kubectl.Kubeconfig)...)
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return cmd
}

// kubectlKubist runs `kubectl kubist ARGS` and returns what it printed.
func kubectlKubist(args ...string) testenv.Result {
	GinkgoHelper()
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := kubectlKubistCommand(c, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := testenv.Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		res.ExitCode = exitErr.ExitCode()
	} else {
		Expect(err).NotTo(HaveOccurred())
	}
	return res
}

// as impersonates a user ("" is the suite's admin): the API server
// authorises the request, and admission sees it, as that user's.
func as(user string, args []string) []string {
	if user == "" {
		return args
	}
	return append(args, "--as", user)
}

// operates runs a kubist action as a user and expects it to succeed.
func operates(user string, args ...string) string {
	GinkgoHelper()
	res := kubectlKubist(as(user, args)...)
	Expect(res.ExitCode).To(Equal(0), "kubectl kubist %v as %s: %s", args, user, res.Stderr)
	return res.Stdout
}

// refused runs a kubist action as a user, expects it to fail, and returns
// what it printed.
func refused(user string, args ...string) string {
	GinkgoHelper()
	res := kubectlKubist(as(user, args)...)
	Expect(res.ExitCode).NotTo(Equal(0), "kubectl kubist %v as %s must fail; stdout: %s", args, user, res.Stdout)
	return res.Stderr
}

var _ = Describe("Operating a release", Ordered, func() {
	const ns = "operate"
	var manifest string

	canary := func(g Gomega) v1alpha1.CanaryRelease {
		var c v1alpha1.CanaryRelease
		g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &c)).To(Succeed())
		return c
	}
	// lastStep is the newest entry of the release's history.
	lastStep := func(g Gomega) v1alpha1.ReleaseStep {
		h := canary(g).Status.History
		g.Expect(h).NotTo(BeEmpty())
		return h[len(h)-1]
	}
	// noDrift: the user's own manifest still compares clean with the
	// live object, so GitOps tools see no drift after an action.
	noDrift := func() {
		GinkgoHelper()
		res, err := env.Kubectl.Run(nil, "diff", "-f", manifest)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ExitCode).To(Equal(0), "kubectl diff -f shows drift:\n%s%s", res.Stdout, res.Stderr)
	}

	BeforeAll(func() {
		kubectl(nil, "apply", "-f", filepath.Join(repoRoot, "config", "rbac", "release-roles.yaml"))
		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		kubectl([]byte(fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-operates, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubist-release-operator}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-views, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubist-release-viewer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
`, ns)), "apply", "-f", "-")
		// Steps an hour apart behind a ManualGate: only people move it.
		manifest = filepath.Join(GinkgoT().TempDir(), "web-v2.yaml")
		Expect(os.WriteFile(manifest, []byte(CanaryManifest(ns, `    - name: TimedCanaryRelease
      parameters: {step: 20, period: 1h}
    - name: ManualGate
`)), 0o644)).To(Succeed())
		kubectl(nil, "apply", "-f", manifest)
		Eventually(func(g Gomega) {
			c := canary(g)
			g.Expect(c.Status.Weights).To(Equal(map[string]int32{"v1": 100, "v2": 0}))
			g.Expect(c.Status.Decisions).To(ContainElement(HaveField("Outcome", "Gate")))
		}).Should(Succeed())
	})

	It("approves: the ManualGate opens to the weight, the step goes through, the history names the user", func() {
		out := operates("alice", "canary", "approve", "web-v2", "--weight", "40", "-n", ns)
		Expect(out).To(ContainSubstring("canaryrelease operate/web-v2: Approve up to 40% by alice: approved up to 40%"))
		Eventually(func(g Gomega) {
			c := canary(g)
			g.Expect(c.Status.ApprovedWeight).To(HaveValue(BeEquivalentTo(40)))
			g.Expect(c.Status.Weights).To(Equal(map[string]int32{"v1": 80, "v2": 20}))
		}).Should(Succeed())
		var approval v1alpha1.ReleaseStep
		for _, h := range canary(Default).Status.History {
			if h.Action == "Approve" {
				approval = h
			}
		}
		Expect(approval.User).To(Equal("alice"))
		Expect(approval.ActionName).To(HavePrefix("web-v2-approve-"))
		noDrift()
	})

	It("promotes: the next step runs now, decided by the step policy with the action as its input", func() {
		operates("alice", "canary", "promote", "web-v2", "-n", ns)
		Eventually(func(g Gomega) {
			h := lastStep(g)
			g.Expect(h.Action).To(Equal("Promote"))
			g.Expect(h.User).To(Equal("alice"))
			g.Expect(h.Policy).To(Equal("TimedCanaryRelease"))
			g.Expect(h.Weights).To(Equal(map[string]int32{"v1": 60, "v2": 40}))
		}).Should(Succeed())
		Eventually(func() map[string]int32 { return servedWeights(ns) }).Should(Equal(map[string]int32{"v1": 60, "v2": 40}))
		noDrift()

		By("a second promote meets the gate at the approved 40%: recorded, and held")
		out := operates("alice", "canary", "promote", "web-v2", "-n", ns)
		Expect(out).To(ContainSubstring("the policies held"))
		Expect(out).To(ContainSubstring("ManualGate: waiting for approval: proposed 60%, approved 40%"))
		Expect(canary(Default).Status.Weights).To(Equal(map[string]int32{"v1": 60, "v2": 40}))
	})

	It("pauses and resumes: the weights stay frozen, and a promote meanwhile is refused up front", func() {
		operates("alice", "canary", "pause", "web-v2", "-n", ns)
		Expect(canary(Default).Status.Phase).To(Equal(v1alpha1.CanaryPaused))
		Expect(refused("alice", "canary", "promote", "web-v2", "-n", ns)).To(ContainSubstring(
			"canaryrelease operate/web-v2: Promote refused: spec.action: CanaryRelease web-v2: the release is Paused: resume it first, or promote --full"))
		Consistently(func(g Gomega) { g.Expect(canary(g).Status.Weights).To(Equal(map[string]int32{"v1": 60, "v2": 40})) }, "2s").Should(Succeed())
		operates("alice", "canary", "resume", "web-v2", "-n", ns)
		Expect(canary(Default).Status.Phase).To(Equal(v1alpha1.CanaryProgressing))
		noDrift()
	})

	It("refuses a user without kubist-release-operator with the API server's message, and lets them read", func() {
		Expect(refused("bob", "canary", "abort", "web-v2", "-n", ns)).To(ContainSubstring(
			`releaseactions.kubist.io is forbidden: User "bob" cannot create resource "releaseactions" in API group "kubist.io" in the namespace "operate"`))
		Expect(operates("bob", "get", "canary", "web-v2", "-n", ns)).To(ContainSubstring("Promote by alice"))
		Expect(canary(Default).Status.Phase).To(Equal(v1alpha1.CanaryProgressing))
	})

	It("refuses an unknown release with the closest name", func() {
		Expect(refused("alice", "canary", "promote", "web-v3", "-n", ns)).To(ContainSubstring(
			"spec.target.name: no CanaryRelease named web-v3 in namespace operate; it has web-v2 (did you mean web-v2?)"))
	})

	It("aborts: all traffic to the baseline, phase Aborted; a finished release cannot be promoted; retry starts it again", func() {
		operates("alice", "canary", "abort", "web-v2", "-n", ns)
		Eventually(func(g Gomega) {
			c := canary(g)
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryAborted))
			g.Expect(c.Status.Weights).To(Equal(map[string]int32{"v1": 100, "v2": 0}))
		}).Should(Succeed())
		Eventually(func() map[string]int32 { return servedWeights(ns) }).Should(Equal(map[string]int32{"v1": 100}))
		Expect(refused("alice", "canary", "promote", "web-v2", "-n", ns)).To(ContainSubstring("the release is Aborted: there is nothing to promote"))
		noDrift()

		operates("alice", "canary", "retry", "web-v2", "-n", ns)
		Eventually(func(g Gomega) {
			c := canary(g)
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryPending))
			g.Expect(c.Status.ApprovedWeight).To(BeNil())
			g.Expect(lastStep(g).Action).To(Equal("Retry"))
		}).Should(Succeed())
		noDrift()
	})

	It("promotes --full past the gate; then promoting is refused as the release is finished", func() {
		operates("alice", "canary", "promote", "web-v2", "--full", "-n", ns)
		Eventually(func(g Gomega) {
			c := canary(g)
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
			g.Expect(c.Status.Weights).To(Equal(map[string]int32{"v1": 0, "v2": 100}))
		}).Should(Succeed())
		Eventually(func() map[string]int32 { return servedWeights(ns) }).Should(Equal(map[string]int32{"v2": 100}))
		Expect(refused("alice", "canary", "promote", "web-v2", "-n", ns)).To(ContainSubstring("the release is Promoted: there is nothing to promote"))
		noDrift()
	})

	It("shows the whole story in kubist get canary, and as JSON", func() {
		out := operates("bob", "get", "canary", "web-v2", "-n", ns)
		GinkgoWriter.Println(out)
		Expect(out).To(MatchRegexp(`Phase:\s+Promoted\n`))
		Expect(out).To(MatchRegexp(`Policies:\s+TimedCanaryRelease → ManualGate\n`))
		Expect(out).To(MatchRegexp(`Gates:\s+none waiting\n`))
		for _, want := range []string{
			"Approve by alice", "Promote by alice, TimedCanaryRelease", "Pause by alice", "Resume by alice",
			"Abort by alice", "Retry by alice", "promoted at once: canary v2 at 100%",
		} {
			Expect(out).To(ContainSubstring(want))
		}
		var c v1alpha1.CanaryRelease
		Expect(json.Unmarshal([]byte(operates("bob", "get", "canary", "web-v2", "-n", ns, "-o", "json")), &c)).To(Succeed())
		Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryPromoted))

		By("every action was applied once, in order, and says so, the older ones moved from the status into its ReleaseHistory")
		var page v1alpha1.ReleaseHistory
		Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "canaryrelease.web-v2.0"}, &page)).To(Succeed())
		Expect(page.Steps).To(HaveLen(v1alpha1.HistoryInStatus - v1alpha1.HistoryKept))
		Expect(c.Status.HistoryArchived).To(BeNumerically(">=", len(page.Steps)))
		Expect(len(c.Status.History)).To(BeNumerically("<", v1alpha1.HistoryInStatus))
		history, err := testenv.History(ctx(), env.Client, &c)
		Expect(err).NotTo(HaveOccurred())
		var actions []string
		for _, h := range history {
			if h.Action != "" {
				actions = append(actions, h.Action)
			}
		}
		Expect(actions).To(Equal([]string{"Approve", "Promote", "Promote", "Pause", "Resume", "Abort", "Retry", "Promote"}))
		res := kubectl(nil, "get", "releaseactions", "-n", ns, "-o", "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}")
		Expect(strings.Fields(res.Stdout)).To(HaveEach("Applied"))
		Expect(strings.Fields(res.Stdout)).To(HaveLen(len(actions)))
	})

	It("refuses approving a release without a ManualGate, and concludes an Experiment", func() {
		const other = "operate-ab"
		kubectl([]byte(TreeManifest(other)), "apply", "-f", "-")
		kubectl([]byte(CanaryManifest(other, "    - name: TimedCanaryRelease\n      parameters: {step: 10, period: 1h}\n")), "apply", "-f", "-")
		Expect(refused("", "canary", "approve", "web-v2", "--weight", "50", "-n", other)).To(ContainSubstring(
			"the release has no ManualGate among its policies: there is nothing to approve"))
		kubectl(nil, "delete", "canaryrelease", "web-v2", "-n", other, "--wait")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: Experiment
metadata: {name: ab, namespace: operate-ab}
spec:
  route: web
  destination: web
  subsets: [v1, v2]
  goal: {metric: errorRate}
  policies:
    - name: WelchExperiment
      parameters: {step: 10, period: 1h}
`), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			var e v1alpha1.Experiment
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: other, Name: "ab"}, &e)).To(Succeed())
			g.Expect(e.Status.Weights).To(HaveLen(2))
		}).Should(Succeed())
		operates("", "experiment", "pause", "ab", "-n", other)
		Expect(refused("", "experiment", "conclude", "ab", "--winner", "v3", "-n", other)).To(ContainSubstring(
			`winner "v3" is not one of the experiment's subsets (v1, v2)`))
		out := operates("", "experiment", "conclude", "ab", "--winner", "v2", "-n", other)
		Expect(out).To(ContainSubstring("concluded: winner v2 at 100%"))
		Eventually(func(g Gomega) {
			var e v1alpha1.Experiment
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: other, Name: "ab"}, &e)).To(Succeed())
			g.Expect(e.Status.Phase).To(Equal(v1alpha1.ExperimentConcluded))
			g.Expect(e.Status.Winner).To(Equal("v2"))
			g.Expect(e.Status.History).To(ContainElement(HaveField("Action", "Conclude")))
		}).Should(Succeed())
		Eventually(func() map[string]int32 { return servedWeights(other) }).Should(Equal(map[string]int32{"v2": 100}))
	})
})
