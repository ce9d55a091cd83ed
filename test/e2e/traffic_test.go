package e2e

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/reconciler"
)

// meshRoute is the Route of the traffic specs: requests with the header
// user: tester always reach v2; the rest follow the default rule.
const meshRoute = `apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: web, namespace: %s}
spec:
  hosts: [web]
  http:
    - name: testers
      match: [{headers: {user: {exact: tester}}}]
      route: [{destination: web, subset: v2}]
    - name: default
      route: [{destination: web, subset: v1, weight: 100}]
`

// vsChange is a VirtualService's default rule as a watch saw it change.
type vsChange struct {
	at      time.Time
	weights map[string]int32
}

// watchDefaultRule records every change of the default rule's weights of
// the VirtualService web in namespace, as a watch delivers them, until
// stop is called.
func watchDefaultRule(namespace string) (changes func() []vsChange, stop func()) {
	GinkgoHelper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: scheme.New()})
	Expect(err).NotTo(HaveOccurred())
	watchCtx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(watchCtx, &networkingv1.VirtualServiceList{}, client.InNamespace(namespace))
	Expect(err).NotTo(HaveOccurred())
	var mu sync.Mutex
	var seen []vsChange
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			vs, ok := ev.Object.(*networkingv1.VirtualService)
			if !ok || vs.Name != "web" {
				continue
			}
			weights := defaultRuleWeights(vs)
			mu.Lock()
			if n := len(seen); n == 0 || !maps.Equal(seen[n-1].weights, weights) {
				seen = append(seen, vsChange{at: time.Now(), weights: weights})
			}
			mu.Unlock()
		}
	}()
	return func() []vsChange {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(seen)
		}, func() {
			w.Stop()
			cancel()
			<-done
		}
}

func defaultRuleWeights(vs *networkingv1.VirtualService) map[string]int32 {
	out := map[string]int32{}
	for _, rule := range vs.Spec.Http {
		if rule.Name != "default" {
			continue
		}
		for _, d := range rule.Route {
			w := d.Weight
			if w == 0 && len(rule.Route) == 1 {
				w = 100
			}
			out[d.Destination.Subset] = w
		}
	}
	return out
}

// shares counts the samples sent in [from, to) by version; failed
// requests count under "error".
func shares(samples []localmesh.Sample, from, to time.Time) (map[string]int, int) {
	out := map[string]int{}
	n := 0
	for _, s := range samples {
		if s.Sent.Before(from) || !s.Sent.Before(to) {
			continue
		}
		n++
		if s.Err != nil {
			out["error"]++
			continue
		}
		out[s.Version]++
	}
	return out, n
}

// changepoint finds, among samples sorted by time, the moment the share of
// v2 moved from p0 to p1: the split of the samples that makes them most
// likely (each request an independent draw, as gRPC's weighted picker
// makes it). It returns the time of the first sample after the change.
func changepoint(samples []localmesh.Sample, p0, p1 float64) time.Time {
	clamp := func(p float64) float64 { return math.Min(math.Max(p, 1e-4), 1-1e-4) }
	p0, p1 = clamp(p0), clamp(p1)
	ll := func(p float64, v2 bool) float64 {
		if v2 {
			return math.Log(p)
		}
		return math.Log(1 - p)
	}
	// before[i]: likelihood of samples[:i] under p0; after: of samples[i:] under p1.
	n := len(samples)
	before := make([]float64, n+1)
	for i, s := range samples {
		before[i+1] = before[i] + ll(p0, s.Version == "v2")
	}
	best, bestAt, after := math.Inf(-1), n, 0.0
	for i := n; i >= 0; i-- {
		if i < n {
			after += ll(p1, samples[i].Version == "v2")
		}
		if l := before[i] + after; l > best {
			best, bestAt = l, i
		}
	}
	if bestAt == n {
		return samples[n-1].Sent
	}
	return samples[bestAt].Sent
}

// percentile of durations, nearest rank.
func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

var _ = Describe("Real requests through istiod", Ordered, func() {
	const ns = "mesh"
	var backends map[string]*localmesh.Backend
	var c *localmesh.Client

	BeforeAll(func() {
		// Two versions of web, each a gRPC server on loopback registered as
		// a WorkloadEntry that the Destination's Service selects.
		c, backends = meshTree(ns, fmt.Sprintf(meshRoute, ns))
		By("the client resolves web through istiod: plain requests reach v1, testers v2")
		routesMarked(c, map[string]string{"user": "tester"})
	})

	It("follows every step of a TimedCanaryRelease from 10 to 100: each subset's share of the requests within 5 points of its weight, testers always on v2", func() {
		const period = 10 * time.Second
		changes, stopWatch := watchDefaultRule(ns)
		defer stopWatch()
		plain := generate(c, 400, 8, nil)
		testers := generate(c, 40, 2, map[string]string{"user": "tester"})
		// The served split is measured 2 s + 4 s after each step, well
		// before the next. The testers (about a tenth of the requests, all
		// to v2) lift v2's served share by up to 10 points over its
		// weight: the tolerance covers them.
		kubectl([]byte(CanaryManifest(ns, `    - name: TimedCanaryRelease
      parameters: {step: 10, period: `+period.String()+`}
  executor:
    name: CanaryReleaseExecutor
    parameters: {servedWindow: 4s, meshGracePeriod: 2s, servedTolerance: 15}`)), "apply", "-f", "-")
		DeferCleanup(func() {
			kubectl(nil, "delete", "canaryrelease", "web-v2", "-n", ns, "--ignore-not-found")
			specWins(ns)
		})
		// What the release's status says the mesh served, per weight.
		servedAt := map[int32]v1alpha1.ServedSplit{}
		shifted := map[int32]string{}
		var servedMu sync.Mutex
		pollCtx, stopPolling := context.WithCancel(context.Background())
		defer stopPolling()
		go func() {
			defer GinkgoRecover()
			for pollCtx.Err() == nil {
				var cr v1alpha1.CanaryRelease
				if env.Client.Get(pollCtx, client.ObjectKey{Namespace: ns, Name: "web-v2"}, &cr) == nil && cr.Status.Served != nil {
					servedMu.Lock()
					servedAt[cr.Status.Served.Weights["v2"]] = *cr.Status.Served
					if cond := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionTrafficShifted); cond != nil {
						shifted[cr.Status.Served.Weights["v2"]] = string(cond.Status) + " " + cond.Reason
					}
					servedMu.Unlock()
				}
				time.Sleep(250 * time.Millisecond)
			}
		}()

		var promoted v1alpha1.CanaryRelease
		Eventually(func(g Gomega) {
			promoted = canaryStatus(g, ns)
			g.Expect(promoted.Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
		}).WithTimeout(12 * (period + 5*time.Second)).Should(Succeed())
		Eventually(func() map[string]int32 {
			cs := changes()
			return cs[len(cs)-1].weights
		}).Should(Equal(map[string]int32{"v2": 100}))
		By("the release records the split the mesh served beside each split it set, TrafficShifted=True")
		Eventually(func(g Gomega) {
			servedMu.Lock()
			defer servedMu.Unlock()
			g.Expect(servedAt).To(HaveKey(int32(100)))
		}).WithTimeout(20 * time.Second).Should(Succeed())
		stopPolling()
		plain.Stop()
		testers.Stop()
		samples, testerSamples := plain.Take(), testers.Take()
		// The mesh's figures count every request to web, the testers' too:
		// the served share of v2 is the weight's share of the plain
		// requests plus all of the testers'.
		testerShare := float64(len(testerSamples)) / float64(len(samples)+len(testerSamples))
		servedMu.Lock()
		for w := int32(10); w <= 100; w += 10 {
			got, ok := servedAt[w]
			Expect(ok).To(BeTrue(), "no served split recorded at weight %d: %v", w, servedAt)
			want := float64(w)*(1-testerShare) + 100*testerShare
			Expect(float64(got.Percent["v2"])).To(BeNumerically("~", want, 5), "served at weight %d (testers %.0f%% of the requests): %+v", w, 100*testerShare, got)
			Expect(got.Requests).To(BeNumerically(">", 500))
			Expect(shifted[w]).To(Equal("True Matched"), "at weight %d", w)
			AddReportEntry("traffic", fmt.Sprintf("status at v2 weight %d: served %s of %d requests", w, got.Summary, got.Requests))
		}
		servedMu.Unlock()
		served := managerMetrics("kubist_canary_served_percent", map[string]string{"namespace": ns, "name": "web-v2", "subset": "v2"})
		Expect(served).To(HaveLen(1))
		Expect(served[0].GetGauge().GetValue()).To(BeNumerically(">=", 99), "the manager's metric of the promoted split")
		res := kubectl(nil, "get", "canaryrelease", "web-v2", "-n", ns)
		Expect(res.Stdout).To(MatchRegexp(`SERVED`))
		Expect(res.Stdout).To(MatchRegexp(`Promoted\s+v1 [01]% / v2 (99|100)%`))

		By("every tester's request reached v2, whatever the weights")
		testerShares, n := shares(testerSamples, time.Time{}, time.Now())
		Expect(n).To(BeNumerically(">", 1000))
		Expect(testerShares).To(Equal(map[string]int{"v2": n}))

		By("between two changes of the VirtualService, the requests split as its weights")
		cs := changes()
		Expect(len(cs)).To(BeNumerically(">=", 11), "the rule before the canary and one change per step: %v", cs)
		history := historyOf(Default, &promoted)
		Expect(history).To(HaveLen(10))
		var report []string
		var dueToMoved, writtenToMoved []time.Duration
		for i, change := range cs {
			if change.weights["v2"] == 0 {
				continue // the rule before the canary's first step
			}
			to := time.Now()
			if i+1 < len(cs) {
				to = cs[i+1].at
			}
			got, n := shares(samples, change.at, to)
			Expect(n).To(BeNumerically(">=", 1000), "requests at weight %v", change.weights)
			Expect(got["error"]).To(BeZero(), "no request fails at weight %v", change.weights)
			share := func(v string) float64 { return 100 * float64(got[v]) / float64(n) }
			report = append(report, fmt.Sprintf("weights v1 %d / v2 %d: served v1 %.1f%% / v2 %.1f%% of %d",
				change.weights["v1"], change.weights["v2"], share("v1"), share("v2"), n))
			if change.weights["v2"] == 100 {
				Expect(share("v2")).To(BeNumerically(">=", 99), "after promotion")
			} else {
				Expect(share("v1")).To(BeNumerically("~", float64(change.weights["v1"]), 5), "v1 at weights %v", change.weights)
				Expect(share("v2")).To(BeNumerically("~", float64(change.weights["v2"]), 5), "v2 at weights %v", change.weights)
			}

			// When did the client's traffic move? The step k of the
			// history fell due a period after step k-1.
			prev := float64(cs[i-1].weights["v2"]) / 100
			var window []localmesh.Sample
			for _, s := range samples {
				if !s.Sent.Before(change.at.Add(-time.Second)) && s.Sent.Before(to) && s.Err == nil {
					window = append(window, s)
				}
			}
			moved := changepoint(window, prev, float64(change.weights["v2"])/100)
			writtenToMoved = append(writtenToMoved, moved.Sub(change.at))
			for k, step := range history {
				if k > 0 && step.Weights["v2"] == change.weights["v2"] {
					dueToMoved = append(dueToMoved, moved.Sub(history[k-1].Time.Add(period)))
				}
			}
		}
		Expect(dueToMoved).To(HaveLen(9), "steps 2 to 10 each fall due a period after the one before")
		report = append(report,
			fmt.Sprintf("due -> traffic moved over %d steps: p50 %v, p99 %v", len(dueToMoved), percentile(dueToMoved, 50), percentile(dueToMoved, 99)),
			fmt.Sprintf("VirtualService written -> traffic moved: p50 %v, p99 %v", percentile(writtenToMoved, 50), percentile(writtenToMoved, 99)))
		for _, line := range report {
			AddReportEntry("traffic", line)
		}
	})

	It("keeps every request on the promoted subset when the finished release is deleted, warns of deleting one still shifting traffic, and says which change would commit the stable subset", func() {
		kubectl([]byte(CanaryManifest(ns, `    - name: TimedCanaryRelease
      parameters: {step: 50, period: 5s}`)), "apply", "-f", "-")
		DeferCleanup(func() {
			kubectl(nil, "delete", "canaryrelease", "web-v2", "-n", ns, "--ignore-not-found")
			specWins(ns)
		})
		Eventually(func(g Gomega) {
			g.Expect(canaryStatus(g, ns).Status.Weights).To(Equal(map[string]int32{"v1": 50, "v2": 50}))
		}).Should(Succeed())
		warned := kubectl(nil, "delete", "canaryrelease", "web-v2", "-n", ns, "--dry-run=server")
		Expect(warned.Stderr).To(ContainSubstring("Warning: CanaryRelease web-v2 is Progressing with v1 50% / v2 50%: deleting it sends all of that traffic to Route web's stable subset v1 at once"))

		Eventually(func(g Gomega) {
			g.Expect(canaryStatus(g, ns).Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
			var route v1alpha1.Route
			g.Expect(env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "web"}, &route)).To(Succeed())
			g.Expect(route.Status.Stable).To(ContainElement(And(HaveField("Rule", "default"), HaveField("Subset", "v2"),
				HaveField("SpecSubset", "v1"), HaveField("Release", "CanaryRelease/web-v2"), HaveField("Outcome", "Promoted"))))
			behind := meta.FindStatusCondition(route.Status.Conditions, reconciler.ConditionStableInSpec)
			g.Expect(behind).NotTo(BeNil())
			g.Expect(behind.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(behind.Message).To(ContainSubstring("set spec.http[1].route[0].subset to v2 to commit it"))
		}).WithTimeout(time.Minute).Should(Succeed())
		changes, stopWatch := watchDefaultRule(ns)
		defer stopWatch()
		plain := generate(c, 400, 8, nil)
		time.Sleep(time.Second)
		deleted := time.Now()
		kubectl(nil, "delete", "canaryrelease", "web-v2", "-n", ns)
		time.Sleep(4 * time.Second)
		plain.Stop()
		got, n := shares(plain.Take(), deleted, time.Now())
		Expect(n).To(BeNumerically(">=", 1000))
		Expect(got).To(Equal(map[string]int{"v2": n}), "every request after the delete on the promoted v2")
		cs := changes()
		Expect(cs).To(HaveLen(1), "the VirtualService's default rule did not change: %v", cs)
		Expect(cs[0].weights).To(Equal(map[string]int32{"v2": 100}))
		AddReportEntry("traffic", fmt.Sprintf("after deleting the promoted release: v2 served %d of %d requests", got["v2"], n))
	})

	It("rolls back a canary that fails real requests at the first decision after its first step, with the executor's defaults: the health-based policy sees only the errors since the step, and at least 99% of the requests go back to v1", func() {
		changes, stopWatch := watchDefaultRule(ns)
		defer stopWatch()
		Eventually(func() map[string]int32 {
			cs := changes()
			if len(cs) == 0 {
				return nil
			}
			return cs[len(cs)-1].weights
		}).Should(Equal(map[string]int32{"v1": 100}), "the Route's own rule, without the last canary")
		backends["v2"].SetErrorRate(0.5)
		DeferCleanup(func() { backends["v2"].SetErrorRate(0) })
		plain := generate(c, 400, 8, nil)
		// The README's walkthrough, as a user copies it: no executor
		// parameters, so metricsWindow is 1m and meshGracePeriod 10s.
		kubectl([]byte(CanaryManifest(ns, `    - name: HealthBasedCanaryRelease
      parameters: {step: 20, period: 10s, maxErrorRate: 0.1}`)), "apply", "-f", "-")
		DeferCleanup(func() { kubectl(nil, "delete", "canaryrelease", "web-v2", "-n", ns, "--ignore-not-found") })

		var rolledBack v1alpha1.CanaryRelease
		Eventually(func(g Gomega) {
			rolledBack = canaryStatus(g, ns)
			g.Expect(rolledBack.Status.Phase).To(Equal(v1alpha1.CanaryRolledBack))
		}).WithTimeout(time.Minute).Should(Succeed())
		var back time.Time
		Eventually(func(g Gomega) {
			cs := changes()
			g.Expect(len(cs)).To(BeNumerically(">=", 3), "v1 alone, the canary's step, the rollback: %v", cs)
			// The step reached the mesh, then every request went back to v1.
			g.Expect(slices.ContainsFunc(cs[1:len(cs)-1], func(c vsChange) bool { return c.weights["v2"] > 0 })).To(BeTrue(), "no step to v2 reached the VirtualService: %v", cs)
			g.Expect(cs[len(cs)-1].weights).To(Equal(map[string]int32{"v1": 100}))
			back = cs[len(cs)-1].at
		}).Should(Succeed())
		history := rolledBack.Status.History
		Expect(history).To(HaveLen(2), "the first step, then the rollback: %+v", history)
		Expect(history[0].Weights).To(Equal(map[string]int32{"v1": 80, "v2": 20}))
		last := history[1]
		Expect(last.Policy).To(Equal("HealthBasedCanaryRelease"))
		Expect(last.Weights).To(Equal(map[string]int32{"v1": 100, "v2": 0}))
		Expect(last.Message).To(ContainSubstring("error rate"))
		// The served split is measured once the rollback has had the
		// mesh's grace period and a whole served window, on requests served
		// after it only: it matches (no false alarm from the requests v2
		// served before).
		Eventually(func(g Gomega) {
			cr := canaryStatus(g, ns)
			g.Expect(cr.Status.Served).NotTo(BeNil())
			g.Expect(cr.Status.Served.Weights).To(Equal(map[string]int32{"v1": 100, "v2": 0}))
			shifted := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionTrafficShifted)
			g.Expect(shifted).NotTo(BeNil())
			g.Expect(shifted.Status).To(Equal(metav1.ConditionTrue), shifted.Message)
		}).WithTimeout(90 * time.Second).WithPolling(time.Second).Should(Succeed())
		plain.Stop()

		// The mesh gets a second to apply the rollback (the step spec
		// measures a p99 of a few hundred milliseconds), then the share of
		// v1 counts.
		got, n := shares(plain.Take(), back.Add(time.Second), time.Now())
		Expect(n).To(BeNumerically(">=", 1000))
		v1 := 100 * float64(got["v1"]) / float64(n)
		Expect(v1).To(BeNumerically(">=", 99), "after the rollback: %v", got)
		AddReportEntry("traffic", fmt.Sprintf("after the rollback (%s): v1 served %.1f%% of %d requests", last.Message, v1, n))
	})
})
