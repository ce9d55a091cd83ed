package reconciler

import (
	"reflect"
	"regexp"
	"testing"
	"time"

	istioapi "istio.io/api/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

func route3() *v1alpha1.RouteSpec {
	return &v1alpha1.RouteSpec{HTTP: []v1alpha1.HTTPRoute{
		{Name: "testers", Route: []v1alpha1.RouteDestination{{Destination: "reviews", Subset: "v2"}}},
		{Name: "default", Route: []v1alpha1.RouteDestination{{Destination: "reviews", Subset: "v1", Port: 9080, Weight: ptr.To(int32(100))}}},
		{Name: "other", Route: []v1alpha1.RouteDestination{{Destination: "ratings", Subset: "v1"}}},
	}}
}

func TestComposeNamedRule(t *testing.T) {
	spec := route3()
	used := compose(spec, []liveWeights{{source: "CanaryRelease/c", destination: "reviews", httpRoute: "default", baseline: "v1",
		weights: map[string]int32{"v1": 70, "v2": 30}}})
	if !reflect.DeepEqual(used, []string{"CanaryRelease/c"}) {
		t.Fatalf("used %v", used)
	}
	want := []v1alpha1.RouteDestination{
		{Destination: "reviews", Subset: "v1", Port: 9080, Weight: ptr.To(int32(70))},
		{Destination: "reviews", Subset: "v2", Port: 9080, Weight: ptr.To(int32(30))},
	}
	if !reflect.DeepEqual(spec.HTTP[1].Route, want) {
		t.Fatalf("default rule %+v, want %+v", spec.HTTP[1].Route, want)
	}
	if len(spec.HTTP[0].Route) != 1 || spec.HTTP[0].Route[0].Weight != nil {
		t.Fatalf("the testers rule must stay as written: %+v", spec.HTTP[0].Route)
	}
}

func TestComposeByBaselineDropsZeroWeights(t *testing.T) {
	spec := route3()
	compose(spec, []liveWeights{{source: "CanaryRelease/c", destination: "reviews", baseline: "v1",
		weights: map[string]int32{"v1": 0, "v2": 100}}})
	want := []v1alpha1.RouteDestination{{Destination: "reviews", Subset: "v2", Port: 9080, Weight: ptr.To(int32(100))}}
	if !reflect.DeepEqual(spec.HTTP[1].Route, want) {
		t.Fatalf("promoted: %+v, want %+v", spec.HTTP[1].Route, want)
	}
	if spec.HTTP[2].Route[0].Destination != "ratings" {
		t.Fatal("a rule of another destination must stay")
	}
}

func TestComposeNothingApplies(t *testing.T) {
	spec := route3()
	if used := compose(spec, []liveWeights{{source: "Experiment/e", destination: "reviews", httpRoute: "missing", weights: map[string]int32{"v1": 100}}}); used != nil {
		t.Fatalf("a split for a rule that does not exist composes nothing, got %v", used)
	}
	if !reflect.DeepEqual(spec, route3()) {
		t.Fatal("the spec must not change")
	}
}

func TestBaselineOf(t *testing.T) {
	r := &v1alpha1.Route{Spec: *route3()}
	r.Spec.HTTP[1].Route = append(r.Spec.HTTP[1].Route, v1alpha1.RouteDestination{Destination: "reviews", Subset: "v0", Weight: ptr.To(int32(0))})
	for _, tc := range []struct{ canary, rule, want string }{
		{"v2", "default", "v1"},
		{"v2", "", "v1"}, // the testers rule routes only to the canary itself
		{"v1", "default", "v0"},
		{"v2", "other", ""},
	} {
		if got, _ := baselineOf(r, "reviews", tc.canary, tc.rule); got != tc.want {
			t.Errorf("baselineOf(canary %s, rule %q) = %q, want %q", tc.canary, tc.rule, got, tc.want)
		}
	}
	// Once the Route records v2 as the default rule's stable subset (a
	// release promoted it), v2 is the baseline of the next release, and a
	// release of v2 itself has nothing to do.
	r.Status.Stable = []v1alpha1.StableSubset{
		{Rule: "testers", Destination: "reviews", Subset: "v2", SpecSubset: "v2"},
		{Rule: "default", Destination: "reviews", Subset: "v2", SpecSubset: "v1"},
	}
	for _, tc := range []struct {
		canary, rule, want string
		stable             bool
	}{
		{"v3", "default", "v2", false},
		{"v3", "", "v2", false},
		{"v2", "default", "", true},
		{"v2", "", "", true},
	} {
		if got, stable := baselineOf(r, "reviews", tc.canary, tc.rule); got != tc.want || stable != tc.stable {
			t.Errorf("with v2 stable, baselineOf(canary %s, rule %q) = %q, %v; want %q, %v", tc.canary, tc.rule, got, stable, tc.want, tc.stable)
		}
	}
}

func TestCookieRegex(t *testing.T) {
	re := regexp.MustCompile(cookieRegex(&v1alpha1.CookieMatch{Name: "user", Value: v1alpha1.StringMatch{Exact: "tester"}}))
	for header, want := range map[string]bool{
		"user=tester":              true,
		"a=b; user=tester; c=d":    true,
		"user=tester2":             false,
		"superuser=tester":         false,
		"a=b;user=tester":          true,
		"user=testers; user=other": false,
	} {
		if got := re.MatchString(header); got != want {
			t.Errorf("Cookie %q matched %v, want %v", header, got, want)
		}
	}
}

func TestEvenSplit(t *testing.T) {
	if got := evenSplit([]string{"a", "b", "c"}); !reflect.DeepEqual(got, map[string]int32{"a": 34, "b": 33, "c": 33}) {
		t.Fatalf("evenSplit = %v", got)
	}
}

func TestImageTag(t *testing.T) {
	for image, want := range map[string]string{
		"docker.io/istio/pilot:1.27.3":            "1.27.3",
		"docker.io/istio/pilot:1.27.3-distroless": "1.27.3",
		"localhost:5000/istio/pilot":              "",
		"gcr.io/istio/pilot:1.26.0@sha256:abc":    "1.26.0",
	} {
		if got := imageTag([]corev1.Container{{Name: "discovery", Image: image}}); got != want {
			t.Errorf("imageTag(%s) = %q, want %q", image, got, want)
		}
	}
}

func TestCheckWeights(t *testing.T) {
	tt := &trafficTarget{destination: &v1alpha1.Destination{}, subsets: []string{"v1", "v2"}}
	for _, tc := range []struct {
		w  map[string]int32
		ok bool
	}{
		{map[string]int32{"v1": 60, "v2": 40}, true},
		{map[string]int32{"v1": 60, "v2": 30}, false},
		{map[string]int32{"v1": 60, "v3": 40}, false},
		{map[string]int32{"v1": 120, "v2": -20}, false},
	} {
		if err := checkWeights(tt, tc.w); (err == nil) != tc.ok {
			t.Errorf("checkWeights(%v) = %v, want ok=%v", tc.w, err, tc.ok)
		}
	}
}

// A canary's mirror goes on the rule it shifts, its preview and sticky
// rules ahead of that rule (with the rule's matches narrowed), and the
// sticky cookie on the weighted route to the canary.
func TestComposeExtras(t *testing.T) {
	spec := route3()
	spec.HTTP[1].Match = []v1alpha1.HTTPMatchRequest{{URI: &v1alpha1.StringMatch{Prefix: "/api"}}}
	since := metav1.NewMicroTime(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	compose(spec, []liveWeights{{source: "CanaryRelease/c", destination: "reviews", httpRoute: "default", baseline: "v1", canary: "v2",
		weights: map[string]int32{"v1": 80, "v2": 20},
		mirror:  &v1alpha1.CanaryMirror{Subset: "v2", Percent: 40, Since: &since},
		preview: &v1alpha1.CanaryPreview{Header: "x-kubist-preview", Value: "v2", Since: &since},
		sticky:  &v1alpha1.SessionAffinity{CookieName: "kubist-canary", MaxAge: 600}}})
	var names []string
	for _, r := range spec.HTTP {
		names = append(names, r.Name)
	}
	if !reflect.DeepEqual(names, []string{"testers", "default-preview", "default-sticky", "default", "other"}) {
		t.Fatalf("rules %v", names)
	}
	preview, sticky, def := spec.HTTP[1], spec.HTTP[2], spec.HTTP[3]
	if m := preview.Match[0]; m.URI.Prefix != "/api" || m.Headers["x-kubist-preview"].Exact != "v2" || preview.Route[0].Subset != "v2" || preview.Route[0].Port != 9080 {
		t.Fatalf("preview rule %+v", preview)
	}
	if m := sticky.Match[0]; m.URI.Prefix != "/api" || m.Cookie == nil || m.Cookie.Name != "kubist-canary" || m.Cookie.Value.Exact != "v2" || sticky.Route[0].Subset != "v2" {
		t.Fatalf("sticky rule %+v", sticky)
	}
	if def.Mirror == nil || def.Mirror.Subset != "v2" || *def.Mirror.Percent != 40 || def.Mirror.Port != 9080 {
		t.Fatalf("mirror %+v", def.Mirror)
	}
	if h := def.Route[1].Headers; def.Route[1].Subset != "v2" || h == nil || h.Response.Add["Set-Cookie"] != "kubist-canary=v2; Max-Age=600; Path=/" {
		t.Fatalf("canary route %+v", def.Route[1])
	}
	if def.Route[0].Headers != nil {
		t.Fatalf("the baseline sets no cookie: %+v", def.Route[0])
	}

	var vs istioapi.VirtualService
	if err := virtualServiceSpec(spec, "shop", &vs); err != nil {
		t.Fatal(err)
	}
	rule := vs.Http[3]
	if rule.Mirror.Host != "reviews.shop.svc.cluster.local" || rule.Mirror.Subset != "v2" || rule.MirrorPercentage.Value != 40 ||
		rule.Route[1].Headers.Response.Add["Set-Cookie"] == "" {
		t.Fatalf("VirtualService rule %v", rule)
	}
	if re := vs.Http[2].Match[0].Headers["cookie"].GetRegex(); !regexp.MustCompile(re).MatchString("a=b; kubist-canary=v2") || regexp.MustCompile(re).MatchString("kubist-canary=v1") {
		t.Fatalf("sticky cookie regex %q", re)
	}
	var hr gatewayv1.HTTPRouteSpec
	if _, err := httpRouteSpec(spec, map[string]*v1alpha1.Destination{
		"reviews": {Spec: v1alpha1.DestinationSpec{Ports: []v1alpha1.DestinationPort{{Port: 9080}}}},
		"ratings": {Spec: v1alpha1.DestinationSpec{Ports: []v1alpha1.DestinationPort{{Port: 9080}}}}}, &hr); err != nil {
		t.Fatal(err)
	}
	if f := hr.Rules[3].Filters; len(f) != 1 || f[0].Type != gatewayv1.HTTPRouteFilterRequestMirror || f[0].RequestMirror.BackendRef.Name != "reviews-v2" || *f[0].RequestMirror.Percent != 40 {
		t.Fatalf("HTTPRoute mirror %+v", f)
	}
	if f := hr.Rules[3].BackendRefs[1].Filters; len(f) != 1 || f[0].ResponseHeaderModifier.Add[0].Name != "Set-Cookie" {
		t.Fatalf("HTTPRoute canary backend filters %+v", f)
	}
}

// Once the release is over, neither mirror nor preview stays.
func TestSetExtrasClearsOnceOver(t *testing.T) {
	c := &v1alpha1.CanaryRelease{}
	s := trafficState{Mirror: &mirrorState{Subset: "v2", Percent: 10, Since: "2026-12-01T12:00:00Z"}, Preview: &previewState{Header: "x", Value: "v2"}}
	c.Status.Phase = v1alpha1.CanaryProgressing
	setExtras(c, s)
	if c.Status.Mirror == nil || c.Status.Preview == nil || !c.Status.Mirror.Since.Time.Equal(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("progressing: %+v %+v", c.Status.Mirror, c.Status.Preview)
	}
	c.Status.Phase = v1alpha1.CanaryPromoted
	setExtras(c, s)
	if c.Status.Mirror != nil || c.Status.Preview != nil {
		t.Fatalf("promoted: %+v %+v", c.Status.Mirror, c.Status.Preview)
	}
}

// A split that sends the rule's traffic where the rule already sends it —
// a release's start (baseline 100, canary 0) or its rollback — leaves the
// rule as the user wrote it, so the mesh's object is not written for a
// split that moves no request; a step composes the weights.
func TestComposeKeepsTheRuleUntilAStepMovesTraffic(t *testing.T) {
	written := func() *v1alpha1.RouteSpec {
		return &v1alpha1.RouteSpec{HTTP: []v1alpha1.HTTPRoute{{Name: "default", Route: []v1alpha1.RouteDestination{{Destination: "reviews", Subset: "v1"}}}}}
	}
	spec := written()
	used := compose(spec, []liveWeights{{source: "CanaryRelease/c", destination: "reviews", baseline: "v1", canary: "v2", weights: map[string]int32{"v1": 100, "v2": 0}}})
	if !reflect.DeepEqual(spec, written()) || !reflect.DeepEqual(used, []string{"CanaryRelease/c"}) {
		t.Errorf("baseline 100, canary 0: %+v (used %v), want the rule as written, composed from the release", spec.HTTP[0].Route, used)
	}
	spec = written()
	compose(spec, []liveWeights{{source: "CanaryRelease/c", destination: "reviews", baseline: "v1", canary: "v2", weights: map[string]int32{"v1": 80, "v2": 20}}})
	want := []v1alpha1.RouteDestination{
		{Destination: "reviews", Subset: "v1", Weight: ptr.To(int32(80))},
		{Destination: "reviews", Subset: "v2", Weight: ptr.To(int32(20))},
	}
	if !reflect.DeepEqual(spec.HTTP[0].Route, want) {
		t.Errorf("a step: %+v, want %+v", spec.HTTP[0].Route, want)
	}
	// Promoted to the canary: the rule routes elsewhere, so it is composed.
	spec = written()
	compose(spec, []liveWeights{{source: "CanaryRelease/c", destination: "reviews", baseline: "v1", canary: "v2", weights: map[string]int32{"v1": 0, "v2": 100}}})
	if got := spec.HTTP[0].Route; len(got) != 1 || got[0].Subset != "v2" || *got[0].Weight != 100 {
		t.Errorf("promoted: %+v", got)
	}
}
