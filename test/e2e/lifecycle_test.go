package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/reconciler"
)

func routeOf(g Gomega, namespace string) v1alpha1.Route {
	var route v1alpha1.Route
	g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: namespace, Name: "web"}, &route)).To(Succeed())
	return route
}

func releaseOf(g Gomega, namespace, name string) v1alpha1.CanaryRelease {
	var c v1alpha1.CanaryRelease
	g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: namespace, Name: name}, &c)).To(Succeed())
	return c
}

var _ = Describe("Releases started by a new version", Ordered, func() {
	const ns = "lifecycle"
	// deployVersion applies a version's Deployment and, standing in for
	// the kubelet as make run does (no node runs here), marks it available.
	deployVersion := func(version string) {
		GinkgoHelper()
		kubectl([]byte(DeploymentManifest(ns, version)), "apply", "-f", "-")
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-" + version}}
		Expect(localmesh.MarkAvailable(ctx(), env.Client, d)).To(Succeed())
	}

	BeforeAll(func() {
		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		deployVersion("v1")
		deployVersion("v2")
		kubectl(nil, "patch", "destination", "web", "-n", ns, "--type=json", "-p",
			`[{"op": "add", "path": "/spec/subsets/-", "value": {"name": "v3", "labels": {"version": "v3"}}},
			  {"op": "add", "path": "/spec/subsets/-", "value": {"name": "v4", "labels": {"version": "v4"}}}]`)
		kubectl(nil, "patch", "route", "web", "-n", ns, "--type=merge", "-p",
			`{"spec": {"release": {"destination": "web", "httpRoute": "default", "policies": [{"name": "TimedCanaryRelease", "parameters": {"step": 50, "period": "5s"}}]}}}`)
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(routeOf(g, ns).Status.Conditions, reconciler.ConditionReleasing)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(reconciler.ReasonNothingNewer), c.Message)
		}).Should(Succeed())
		// A new version is one created after the Route, and creation times
		// count whole seconds.
		time.Sleep(time.Second)
	})

	It("starts a release of a new ready subset from the stable one, and it promotes; a newer subset during it waits, then starts from the promoted one", func() {
		By("v3 appears and is ready: the Route starts web-v3")
		deployVersion("v3")
		Eventually(func(g Gomega) {
			route := routeOf(g, ns)
			g.Expect(route.Status.Started).NotTo(BeEmpty(), "%+v", route.Status)
			c := releaseOf(g, ns, "web-v3")
			g.Expect(c.Labels).To(HaveKeyWithValue("kubist.io/started-by", "release-template"))
			g.Expect(c.OwnerReferences).To(ContainElement(HaveField("Kind", "Route")))
			g.Expect(c.Spec.HTTPRoute).To(Equal("default"))
			g.Expect(c.Status.Baseline).To(Equal("v1"))
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryProgressing))
		}).Should(Succeed())

		By("v4 appears during it: it waits, and no second release runs on the rule")
		deployVersion("v4")
		Eventually(func(g Gomega) {
			route := routeOf(g, ns)
			g.Expect(route.Status.Waiting).To(Equal("v4"), "%+v", route.Status)
			c := meta.FindStatusCondition(route.Status.Conditions, reconciler.ConditionReleasing)
			g.Expect(c.Reason).To(Equal(reconciler.ReasonNewerWaits))
			g.Expect(c.Message).To(ContainSubstring("v4 is newer and ready: its release starts when CanaryRelease/web-v3 ends"))
		}).Should(Succeed())
		var list v1alpha1.CanaryReleaseList
		Expect(env.Client.List(ctx(), &list, client.InNamespace(ns))).To(Succeed())
		Expect(list.Items).To(HaveLen(1), "only web-v3 while it runs")

		By("web-v3 promotes; then web-v4 starts from v3, now stable, and promotes")
		Eventually(func(g Gomega) {
			g.Expect(releaseOf(g, ns, "web-v3").Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
			c := releaseOf(g, ns, "web-v4")
			g.Expect(c.Status.Baseline).To(Equal("v3"))
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
		}).WithTimeout(time.Minute).Should(Succeed())
		Eventually(func(g Gomega) {
			route := routeOf(g, ns)
			g.Expect(route.Status.Waiting).To(BeEmpty())
			g.Expect(route.Status.Stable).To(ContainElement(And(HaveField("Rule", "default"), HaveField("Subset", "v4"))))
			g.Expect(route.Status.Releases).To(HaveLen(2))
			g.Expect(route.Status.Releases[0]).To(And(HaveField("Release", "CanaryRelease/web-v3"), HaveField("Baseline", "v1"), HaveField("Outcome", "Promoted")))
			g.Expect(route.Status.Releases[1]).To(And(HaveField("Release", "CanaryRelease/web-v4"), HaveField("Baseline", "v3"), HaveField("Outcome", "Promoted")))
			g.Expect(route.Status.Started).To(HaveLen(2))
		}).Should(Succeed())

		By("deleting web-v4 by hand starts nothing again: each subset is released once")
		kubectl(nil, "delete", "canaryrelease", "web-v4", "-n", ns)
		Consistently(func(g Gomega) {
			var c v1alpha1.CanaryRelease
			err := env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v4"}, &c)
			g.Expect(client.IgnoreNotFound(err)).To(Succeed())
			g.Expect(err).To(HaveOccurred(), "web-v4 was started again")
		}, "3s").Should(Succeed())
	})
})

var _ = Describe("kubist release", Ordered, func() {
	const ns = "release-by-hand"

	BeforeAll(func() {
		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		for _, v := range []string{"v1", "v2"} {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-" + v}}
			Expect(localmesh.MarkAvailable(ctx(), env.Client, d)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			g.Expect(routeOf(g, ns).Status.Stable).To(ContainElement(HaveField("Subset", "v1")))
		}).Should(Succeed())
	})

	It("refuses a subset that does not exist or is stable, naming the flag, and creates nothing", func() {
		res := kubectlKubist("release", "web", "-n", ns, "--subset", "v9")
		Expect(res.ExitCode).NotTo(BeZero())
		Expect(res.Stderr).To(ContainSubstring("subset v9 (--subset) is not a subset of Destination web (subsets: v1, v2)"))
		res = kubectlKubist("release", "web", "-n", ns, "--subset", "v1")
		Expect(res.ExitCode).NotTo(BeZero())
		Expect(res.Stderr).To(ContainSubstring("subset v1 (--subset) is already the stable subset of Route web for Destination web: there is nothing to release"))
		res = kubectlKubist("release", "web", "-n", ns, "--set", "step=20")
		Expect(res.ExitCode).NotTo(BeZero())
		Expect(res.Stderr).To(ContainSubstring("--set step=20: name the policy it is a parameter of with --policy"))
		var list v1alpha1.CanaryReleaseList
		Expect(env.Client.List(ctx(), &list, client.InNamespace(ns))).To(Succeed())
		Expect(list.Items).To(BeEmpty())
	})

	It("releases the newest ready subset from the stable one, says what it created, and follows it until it ends", func() {
		res := kubectlKubist("release", "web", "-n", ns, "--policy", "TimedCanaryRelease", "--set", "step=50", "--set", "period=1s")
		Expect(res.ExitCode).To(BeZero(), res.Stderr)
		Expect(res.Stdout).To(HavePrefix("canaryrelease.kubist.io/web-v2 created: v1 → v2 of Destination web on Route web\n"))
		Expect(res.Stdout).To(ContainSubstring("(kubist get canary web-v2 --watch)"))
		Expect(res.Stdout).To(MatchRegexp(`Phase:\s+Promoted`))
		c := releaseOf(Default, ns, "web-v2")
		Expect(c.Spec.Baseline).To(Equal("v1"))
		Expect(string(c.Spec.Policies[0].Parameters["step"].Raw)).To(Equal("50"))
		Expect(c.Labels).To(HaveKeyWithValue(v1alpha1.LabelRoute, "web"))
	})
})

var _ = Describe("Retiring the old version", Ordered, func() {
	const ns = "retire"

	It("reports a version a release ended away from as retired, scales it to zero after scaleDownRetired, and back for a retry", func() {
		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		for _, v := range []string{"v1", "v2"} {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-" + v}}
			Expect(localmesh.MarkAvailable(ctx(), env.Client, d)).To(Succeed())
		}
		kubectl(nil, "patch", "application", "web", "-n", ns, "--type=merge", "-p",
			`{"spec": {"executor": {"name": "ApplicationExecutor", "parameters": {"scaleDownRetired": "2s"}}}}`)
		kubectl([]byte(CanaryManifest(ns, "    - name: TimedCanaryRelease\n      parameters: {step: 10, period: 1h}\n")), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			g.Expect(releaseOf(g, ns, "web-v2").Status.CanaryWeight).To(BeEquivalentTo(10))
		}).Should(Succeed())

		By("aborted, v2 serves nothing: retired, then scaled to zero with its replicas kept")
		res := kubectlKubist("canary", "abort", "web-v2", "-n", ns)
		Expect(res.ExitCode).To(BeZero(), res.Stderr)
		Eventually(func(g Gomega) {
			var app v1alpha1.Application
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &app)).To(Succeed())
			g.Expect(app.Status.Versions).To(ContainElement(And(HaveField("Name", "v2"), HaveField("Retired", Not(BeNil())), HaveField("ScaledDown", true))))
			g.Expect(app.Status.Versions).To(ContainElement(And(HaveField("Name", "v1"), HaveField("Retired", BeNil()))))
			g.Expect(app.Status.Summary).To(ContainSubstring("v2 1/0 retired, scaled down"))
			var d appsv1.Deployment
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &d)).To(Succeed())
			g.Expect(*d.Spec.Replicas).To(BeZero())
			g.Expect(d.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationRetiredReplicas, "1"))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("retried, v2 is needed again: its replicas come back")
		res = kubectlKubist("canary", "retry", "web-v2", "-n", ns)
		Expect(res.ExitCode).To(BeZero(), res.Stderr)
		Eventually(func(g Gomega) {
			var d appsv1.Deployment
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &d)).To(Succeed())
			g.Expect(*d.Spec.Replicas).To(BeEquivalentTo(1))
			g.Expect(d.Annotations).NotTo(HaveKey(v1alpha1.AnnotationRetiredReplicas))
		}).WithTimeout(30 * time.Second).Should(Succeed())
	})
})
