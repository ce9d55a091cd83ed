package reconciler

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	istioapi "istio.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

var virtualServiceObject = managedObject[*networkingv1.VirtualService]{
	kind:    "VirtualService",
	empty:   func() *networkingv1.VirtualService { return &networkingv1.VirtualService{} },
	differs: func(cur, want *networkingv1.VirtualService) bool { return !proto.Equal(&cur.Spec, &want.Spec) },
	update:  func(cur, want *networkingv1.VirtualService) { want.Spec.DeepCopyInto(&cur.Spec) },
}

// liveWeights is the traffic split a CanaryRelease or Experiment holds in
// its status, to compose into its Route.
type liveWeights struct {
	source      string
	destination string
	httpRoute   string
	// baseline is the subset the rule to compose routes to, when the
	// source does not name the rule.
	baseline string
	weights  map[string]int32
	// canary is a CanaryRelease's canary subset; mirror, preview and
	// sticky what it composes besides the weights (see extras.go).
	canary  string
	mirror  *v1alpha1.CanaryMirror
	preview *v1alpha1.CanaryPreview
	sticky  *v1alpha1.SessionAffinity
}

// routeExecutor (RouteExecutor): a Route applies an Istio VirtualService
// — the user's Route with the live weights of its active CanaryReleases
// and Experiments composed in. The Route itself is never written, only its
// status.
type routeExecutor struct {
	rc *Reconciler
	noChildren[*v1alpha1.Route]
}

// routePlan is what a Route's run found, proposed and applied.
type routePlan struct {
	placement *placement
	live      []liveWeights
	// spec is the Route with the live weights composed in, then as the
	// policies decided it; composed names the releases composed.
	spec     *v1alpha1.RouteSpec
	composed []string
	// destinations are the Destinations the rules route to (for the
	// executors that need their ports).
	destinations map[string]*v1alpha1.Destination
	// applied names the object applied, notes what of the spec it cannot carry.
	applied string
	notes   []string
}

func (x routeExecutor) Observe(ctx context.Context, _ *run, route *v1alpha1.Route) (routePlan, error) {
	p, err := x.rc.placementOf(ctx, route.Namespace)
	if err != nil {
		return routePlan{}, err
	}
	live, err := x.rc.liveWeightsOf(ctx, route)
	if err != nil {
		return routePlan{}, err
	}
	return routePlan{placement: p, live: live}, nil
}

// Propose composes the live weights into the Route's rules.
func (routeExecutor) Propose(_ *run, route *v1alpha1.Route, plan routePlan) (routePlan, *policies.Input) {
	plan.spec = route.Spec.DeepCopy()
	plan.composed = compose(plan.spec, plan.live)
	return plan, &policies.Input{State: map[string]any{
		"hosts": plan.spec.Hosts, "gateways": plan.spec.Gateways, "http": plan.spec.HTTP,
	}}
}

// decidedRoute reads the policies' state back into the plan's spec.
func decidedRoute(plan *routePlan, decided *Decided) error {
	if decided == nil {
		return nil
	}
	if err := fromMap(decided.State, plan.spec); err != nil {
		return userError(ReasonPolicyError, "the policies' state is not a Route spec (hosts, gateways, http): %v", err)
	}
	return nil
}

func (routeExecutor) Apply(ctx context.Context, r *run, route *v1alpha1.Route, plan routePlan, decided *Decided) (routePlan, error) {
	if err := decidedRoute(&plan, decided); err != nil {
		return plan, err
	}
	p := plan.placement
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{
		Name: route.Name, Namespace: p.namespace, Labels: ownerLabels("Route", route, p.vc.Name),
	}}
	if err := virtualServiceSpec(plan.spec, p.namespace, &vs.Spec); err != nil {
		return plan, err
	}
	if err := ensure(ctx, r, p.target, virtualServiceObject, vs); err != nil {
		return plan, err
	}
	// An HTTPRoute the Route had under GatewayAPIRouteExecutor goes.
	if err := removeStale(ctx, r, p, route, "HTTPRoute", route.Status.HTTPRoute, &gatewayv1.HTTPRoute{}); err != nil {
		return plan, err
	}
	plan.applied = p.namespace + "/" + route.Name
	return plan, nil
}

func (routeExecutor) Status(_ *run, route *v1alpha1.Route, plan routePlan) (string, error) {
	route.Status.VirtualService, route.Status.HTTPRoute = plan.applied, ""
	route.Status.ComposedFrom = plan.composed
	meta.RemoveStatusCondition(&route.Status.Conditions, ConditionRouteAccepted)
	return routeMessage("VirtualService", plan), nil
}

// routeMessage is a Route's Ready message: what it applied where, what it
// composed, and what the object applied cannot carry.
func routeMessage(what string, plan routePlan) string {
	msg := fmt.Sprintf("%s %s on %s", what, plan.applied, plan.placement.target)
	if len(plan.composed) > 0 {
		msg += fmt.Sprintf(", composed with %v", plan.composed)
	}
	if len(plan.notes) > 0 {
		msg += "; " + strings.Join(plan.notes, "; ")
	}
	return msg
}

// Finalize removes what either Route executor applied.
func (x routeExecutor) Finalize(ctx context.Context, r *run, route *v1alpha1.Route) error {
	p, err := x.rc.placementOf(ctx, route.Namespace)
	if err != nil {
		return ignoreUserError(err)
	}
	return removeOwned(ctx, r, p.target, p.namespace, ownerLabels("Route", route, p.vc.Name),
		&networkingv1.VirtualService{}, &gatewayv1.HTTPRoute{})
}

// removeStale deletes the object a Route's other executor applied, which
// the status names (nothing when it names none), once: the status no
// longer names it after the run.
func removeStale(ctx context.Context, r *run, p *placement, route *v1alpha1.Route, kind, named string, obj client.Object) error {
	switch {
	case named == "":
		return nil
	case r.readOnly:
		r.drift = append(r.drift, fmt.Sprintf("delete %s %s", kind, named))
		return nil
	}
	return removeOwned(ctx, r, p.target, p.namespace, ownerLabels("Route", route, p.vc.Name), obj)
}

func routeKind(rc *Reconciler) *kind[*v1alpha1.Route] {
	istio := phases(routeExecutor{rc: rc})
	gateway := phases(gatewayRouteExecutor{routeExecutor{rc: rc}})
	return &kind[*v1alpha1.Route]{
		name:      "Route",
		newObject: func() *v1alpha1.Route { return &v1alpha1.Route{} },
		executors: map[string]implementation[*v1alpha1.Route]{
			"RouteExecutor": istio, "ReadOnlyRouteExecutor": istio,
			"GatewayAPIRouteExecutor": gateway, "ReadOnlyGatewayAPIRouteExecutor": gateway,
		},
	}
}

// liveWeightsOf gathers the weights of the CanaryReleases and Experiments
// on a Route, in name order.
func (rc *Reconciler) liveWeightsOf(ctx context.Context, route *v1alpha1.Route) ([]liveWeights, error) {
	var out []liveWeights
	// The cache's own objects, read only: what is kept of them is copied,
	// not the whole releases with their histories on every run.
	var canaries v1alpha1.CanaryReleaseList
	if err := rc.Client.List(ctx, &canaries, client.InNamespace(route.Namespace), client.MatchingFields{indexRoute: route.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	for _, c := range canaries.Items {
		if len(c.Status.Weights) == 0 || c.Status.Phase == v1alpha1.CanaryFailed {
			continue
		}
		l := liveWeights{source: "CanaryRelease/" + c.Name, destination: c.Spec.Destination,
			httpRoute: c.Spec.HTTPRoute, baseline: c.Status.Baseline, weights: maps.Clone(c.Status.Weights),
			canary: c.Spec.Subset, mirror: c.Status.Mirror.DeepCopy(), preview: c.Status.Preview.DeepCopy()}
		// Sticky while the canary shares the traffic, a pause included.
		shifting := c.Status.Phase == v1alpha1.CanaryProgressing || c.Status.Phase == v1alpha1.CanaryPaused
		if w := c.Status.Weights[c.Spec.Subset]; c.Spec.SessionAffinity != nil && shifting && w > 0 && w < 100 {
			l.sticky = c.Spec.SessionAffinity.DeepCopy()
		}
		out = append(out, l)
	}
	var experiments v1alpha1.ExperimentList
	if err := rc.Client.List(ctx, &experiments, client.InNamespace(route.Namespace), client.MatchingFields{indexRoute: route.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	for _, e := range experiments.Items {
		if len(e.Status.Weights) == 0 {
			continue
		}
		out = append(out, liveWeights{source: "Experiment/" + e.Name, destination: e.Spec.Destination,
			httpRoute: e.Spec.HTTPRoute, baseline: firstOf(e.Spec.Subsets), weights: maps.Clone(e.Status.Weights)})
	}
	slices.SortFunc(out, func(a, b liveWeights) int { return strings.Compare(a.source, b.source) })
	return out, nil
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// compose replaces, in each HTTP rule a live split applies to, the routes
// to its destination with one route per subset that carries weight. A
// split applies to the rule its source names (httpRoute), or else to every
// rule that routes to its baseline subset. A canary's mirror, preview and
// sticky rules are composed with it (see extras.go). It returns the
// sources used.
func compose(spec *v1alpha1.RouteSpec, live []liveWeights) []string {
	var used []string
	// Rules to insert ahead of a rule, by the rule's index.
	var ahead map[int][]v1alpha1.HTTPRoute
	for _, l := range live {
		applied := false
		for i := range spec.HTTP {
			rule := &spec.HTTP[i]
			if !appliesTo(rule, l) {
				continue
			}
			var port int32
			kept := rule.Route[:0:0]
			for _, d := range rule.Route {
				if d.Destination == l.destination {
					port = d.Port
					continue
				}
				kept = append(kept, d)
			}
			for _, subset := range sortedKeys(l.weights) {
				if w := l.weights[subset]; w > 0 {
					kept = append(kept, v1alpha1.RouteDestination{Destination: l.destination, Subset: subset, Port: port, Weight: ptr.To(w)})
				}
			}
			if extra := l.extras(rule, kept, port); len(extra) > 0 {
				if ahead == nil {
					ahead = map[int][]v1alpha1.HTTPRoute{}
				}
				ahead[i] = append(ahead[i], extra...)
			}
			rule.Route = kept
			applied = true
		}
		if applied {
			used = append(used, l.source)
		}
	}
	if len(ahead) > 0 {
		rules := make([]v1alpha1.HTTPRoute, 0, len(spec.HTTP)+len(ahead))
		for i, rule := range spec.HTTP {
			rules = append(append(rules, ahead[i]...), rule)
		}
		spec.HTTP = rules
	}
	return used
}

func appliesTo(rule *v1alpha1.HTTPRoute, l liveWeights) bool {
	if l.httpRoute != "" {
		return rule.Name == l.httpRoute
	}
	for _, d := range rule.Route {
		if d.Destination == l.destination && d.Subset == l.baseline {
			return true
		}
	}
	return false
}

// virtualServiceSpec translates a Route spec into Istio's VirtualService:
// destinations become the cluster-local hosts of their Services.
func virtualServiceSpec(spec *v1alpha1.RouteSpec, namespace string, out *istioapi.VirtualService) error {
	out.Hosts = spec.Hosts
	out.Gateways = spec.Gateways
	for i, rule := range spec.HTTP {
		h := &istioapi.HTTPRoute{Name: rule.Name}
		for _, m := range rule.Match {
			h.Match = append(h.Match, httpMatch(m))
		}
		for _, d := range rule.Route {
			dest := &istioapi.HTTPRouteDestination{Destination: &istioapi.Destination{
				Host: serviceHost(d.Destination, namespace), Subset: d.Subset,
			}}
			if d.Port != 0 {
				dest.Destination.Port = &istioapi.PortSelector{Number: uint32(d.Port)}
			}
			if d.Weight != nil {
				dest.Weight = *d.Weight
			}
			dest.Headers = istioHeaders(d.Headers)
			h.Route = append(h.Route, dest)
		}
		if m := rule.Mirror; m != nil {
			h.Mirror = &istioapi.Destination{Host: serviceHost(m.Destination, namespace), Subset: m.Subset}
			if m.Port != 0 {
				h.Mirror.Port = &istioapi.PortSelector{Number: uint32(m.Port)}
			}
			if m.Percent != nil {
				h.MirrorPercentage = &istioapi.Percent{Value: float64(*m.Percent)}
			}
		}
		if rule.Retries != nil {
			h.Retries = &istioapi.HTTPRetry{Attempts: rule.Retries.Attempts, RetryOn: rule.Retries.RetryOn}
			if rule.Retries.PerTryTimeout != "" {
				d, err := time.ParseDuration(rule.Retries.PerTryTimeout)
				if err != nil {
					return userError(ReasonError, "spec.http[%d].retries.perTryTimeout: %v", i, err)
				}
				h.Retries.PerTryTimeout = durationpb.New(d)
			}
		}
		if rule.Timeout != "" {
			d, err := time.ParseDuration(rule.Timeout)
			if err != nil {
				return userError(ReasonError, "spec.http[%d].timeout: %v", i, err)
			}
			h.Timeout = durationpb.New(d)
		}
		out.Http = append(out.Http, h)
	}
	return nil
}

// istioHeaders are a destination's header operations as Istio's.
func istioHeaders(h *v1alpha1.Headers) *istioapi.Headers {
	if h == nil {
		return nil
	}
	ops := func(o *v1alpha1.HeaderOperations) *istioapi.Headers_HeaderOperations {
		if o == nil {
			return nil
		}
		return &istioapi.Headers_HeaderOperations{Set: o.Set, Add: o.Add, Remove: o.Remove}
	}
	return &istioapi.Headers{Request: ops(h.Request), Response: ops(h.Response)}
}

func httpMatch(m v1alpha1.HTTPMatchRequest) *istioapi.HTTPMatchRequest {
	out := &istioapi.HTTPMatchRequest{Name: m.Name, Uri: stringMatch(m.URI), Method: stringMatch(m.Method)}
	for k, v := range m.Headers {
		if out.Headers == nil {
			out.Headers = map[string]*istioapi.StringMatch{}
		}
		out.Headers[k] = stringMatch(&v)
	}
	for k, v := range m.QueryParams {
		if out.QueryParams == nil {
			out.QueryParams = map[string]*istioapi.StringMatch{}
		}
		out.QueryParams[k] = stringMatch(&v)
	}
	if m.Cookie != nil {
		if out.Headers == nil {
			out.Headers = map[string]*istioapi.StringMatch{}
		}
		out.Headers["cookie"] = &istioapi.StringMatch{MatchType: &istioapi.StringMatch_Regex{Regex: cookieRegex(m.Cookie)}}
	}
	return out
}

// cookieRegex matches a Cookie header that carries the cookie: Istio
// matches cookies through the header.
func cookieRegex(c *v1alpha1.CookieMatch) string {
	name := regexp.QuoteMeta(c.Name)
	var value string
	switch {
	case c.Value.Exact != "":
		value = regexp.QuoteMeta(c.Value.Exact) + "(;.*)?$"
	case c.Value.Prefix != "":
		value = regexp.QuoteMeta(c.Value.Prefix) + ".*"
	default:
		value = "(" + c.Value.Regex + ")(;.*)?$"
	}
	return "^(.*?;\\s*)?" + name + "=" + value
}

func stringMatch(m *v1alpha1.StringMatch) *istioapi.StringMatch {
	switch {
	case m == nil:
		return nil
	case m.Exact != "":
		return &istioapi.StringMatch{MatchType: &istioapi.StringMatch_Exact{Exact: m.Exact}}
	case m.Prefix != "":
		return &istioapi.StringMatch{MatchType: &istioapi.StringMatch_Prefix{Prefix: m.Prefix}}
	case m.Regex != "":
		return &istioapi.StringMatch{MatchType: &istioapi.StringMatch_Regex{Regex: m.Regex}}
	}
	return nil
}
