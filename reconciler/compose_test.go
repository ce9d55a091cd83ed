package reconciler

import (
	"reflect"
	"regexp"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

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
		if got := baselineOf(r, "reviews", tc.canary, tc.rule); got != tc.want {
			t.Errorf("baselineOf(canary %s, rule %q) = %q, want %q", tc.canary, tc.rule, got, tc.want)
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
