package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// servedWeights reads the weights per subset of the VirtualService's
// "default" rule.
func servedWeights(namespace string) map[string]int32 {
	GinkgoHelper()
	var vs networkingv1.VirtualService
	if err := env.Client.Get(ctx(), types.NamespacedName{Namespace: namespace, Name: "web"}, &vs); err != nil {
		return nil
	}
	return defaultRuleWeights(&vs)
}

func readyCondition(obj v1alpha1.Object) *metav1.Condition {
	return meta.FindStatusCondition(obj.GetCommonStatus().Conditions, v1alpha1.ConditionReady)
}

var _ = Describe("Reconciler", func() {
	It("reconciles the samples into a Service, a DestinationRule and a VirtualService", func() {
		// Other specs apply the samples too, and the sample canary is
		// promoted 100 s after it starts: start it over, so that it
		// progresses while this spec looks at its weights.
		kubectl(nil, "delete", "canaryrelease", "reviews-v2", "-n", "bookinfo", "--ignore-not-found", "--wait")
		kubectl(nil, "apply", "-f", filepath.Join(repoRoot, "config", "samples"))

		By("the Cluster verifies Istio: its executor installed Istio's charts, and istiod runs at their version")
		Eventually(func(g Gomega) {
			var c v1alpha1.Cluster
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Name: "local"}, &c)).To(Succeed())
			ready := readyCondition(&c)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), ready.Message)
			cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionIstioReady)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Status).To(Equal(metav1.ConditionTrue), cond.Message)
			g.Expect(c.Status.Istio).NotTo(BeNil())
			g.Expect(c.Status.Istio.Version).To(Equal(istio.Version))
			g.Expect(c.Status.KubernetesVersion).To(HavePrefix("v1."))
			g.Expect(c.Status.VirtualClusters).To(BeEquivalentTo(1))
		}).Should(Succeed())

		By("the VirtualCluster labels its namespace for injection")
		Eventually(func(g Gomega) {
			var ns corev1.Namespace
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Name: "bookinfo"}, &ns)).To(Succeed())
			g.Expect(ns.Labels).To(HaveKeyWithValue("istio-injection", "enabled"))
			g.Expect(ns.Labels).To(HaveKeyWithValue(v1alpha1.LabelManaged, "true"))
		}).Should(Succeed())

		By("the Application reports its versions")
		Eventually(func(g Gomega) {
			var a v1alpha1.Application
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "bookinfo", Name: "reviews"}, &a)).To(Succeed())
			g.Expect(a.Status.Versions).To(HaveLen(2))
			g.Expect(a.Status.Versions[0].Name).To(Equal("v1"))
			g.Expect(a.Status.Versions[0].Replicas).To(BeEquivalentTo(2))
		}).Should(Succeed())
		By("kubectl get shows every version, its ready replicas of the desired")
		Eventually(func(g Gomega) {
			res := kubectl(nil, "get", "application", "reviews", "-n", "bookinfo")
			g.Expect(res.Stdout).To(MatchRegexp(`(?m)^NAME\s+VERSIONS\s+READY\s+AGE$`))
			g.Expect(res.Stdout).To(MatchRegexp(`(?m)^reviews\s+v1 \d/2, v2 \d/\d\s+`))
		}).Should(Succeed())

		By("the Destination applies a Service and a DestinationRule with one subset per version")
		Eventually(func(g Gomega) {
			var svc corev1.Service
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "bookinfo", Name: "reviews"}, &svc)).To(Succeed())
			g.Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": "reviews"}))
			g.Expect(svc.Spec.Ports).To(HaveLen(1))
			g.Expect(svc.Spec.Ports[0].Port).To(BeEquivalentTo(9080))
			g.Expect(svc.Labels).To(HaveKeyWithValue(v1alpha1.LabelManaged, "true"))
			var dr networkingv1.DestinationRule
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "bookinfo", Name: "reviews"}, &dr)).To(Succeed())
			g.Expect(dr.Spec.Host).To(Equal("reviews.bookinfo.svc.cluster.local"))
			g.Expect(dr.Spec.Subsets).To(HaveLen(2))
			g.Expect(dr.Spec.Subsets[1].Name).To(Equal("v2"))
			g.Expect(dr.Spec.Subsets[1].Labels).To(Equal(map[string]string{"version": "v2"}))
		}).Should(Succeed())

		By("the VirtualCluster imports a Deployment with a new app label as an Application; the user's stay untouched")
		kubectl([]byte(strings.ReplaceAll(DeploymentManifest("bookinfo", "v1"), "web", "ratings")), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			var a v1alpha1.Application
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "bookinfo", Name: "ratings"}, &a)).To(Succeed())
			g.Expect(a.Labels).To(HaveKeyWithValue(v1alpha1.LabelImported, "true"))
			g.Expect(a.Spec.Selector).To(Equal(map[string]string{"app": "ratings"}))
			var reviews v1alpha1.Application
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "bookinfo", Name: "reviews"}, &reviews)).To(Succeed())
			g.Expect(reviews.Labels).NotTo(HaveKey(v1alpha1.LabelImported))
		}).Should(Succeed())

		By("the Route applies a VirtualService with the canary's weights composed in")
		Eventually(func(g Gomega) {
			var vs networkingv1.VirtualService
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "bookinfo", Name: "reviews"}, &vs)).To(Succeed())
			g.Expect(vs.Spec.Hosts).To(Equal([]string{"reviews"}))
			g.Expect(vs.Spec.Http).To(HaveLen(2))
			testers := vs.Spec.Http[0]
			g.Expect(testers.Match[0].Headers["cookie"].GetRegex()).To(ContainSubstring("user=tester"))
			def := vs.Spec.Http[1]
			g.Expect(def.Retries.Attempts).To(BeEquivalentTo(3))
			g.Expect(def.Timeout.AsDuration()).To(Equal(10 * time.Second))
			// The sample canary steps every 10s: the rule carries what its
			// status holds at this moment.
			var canary v1alpha1.CanaryRelease
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "bookinfo", Name: "reviews-v2"}, &canary)).To(Succeed())
			g.Expect(canary.Status.Phase).To(Equal(v1alpha1.CanaryProgressing))
			g.Expect(def.Route).To(HaveLen(2), "baseline and canary")
			g.Expect(def.Route[0].Destination.Host).To(Equal("reviews.bookinfo.svc.cluster.local"))
			g.Expect(def.Route[0].Destination.Subset).To(Equal("v1"))
			g.Expect(def.Route[0].Weight).To(Equal(canary.Status.Weights["v1"]))
			g.Expect(def.Route[1].Destination.Subset).To(Equal("v2"))
			g.Expect(def.Route[1].Weight).To(Equal(canary.Status.Weights["v2"]))
			g.Expect(def.Route[0].Weight + def.Route[1].Weight).To(BeEquivalentTo(100))
			var route v1alpha1.Route
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "bookinfo", Name: "reviews"}, &route)).To(Succeed())
			g.Expect(route.Status.ComposedFrom).To(Equal([]string{"CanaryRelease/reviews-v2"}))
			g.Expect(route.Spec.HTTP[1].Route).To(HaveLen(1), "the Route itself is never rewritten")
		}).Should(Succeed())
	})

	It("walks a TimedCanaryRelease from 10 to 100 and promotes it, the VirtualService following each step", func() {
		const ns = "timed"
		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		Eventually(func() map[string]int32 { return servedWeights(ns) }).Should(Equal(map[string]int32{"v1": 100}))

		written := ops.count()
		kubectl([]byte(CanaryManifest(ns, `    - name: TimedCanaryRelease
      parameters: {step: 10, period: 1s}`)), "apply", "-f", "-")
		var seen []int32
		Eventually(func(g Gomega) {
			w := servedWeights(ns)
			if c, ok := w["v2"]; ok && (len(seen) == 0 || seen[len(seen)-1] != c) {
				seen = append(seen, c)
			}
			var c v1alpha1.CanaryRelease
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &c)).To(Succeed())
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
			g.Expect(w).To(Equal(map[string]int32{"v2": 100}))
		}).WithTimeout(60 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
		Expect(seen).To(Equal([]int32{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}), "the VirtualService carried every step, in order")

		var c v1alpha1.CanaryRelease
		Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &c)).To(Succeed())
		steps := historyOf(Default, &c)
		var history []string
		for _, h := range steps {
			history = append(history, fmt.Sprintf("%s %d %s", h.Policy, h.Weights["v2"], h.Phase))
		}
		Expect(history).To(Equal([]string{
			"TimedCanaryRelease 10 Progressing", "TimedCanaryRelease 20 Progressing", "TimedCanaryRelease 30 Progressing",
			"TimedCanaryRelease 40 Progressing", "TimedCanaryRelease 50 Progressing", "TimedCanaryRelease 60 Progressing",
			"TimedCanaryRelease 70 Progressing", "TimedCanaryRelease 80 Progressing", "TimedCanaryRelease 90 Progressing",
			"TimedCanaryRelease 100 Promoted",
		}), "every step exactly once")
		Expect(c.Status.CanaryWeight).To(BeEquivalentTo(100))
		Expect(readyCondition(&c).Message).To(ContainSubstring("Promoted"))

		By("one status write per step: each step's write already says what the policies decide next")
		Expect(c.Status.Decisions).To(HaveLen(1))
		Expect(c.Status.Decisions[0].Outcome).To(Equal("Done"), "%s", c.Status.Decisions[0].Message)
		statusWrites := 0
		for _, w := range ops.writesFrom(written) {
			if w == "update status *v1alpha1.CanaryRelease timed/web-v2" {
				statusWrites++
			}
		}
		Expect(statusWrites).To(Equal(len(steps)), "status writes of the canary")

		By("the manager's metrics carry the weight, the steps, and how late each step ran")
		metric := func(name string, labels map[string]string) *dto.Metric {
			found := managerMetrics(name, labels)
			Expect(found).To(HaveLen(1), "metric %s%v", name, labels)
			return found[0]
		}
		Expect(metric("kubist_canary_weight", map[string]string{"namespace": ns, "name": "web-v2", "subset": "v2"}).GetGauge().GetValue()).To(BeEquivalentTo(100))
		Expect(metric("kubist_policy_decisions_total", map[string]string{"policy": "TimedCanaryRelease", "outcome": "Step"}).GetCounter().GetValue()).To(BeNumerically(">=", 9))
		// Steps 20 to 100 each ran when the previous one asked to run again.
		Expect(metric("kubist_executor_lateness_seconds", map[string]string{"kind": "CanaryRelease"}).GetHistogram().GetSampleCount()).To(BeNumerically(">=", 9))

		By("a promoted release is final: a run after it asks no policy")
		total := func(name string, labels map[string]string) float64 {
			sum := 0.0
			for _, m := range managerMetrics(name, labels) {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
		decided := total("kubist_policy_decisions_total", map[string]string{"policy": "TimedCanaryRelease"})
		runs := total("kubist_executor_runs_total", map[string]string{"kind": "CanaryRelease", "result": "success"})
		kubectl(nil, "annotate", "canaryrelease", "web-v2", "-n", ns, "example.com/touched=yes")
		Eventually(func() float64 {
			return total("kubist_executor_runs_total", map[string]string{"kind": "CanaryRelease", "result": "success"})
		}).Should(BeNumerically(">", runs))
		Expect(total("kubist_policy_decisions_total", map[string]string{"policy": "TimedCanaryRelease"})).To(Equal(decided))
		Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &c)).To(Succeed())
		Expect(readyCondition(&c).Message).To(Equal("Promoted: v2 at 100%, v1 at 0%"))

		By("kubist tree shows the tree with the canary's phase and weights")
		out, err := exec.Command(kubistBinary(), "tree", "--kubeconfig", env.Kubectl.Kubeconfig).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(ContainSubstring("Project timed  ProjectExecutor  Ready=True\n└── Cluster timed  ClusterExecutor  Ready=True"))
		// (Once the mesh's split is measured after the last step, the line
		// also says what it served.)
		Expect(string(out)).To(MatchRegexp(`(?m)^            └── CanaryRelease timed/web-v2  CanaryReleaseExecutor  Ready=True  Promoted  v1 0% / v2 100%  (served [^\[]*  )?\[TimedCanaryRelease\]$`))

		By("events tell the story")
		Eventually(func() string {
			return kubectl(nil, "get", "events", "-n", ns, "--field-selector", "involvedObject.name=web-v2", "-o", "custom-columns=R:.reason").Stdout
		}).Should(And(ContainSubstring("Step"), ContainSubstring("Promote")))
	})
})

var _ = Describe("Steady state", func() {
	It("makes no writes in a full root run once the tree has converged", func() {
		const ns = "steady"
		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		// The served split of the promoted release is measured 1 s after
		// its promotion; then the tree has converged.
		kubectl([]byte(CanaryManifest(ns, `    - name: TimedCanaryRelease
      parameters: {step: 100, period: 1s}
  executor:
    name: CanaryReleaseExecutor
    parameters: {servedWindow: 1s, meshGracePeriod: 0s}`)), "apply", "-f", "-")
		type ref struct {
			obj client.Object
			key types.NamespacedName
		}
		tree := []ref{
			{&v1alpha1.Project{}, types.NamespacedName{Name: ns}},
			{&v1alpha1.Cluster{}, types.NamespacedName{Name: ns}},
			{&v1alpha1.VirtualCluster{}, types.NamespacedName{Name: ns}},
			{&v1alpha1.Application{}, types.NamespacedName{Namespace: ns, Name: "web"}},
			{&v1alpha1.Destination{}, types.NamespacedName{Namespace: ns, Name: "web"}},
			{&v1alpha1.Route{}, types.NamespacedName{Namespace: ns, Name: "web"}},
			{&v1alpha1.CanaryRelease{}, types.NamespacedName{Namespace: ns, Name: "web-v2"}},
		}
		Eventually(func(g Gomega) {
			for _, r := range tree {
				obj := r.obj.DeepCopyObject().(v1alpha1.Object)
				g.Expect(env.Client.Get(ctx(), r.key, obj)).To(Succeed())
				ready := readyCondition(obj)
				g.Expect(ready).NotTo(BeNil(), "%T %s", obj, r.key)
				g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "%T %s: %s", obj, r.key, ready.Message)
				g.Expect(obj.GetCommonStatus().ObservedGeneration).To(Equal(obj.GetGeneration()))
			}
			g.Expect(servedWeights(ns)).To(Equal(map[string]int32{"v2": 100}))
			var c v1alpha1.CanaryRelease
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &c)).To(Succeed())
			g.Expect(c.Status.Served).NotTo(BeNil(), "the promoted split is measured once")
			g.Expect(c.Status.Served.Summary).To(Equal("no requests"), "nothing sends requests to this tree")
		}).Should(Succeed())
		ofTree := func(writes []string) []string {
			var out []string
			for _, w := range writes {
				if strings.HasSuffix(w, " /"+ns) || strings.Contains(w, " "+ns+"/") {
					out = append(out, w)
				}
			}
			return out
		}
		// Converged: the tree's last writes are behind it.
		Eventually(func() []string {
			n := ops.count()
			time.Sleep(time.Second)
			return ofTree(ops.writesFrom(n))
		}).Should(BeEmpty())

		n, start := ops.count(), time.Now()
		Expect(mgr.Reconciler.RootRun(ctx())).To(Succeed())
		Eventually(func(g Gomega) {
			for _, r := range tree {
				g.Expect(ops.readSince(r.obj, r.key, start)).To(BeTrue(), "%T %s must run in the root run", r.obj, r.key)
			}
		}).Should(Succeed())
		Consistently(func() []string { return ofTree(ops.writesFrom(n)) }).WithTimeout(time.Second).Should(BeEmpty())
	})
})

var _ = Describe("ReadOnly executors", func() {
	It("report what they would write and write nothing", func() {
		const ns = "readonly"
		manifest := strings.Replace(TreeManifest(ns), "spec:\n  application: web", "spec:\n  executor: {name: ReadOnlyDestinationExecutor}\n  application: web", 1)
		kubectl([]byte(manifest), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			var d v1alpha1.Destination
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &d)).To(Succeed())
			ready := readyCondition(&d)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal("ReadOnly"))
			g.Expect(ready.Message).To(ContainSubstring("create Service readonly/web"))
			g.Expect(ready.Message).To(ContainSubstring("create DestinationRule readonly/web"))
			g.Expect(d.Finalizers).To(BeEmpty(), "a read-only executor does not even add its finalizer")
		}).Should(Succeed())
		// The Route's VirtualService exists (its executor writes), the
		// Destination's objects do not.
		Eventually(func() map[string]int32 { return servedWeights(ns) }).Should(Equal(map[string]int32{"v1": 100}))
		var svc corev1.Service
		Expect(apierrors.IsNotFound(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &svc))).To(BeTrue())
		var dr networkingv1.DestinationRule
		Expect(apierrors.IsNotFound(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, &dr))).To(BeTrue())
	})
})

// managerMetrics are the in-process manager's metrics of a name whose
// labels include the given ones.
func managerMetrics(name string, labels map[string]string) []*dto.Metric {
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var found []*dto.Metric
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			matches := true
			for k, v := range labels {
				matches = matches && have[k] == v
			}
			if matches {
				found = append(found, m)
			}
		}
	}
	return found
}
