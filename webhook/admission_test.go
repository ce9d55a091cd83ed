package webhook

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/catalog"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/policies"
	"github.com/kubist-io/kubist/test/testenv"
)

func newAdmission(t testing.TB) *Admission {
	t.Helper()
	ctx := context.Background()
	engine, err := catalog.NewEngine(ctx, policies.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return &Admission{Registry: engine.Registry, Compiler: engine.Compiler, Executors: engine.Executors}
}

func asJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDefault(t *testing.T) {
	a := newAdmission(t)

	cluster := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Spec: v1alpha1.ClusterSpec{Project: "demo"}}
	a.Default(cluster)
	if got := asJSON(t, cluster.Spec.Executor); got != `{"name":"ClusterExecutor","parameters":{"chartRepository":"https://istio-release.storage.googleapis.com/charts","installIstio":false}}` {
		t.Errorf("Cluster executor = %s", got)
	}
	if cluster.Labels[v1alpha1.LabelProject] != "demo" {
		t.Errorf("Cluster labels = %v, want kubist.io/project=demo", cluster.Labels)
	}

	vc := &v1alpha1.VirtualCluster{Spec: v1alpha1.VirtualClusterSpec{Cluster: "local"}}
	a.Default(vc)
	if vc.Labels[v1alpha1.LabelCluster] != "local" || vc.Spec.Executor.Name != "VirtualClusterExecutor" || vc.Spec.Executor.Parameters != nil {
		t.Errorf("VirtualCluster = %s %v", asJSON(t, vc.Spec.Executor), vc.Labels)
	}

	canary := &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Route: "r", Destination: "d", Subset: "v2"}}
	a.Default(canary)
	if got := asJSON(t, canary.Spec.Policies); got != `[{"name":"HealthBasedCanaryRelease","parameters":{"maxErrorRate":0.3,"minRequests":20,"period":"30s","rollback":"immediate","step":10}}]` {
		t.Errorf("CanaryRelease policies = %s", got)
	}
	if got := asJSON(t, canary.Spec.Executor); got != `{"name":"CanaryReleaseExecutor","parameters":{"meshGracePeriod":"10s","metricsWindow":"1m","servedTolerance":10,"servedWindow":"30s"}}` {
		t.Errorf("CanaryRelease executor = %s", got)
	}

	// A stanza that does not validate is left for validation to report.
	bad := &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{
		Policies: []v1alpha1.PolicyRef{{Name: "TimedCanaryRelease", Parameters: testenv.Parameters(t, `{"step": 150}`)}},
	}}}
	a.Default(bad)
	if got := asJSON(t, bad.Spec.Policies[0].Parameters); got != `{"step":150}` {
		t.Errorf("invalid parameters were changed to %s", got)
	}
}

func TestValidate(t *testing.T) {
	a := newAdmission(t)
	module := func(body string) string {
		return "# METADATA\n# title: p\n# custom:\n#   kinds: [CanaryRelease]\npackage policies.p\n\n" + body + "\n"
	}
	tests := map[string]struct {
		old, obj     v1alpha1.Object
		wantErrs     []string
		wantWarnings []string
	}{
		"a valid canary": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{
				Executor: &v1alpha1.ExecutorRef{Name: "CanaryReleaseExecutor"},
				Policies: []v1alpha1.PolicyRef{{Name: "TimedCanaryRelease"}, {Name: "ManualGate"}},
			}}},
		},
		"an unknown executor lists the valid ones": {
			obj:      &v1alpha1.Cluster{Spec: v1alpha1.ClusterSpec{Stanzas: v1alpha1.Stanzas{Executor: &v1alpha1.ExecutorRef{Name: "ClusterExecuter"}}}},
			wantErrs: []string{`spec.executor.name: Invalid value: "ClusterExecuter": no executor named ClusterExecuter; valid: ClusterExecutor, ReadOnlyClusterExecutor (did you mean ClusterExecutor?)`},
		},
		"an executor of another kind": {
			obj:      &v1alpha1.Route{Spec: v1alpha1.RouteSpec{Stanzas: v1alpha1.Stanzas{Executor: &v1alpha1.ExecutorRef{Name: "ClusterExecutor"}}}},
			wantErrs: []string{`spec.executor.name: Invalid value: "ClusterExecutor": executor ClusterExecutor reconciles Cluster, not Route; executors for Route: GatewayAPIRouteExecutor, ReadOnlyGatewayAPIRouteExecutor, ReadOnlyRouteExecutor, RouteExecutor`},
		},
		"executor parameters are checked": {
			obj: &v1alpha1.Cluster{Spec: v1alpha1.ClusterSpec{Stanzas: v1alpha1.Stanzas{Executor: &v1alpha1.ExecutorRef{
				Name: "ClusterExecutor", Parameters: testenv.Parameters(t, `{"installIstio": "yes", "istioVersion": "latest"}`)}}}},
			wantErrs: []string{
				`spec.executor.parameters.installIstio: Invalid value: "string": must be of type boolean`,
				`spec.executor.parameters.istioVersion: Invalid value: "latest": should match`,
			},
		},
		"every policy error at once": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{
				{Name: "TimedCanaryRelease", Parameters: testenv.Parameters(t, `{"step": 150}`)},
				{Name: "BusinessHoursGate", Parameters: testenv.Parameters(t, `{"from": "9am"}`)},
			}}}},
			wantErrs: []string{
				`spec.policies[0].parameters.step: Invalid value: 150: should be less than or equal to 100`,
				`spec.policies[1].parameters.from: Invalid value: "9am": should match`,
			},
		},
		"a gate first gates nothing": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{
				{Name: "ManualGate"}, {Name: "TimedCanaryRelease"},
			}}}},
			wantWarnings: []string{"spec.policies[0]: the gate ManualGate comes before any step policy: a gate holds only the steps of the policies before it, so here it holds nothing (the policies after it step without it); put it after the step policy"},
		},
		"a rollback hook acts wherever it sits": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{
				{Name: "WebhookGate", Parameters: testenv.Parameters(t, `{"secretRef": "smoke", "when": "rollback"}`)}, {Name: "TimedCanaryRelease"},
			}}}},
		},
		"a hook on steps first holds nothing": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{
				{Name: "WebhookGate", Parameters: testenv.Parameters(t, `{"secretRef": "smoke"}`)}, {Name: "TimedCanaryRelease"},
			}}}},
			wantWarnings: []string{"spec.policies[0]: the gate WebhookGate comes before any step policy"},
		},
		"mirroring first does not hold the first shift": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{
				{Name: "MirrorThenShift"}, {Name: "TimedCanaryRelease"},
			}}}},
			wantWarnings: []string{"spec.policies[0]: MirrorThenShift comes before any step policy: it mirrors, but the first shift does not wait for the mirroring (the policies after it shift at once); put it after the step policy"},
		},
		"the old name of a parameter is read, with a warning": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{
				{Name: "TimedCanaryRelease"}, {Name: "WebhookGate", Parameters: testenv.Parameters(t, `{"secretRef": "smoke", "on": "promotion"}`)},
			}}}},
			wantWarnings: []string{`spec.policies[1].parameters.on: on is the old name of when, still read but deprecated: write when (YAML 1.1 reads a bare on: as true:, so it works only quoted)`},
		},
		"a bare on is refused, saying what YAML made of it": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{
				{Name: "TimedCanaryRelease"}, {Name: "WebhookGate", Parameters: testenv.Parameters(t, `{"secretRef": "smoke", "true": "step"}`)},
			}}}},
			wantErrs: []string{`spec.policies[1].parameters.true: Invalid value: "step": YAML 1.1 reads the bare key on as true: this parameter is now called when; write when: instead of on:`},
		},
		"both names of a parameter": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{
				{Name: "TimedCanaryRelease"}, {Name: "WebhookGate", Parameters: testenv.Parameters(t, `{"secretRef": "smoke", "on": "step", "when": "promotion"}`)},
			}}}},
			wantErrs: []string{`spec.policies[1].parameters.on: Invalid value: "step": on is the old name of when, and both are set: keep when only`},
		},
		"a fractional integer is one error": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{
				{Name: "TimedCanaryRelease"}, {Name: "MirrorThenShift", Parameters: testenv.Parameters(t, `{"percent": 12.5}`)},
			}}}},
			wantErrs: []string{`spec.policies[1].parameters.percent: Invalid value: "number": must be of type integer`},
		},
		"an object where a string belongs is one error": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{
				{Name: "TimedCanaryRelease"}, {Name: "WebhookGate", Parameters: testenv.Parameters(t, `{"secretRef": {"name": "smoke"}}`)},
			}}}},
			wantErrs: []string{`spec.policies[1].parameters.secretRef: Invalid value: "object": must be of type string`},
		},
		"a default in a deprecated form": {
			obj: &v1alpha1.CanaryRelease{Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{
				{Name: "TimedCanaryRelease", Parameters: testenv.Parameters(t, `{"step": 20, "period": "0.5m"}`)},
			}}}},
			wantWarnings: []string{`spec.policies[0].parameters.period: "0.5m" is the default "30s" in a deprecated form; write "30s" or leave the parameter out`},
		},
		"a Policy must compile in the sandbox": {
			obj: &v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "fetch"}, Spec: v1alpha1.PolicySpec{
				Rego: module(`decision := {"state": http.send({"method": "GET", "url": "http://127.0.0.1:1"}).body}`)}},
			wantErrs: []string{`spec.rego: Invalid value: "(module)": policy/fetch.rego:7:23: undefined function http.send`},
		},
		"a Policy may not resolve names": {
			obj: &v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "fetch"}, Spec: v1alpha1.PolicySpec{
				Rego: module(`decision := {"state": {"ips": net.lookup_ip_addr("example.com")}}`)}},
			wantErrs: []string{`spec.rego: Invalid value: "(module)": policy/fetch.rego:7:31: undefined function net.lookup_ip_addr`},
		},
		"a Policy may not read the runtime's environment": {
			obj: &v1alpha1.Policy{ObjectMeta: metav1.ObjectMeta{Name: "fetch"}, Spec: v1alpha1.PolicySpec{
				Rego: module(`decision := {"state": opa.runtime().env}`)}},
			wantErrs: []string{`spec.rego: Invalid value: "(module)": policy/fetch.rego:7:23: undefined function opa.runtime`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			errs, warnings := a.Validate(context.Background(), tc.old, tc.obj)
			if len(errs) != len(tc.wantErrs) {
				t.Errorf("got %d errors, want %d: %v", len(errs), len(tc.wantErrs), errs)
			}
			for _, want := range tc.wantErrs {
				if !containsPrefix(errs.ToAggregate(), want) {
					t.Errorf("missing error %q in %v", want, errs)
				}
			}
			if len(warnings) != len(tc.wantWarnings) {
				t.Errorf("warnings = %v, want %v", warnings, tc.wantWarnings)
			}
			for i, want := range tc.wantWarnings {
				if i < len(warnings) && !strings.HasPrefix(warnings[i], want) {
					t.Errorf("warning %q, want %q", warnings[i], want)
				}
			}
		})
	}
}

func containsPrefix(agg interface{ Errors() []error }, want string) bool {
	if agg == nil {
		return false
	}
	for _, e := range agg.Errors() {
		if strings.HasPrefix(e.Error(), want) {
			return true
		}
	}
	return false
}

func TestFieldPath(t *testing.T) {
	for dotted, want := range map[string]string{
		"project":                       "spec.project",
		"http[0].route[12].destination": "spec.http[0].route[12].destination",
	} {
		if got := fieldPath(field.NewPath("spec"), dotted).String(); got != want {
			t.Errorf("fieldPath(%q) = %q, want %q", dotted, got, want)
		}
	}
}

// A Route's release template is checked as the CanaryReleases it makes
// will be, at spec.release, and must name a rule that routes to its
// Destination.
func TestValidateReleaseTemplate(t *testing.T) {
	a := newAdmission(t)
	route := func(t *v1alpha1.ReleaseTemplate) *v1alpha1.Route {
		return &v1alpha1.Route{Spec: v1alpha1.RouteSpec{Hosts: []string{"reviews"}, Release: t,
			HTTP: []v1alpha1.HTTPRoute{{Name: "default", Route: []v1alpha1.RouteDestination{{Destination: "reviews", Subset: "v1"}}}}}}
	}
	for _, tc := range []struct {
		template *v1alpha1.ReleaseTemplate
		want     string
	}{
		{&v1alpha1.ReleaseTemplate{Destination: "reviews", HTTPRoute: "default",
			Policies: []v1alpha1.PolicyRef{{Name: "HealthBasedCanaryRelease"}}}, ""},
		{&v1alpha1.ReleaseTemplate{Destination: "reviews", Policies: []v1alpha1.PolicyRef{{Name: "NoSuchPolicy"}}}, "spec.release.policies[0].name"},
		{&v1alpha1.ReleaseTemplate{Destination: "reviews", Policies: []v1alpha1.PolicyRef{{Name: "SubsetDetector"}}}, "spec.release.policies[0]"},
		{&v1alpha1.ReleaseTemplate{Destination: "reviews", Executor: &v1alpha1.ExecutorRef{Name: "CanaryReleaseExecutor",
			Parameters: map[string]apiextensionsv1.JSON{"metricsWindow": {Raw: []byte(`"soon"`)}}}}, "spec.release.executor.parameters.metricsWindow"},
		{&v1alpha1.ReleaseTemplate{Destination: "reviews", HTTPRoute: "testers"}, "spec.release.httpRoute: Invalid value: \"testers\": no rule of this name routes to Destination reviews"},
		{&v1alpha1.ReleaseTemplate{Destination: "ratings"}, "spec.release.destination: Invalid value: \"ratings\": no rule of spec.http routes to this Destination"},
	} {
		errs, _ := a.Validate(context.Background(), nil, route(tc.template))
		got := errs.ToAggregate()
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("template %+v refused: %v", tc.template, got)
		case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
			t.Errorf("template %+v: %v, want %q", tc.template, got, tc.want)
		}
	}
}

// TestValidateReleasePolicies: a level's releasePolicies must name
// policies of releases with parameters their schema takes; a release
// under a level whose policy does not resolve is refused, naming it.
func TestValidateReleasePolicies(t *testing.T) {
	a := newAdmission(t)
	params := func(s string) v1alpha1.Parameters {
		return map[string]apiextensionsv1.JSON{"windows": {Raw: []byte(s)}}
	}
	for _, tc := range []struct {
		refs []v1alpha1.PolicyRef
		want []string
	}{
		{refs: []v1alpha1.PolicyRef{{Name: "FreezeGate"}, {Name: "ManualGate"}, {Name: "WelchExperiment"}}},
		{refs: []v1alpha1.PolicyRef{{Name: "FreezeGate", Parameters: params(`[{"from": "2026-12-24T00:00:00Z", "to": "2026-12-27T00:00:00Z", "reason": "holidays"}]`)}}},
		{refs: []v1alpha1.PolicyRef{{Name: "SubsetDetector"}, {Name: "FrezeGate"}, {Name: "FreezeGate", Parameters: params(`[{"from": "Christmas"}]`)}},
			want: []string{
				`spec.releasePolicies[0].name: Invalid value: "SubsetDetector": policy SubsetDetector applies to Destination, not to releases`,
				`spec.releasePolicies[1].name: Invalid value: "FrezeGate": no policy named FrezeGate`,
				`spec.releasePolicies[2].parameters.windows[0].from: Invalid value: "Christmas"`,
				`spec.releasePolicies[2].parameters.windows[0].to: Required value`,
			}},
	} {
		for _, obj := range []v1alpha1.Object{
			&v1alpha1.Project{Spec: v1alpha1.ProjectSpec{ReleasePolicyStanza: v1alpha1.ReleasePolicyStanza{ReleasePolicies: tc.refs}}},
			&v1alpha1.Cluster{Spec: v1alpha1.ClusterSpec{Project: "shop", ReleasePolicyStanza: v1alpha1.ReleasePolicyStanza{ReleasePolicies: tc.refs}}},
			&v1alpha1.VirtualCluster{Spec: v1alpha1.VirtualClusterSpec{Cluster: "eu", ReleasePolicyStanza: v1alpha1.ReleasePolicyStanza{ReleasePolicies: tc.refs}}},
		} {
			errs, _ := a.Validate(context.Background(), nil, obj)
			if len(errs) != len(tc.want) {
				t.Errorf("%s with %v: errors %v, want %d", KindOf(obj), tc.refs, errs, len(tc.want))
				continue
			}
			for i, want := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), want) {
					t.Errorf("%s: error %q, want it to start %q", KindOf(obj), errs[i].Error(), want)
				}
			}
		}
	}

	// A release below a Cluster whose releasePolicies no longer resolve
	// (a Policy deleted since) is refused, naming the Cluster.
	a.Reader = fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(
		&v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.ProjectSpec{ReleasePolicyStanza: v1alpha1.ReleasePolicyStanza{
			ReleasePolicies: []v1alpha1.PolicyRef{{Name: "FreezeGate"}}}}},
		&v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "eu"}, Spec: v1alpha1.ClusterSpec{Project: "shop", ReleasePolicyStanza: v1alpha1.ReleasePolicyStanza{
			ReleasePolicies: []v1alpha1.PolicyRef{{Name: "no-fridays"}}}}},
		&v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1alpha1.VirtualClusterSpec{Cluster: "eu"}},
	).Build()
	canary := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "web-v2"},
		Spec: v1alpha1.CanaryReleaseSpec{Route: "web", Destination: "web", Subset: "v2", Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{{Name: "TimedCanaryRelease"}}}}}
	errs, _ := a.Validate(context.Background(), nil, canary)
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), `Cluster[eu].spec.releasePolicies[0].name: Invalid value: "no-fridays": no policy named no-fridays`) {
		t.Errorf("errors %v, want the Cluster's policy named", errs)
	}
}

// One plan releases a Route at a time: a plan that would release one in a
// VirtualCluster where an unfinished plan releases it is refused, and so
// is a CanaryRelease started by hand on such a Route; the plan's own
// releases, and plans that ended, are not in the way.
func TestPlansReleaseARouteOneAtATime(t *testing.T) {
	a := newAdmission(t)
	running := &v1alpha1.ReleasePlan{ObjectMeta: metav1.ObjectMeta{Name: "shop-v2"},
		Spec: v1alpha1.ReleasePlanSpec{Project: "shop", Routes: []string{"web", "api"}, Subset: "v2", Waves: []v1alpha1.ReleaseWave{{Name: "all"}}},
		Status: v1alpha1.ReleasePlanStatus{Phase: v1alpha1.PlanProgressing, Waves: []v1alpha1.WaveStatus{{Name: "all", Started: &metav1.MicroTime{},
			Members: []v1alpha1.PlanMember{{VirtualCluster: "web-eu", Cluster: "eu", Namespace: "web-eu"}}}}}}
	ended := running.DeepCopy()
	ended.Name, ended.Spec.Routes, ended.Status.Phase = "shop-v1", []string{"cart"}, v1alpha1.PlanPromoted
	a.Reader = fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(running, ended,
		&v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "eu"}, Spec: v1alpha1.ClusterSpec{Project: "shop"}},
		&v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: "web-eu"}, Spec: v1alpha1.VirtualClusterSpec{Cluster: "eu"}},
	).Build()

	second := &v1alpha1.ReleasePlan{ObjectMeta: metav1.ObjectMeta{Name: "shop-v3"},
		Spec: v1alpha1.ReleasePlanSpec{Project: "shop", Routes: []string{"cart", "api"}, Subset: "v3", Waves: []v1alpha1.ReleaseWave{{Name: "all"}}}}
	errs, _ := a.Validate(context.Background(), nil, second)
	want := `spec.routes[1]: Invalid value: "api": ReleasePlan shop-v2 (Progressing) releases Route api in VirtualCluster web-eu (wave all): one plan releases a Route at a time`
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), want) {
		t.Fatalf("errors %v, want %q", errs, want)
	}
	second.Spec.Routes = []string{"cart"}
	errs, warnings := a.Validate(context.Background(), nil, second)
	if len(errs) != 0 {
		t.Fatalf("a Route only an ended plan released: %v", errs)
	}
	if want := "spec.routes[0]: VirtualCluster web-eu (wave all) has no Route cart: the plan cannot release it there"; !slices.Contains(warnings, want) {
		t.Fatalf("warnings %q, want %q", warnings, want)
	}

	byHand := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Namespace: "web-eu", Name: "web-v3"},
		Spec: v1alpha1.CanaryReleaseSpec{Route: "web", Destination: "web", Subset: "v3"}}
	errs, _ = a.Validate(context.Background(), nil, byHand)
	want = `spec.route: Invalid value: "web": ReleasePlan shop-v2 (Progressing) releases Route web in this namespace (wave all)`
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), want) {
		t.Fatalf("errors %v, want %q", errs, want)
	}
	byPlan := byHand.DeepCopy()
	byPlan.Labels = map[string]string{v1alpha1.LabelPlan: "shop-v2"}
	if errs, _ := a.Validate(context.Background(), nil, byPlan); len(errs) != 0 {
		t.Fatalf("the plan's own release: %v", errs)
	}
}
