package e2e

import (
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
)

func planStatus(g Gomega, name string) v1alpha1.ReleasePlan {
	var p v1alpha1.ReleasePlan
	g.Expect(env.Client.Get(ctx(), types.NamespacedName{Name: name}, &p)).To(Succeed())
	return p
}

// weightAt is a release's weight of v2 at t, from its history.
func weightAt(history []v1alpha1.ReleaseStep, t time.Time) int32 {
	var w int32
	for _, h := range history {
		if h.Time.After(t) {
			break
		}
		w = h.Weights["v2"]
	}
	return w
}

var _ = Describe("A ReleasePlan", func() {
	clusters := map[string]string{"fleet-a": "{ring: canary}", "fleet-b": "{region: eu}", "fleet-c": "{region: us}"}
	// web steps by 50, api by 25: in lockstep, web waits for api.
	policies := map[string]string{
		"web": "      - {name: TimedCanaryRelease, parameters: {step: 50, period: 1s}}",
		"api": "      - {name: TimedCanaryRelease, parameters: {step: 25, period: 1s}}",
	}

	It("releases a group of two Routes over three clusters wave by wave, in lockstep, each wave once, and says so with the wave", func() {
		slackHook := startSlackEndpoint()
		ensureNamespace(ctx(), "kubist-system")
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kubist-system", Name: "fleet-slack"}, StringData: map[string]string{"url": slackHook.url}}
		Expect(env.Client.Create(ctx(), secret)).To(Succeed())
		DeferCleanup(func() { Expect(env.Client.Delete(ctx(), secret)).To(Succeed()) })
		kubectl([]byte(FleetManifest("fleet", clusters, policies)), "apply", "-f", "-")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: Project
metadata: {name: fleet}
spec:
  notifications:
    receivers: [{name: team-slack, type: Slack, secretRef: {name: fleet-slack}}]
`), "apply", "-f", "-")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: ReleasePlan
metadata: {name: fleet-v2}
spec:
  project: fleet
  routes: [web, api]
  subset: v2
  policies: [{name: WavePacing, parameters: {soak: 3s}}]
  waves:
    - {name: canary, clusters: {matchLabels: {ring: canary}}}
    - {name: eu, clusters: {matchLabels: {region: eu}}}
    - {name: rest}
`), "apply", "-f", "-")

		By("every wave promoted in order, each after the previous one's soak")
		var plan v1alpha1.ReleasePlan
		Eventually(func(g Gomega) {
			plan = planStatus(g, "fleet-v2")
			g.Expect(plan.Status.Phase).To(Equal(v1alpha1.PlanPromoted), plan.Status.Summary)
		}).WithTimeout(90 * time.Second).WithPolling(time.Second).Should(Succeed())
		Expect(plan.Status.Waves).To(HaveLen(3))
		for i, w := range plan.Status.Waves {
			Expect(w.Phase).To(Equal(v1alpha1.WavePromoted), w.Name)
			Expect(w.Members).To(HaveLen(1))
			Expect(w.Members[0].VirtualCluster).To(Equal([]string{"fleet-a", "fleet-b", "fleet-c"}[i]))
			Expect(w.Members[0].Releases).To(HaveLen(2))
			if i > 0 {
				prev := plan.Status.Waves[i-1]
				Expect(w.Started.Time).To(BeTemporally(">=", prev.Promoted.Add(3*time.Second)), "wave %s starts after %s's soak", w.Name, prev.Name)
				AddReportEntry("plan", fmt.Sprintf("wave %s promoted at %s; wave %s started at %s (%.1fs later, soak 3s)",
					prev.Name, prev.Promoted.Format(time.RFC3339Nano), w.Name, w.Started.Format(time.RFC3339Nano), w.Started.Sub(prev.Promoted.Time).Seconds()))
			}
		}
		starts := 0
		for _, h := range plan.Status.History {
			if strings.Contains(h.Message, "started") {
				starts++
			}
		}
		Expect(starts).To(Equal(3), "one start per wave in the plan's history: %+v", plan.Status.History)

		By("each release ran with the plan's lockstep last, and its group never more than a step apart")
		for _, ns := range []string{"fleet-a", "fleet-b", "fleet-c"} {
			var web, api v1alpha1.CanaryRelease
			Eventually(func(g Gomega) {
				web, api = releaseOf(g, ns, "fleet-v2-web"), releaseOf(g, ns, "fleet-v2-api")
			}).Should(Succeed())
			Expect(web.Labels).To(HaveKeyWithValue(v1alpha1.LabelPlan, "fleet-v2"))
			Expect(web.Status.EffectivePolicies).To(Equal([]v1alpha1.EffectivePolicy{{Name: "TimedCanaryRelease"}, {Name: "PlanLockstep", From: "ReleasePlan fleet-v2"}}))
			webHistory, apiHistory := historyOf(Default, &web), historyOf(Default, &api)
			for _, h := range append(slices.Clone(webHistory), apiHistory...) {
				diff := weightAt(webHistory, h.Time.Time) - weightAt(apiHistory, h.Time.Time)
				Expect(diff).To(BeNumerically("~", 0, 50), "%s at %s: web %d, api %d", ns, h.Time, weightAt(webHistory, h.Time.Time), weightAt(apiHistory, h.Time.Time))
			}
		}

		By("Slack hears of each wave's start, and of each release with its plan and wave")
		Eventually(slackHook.texts).WithTimeout(30 * time.Second).Should(ContainElements(
			"[WaveStarted] ReleasePlan fleet-v2 (wave canary): wave 1/3 canary started",
			"[WaveStarted] ReleasePlan fleet-v2 (wave eu): wave 2/3 eu started",
			"[Promoted] ReleasePlan fleet-v2 (wave rest): every wave promoted v2",
			"[Promoted] CanaryRelease fleet-b/fleet-v2-web (ReleasePlan fleet-v2, wave eu): canary v2 at 100%",
		))

		By("kubist tree shows the plan under its Project, and each release's plan and wave")
		tree := kubectlKubist("tree").Stdout
		GinkgoWriter.Print(tree)
		Expect(tree).To(MatchRegexp(`ReleasePlan fleet-v2\s.*v2 of web, api\s+Promoted: wave 3/3 rest: 1/1 promoted`))
		Expect(tree).To(MatchRegexp(`CanaryRelease fleet-b/fleet-v2-api\s.*Promoted .*plan fleet-v2, wave eu`))
	})

	It("on a failure in wave 2, rolls the group back and, with onFailure: Rollback, sends wave 1 back to v1; kubist get plan and kubist plan show it", func() {
		slow := map[string]string{
			"web": "      - {name: TimedCanaryRelease, parameters: {step: 20, period: 2s}}",
			"api": "      - {name: TimedCanaryRelease, parameters: {step: 20, period: 2s}}",
		}
		kubectl([]byte(FleetManifest("fleet2", map[string]string{"fleet2-a": "{ring: canary}", "fleet2-b": "{region: eu}", "fleet2-c": "{region: us}"}, slow)), "apply", "-f", "-")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: ReleasePlan
metadata: {name: fleet2-v2}
spec:
  project: fleet2
  routes: [web, api]
  subset: v2
  policies: [{name: WavePacing, parameters: {soak: 1s, onFailure: Rollback}}]
  waves:
    - {name: canary, clusters: {matchLabels: {ring: canary}}}
    - {name: eu, clusters: {matchLabels: {region: eu}}}
    - {name: rest}
`), "apply", "-f", "-")

		By("a manual release of a Route the plan releases is refused, naming the plan")
		res, err := env.Kubectl.Run([]byte(`apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: web-by-hand, namespace: fleet2-b}
spec: {route: web, destination: web, subset: v2}
`), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ExitCode).NotTo(Equal(0))
		Expect(res.Stderr).To(ContainSubstring("spec.route: Invalid value: \"web\": ReleasePlan fleet2-v2"))

		By("a second plan of the same Route in the same VirtualClusters is refused, naming the first")
		res, err = env.Kubectl.Run([]byte(`apiVersion: kubist.io/v1alpha1
kind: ReleasePlan
metadata: {name: fleet2-again}
spec:
  project: fleet2
  routes: [api]
  subset: v2
  waves: [{name: all}]
`), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ExitCode).NotTo(Equal(0))
		Expect(res.Stderr).To(MatchRegexp(`spec.routes\[0\]: Invalid value: "api": ReleasePlan fleet2-v2 \(\w+\) releases Route api in VirtualCluster fleet2-\w \(wave \w+\): one plan releases a Route at a time`))

		By("kubist plan pause holds the plan; resume lets it go on")
		Expect(kubectlKubist("plan", "pause", "fleet2-v2").Stdout).To(ContainSubstring("releaseplan fleet2-v2: Pause by"))
		Expect(planStatus(Default, "fleet2-v2").Status.Phase).To(Equal(v1alpha1.PlanPaused))
		Expect(kubectlKubist("plan", "resume", "fleet2-v2").Stdout).To(ContainSubstring("resumed"))

		By("wave 2 started; aborting its web release rolls back its api release too")
		Eventually(func(g Gomega) {
			p := planStatus(g, "fleet2-v2")
			g.Expect(p.Status.Wave).To(Equal(int32(2)), p.Status.Summary)
			g.Expect(releaseOf(g, "fleet2-b", "fleet2-v2-web").Status.CanaryWeight).To(BeNumerically(">=", 20))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		kubectlKubist("canary", "abort", "fleet2-v2-web", "-n", "fleet2-b")
		Eventually(func(g Gomega) {
			api := releaseOf(g, "fleet2-b", "fleet2-v2-api")
			g.Expect(api.Status.Phase).To(Equal(v1alpha1.CanaryRolledBack), "history %+v, decisions %+v, effective %+v", api.Status.History, api.Status.Decisions, api.Status.EffectivePolicies)
			g.Expect(api.Status.Weights["v1"]).To(Equal(int32(100)))
			// Its group's abort, or the plan's rollback that followed it,
			// whichever its run saw first.
			last := api.Status.History[len(api.Status.History)-1]
			g.Expect(last.Policy).To(Equal("PlanLockstep"))
			g.Expect(last.Message).To(Or(ContainSubstring("rolling back with its group (ReleasePlan fleet2-v2): web Aborted"), Equal("ReleasePlan fleet2-v2 is RolledBack: back to v1")))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("the plan rolls back: wave 1's promoted Routes go back to v1, wave 3 never starts")
		Eventually(func(g Gomega) {
			p := planStatus(g, "fleet2-v2")
			g.Expect(p.Status.Phase).To(Equal(v1alpha1.PlanRolledBack))
			for _, route := range []string{"web", "api"} {
				back := releaseOf(g, "fleet2-a", "fleet2-v2-"+route+"-revert")
				g.Expect(back.Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
				g.Expect(back.Status.Weights["v1"]).To(Equal(int32(100)))
				var r v1alpha1.Route
				g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "fleet2-a", Name: route}, &r)).To(Succeed())
				g.Expect(r.Status.Stable).NotTo(BeEmpty())
				g.Expect(r.Status.Stable[0].Subset).To(Equal("v1"))
			}
			g.Expect(p.Status.Waves[2].Started).To(BeNil())
		}).WithTimeout(60 * time.Second).Should(Succeed())

		shown := kubectlKubist("get", "plan", "fleet2-v2").Stdout
		GinkgoWriter.Print(shown)
		AddReportEntry("kubist get plan", shown)
		Expect(shown).To(MatchRegexp(`Phase:\s+RolledBack: wave 2/3 eu`))
		Expect(shown).To(MatchRegexp(`canary\s+RolledBack\s+.*fleet2-a\s+fleet2-a\s+RolledBack\s+web v2 100% Promoted \(reverted by fleet2-v2-web-revert\)`))
		Expect(shown).To(MatchRegexp(`eu\s+RolledBack\s+.*fleet2-b`))
		Expect(shown).To(MatchRegexp(`rest\s+Pending`))
		Expect(shown).To(ContainSubstring("Pause by"))
	})

	It("releases the newest ready subset when it names none, resolved once when it starts", func() {
		step := "      - {name: TimedCanaryRelease, parameters: {step: 50, period: 1s}}"
		kubectl([]byte(FleetManifest("newest", map[string]string{"newest-a": "{ring: canary}"}, map[string]string{"web": step, "api": step})), "apply", "-f", "-")
		deploy := func(app, version string) {
			kubectl([]byte(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s-%[2]s, namespace: newest-a, labels: {app: %[1]s, version: %[2]s}}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s, version: %[2]s}}
  template:
    metadata: {labels: {app: %[1]s, version: %[2]s}}
    spec:
      containers: [{name: %[1]s, image: example.com/%[1]s:%[2]s}]`, app, version)), "apply", "-f", "-")
			Expect(localmesh.MarkAvailable(ctx(), env.Client, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "newest-a", Name: app + "-" + version}})).To(Succeed())
		}
		deploy("web", "v1")
		deploy("api", "v1")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: ReleasePlan
metadata: {name: newest}
spec:
  project: newest
  routes: [web, api]
  waves: [{name: all}]
`), "apply", "-f", "-")
		By("no newer ready subset yet: the plan waits, saying so")
		Eventually(func(g Gomega) {
			p := planStatus(g, "newest")
			ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal("SubsetUnknown"))
			g.Expect(ready.Message).To(Equal("Route newest-a/web has no ready subset newer than the stable v1: deploy one, or set spec.subset"))
			g.Expect(p.Status.Wave).To(BeZero())
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("v2 deployed and ready: the plan releases it and keeps it")
		// A newer version is one created after the Route, in whole seconds.
		time.Sleep(1100 * time.Millisecond)
		deploy("web", "v2")
		deploy("api", "v2")
		Eventually(func(g Gomega) {
			p := planStatus(g, "newest")
			g.Expect(p.Status.Subset).To(Equal("v2"))
			g.Expect(p.Status.Phase).To(Equal(v1alpha1.PlanPromoted), p.Status.Summary)
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Expect(releaseOf(Default, "newest-a", "newest-api").Spec.Subset).To(Equal("v2"))
	})

	It("halts on a failure in wave 2 (onFailure: Halt): its group rolls back, wave 1 keeps v2, wave 3 never starts", func() {
		slow := "      - {name: TimedCanaryRelease, parameters: {step: 20, period: 2s}}"
		kubectl([]byte(FleetManifest("fleet3", map[string]string{"fleet3-a": "{ring: canary}", "fleet3-b": "{region: eu}", "fleet3-c": "{region: us}"},
			map[string]string{"web": slow, "api": slow})), "apply", "-f", "-")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: ReleasePlan
metadata: {name: fleet3-v2}
spec:
  project: fleet3
  routes: [web, api]
  subset: v2
  policies: [{name: WavePacing, parameters: {soak: 1s, onFailure: Halt}}]
  waves:
    - {name: canary, clusters: {matchLabels: {ring: canary}}}
    - {name: eu, clusters: {matchLabels: {region: eu}}}
    - {name: rest}
`), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			g.Expect(releaseOf(g, "fleet3-b", "fleet3-v2-api").Status.CanaryWeight).To(BeNumerically(">=", 20))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		kubectlKubist("canary", "abort", "fleet3-v2-api", "-n", "fleet3-b")
		Eventually(func(g Gomega) {
			p := planStatus(g, "fleet3-v2")
			g.Expect(p.Status.Phase).To(Equal(v1alpha1.PlanHalted))
			g.Expect(releaseOf(g, "fleet3-b", "fleet3-v2-web").Status.Phase).To(Equal(v1alpha1.CanaryRolledBack))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		// Long enough for a soak and a step: nothing more starts, nothing is reverted.
		Consistently(func(g Gomega) {
			p := planStatus(g, "fleet3-v2")
			g.Expect(p.Status.Waves[0].Phase).To(Equal(v1alpha1.WavePromoted))
			g.Expect(p.Status.Waves[2].Started).To(BeNil())
			var list v1alpha1.CanaryReleaseList
			g.Expect(env.Client.List(ctx(), &list, client.InNamespace("fleet3-a"))).To(Succeed())
			g.Expect(list.Items).To(HaveLen(2), "no revert in wave 1")
		}).WithTimeout(4 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		history := planStatus(Default, "fleet3-v2").Status.History
		Expect(history[len(history)-1].Message).To(MatchRegexp(`^fleet3-b (Aborted|RolledBack): halting the plan$`))
	})
})
