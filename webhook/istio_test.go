package webhook

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// TestIstioHostsAndHeaders: what Istio accepts of hosts and header names
// is admitted; what it refuses is refused with the field at fault.
func TestIstioHostsAndHeaders(t *testing.T) {
	route := func(hosts, gateways []string, headers ...string) *v1alpha1.Route {
		match := v1alpha1.HTTPMatchRequest{Headers: map[string]v1alpha1.StringMatch{}}
		for _, h := range headers {
			match.Headers[h] = v1alpha1.StringMatch{Exact: "x"}
		}
		return &v1alpha1.Route{Spec: v1alpha1.RouteSpec{Hosts: hosts, Gateways: gateways,
			HTTP: []v1alpha1.HTTPRoute{{Match: []v1alpha1.HTTPMatchRequest{match}}}}}
	}
	for name, tc := range map[string]struct {
		route *v1alpha1.Route
		want  []string
	}{
		"plain hosts and headers": {route: route([]string{"reviews", "*.example.com", "web.other.org"}, nil,
			"x-user", ":authority", "@request.auth.claims.group", "@request.auth.claims[nested][key]")},
		"* on a gateway":          {route: route([]string{"*"}, []string{"shop/public"})},
		"* on the mesh":           {route: route([]string{"*"}, nil), want: []string{`spec.hosts[0]: Invalid value: "*": Istio refuses the wildcard host * on a route of the mesh`}},
		"* bound to the mesh too": {route: route([]string{"*"}, []string{"shop/public", "mesh"}), want: []string{`spec.hosts[0]: Invalid value: "*"`}},
		"a host twice": {route: route([]string{"reviews", "reviews"}, nil),
			want: []string{`spec.hosts[1]: Duplicate value: "reviews": Istio refuses hosts that overlap: reviews and hosts[0] reviews; keep one`}},
		"a wildcard over a host": {route: route([]string{"a.example.com", "*.example.com"}, nil),
			want: []string{`spec.hosts[1]: Duplicate value: "*.example.com": Istio refuses hosts that overlap: *.example.com and hosts[0] a.example.com; keep one`}},
		"nested wildcards": {route: route([]string{"*.example.com", "*.a.example.com"}, nil), want: []string{`spec.hosts[1]: Duplicate value: "*.a.example.com"`}},
		"a header name with a space": {route: route([]string{"reviews"}, nil, "x user"),
			want: []string{`spec.http[0].match[0].headers[x user]: Invalid value: "x user": not a header name Istio accepts`}},
	} {
		t.Run(name, func(t *testing.T) {
			errs := validateRouteForIstio(tc.route, field.NewPath("spec"))
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %d", errs, len(tc.want))
			}
			for i, want := range tc.want {
				if got := errs[i].Error(); len(got) < len(want) || got[:len(want)] != want {
					t.Errorf("error %q, want it to start %q", got, want)
				}
			}
		})
	}
}
