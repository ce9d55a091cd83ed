package reconciler

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/catalog"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/policies"
)

// Each executor's phases on their own: a fake cache (controller-runtime's
// fake client, with the manager's indexes) holds the tree and stands for
// the target cluster too (a Cluster without a kubeconfig is the local
// one); the clock is fixed.

var phaseNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// phaseTree is a Project, Cluster and VirtualCluster "shop", an
// Application and a Destination "web" (subsets v1, v2, one port) and a
// Route "web" whose default rule sends everything to v1.
func phaseTree() []client.Object {
	return []client.Object{
		&v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.ClusterSpec{Project: "shop"}},
		&v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.VirtualClusterSpec{Cluster: "shop"}},
		&v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}},
		&v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: v1alpha1.DestinationSpec{
			Application: "web", Ports: []v1alpha1.DestinationPort{{Name: "http", Port: 8080}},
			Subsets: []v1alpha1.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}, {Name: "v2", Labels: map[string]string{"version": "v2"}}},
		}},
		&v1alpha1.Route{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: v1alpha1.RouteSpec{
			Hosts: []string{"web"},
			HTTP: []v1alpha1.HTTPRoute{
				{Name: "testers", Match: []v1alpha1.HTTPMatchRequest{{Headers: map[string]v1alpha1.StringMatch{"user": {Exact: "tester"}}}},
					Route: []v1alpha1.RouteDestination{{Destination: "web", Subset: "v2"}}},
				{Name: "default", Route: []v1alpha1.RouteDestination{{Destination: "web", Subset: "v1", Weight: ptr.To(int32(100))}}, Timeout: "1m30s"},
			},
		}},
	}
}

// phaseReconciler is a Reconciler on a fake cache holding objs, with the
// predefined policies and every executor registered.
func phaseReconciler(t *testing.T, objs ...client.Object) *Reconciler {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.Route{}, &v1alpha1.CanaryRelease{}, &v1alpha1.ReleaseAction{}, &gatewayv1.HTTPRoute{})
	for _, ix := range indexes() {
		b = b.WithIndex(ix.obj, ix.field, ix.extract)
	}
	// The API server selects a release's ReleaseHistory pages by this
	// field (the CRD's selectableFields); the fake client by an index.
	b = b.WithIndex(&v1alpha1.ReleaseHistory{}, v1alpha1.HistoryField, func(o client.Object) []string {
		return []string{o.(*v1alpha1.ReleaseHistory).Release.Name}
	})
	c := b.Build()
	engine, err := catalog.NewEngine(context.Background(), policies.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return &Reconciler{Client: c, Registry: engine.Registry, Executors: engine.Executors, Clusters: &Clusters{Local: c}, Now: func() time.Time { return phaseNow }}
}

// phaseRun is a run of the named executor on obj, with its parameters
// defaulted as the skeleton does.
func phaseRun(t *testing.T, r *Reconciler, kind, executor string, obj v1alpha1.Object) *scope {
	t.Helper()
	ref := obj.GetStanzas().Executor
	if ref == nil {
		ref = &v1alpha1.ExecutorRef{Name: executor}
	}
	params, errs := r.Executors.Parameters(kind, ref, field.NewPath("spec", "executor"))
	if len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	e, _ := r.Executors.Executor(executor)
	return &scope{Reconciler: r, metrics: r.Metrics, kind: kind, obj: obj, executor: executor, params: params, readOnly: e.ReadOnly, now: phaseNow, started: phaseNow}
}

func get[T client.Object](t *testing.T, r *Reconciler, name string, obj T) T {
	t.Helper()
	if err := r.Client.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: name}, obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestProjectExecutorPhases(t *testing.T) {
	rc := phaseReconciler(t, phaseTree()...)
	p := &v1alpha1.Project{}
	if err := rc.Client.Get(context.Background(), types.NamespacedName{Name: "shop"}, p); err != nil {
		t.Fatal(err)
	}
	x := projectExecutor{rc}
	r := phaseRun(t, rc, "Project", "ProjectExecutor", p)
	plan, err := x.Observe(context.Background(), r, p)
	if err != nil || plan.clusters != 1 {
		t.Fatalf("observed %+v, %v; want 1 cluster", plan, err)
	}
	if _, in := x.Propose(r, p, plan); in.State["clusters"] != 1 {
		t.Fatalf("proposed %v", in.State)
	}
	msg, err := x.Status(r, p, plan)
	if err != nil || msg != "1 clusters" || p.Status.Clusters != 1 {
		t.Fatalf("status %q, %v, %+v", msg, err, p.Status)
	}
	children, err := x.Children(context.Background(), p)
	if err != nil || len(children) != 1 || children[0].kind != "Cluster" {
		t.Fatalf("children %v, %v", children, err)
	}
}

func TestApplicationExecutorReportsNoDeployments(t *testing.T) {
	rc := phaseReconciler(t, phaseTree()...)
	a := get(t, rc, "web", &v1alpha1.Application{})
	x := applicationExecutor{rc}
	r := phaseRun(t, rc, "Application", "ApplicationExecutor", a)
	plan, err := x.Observe(context.Background(), r, a)
	if err != nil {
		t.Fatal(err)
	}
	_, err = x.Status(r, a, plan)
	if cerr, ok := errors.AsType[*conditionError](err); !ok || cerr.reason != ReasonNoDeployments || !strings.Contains(cerr.message, "selector app=web") {
		t.Fatalf("status error %v", err)
	}
}

// The Route executor composes a canary's live weights into the rule that
// routes to its baseline, applies the VirtualService, and writes nothing
// when it runs again on the same state.
func TestRouteExecutorPhases(t *testing.T) {
	canary := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web-v2", Namespace: "shop"},
		Spec:   v1alpha1.CanaryReleaseSpec{Route: "web", Destination: "web", Subset: "v2"},
		Status: v1alpha1.CanaryReleaseStatus{Baseline: "v1", Weights: map[string]int32{"v1": 70, "v2": 30}, Phase: v1alpha1.CanaryProgressing}}
	rc := phaseReconciler(t, append(phaseTree(), canary)...)
	route := get(t, rc, "web", &v1alpha1.Route{})
	x := newRouteExecutor(rc, "RouteExecutor")
	r := phaseRun(t, rc, "Route", "RouteExecutor", route)
	plan, err := x.Observe(context.Background(), r, route)
	if err != nil || len(plan.live) != 1 {
		t.Fatalf("observed %+v, %v", plan.live, err)
	}
	plan, in := x.Propose(r, route, plan)
	if len(plan.composed) != 1 || plan.composed[0] != "CanaryRelease/web-v2" || in == nil {
		t.Fatalf("proposed %v", plan.composed)
	}
	if plan, err = x.Apply(context.Background(), r, route, plan, nil); err != nil {
		t.Fatal(err)
	}
	vs := get(t, rc, "web", &networkingv1.VirtualService{})
	def := vs.Spec.Http[1]
	if len(def.Route) != 2 || def.Route[0].Weight != 70 || def.Route[1].Weight != 30 || def.Route[1].Destination.Subset != "v2" {
		t.Fatalf("default rule %v", def.Route)
	}
	msg, err := x.Status(r, route, plan)
	if err != nil || route.Status.VirtualService != "shop/web" || !strings.Contains(msg, "composed with [CanaryRelease/web-v2]") {
		t.Fatalf("status %q, %v, %+v", msg, err, route.Status)
	}
	version := vs.ResourceVersion
	if _, err := x.Apply(context.Background(), r, route, plan, nil); err != nil {
		t.Fatal(err)
	}
	if get(t, rc, "web", &networkingv1.VirtualService{}).ResourceVersion != version {
		t.Fatal("a second run on the same state wrote the VirtualService")
	}
}

// GatewayAPIRouteExecutor applies an HTTPRoute — parent the host's
// Service, a backendRef per subset Service, every defaulted field set —
// reports what istiod says of it in RouteAccepted, and removes the
// VirtualService the Route had before.
func TestGatewayRouteExecutorPhases(t *testing.T) {
	canary := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web-v2", Namespace: "shop"},
		Spec:   v1alpha1.CanaryReleaseSpec{Route: "web", Destination: "web", Subset: "v2"},
		Status: v1alpha1.CanaryReleaseStatus{Baseline: "v1", Weights: map[string]int32{"v1": 70, "v2": 30}, Phase: v1alpha1.CanaryProgressing}}
	old := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop",
		Labels: ownerLabels("Route", &v1alpha1.Route{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}, "shop")}}
	rc := phaseReconciler(t, append(phaseTree(), canary, old)...)
	route := get(t, rc, "web", &v1alpha1.Route{})
	route.Spec.Executor = &v1alpha1.ExecutorRef{Name: "GatewayAPIRouteExecutor"}
	route.Status.VirtualService = "shop/web"
	x := newRouteExecutor(rc, "GatewayAPIRouteExecutor")
	r := phaseRun(t, rc, "Route", "GatewayAPIRouteExecutor", route)
	plan, err := x.Observe(context.Background(), r, route)
	if err != nil || plan.destinations["web"] == nil {
		t.Fatalf("observed %+v, %v", plan.destinations, err)
	}
	plan, _ = x.Propose(r, route, plan)
	if plan, err = x.Apply(context.Background(), r, route, plan, nil); err != nil {
		t.Fatal(err)
	}
	hr := get(t, rc, "web", &gatewayv1.HTTPRoute{})
	if len(hr.Spec.ParentRefs) != 1 || *hr.Spec.ParentRefs[0].Kind != "Service" || hr.Spec.ParentRefs[0].Name != "web" {
		t.Fatalf("parents %+v", hr.Spec.ParentRefs)
	}
	def := hr.Spec.Rules[1]
	if *def.Name != "default" || len(def.BackendRefs) != 2 || def.BackendRefs[0].Name != "web-v1" || *def.BackendRefs[0].Weight != 70 ||
		def.BackendRefs[1].Name != "web-v2" || *def.BackendRefs[1].Weight != 30 || *def.BackendRefs[1].Port != 8080 {
		t.Fatalf("default rule %+v", def.BackendRefs)
	}
	if *def.Timeouts.Request != "1m30s" || *def.Matches[0].Path.Type != gatewayv1.PathMatchPathPrefix || *def.Matches[0].Path.Value != "/" {
		t.Fatalf("default rule %+v", def)
	}
	testers := hr.Spec.Rules[0].Matches[0].Headers
	if len(testers) != 1 || testers[0].Name != "user" || testers[0].Value != "tester" || *testers[0].Type != gatewayv1.HeaderMatchExact {
		t.Fatalf("testers' match %+v", testers)
	}
	if err := rc.Client.Get(context.Background(), client.ObjectKeyFromObject(old), &networkingv1.VirtualService{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the VirtualService of RouteExecutor stays: %v", err)
	}
	accepted := meta.FindStatusCondition(route.Status.Conditions, ConditionRouteAccepted)
	if accepted == nil || accepted.Status != metav1.ConditionUnknown || r.requeue != acceptanceRecheck {
		t.Fatalf("before istiod says anything: %+v, requeue %v", accepted, r.requeue)
	}
	msg, err := x.Status(r, route, plan)
	if err != nil || route.Status.HTTPRoute != "shop/web" || route.Status.VirtualService != "" || !strings.HasPrefix(msg, "HTTPRoute shop/web on cluster shop (local)") {
		t.Fatalf("status %q, %v, %+v", msg, err, route.Status)
	}

	// istiod accepts the route.
	hr.Status.Parents = []gatewayv1.RouteParentStatus{{ParentRef: hr.Spec.ParentRefs[0], ControllerName: "istio.io/gateway-controller",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: hr.Generation, LastTransitionTime: metav1.Now()}}}}
	if err := rc.Client.Status().Update(context.Background(), hr); err != nil {
		t.Fatal(err)
	}
	version := get(t, rc, "web", &gatewayv1.HTTPRoute{}).ResourceVersion
	r = phaseRun(t, rc, "Route", "GatewayAPIRouteExecutor", route)
	if _, err := x.Apply(context.Background(), r, route, plan, nil); err != nil {
		t.Fatal(err)
	}
	if accepted := meta.FindStatusCondition(route.Status.Conditions, ConditionRouteAccepted); accepted.Status != metav1.ConditionTrue ||
		!strings.Contains(accepted.Message, "istio.io/gateway-controller") {
		t.Fatalf("accepted: %+v", accepted)
	}
	if get(t, rc, "web", &gatewayv1.HTTPRoute{}).ResourceVersion != version {
		t.Fatal("a second run on the same state wrote the HTTPRoute")
	}

	// It refuses a backend.
	hr = get(t, rc, "web", &gatewayv1.HTTPRoute{})
	hr.Status.Parents[0].Conditions = append(hr.Status.Parents[0].Conditions, metav1.Condition{Type: "ResolvedRefs", Status: metav1.ConditionFalse,
		Reason: "BackendNotFound", Message: "backend web-v2 not found", ObservedGeneration: hr.Generation, LastTransitionTime: metav1.Now()})
	if err := rc.Client.Status().Update(context.Background(), hr); err != nil {
		t.Fatal(err)
	}
	r = phaseRun(t, rc, "Route", "GatewayAPIRouteExecutor", route)
	_, err = x.Apply(context.Background(), r, route, plan, nil)
	if cerr, ok := errors.AsType[*conditionError](err); !ok || cerr.reason != ReasonNotAccepted || !strings.Contains(cerr.message, "ResolvedRefs for parent Service/web: BackendNotFound: backend web-v2 not found") {
		t.Fatalf("refused backend: %v", err)
	}
}

func TestHTTPRouteTranslation(t *testing.T) {
	dest := map[string]*v1alpha1.Destination{"web": {Spec: v1alpha1.DestinationSpec{Ports: []v1alpha1.DestinationPort{{Port: 80}, {Port: 81}}}}}
	for _, tc := range []struct {
		name string
		spec v1alpha1.RouteSpec
		err  string
	}{
		{"a port to choose", v1alpha1.RouteSpec{Hosts: []string{"web"}, HTTP: []v1alpha1.HTTPRoute{{Route: []v1alpha1.RouteDestination{{Destination: "web"}}}}},
			"spec.http[0].route[0].port: Destination web has 2 ports; name the one to route to"},
		{"mesh and a Gateway", v1alpha1.RouteSpec{Hosts: []string{"web"}, Gateways: []string{"mesh", "edge/public"}},
			"spec.gateways mixes mesh with Gateways"},
		{"a method prefix", v1alpha1.RouteSpec{Hosts: []string{"web"}, HTTP: []v1alpha1.HTTPRoute{{Match: []v1alpha1.HTTPMatchRequest{{Method: &v1alpha1.StringMatch{Prefix: "G"}}}}}},
			"spec.http[0].match[0].method: Gateway API matches a method exactly"},
		{"a host that names no Service", v1alpha1.RouteSpec{Hosts: []string{"*.example.com"}},
			`spec.hosts[0] "*.example.com" does not name a Service`},
	} {
		_, err := httpRouteSpec(&tc.spec, dest, &gatewayv1.HTTPRouteSpec{})
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
	// Gateways take the hosts as hostnames; a header prefix becomes a
	// regular expression; retries are reported, not applied.
	var out gatewayv1.HTTPRouteSpec
	notes, err := httpRouteSpec(&v1alpha1.RouteSpec{Hosts: []string{"shop.example.com"}, Gateways: []string{"edge/public"},
		HTTP: []v1alpha1.HTTPRoute{{Match: []v1alpha1.HTTPMatchRequest{{Headers: map[string]v1alpha1.StringMatch{"x-beta": {Prefix: "y"}}}},
			Route: []v1alpha1.RouteDestination{{Destination: "web", Port: 81}}, Retries: &v1alpha1.HTTPRetry{Attempts: 2}}}}, dest, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.ParentRefs) != 1 || *out.ParentRefs[0].Kind != "Gateway" || *out.ParentRefs[0].Namespace != "edge" || out.ParentRefs[0].Name != "public" ||
		len(out.Hostnames) != 1 || out.Hostnames[0] != "shop.example.com" {
		t.Fatalf("parents %+v, hostnames %v", out.ParentRefs, out.Hostnames)
	}
	if h := out.Rules[0].Matches[0].Headers[0]; *h.Type != gatewayv1.HeaderMatchRegularExpression || h.Value != "^y.*" {
		t.Fatalf("header %+v", h)
	}
	if b := out.Rules[0].BackendRefs[0]; b.Name != "web" || *b.Port != 81 || *b.Weight != 1 || *b.Kind != "Service" || *b.Group != "" {
		t.Fatalf("backend %+v", b)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "spec.http[0].retries is not applied") {
		t.Fatalf("notes %v", notes)
	}
	for d, want := range map[time.Duration]gatewayv1.Duration{90 * time.Second: "1m30s", 1500 * time.Millisecond: "1s500ms", 2 * time.Hour: "2h", 0: "0s"} {
		if got := gatewayDuration(d); got != want {
			t.Errorf("gatewayDuration(%v) = %s, want %s", d, got, want)
		}
	}
}

// With subsetServices, the Destination applies one Service per subset
// and removes those of subsets that went.
func TestDestinationExecutorSubsetServices(t *testing.T) {
	rc := phaseReconciler(t, phaseTree()...)
	d := get(t, rc, "web", &v1alpha1.Destination{})
	d.Spec.Executor = &v1alpha1.ExecutorRef{Name: "DestinationExecutor", Parameters: rawParams(map[string]string{"subsetServices": "true"})}
	x := destinationExecutor{r: rc}
	r := phaseRun(t, rc, "Destination", "DestinationExecutor", d)
	plan, err := x.Observe(context.Background(), r, d)
	if err != nil || !plan.perSubset {
		t.Fatalf("observed %+v, %v", plan, err)
	}
	plan, _ = x.Propose(r, d, plan)
	if plan, err = x.Apply(context.Background(), r, d, plan, nil); err != nil {
		t.Fatal(err)
	}
	v2 := get(t, rc, "web-v2", &corev1.Service{})
	if v2.Spec.Selector["version"] != "v2" || v2.Spec.Selector["app"] != "web" || v2.Spec.Ports[0].Port != 8080 {
		t.Fatalf("Service web-v2 %+v", v2.Spec)
	}
	if _, err := x.Status(r, d, plan); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Status.SubsetServices, []string{"web-v1", "web-v2"}) {
		t.Fatalf("status.subsetServices %v", d.Status.SubsetServices)
	}
	// The policies keep v1 only: web-v2 goes, web and web-v1 stay.
	decided := &Decision{Result: &policies.Result{State: map[string]any{"subsets": []any{map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}}}}}}
	if plan, err = x.Apply(context.Background(), r, d, plan, decided); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plan.subsetServices, []string{"web-v1"}) {
		t.Fatalf("applied %v", plan.subsetServices)
	}
	if err := rc.Client.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: "web-v2"}, &corev1.Service{}); !apierrors.IsNotFound(err) {
		t.Fatalf("web-v2 stays: %v", err)
	}
	get(t, rc, "web-v1", &corev1.Service{})
	get(t, rc, "web", &corev1.Service{})

	// The parameter turned off: the subset Services the status names go.
	if _, err := x.Status(r, d, plan); err != nil {
		t.Fatal(err)
	}
	plan.perSubset = false
	if plan, err = x.Apply(context.Background(), r, d, plan, decided); err != nil {
		t.Fatal(err)
	}
	if err := rc.Client.Get(context.Background(), types.NamespacedName{Namespace: "shop", Name: "web-v1"}, &corev1.Service{}); !apierrors.IsNotFound(err) {
		t.Fatalf("web-v1 stays with subsetServices off: %v", err)
	}
	if _, err := x.Status(r, d, plan); err != nil || d.Status.SubsetServices != nil {
		t.Fatalf("status.subsetServices %v, %v", d.Status.SubsetServices, err)
	}
	get(t, rc, "web", &corev1.Service{})
}

// A CanaryRelease's phases with TimedCanaryRelease: a step falls due on the
// fixed clock, the chain moves the weights and the status records the
// step; a paused release asks no policy.
func TestCanaryExecutorPhases(t *testing.T) {
	last := metav1.NewMicroTime(phaseNow.Add(-time.Minute))
	canary := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web-v2", Namespace: "shop", Generation: 1},
		Spec: v1alpha1.CanaryReleaseSpec{Route: "web", Destination: "web", Subset: "v2", Stanzas: v1alpha1.Stanzas{
			Policies: []v1alpha1.PolicyRef{{Name: "TimedCanaryRelease", Parameters: rawParams(map[string]string{"step": "20", "period": `"30s"`})}}}},
		Status: v1alpha1.CanaryReleaseStatus{Baseline: "v1", Weights: map[string]int32{"v1": 80, "v2": 20}, Phase: v1alpha1.CanaryProgressing, LastStepTime: &last}}
	rc := phaseReconciler(t, append(phaseTree(), canary)...)
	c := get(t, rc, "web-v2", &v1alpha1.CanaryRelease{})
	impl := phases(canaryExecutor{r: rc})
	r := phaseRun(t, rc, "CanaryRelease", "CanaryReleaseExecutor", c)
	if err := impl.execute(context.Background(), r, c); err != nil {
		t.Fatal(err)
	}
	if c.Status.Weights["v2"] != 40 || c.Status.Phase != v1alpha1.CanaryProgressing || !c.Status.LastStepTime.Time.Equal(phaseNow) {
		t.Fatalf("status after the step: %+v", c.Status)
	}
	if n := len(c.Status.History); n != 1 || c.Status.History[0].Policy != "TimedCanaryRelease" || c.Status.History[0].Weights["v2"] != 40 {
		t.Fatalf("history %+v", c.Status.History)
	}
	if r.readyMessage != "Progressing: v2 at 40%, v1 at 60%" || r.requeue != 30*time.Second {
		t.Fatalf("ready %q, requeue %v", r.readyMessage, r.requeue)
	}

	c.Status.Phase = v1alpha1.CanaryPaused
	x := canaryExecutor{r: rc}
	r = phaseRun(t, rc, "CanaryRelease", "CanaryReleaseExecutor", c)
	plan, err := x.Observe(context.Background(), r, c)
	if err != nil || !plan.final {
		t.Fatalf("paused: %+v, %v", plan, err)
	}
	if _, in := x.Propose(r, c, plan); in != nil {
		t.Fatalf("a paused release asks the policies: %v", in)
	}

	// ReadOnly: the chain decides the next step, nothing is stored.
	c.Status.Phase, c.Status.LastStepTime = v1alpha1.CanaryProgressing, &last
	before := c.Status.DeepCopy()
	r = phaseRun(t, rc, "CanaryRelease", "ReadOnlyCanaryReleaseExecutor", c)
	if err := impl.execute(context.Background(), r, c); err != nil {
		t.Fatal(err)
	}
	if c.Status.Weights["v2"] != before.Weights["v2"] || len(c.Status.History) != len(before.History) || len(r.drift) != 1 {
		t.Fatalf("read-only stored %+v, drift %v", c.Status, r.drift)
	}
}

// rawParams are parameters from JSON values.
func rawParams(values map[string]string) v1alpha1.Parameters {
	out := v1alpha1.Parameters{}
	for k, v := range values {
		out[k] = apiextensionsv1.JSON{Raw: []byte(v)}
	}
	return out
}
