package reconciler

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// TestDecideTemplate follows a Route's release template: it starts the
// newest ready subset newer than the stable one, once; a newer one waits
// for the running release, or replaces it; ended releases it started go
// beyond keep, once the Route's history holds them.
func TestDecideTemplate(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.MicroTime { return metav1.NewMicroTime(t0.Add(d)) }
	created := func(d time.Duration) *metav1.Time { return ptr.To(metav1.NewTime(t0.Add(d))) }
	route := &v1alpha1.Route{Spec: *route3()}
	route.Name, route.Namespace, route.UID = "reviews", "bookinfo", "route-uid"
	route.CreationTimestamp = metav1.NewTime(t0)
	route.Spec.Release = &v1alpha1.ReleaseTemplate{Destination: "reviews", HTTPRoute: "default",
		Policies: []v1alpha1.PolicyRef{{Name: "HealthBasedCanaryRelease"}}}
	stable := []v1alpha1.StableSubset{{Rule: "default", Destination: "reviews", Subset: "v1", SpecSubset: "v1"}}
	view := &templateView{subsets: []string{"v1", "v2", "v3"}, versions: map[string]v1alpha1.ApplicationVersion{
		"v1": {Name: "v1", Replicas: 2, ReadyReplicas: 2, Created: created(-time.Hour)},
		"v2": {Name: "v2", Replicas: 1, ReadyReplicas: 1, Created: created(-time.Hour)},
	}}

	// v2 is no newer than the Route: it was there before the template.
	if d := decideTemplate(route, view, stable, nil, at(time.Minute)); d.start != nil || d.reason != ReasonNothingNewer {
		t.Fatalf("nothing newer: %+v", d)
	}
	// v3 appears, not ready yet: nothing; ready: its release starts.
	view.versions["v3"] = v1alpha1.ApplicationVersion{Name: "v3", Replicas: 1, Created: created(2 * time.Minute)}
	if d := decideTemplate(route, view, stable, nil, at(3*time.Minute)); d.start != nil {
		t.Fatalf("started a subset that is not ready: %+v", d.start)
	}
	view.versions["v3"] = v1alpha1.ApplicationVersion{Name: "v3", Replicas: 1, ReadyReplicas: 1, Created: created(2 * time.Minute)}
	d := decideTemplate(route, view, stable, nil, at(3*time.Minute))
	if d.start == nil || d.start.Name != "reviews-v3" || d.start.Spec.Subset != "v3" || d.start.Spec.HTTPRoute != "default" ||
		d.start.Spec.Policies[0].Name != "HealthBasedCanaryRelease" || d.start.Spec.Baseline != "v1" ||
		!metav1.IsControlledBy(d.start, route) || d.start.Labels[v1alpha1.LabelStartedBy] != v1alpha1.StartedByTemplate {
		t.Fatalf("the release of v3: %+v", d.start)
	}
	if len(d.started) != 1 || d.started[0].Subset != "v3" || d.reason != ReasonStarted {
		t.Fatalf("recorded %+v, %s", d.started, d.reason)
	}
	route.Status.Started = d.started

	// Started once: the next run (the release not created yet, or deleted
	// by a person) starts nothing.
	if d := decideTemplate(route, view, stable, nil, at(4*time.Minute)); d.start != nil {
		t.Fatalf("started v3 twice: %+v", d.start)
	}
	// A run that stopped before its status write: the release exists, and
	// is recorded from it.
	route.Status.Started = nil
	running := liveWeights{source: "CanaryRelease/reviews-v3", name: "reviews-v3", created: at(3 * time.Minute), startedByTemplate: true,
		destination: "reviews", httpRoute: "default", canary: "v3", baseline: "v1", weights: map[string]int32{"v1": 80, "v3": 20}}
	d = decideTemplate(route, view, stable, []liveWeights{running}, at(4*time.Minute))
	if d.start != nil || len(d.started) != 1 || d.started[0].Release != "reviews-v3" {
		t.Fatalf("after a run that stopped: start %+v, started %+v", d.start, d.started)
	}
	route.Status.Started = d.started

	// v4 during v3's release waits for it...
	view.subsets = append(view.subsets, "v4")
	view.versions["v4"] = v1alpha1.ApplicationVersion{Name: "v4", Replicas: 1, ReadyReplicas: 1, Created: created(5 * time.Minute)}
	d = decideTemplate(route, view, stable, []liveWeights{running}, at(6*time.Minute))
	if d.start != nil || d.waiting != "v4" || d.reason != ReasonNewerWaits {
		t.Fatalf("v4 during v3's release: %+v", d)
	}
	// ... and starts when it ends (v3 promoted, now stable).
	ended := running
	ended.end, ended.phase, ended.weights = ptr.To(at(7*time.Minute)), "Promoted", map[string]int32{"v1": 0, "v3": 100}
	stableV3 := []v1alpha1.StableSubset{{Rule: "default", Destination: "reviews", Subset: "v3", SpecSubset: "v1"}}
	d = decideTemplate(route, view, stableV3, []liveWeights{ended}, at(8*time.Minute))
	if d.start == nil || d.start.Name != "reviews-v4" || d.start.Spec.Baseline != "v3" || d.waiting != "" {
		t.Fatalf("v4 after v3 ended: %+v", d)
	}
	// With onNewer: Replace, v4 replaces v3's running release instead.
	route.Spec.Release.OnNewer = v1alpha1.OnNewerReplace
	d = decideTemplate(route, view, stable, []liveWeights{running}, at(6*time.Minute))
	if d.start == nil || d.start.Name != "reviews-v4" || d.replace != "reviews-v3" {
		t.Fatalf("replace: %+v", d)
	}
	route.Spec.Release.OnNewer = ""

	// Seven ended releases it started, keep 5: the two oldest go, once
	// the Route's history holds them.
	var live []liveWeights
	for i := range 7 {
		l := ended
		l.name, l.source = fmt.Sprintf("reviews-old%d", i), fmt.Sprintf("CanaryRelease/reviews-old%d", i)
		l.end = ptr.To(at(time.Duration(10+i) * time.Minute))
		l.last = v1alpha1.RouteRelease{Release: l.source, Ended: *l.end}
		live = append(live, l)
	}
	if got := pruneStarted(route, live); len(got) != 0 {
		t.Fatalf("pruned %v before the history held them", got)
	}
	route.Status.Releases = releaseHistory(nil, live)
	if got := pruneStarted(route, live); len(got) != 2 || got[0] != "reviews-old0" || got[1] != "reviews-old1" {
		t.Fatalf("pruned %v, want the two oldest", got)
	}

	// More releases kept than the record holds (keep: 30): the record
	// keeps the last 20, and does not bring the older ones back.
	route.Spec.Release.Keep = ptr.To(int32(30))
	route.Status.Started = nil
	var many []liveWeights
	for i := range 25 {
		l := ended
		l.name, l.created = fmt.Sprintf("reviews-r%02d", i), at(time.Duration(20+i)*time.Minute)
		many = append(many, l)
		route.Status.Started = append(route.Status.Started, v1alpha1.StartedRelease{Subset: "v3", Release: l.name, At: l.created})
	}
	route.Status.Started = route.Status.Started[5:]
	d = decideTemplate(route, view, stableV3, many, at(time.Hour))
	if len(d.started) != v1alpha1.RouteHistoryLimit {
		t.Fatalf("started holds %d", len(d.started))
	}
	for _, s := range d.started {
		if s.Release < "reviews-r05" {
			t.Fatalf("%s, which the record let go, came back", s.Release)
		}
	}
}
