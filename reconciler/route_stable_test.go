package reconciler

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// TestStableSubsets follows a Route's stable subset through a release's
// life: the spec's at first, the promoted canary once it ends, kept when
// the release is deleted, a rollback's baseline, and a person's change of
// the spec, which wins.
func TestStableSubsets(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.MicroTime { return metav1.NewMicroTime(t0.Add(d)) }
	route := &v1alpha1.Route{Spec: *route3()}
	route.CreationTimestamp = metav1.NewTime(t0)
	ended := func(name, baseline string, weights map[string]int32, phase string, end time.Duration) liveWeights {
		e := at(end)
		return liveWeights{source: "CanaryRelease/" + name, destination: "reviews", httpRoute: "default", baseline: baseline, weights: weights, end: &e, phase: phase}
	}
	// run is one Route run: what it records, as the status write keeps it.
	run := func(now time.Duration, live ...liveWeights) []v1alpha1.StableSubset {
		t.Helper()
		got := stableSubsets(route, live, at(now))
		route.Status.Stable = got
		if again := stableSubsets(route, live, at(now+time.Second)); !reflect.DeepEqual(again, got) {
			t.Fatalf("a second run records something new:\n%+v\n%+v", again, got)
		}
		return got
	}
	stableIn := func(rule string) v1alpha1.StableSubset {
		for _, e := range route.Status.Stable {
			if e.Rule == rule && e.Destination == "reviews" {
				return e
			}
		}
		t.Fatalf("no stable subset for rule %s: %+v", rule, route.Status.Stable)
		return v1alpha1.StableSubset{}
	}

	got := run(0)
	if s := stableSummary(got); s != "testers: v2, default: v1, other: v1" {
		t.Errorf("summary %q", s)
	}
	if len(got) != 3 || stableIn("default").Subset != "v1" || stableIn("testers").Subset != "v2" || stableIn("default").Release != "" {
		t.Fatalf("first run: %+v", got)
	}
	shifting := liveWeights{source: "CanaryRelease/reviews-v2", destination: "reviews", httpRoute: "default", baseline: "v1", weights: map[string]int32{"v1": 60, "v2": 40}}
	run(time.Minute, shifting)
	if e := stableIn("default"); e.Subset != "v1" {
		t.Fatalf("while a release shifts traffic the stable subset stays: %+v", e)
	}

	promoted := ended("reviews-v2", "v1", map[string]int32{"v1": 0, "v2": 100}, "Promoted", 2*time.Minute)
	run(3*time.Minute, promoted)
	if e := stableIn("default"); e.Subset != "v2" || e.SpecSubset != "v1" || e.Release != "CanaryRelease/reviews-v2" || e.Outcome != "Promoted" || !e.Since.Equal(promoted.end) {
		t.Fatalf("after the promotion: %+v", e)
	}
	// The release deleted: the stable subset stays, and the rule sends
	// its traffic there.
	run(4 * time.Minute)
	spec := route.Spec.DeepCopy()
	withStable(spec, route.Status.Stable)
	if spec.HTTP[1].Route[0].Subset != "v2" || spec.HTTP[0].Route[0].Subset != "v2" {
		t.Fatalf("with the stable subsets: %+v", spec.HTTP)
	}
	if b, _ := baselineOf(route, "reviews", "v3", "default"); b != "v2" {
		t.Fatalf("the next release's baseline is %q, want the stable v2", b)
	}

	// A release of v3 from v2 that rolls back leaves v2, and a later
	// release of v3 that promotes it makes v3 stable; the older one,
	// still there, changes nothing.
	rolledBack := ended("reviews-v3", "v2", map[string]int32{"v2": 100, "v3": 0}, "RolledBack", 5*time.Minute)
	run(6*time.Minute, rolledBack)
	if e := stableIn("default"); e.Subset != "v2" || e.Release != "CanaryRelease/reviews-v2" {
		t.Fatalf("after the rollback: %+v", e)
	}
	again := ended("reviews-v3-retry", "v2", map[string]int32{"v2": 0, "v3": 100}, "Promoted", 7*time.Minute)
	run(8*time.Minute, again, rolledBack, promoted)
	if e := stableIn("default"); e.Subset != "v3" || e.Release != "CanaryRelease/reviews-v3-retry" {
		t.Fatalf("after the second promotion: %+v", e)
	}

	// The condition names the change that would commit it.
	s := &scope{obj: route}
	stableCondition(s, route, route.Status.Stable)
	c := meta.FindStatusCondition(route.Status.Conditions, ConditionStableInSpec)
	if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "set spec.http[1].route[0].subset to v3 to commit it") {
		t.Fatalf("StableInSpec: %+v", c)
	}

	// A person commits v3: the spec agrees. Then they name v1 again (a
	// revert in Git): the spec wins over the releases that ended before.
	route.Spec.HTTP[1].Route[0].Subset = "v3"
	run(9*time.Minute, again)
	if e := stableIn("default"); e.Subset != "v3" || e.SpecSubset != "v3" || e.Release != "" {
		t.Fatalf("the spec committed: %+v", e)
	}
	stableCondition(s, route, route.Status.Stable)
	if c := meta.FindStatusCondition(route.Status.Conditions, ConditionStableInSpec); c.Status != metav1.ConditionTrue {
		t.Fatalf("StableInSpec after the commit: %+v", c)
	}
	route.Spec.HTTP[1].Route[0].Subset = "v1"
	run(10*time.Minute, again, promoted)
	if e := stableIn("default"); e.Subset != "v1" || e.SpecSubset != "v1" {
		t.Fatalf("the spec reverted: %+v", e)
	}
}

// TestStableSubsetsSplitRule: a rule that splits a Destination between
// subsets by hand has no stable subset, and nothing is composed over it.
func TestStableSubsetsSplitRule(t *testing.T) {
	route := &v1alpha1.Route{Spec: *route3()}
	w := func(n int32) *int32 { return &n }
	route.Spec.HTTP[1].Route = []v1alpha1.RouteDestination{{Destination: "reviews", Subset: "v1", Weight: w(90)}, {Destination: "reviews", Subset: "v2", Weight: w(10)}}
	for _, e := range stableSubsets(route, nil, metav1.NowMicro()) {
		if e.Rule == "default" {
			t.Fatalf("a split rule got a stable subset: %+v", e)
		}
	}
}

// TestReleaseHistory: a Route's history adds each release that ended once,
// in the order they ended, keeps the last RouteHistoryLimit, and does not
// add back one it let go.
func TestReleaseHistory(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	release := func(name string, phase v1alpha1.CanaryPhase, end time.Duration, last v1alpha1.ReleaseStep) liveWeights {
		c := &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Destination: "reviews", Subset: "v2"},
			Status: v1alpha1.CanaryReleaseStatus{Phase: phase, Baseline: "v1"}}
		c.Name = name
		c.Status.History = []v1alpha1.ReleaseStep{last}
		e := metav1.NewMicroTime(t0.Add(end))
		return liveWeights{end: &e, phase: string(phase), last: endOf(c, e)}
	}
	promoted := release("reviews-v2", v1alpha1.CanaryPromoted, 2*time.Minute, v1alpha1.ReleaseStep{Policy: "TimedCanaryRelease", Message: "canary v2 at 100%"})
	aborted := release("reviews-v3", v1alpha1.CanaryAborted, time.Minute, v1alpha1.ReleaseStep{Action: "Abort", User: "alice", Message: "aborted"})
	h := releaseHistory(nil, []liveWeights{promoted, aborted, {}})
	if len(h) != 2 || h[0].Release != "CanaryRelease/reviews-v3" || h[0].DecidedBy != "Abort by alice" || h[1].DecidedBy != "TimedCanaryRelease" || h[1].Outcome != "Promoted" {
		t.Fatalf("history %+v", h)
	}
	if again := releaseHistory(h, []liveWeights{aborted, promoted}); !reflect.DeepEqual(again, h) {
		t.Fatalf("a second run changed the history: %+v", again)
	}
	var many []liveWeights
	for i := range 25 {
		many = append(many, release(fmt.Sprintf("r%d", i), v1alpha1.CanaryRolledBack, time.Duration(10+i)*time.Minute, v1alpha1.ReleaseStep{Policy: "HealthBasedCanaryRelease"}))
	}
	h = releaseHistory(h, many)
	if len(h) != v1alpha1.RouteHistoryLimit || h[0].Release != "CanaryRelease/r5" || h[len(h)-1].Release != "CanaryRelease/r24" {
		t.Fatalf("kept %d, first %s, last %s", len(h), h[0].Release, h[len(h)-1].Release)
	}
	if again := releaseHistory(h, append(many, promoted)); !reflect.DeepEqual(again, h) {
		t.Fatal("a release older than the history's first came back")
	}
}
