package webhook

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// checker stands in for a cluster: it answers with refusals, an error, or
// not until the context ends; it counts the calls.
type checker struct {
	refusals []string
	err      error
	silent   bool
	calls    int
}

func (c *checker) CheckOnTarget(ctx context.Context, _ v1alpha1.Object) ([]string, error) {
	c.calls++
	if c.silent {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return c.refusals, c.err
}

// TestCheckOnTarget: a cluster's refusal is an error at the field holding
// the value its message quotes (at spec when none or several do); a
// cluster that errs or stays silent admits with a warning, within the
// bound; only a new object or a changed spec is checked.
func TestCheckOnTarget(t *testing.T) {
	a := newAdmission(t)
	route := func(hosts ...string) *v1alpha1.Route {
		return &v1alpha1.Route{Spec: v1alpha1.RouteSpec{Hosts: hosts, HTTP: []v1alpha1.HTTPRoute{{Name: "default",
			Route: []v1alpha1.RouteDestination{{Destination: "web", Subset: "v1", Headers: &v1alpha1.Headers{
				Request: &v1alpha1.HeaderOperations{Set: map[string]string{":path": "/v1"}}}}}}}}}
	}
	denied := `VirtualService shop/web on cluster local: admission webhook "validation.istio.io" denied the request: configuration is invalid: `
	for name, tc := range map[string]struct {
		checker checker
		route   *v1alpha1.Route
		errors  []string
		warning string
	}{
		"accepted": {route: route("web")},
		"a value one field holds": {route: route("web", "web_app"), checker: checker{refusals: []string{denied + `domain name "web_app" invalid (label "web_app" invalid)`}},
			errors: []string{`spec.hosts[1]: Invalid value: "web_app": its cluster refuses what this Route makes there: ` + denied + `domain name "web_app" invalid`}},
		"a map's key": {route: route("web"), checker: checker{refusals: []string{denied + `invalid header ":path": header cannot have ":" prefix`}},
			errors: []string{`spec.http[0].route[0].headers.request.set[:path]: Invalid value: ":path": its cluster refuses`}},
		"a value several fields hold": {route: route("web", "v1"), checker: checker{refusals: []string{denied + `"v1" is wrong`}},
			errors: []string{`spec: Forbidden: its cluster refuses what this Route makes there: ` + denied + `"v1" is wrong`}},
		"nothing quoted": {route: route("web"), checker: checker{refusals: []string{denied + `subset name is invalid: V_1`}},
			errors: []string{`spec: Forbidden: its cluster refuses what this Route makes there: ` + denied + `subset name is invalid: V_1`}},
		"an error": {route: route("web"), checker: checker{err: errors.New("no VirtualCluster \"shop\"")},
			warning: `what this Route makes was not checked on its cluster (no VirtualCluster "shop"): it is admitted, and its Ready condition will say if the cluster refuses it`},
		"silence": {route: route("web"), checker: checker{silent: true},
			warning: `what this Route makes was not checked on its cluster (its cluster did not answer within 50ms)`},
	} {
		t.Run(name, func(t *testing.T) {
			a.Target, a.TargetTimeout = &tc.checker, 50*time.Millisecond
			start := time.Now()
			errs, warnings := a.Validate(context.Background(), nil, tc.route)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("admission took %s with a bound of 50ms", took)
			}
			if tc.checker.calls != 1 {
				t.Errorf("checked %d times, want once", tc.checker.calls)
			}
			if len(errs) != len(tc.errors) {
				t.Fatalf("errors %v, want %d", errs, len(tc.errors))
			}
			for i, want := range tc.errors {
				if !strings.HasPrefix(errs[i].Error(), want) {
					t.Errorf("error %q, want it to start %q", errs[i].Error(), want)
				}
			}
			if tc.warning == "" && len(warnings) > 0 || tc.warning != "" && (len(warnings) != 1 || !strings.HasPrefix(warnings[0], tc.warning)) {
				t.Errorf("warnings %q, want %q", warnings, tc.warning)
			}
		})
	}

	t.Run("unchanged, refused by the static checks, other kinds", func(t *testing.T) {
		c := &checker{refusals: []string{"refused"}}
		a.Target = c
		if errs, _ := a.Validate(context.Background(), route("web"), route("web")); len(errs) > 0 {
			t.Errorf("a write of the metadata alone is refused: %v", errs)
		}
		if errs, _ := a.Validate(context.Background(), nil, route("*")); len(errs) != 1 || !strings.Contains(errs[0].Error(), "wildcard host") {
			t.Errorf("errors %v, want the static check's only", errs)
		}
		a.Validate(context.Background(), nil, &v1alpha1.Application{})
		if c.calls != 0 {
			t.Errorf("checked %d times, want never", c.calls)
		}
		if errs, _ := a.Validate(context.Background(), route("web"), route("web", "web2")); len(errs) != 1 {
			t.Errorf("a changed spec is not checked: %v", errs)
		}
	})
}
