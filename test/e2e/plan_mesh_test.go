package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/test/testenv"
)

// ring is one VirtualCluster of the mesh plan specs, on a cluster of its
// own: the management cluster (env, its istiod, the manager's Prometheus)
// or a workload control plane with its own istiod and Prometheus.
type ring struct {
	name, cluster, labels string
	workload              *testenv.Env
	istiod                *localmesh.Istiod
	telemetry             *localmesh.Telemetry
	backends              map[string]map[string]*localmesh.Backend // route → version
	generators            map[string]*localmesh.Generator          // route
}

// ringRoutes are the group the plans release: two Routes per ring.
var ringRoutes = []string{"web", "api"}

// ringTree is a ring's VirtualCluster and, in its namespace, the
// Application, Destination and Route (with its release template) of each
// of ringRoutes.
func ringTree(r *ring) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: kubist.io/v1alpha1
kind: VirtualCluster
metadata: {name: %[1]s, labels: %[2]s}
spec: {cluster: %[3]s}
`, r.name, r.labels, r.cluster)
	for _, app := range ringRoutes {
		b.WriteString(RoutedAppManifest(r.name, app, `    policies:
      - name: HealthBasedCanaryRelease
        parameters: {step: 50, period: 3s, maxErrorRate: 0.1, minRequests: 20}
    executor:
      name: CanaryReleaseExecutor
      parameters: {metricsWindow: 20s, meshGracePeriod: 2s, servedWindow: 3s}`))
	}
	return b.String()
}

// quietly runs kubectl for a cleanup, whatever it answers.
func quietly(args ...string) {
	res, err := env.Kubectl.Run(nil, args...)
	if err != nil || res.ExitCode != 0 {
		GinkgoWriter.Printf("kubectl %v: %v %s\n", args, err, res.Stderr)
	}
}

// ringShare is the share of v2 among a ring's route's requests sent in
// [from, to), with how many there were; failed requests count as neither.
func ringShare(samples []localmesh.Sample, from, to time.Time) (float64, int) {
	counts, n := shares(samples, from, to)
	if n == 0 {
		return 0, 0
	}
	return 100 * float64(counts["v2"]) / float64(counts["v1"]+counts["v2"]), n
}

var _ = Describe("A ReleasePlan over three real control planes", Ordered, func() {
	rings := []*ring{
		{name: "ring-a", cluster: "ring-local", labels: "{ring: canary}"},
		{name: "ring-b", cluster: "ring-eu", labels: "{region: eu}"},
		{name: "ring-c", cluster: "ring-us", labels: "{region: us}"},
	}
	samples := map[string][]localmesh.Sample{} // ring/route → what its generator sent so far

	take := func() {
		for _, r := range rings {
			for _, route := range ringRoutes {
				samples[r.name+"/"+route] = append(samples[r.name+"/"+route], r.generators[route].Take()...)
			}
		}
	}

	BeforeAll(func() {
		if exporter == nil {
			Skip("prometheus is not installed; CI builds it")
		}
		// kubist freeze must act at once when the spec calls it: built now.
		kubistBinary()
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: Project
metadata: {name: rings}
spec:
  releasePolicies: [{name: FreezeGate}]
---
apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: ring-local, labels: {ring: canary}}
spec: {project: rings}
`), "apply", "-f", "-")
		rings[0].istiod, rings[0].telemetry = istiod, telemetry
		By("two workload control planes, each with Istio installed by its Cluster's executor, its own istiod and its own Prometheus")
		for _, r := range rings[1:] {
			var err error
			r.workload, err = testenv.Start(controlplane.Options{WithoutIstioCRDs: true, WithoutKubistCRDs: true}, GinkgoT().TempDir())
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { Expect(r.workload.Stop()).To(Succeed()) })
			kubeconfig, err := os.ReadFile(r.workload.Kubectl.Kubeconfig)
			Expect(err).NotTo(HaveOccurred())
			r.telemetry, err = localmesh.NewTelemetry()
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(r.telemetry.Close)
			prom, err := localmesh.StartPrometheus(GinkgoT().TempDir(), 200*time.Millisecond, r.telemetry.Address)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(prom.Stop)
			ensureNamespace(ctx(), "kubist-system")
			for name, data := range map[string]map[string][]byte{
				r.cluster + "-kubeconfig": {"kubeconfig": kubeconfig},
				r.cluster + "-prometheus": {"url": []byte(prom.URL)},
			} {
				Expect(env.Client.Create(ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kubist-system", Name: name}, Data: data})).To(Succeed())
				DeferCleanup(func() { kubectl(nil, "delete", "secret", name, "-n", "kubist-system", "--ignore-not-found") })
			}
			kubectl([]byte(fmt.Sprintf(`apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: %[1]s, labels: %[2]s}
spec:
  project: rings
  kubeconfigSecretRef: {name: %[1]s-kubeconfig}
  prometheusSecretRef: {name: %[1]s-prometheus}
  executor:
    name: ClusterExecutor
    parameters: {installIstio: true, istioVersion: "%[3]s", chartRepository: "%[4]s"}
`, r.cluster, r.labels, istio.Version, istioCharts.URL)), "apply", "-f", "-")
		}
		// Registered after the workload clusters: it runs before they stop,
		// so that deleting a VirtualCluster removes what it made there.
		DeferCleanup(func() {
			quietly("delete", "releaseplan", "--all", "--ignore-not-found")
			for _, r := range rings {
				quietly("annotate", "--overwrite", "virtualcluster/"+r.name, "cluster/"+r.cluster, v1alpha1.AnnotationDeleteChildren+"=true")
				quietly("delete", "namespace", r.name, "--ignore-not-found", "--wait=false")
				quietly("delete", "virtualcluster", r.name, "--ignore-not-found")
			}
			quietly("annotate", "--overwrite", "project/rings", v1alpha1.AnnotationDeleteChildren+"=true")
			for _, r := range rings {
				quietly("delete", "cluster", r.cluster, "--ignore-not-found")
			}
			quietly("delete", "project", "rings", "--ignore-not-found")
		})

		for _, r := range rings[1:] {
			installCtx, cancel := context.WithTimeout(ctx(), 4*time.Minute)
			var err error
			r.istiod, err = localmesh.StartIstiod(installCtx, istio, r.workload.Client, localmesh.IstiodOptions{
				Kubeconfig: r.workload.Kubeconfig, WorkDir: GinkgoT().TempDir(),
			})
			cancel()
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { Expect(r.istiod.Stop()).To(Succeed()) })
			Expect(r.istiod.WaitForValidation(ctx())).To(Succeed())
		}
		Eventually(func(g Gomega) {
			for _, r := range rings {
				var c v1alpha1.Cluster
				g.Expect(env.Client.Get(ctx(), types.NamespacedName{Name: r.cluster}, &c)).To(Succeed())
				cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionIstioReady)
				g.Expect(cond).NotTo(BeNil(), r.cluster)
				g.Expect(cond.Status).To(Equal(metav1.ConditionTrue), "%s: %s", r.cluster, cond.Message)
			}
		}).WithTimeout(time.Minute).Should(Succeed())

		By("in each ring, web and api in v1 and v2 serving on loopback, registered with that cluster's istiod; a client per Route through its xDS")
		for _, r := range rings {
			kubectl([]byte(ringTree(r)), "apply", "-f", "-")
		}
		for _, r := range rings {
			target := env.Client
			if r.workload != nil {
				target = r.workload.Client
				Eventually(func(g Gomega) {
					var ns corev1.Namespace
					g.Expect(target.Get(ctx(), types.NamespacedName{Name: r.name}, &ns)).To(Succeed())
				}).WithTimeout(time.Minute).Should(Succeed())
			}
			r.backends, r.generators = map[string]map[string]*localmesh.Backend{}, map[string]*localmesh.Generator{}
			for _, route := range ringRoutes {
				r.backends[route] = map[string]*localmesh.Backend{}
				for _, v := range []string{"v1", "v2"} {
					b, err := localmesh.StartBackend(r.name, route, v, r.telemetry)
					Expect(err).NotTo(HaveOccurred())
					DeferCleanup(b.Stop)
					Expect(b.Register(ctx(), target, route, "http")).To(Succeed())
					r.backends[route][v] = b
				}
				c := dialUntilV1(r.istiod, r.name, route)
				r.generators[route] = generate(c, 50, 2, nil)
			}
		}
	})

	It("on a failure in wave 2, rolls its group back while the Project is frozen, and sends wave 1 back to v1 (onFailure: Rollback), measured on real requests", func() {
		By("api's v2 in ring-b fails half its requests")
		rings[1].backends["api"]["v2"].SetErrorRate(0.5)
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: ReleasePlan
metadata: {name: rings-v2}
spec:
  project: rings
  routes: [web, api]
  subset: v2
  policies: [{name: WavePacing, parameters: {soak: 2s, onFailure: Rollback}}]
  waves:
    - {name: canary, clusters: {matchLabels: {ring: canary}}}
    - {name: eu, clusters: {matchLabels: {region: eu}}}
    - {name: rest}
`), "apply", "-f", "-")

		By("each release's chain: its own policy, the Project's FreezeGate, the plan's lockstep")
		Eventually(func(g Gomega) {
			c := releaseOf(g, "ring-a", "rings-v2-web")
			g.Expect(c.Status.EffectivePolicies).To(Equal([]v1alpha1.EffectivePolicy{{Name: "HealthBasedCanaryRelease"},
				{Name: "FreezeGate", From: "Project rings"}, {Name: "PlanLockstep", From: "ReleasePlan rings-v2"}}))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("wave 2 takes its first step; the Project is frozen at once")
		Eventually(func(g Gomega) {
			g.Expect(releaseOf(g, "ring-b", "rings-v2-api").Status.CanaryWeight).To(Equal(int32(50)))
		}).WithTimeout(2 * time.Minute).WithPolling(100 * time.Millisecond).Should(Succeed())
		kubectlKubist("freeze", "rings", "--reason", "incident 7")
		frozenAt := time.Now()
		DeferCleanup(func() { kubectlKubist("unfreeze", "rings") })

		By("api rolls back on its error rate, the freeze notwithstanding; web rolls back with it; the plan sends ring-a back to v1")
		var plan v1alpha1.ReleasePlan
		Eventually(func(g Gomega) {
			api := releaseOf(g, "ring-b", "rings-v2-api")
			g.Expect(api.Status.Phase).To(Equal(v1alpha1.CanaryRolledBack))
			web := releaseOf(g, "ring-b", "rings-v2-web")
			g.Expect(web.Status.Phase).To(Equal(v1alpha1.CanaryRolledBack))
			plan = planStatus(g, "rings-v2")
			g.Expect(plan.Status.Phase).To(Equal(v1alpha1.PlanRolledBack))
			for _, route := range ringRoutes {
				g.Expect(releaseOf(g, "ring-a", "rings-v2-"+route+"-revert").Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
			}
		}).WithTimeout(90 * time.Second).Should(Succeed())
		webB := releaseOf(Default, "ring-b", "rings-v2-web")
		for _, h := range historyOf(Default, &webB) {
			Expect(h.Weights["v2"]).To(BeNumerically("<=", 50), "web in ring-b stepped past 50%% while frozen: %+v", h)
		}
		apiB := releaseOf(Default, "ring-b", "rings-v2-api")
		apiHistory := historyOf(Default, &apiB)
		rolledBackAt := apiHistory[len(apiHistory)-1].Time.Time
		Expect(rolledBackAt).To(BeTemporally(">", frozenAt), "the rollback came during the freeze")
		Expect(plan.Status.Waves[2].Started).To(BeNil(), "wave 3 never started")

		By("on real requests: ring-a and ring-b back on v1, ring-c never left it")
		time.Sleep(4 * time.Second)
		take()
		now := time.Now()
		for _, r := range rings {
			for _, route := range ringRoutes {
				s := samples[r.name+"/"+route]
				share, n := ringShare(s, now.Add(-2*time.Second), now)
				Expect(n).To(BeNumerically(">", 40), "%s/%s", r.name, route)
				Expect(share).To(BeNumerically("<=", 1), "%s/%s: %.1f%% of the last 2 s on v2", r.name, route, share)
				AddReportEntry("plan rollback", fmt.Sprintf("%s/%s: %.1f%% of %d requests on v2 in the last 2 s", r.name, route, share, n))
			}
		}
		for _, route := range ringRoutes {
			share, n := ringShare(samples["ring-c/"+route], time.Time{}, now)
			Expect(share).To(BeZero(), "ring-c/%s: %d requests, %.2f%% on v2", route, n, share)
		}
		shown := kubectlKubist("get", "plan", "rings-v2").Stdout
		GinkgoWriter.Print(shown)
		AddReportEntry("kubist get plan rings-v2", shown)
		Expect(shown).To(MatchRegexp(`eu\s+RolledBack`))
		Expect(shown).To(MatchRegexp(`Metrics per wave[^\n]*\n\s+WAVE\s+SUBSET\s+REQUESTS`))
	})

	It("promotes v2 wave by wave, each ring's requests following its releases' weights through its own istiod", func() {
		kubectlKubist("unfreeze", "rings")
		rings[1].backends["api"]["v2"].SetErrorRate(0)
		take()
		start := time.Now()
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: ReleasePlan
metadata: {name: rings-v2-again}
spec:
  project: rings
  routes: [web, api]
  subset: v2
  policies: [{name: WavePacing, parameters: {soak: 2s}}]
  waves:
    - {name: canary, clusters: {matchLabels: {ring: canary}}}
    - {name: eu, clusters: {matchLabels: {region: eu}}}
    - {name: rest}
`), "apply", "-f", "-")
		var plan v1alpha1.ReleasePlan
		Eventually(func(g Gomega) {
			plan = planStatus(g, "rings-v2-again")
			g.Expect(plan.Status.Phase).To(Equal(v1alpha1.PlanPromoted), plan.Status.Summary)
		}).WithTimeout(4 * time.Minute).WithPolling(time.Second).Should(Succeed())
		time.Sleep(3 * time.Second)
		take()

		for i, r := range rings {
			w := plan.Status.Waves[i]
			Expect(w.Members).To(HaveLen(1))
			Expect(w.Members[0].VirtualCluster).To(Equal(r.name))
			for _, route := range ringRoutes {
				c := releaseOf(Default, r.name, "rings-v2-again-"+route)
				history := historyOf(Default, &c)
				Expect(history).NotTo(BeEmpty())
				first := history[0].Time.Time
				s := samples[r.name+"/"+route]
				By(fmt.Sprintf("%s/%s: v1 only before its wave's first step, then each step's split", r.name, route))
				before, n := ringShare(s, start, first)
				Expect(n).To(BeNumerically(">", 0))
				Expect(before).To(BeZero(), "%s/%s: %d requests before its first step, %.2f%% on v2", r.name, route, n, before)
				for j, h := range history {
					from := h.Time.Add(time.Second)
					to := time.Now()
					if j+1 < len(history) {
						to = history[j+1].Time.Time
					}
					share, n := ringShare(s, from, to)
					if n < 40 {
						continue
					}
					Expect(share).To(BeNumerically("~", float64(h.Weights["v2"]), 12), "%s/%s at weight %d: %.1f%% of %d requests on v2", r.name, route, h.Weights["v2"], share, n)
					AddReportEntry("plan traffic", fmt.Sprintf("%s/%s at v2 weight %d: %.1f%% of %d requests on v2", r.name, route, h.Weights["v2"], share, n))
				}
			}
			if i > 0 {
				prev := plan.Status.Waves[i-1]
				c := releaseOf(Default, r.name, "rings-v2-again-web")
				firstStep := historyOf(Default, &c)[0].Time.Time
				Expect(w.Started.Time).To(BeTemporally(">=", prev.Promoted.Add(2*time.Second)))
				AddReportEntry("plan timing", fmt.Sprintf("wave %s promoted at %s; wave %s's first step at %s: %.2f s later (soak 2 s)",
					prev.Name, prev.Promoted.Format(time.RFC3339Nano), w.Name, firstStep.Format(time.RFC3339Nano), firstStep.Sub(prev.Promoted.Time).Seconds()))
			}
		}
		shown := kubectlKubist("get", "plan", "rings-v2-again").Stdout
		GinkgoWriter.Print(shown)
		AddReportEntry("kubist get plan rings-v2-again", shown)
		Expect(shown).To(MatchRegexp(`Phase:\s+Promoted: wave 3/3 rest: 1/1 promoted`))
	})
})
