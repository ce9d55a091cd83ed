package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

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
	// sticky what it composes besides the weights (see compose_extras.go).
	canary  string
	mirror  *v1alpha1.CanaryMirror
	preview *v1alpha1.CanaryPreview
	sticky  *v1alpha1.SessionAffinity
	// end is when a release's split ended (its last step), and phase how;
	// nil while it may still move traffic. What the Route's history keeps
	// of it: when it started, and who or what took its last step.
	end   *metav1.MicroTime
	phase string
	last  v1alpha1.RouteRelease
	// name and created are the release's; startedByTemplate says that the
	// Route's release template started it.
	name              string
	created           metav1.MicroTime
	startedByTemplate bool
	// failed: a release that could not run (Failed), with no weights.
	failed bool
}

// routeExecutor runs a Route through one router (route_istio.go,
// route_gatewayapi.go): it composes the live weights of the Route's
// CanaryReleases and Experiments into the user's rules, runs the chain on
// the composed spec, and has the router apply it; what another router
// applied before goes. The Route itself is never written, only its status.
type routeExecutor struct {
	r      *Reconciler
	router router
	// others are the other routers: what they applied goes when a Route
	// switches to this one.
	others []router
	noChildren[*v1alpha1.Route]
}

// newRouteExecutor is the Route executor of the router routers names.
func newRouteExecutor(r *Reconciler, name string) routeExecutor {
	x := routeExecutor{r: r, router: routers[name]}
	for _, other := range sortedKeys(routers) {
		if other != name {
			x.others = append(x.others, routers[other])
		}
	}
	return x
}

// A router is how a Route reaches the data plane: it translates the
// composed spec into the object of one traffic API and applies it. Adding
// one is a file of its own and an entry in routers (docs/executors.md).
type router interface {
	// kind is the kind of object the router applies; empty returns an
	// empty one (to remove it).
	kind() string
	empty() client.Object
	// applied is the field of the Route's status that names the object.
	applied(status *v1alpha1.RouteStatus) *string
	// conditions are the Route's conditions the router sets.
	conditions() []string
	// observe reads what the translation needs besides the Route and the
	// live weights (the Destinations' ports, say).
	observe(ctx context.Context, r *Reconciler, route *v1alpha1.Route, plan *routePlan) error
	// desired translates plan.spec into the object apply makes the
	// target hold (and admission submits as a dry run), noting in
	// plan.notes what the object cannot carry.
	desired(route *v1alpha1.Route, plan *routePlan) (client.Object, error)
	// apply makes the target cluster hold the desired object (ensure).
	apply(ctx context.Context, s *scope, route *v1alpha1.Route, plan *routePlan) error
	// verify reads, once the object is applied and what another router
	// applied is gone, what the traffic API's implementation said of it.
	verify(ctx context.Context, s *scope, route *v1alpha1.Route, plan *routePlan) error
}

// routers are the Route's executors by name (their ReadOnly twins run the
// same); the catalog declares the names.
var routers = map[string]router{
	"RouteExecutor":           istioRouter{},
	"GatewayAPIRouteExecutor": gatewayAPIRouter{},
}

// routePlan is what a Route's run found, proposed and applied.
type routePlan struct {
	placement *placement
	live      []liveWeights
	// spec is the Route with the live weights composed in, then as the
	// policies decided it; composed names the releases composed.
	spec     *v1alpha1.RouteSpec
	composed []string
	// stable are the subsets the rules send their traffic to where no
	// release shifts it, releases those that ended (route_stable.go).
	stable   []v1alpha1.StableSubset
	releases []v1alpha1.RouteRelease
	// template is what the release template read, and decided
	// (route_release.go); nil without one.
	template *templateView
	decided  templateDecision
	// destinations are the Destinations the rules route to (for the
	// routers that need their ports).
	destinations map[string]*v1alpha1.Destination
	// applied names the object applied, notes what of the spec it cannot carry.
	applied string
	notes   []string
}

func (x routeExecutor) Observe(ctx context.Context, _ *scope, route *v1alpha1.Route) (routePlan, error) {
	p, err := x.r.placementOf(ctx, route.Namespace)
	if err != nil {
		return routePlan{}, err
	}
	live, err := x.r.liveWeightsOf(ctx, route)
	if err != nil {
		return routePlan{}, err
	}
	plan := routePlan{placement: p, live: live}
	if plan.template, err = x.r.observeTemplate(ctx, route); err != nil {
		return plan, err
	}
	return plan, x.router.observe(ctx, x.r, route, &plan)
}

// Propose sends each rule's traffic to its stable subsets and composes
// the live weights of the releases still shifting it into the rules.
func (routeExecutor) Propose(s *scope, route *v1alpha1.Route, plan routePlan) (routePlan, *policies.Input) {
	plan.composeSpec(route, metav1.NewMicroTime(s.now))
	if plan.template != nil {
		plan.decided = decideTemplate(route, plan.template, plan.stable, plan.live, metav1.NewMicroTime(s.now))
	}
	return plan, &policies.Input{State: map[string]any{
		"hosts": plan.spec.Hosts, "gateways": plan.spec.Gateways, "http": plan.spec.HTTP,
	}}
}

// composeSpec sets plan.spec to the Route's rules sent to their stable
// subsets, with the live weights of the releases still shifting traffic
// composed in: what the Route's chain starts from.
func (plan *routePlan) composeSpec(route *v1alpha1.Route, now metav1.MicroTime) {
	plan.spec = route.Spec.DeepCopy()
	plan.stable = stableSubsets(route, plan.live, now)
	plan.releases = releaseHistory(route.Status.Releases, plan.live)
	withStable(plan.spec, plan.stable)
	shifting := make([]liveWeights, 0, len(plan.live))
	for _, l := range plan.live {
		if at, _ := l.ended(); at == nil && len(l.weights) > 0 {
			shifting = append(shifting, l)
		}
	}
	plan.composed = compose(plan.spec, shifting)
}

// Apply reads the policies' state back into the spec, has the router
// apply it, and removes what another router applied before.
func (x routeExecutor) Apply(ctx context.Context, s *scope, route *v1alpha1.Route, plan routePlan, decided *Decision) (routePlan, error) {
	if decided != nil {
		if err := fromMap(decided.State, plan.spec); err != nil {
			return plan, userError(ReasonPolicyError, "the policies' state is not a Route spec (hosts, gateways, http): %v", err)
		}
	}
	if err := x.router.apply(ctx, s, route, &plan); err != nil {
		return plan, err
	}
	if plan.template != nil {
		if err := applyTemplate(ctx, s, route, plan.decided); err != nil {
			return plan, err
		}
	}
	for _, other := range x.others {
		if err := removeStale(ctx, s, plan.placement, route, other, *other.applied(&route.Status)); err != nil {
			return plan, err
		}
	}
	return plan, x.router.verify(ctx, s, route, &plan)
}

// Status names the object applied (and no other router's), records the
// stable subsets, and drops the conditions only another router sets.
func (x routeExecutor) Status(s *scope, route *v1alpha1.Route, plan routePlan) (string, error) {
	route.Status.Stable, route.Status.Releases = plan.stable, plan.releases
	route.Status.StableSummary = stableSummary(plan.stable)
	stableCondition(s, route, plan.stable)
	templateStatus(s, route, plan)
	for _, other := range x.others {
		*other.applied(&route.Status) = ""
		for _, c := range other.conditions() {
			if !slices.Contains(x.router.conditions(), c) {
				meta.RemoveStatusCondition(&route.Status.Conditions, c)
			}
		}
	}
	*x.router.applied(&route.Status) = plan.applied
	route.Status.ComposedFrom = plan.composed
	msg := fmt.Sprintf("%s %s on %s", x.router.kind(), plan.applied, plan.placement.target)
	if len(plan.composed) > 0 {
		msg += fmt.Sprintf(", composed with %v", plan.composed)
	}
	if len(plan.notes) > 0 {
		msg += "; " + strings.Join(plan.notes, "; ")
	}
	return msg, nil
}

// Finalize removes what any router applied.
func (x routeExecutor) Finalize(ctx context.Context, s *scope, route *v1alpha1.Route) error {
	p, err := x.r.placementOf(ctx, route.Namespace)
	if err != nil {
		return ignoreUserError(err)
	}
	objs := make([]client.Object, 0, len(routers))
	for _, name := range sortedKeys(routers) {
		objs = append(objs, routers[name].empty())
	}
	return removeOwned(ctx, s, p.target, p.namespace, ownerLabels("Route", route, p.vc.Name), objs...)
}

// removeStale deletes the object a Route's other executor applied, which
// the status names (nothing when it names none), once: the status no
// longer names it after the run.
func removeStale(ctx context.Context, s *scope, p *placement, route *v1alpha1.Route, other router, named string) error {
	switch {
	case named == "":
		return nil
	case s.readOnly:
		s.drift = append(s.drift, fmt.Sprintf("delete %s %s", other.kind(), named))
		return nil
	}
	return removeOwned(ctx, s, p.target, p.namespace, ownerLabels("Route", route, p.vc.Name), other.empty())
}

func routeKind(r *Reconciler) *kind[*v1alpha1.Route] {
	executors := map[string]implementation[*v1alpha1.Route]{}
	for name := range routers {
		executors[name] = phases(newRouteExecutor(r, name))
	}
	return &kind[*v1alpha1.Route]{
		name:      "Route",
		newObject: func() *v1alpha1.Route { return &v1alpha1.Route{} },
		executors: executors,
	}
}

// liveWeightsOf gathers the weights of the CanaryReleases and Experiments
// on a Route, in name order.
func (r *Reconciler) liveWeightsOf(ctx context.Context, route *v1alpha1.Route) ([]liveWeights, error) {
	var out []liveWeights
	// The cache's own objects, read only: what is kept of them is copied,
	// not the whole releases with their histories on every run.
	var canaries v1alpha1.CanaryReleaseList
	if err := r.Client.List(ctx, &canaries, client.InNamespace(route.Namespace), client.MatchingFields{indexRoute: route.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	for _, c := range canaries.Items {
		if len(c.Status.Weights) == 0 || c.Status.Phase == v1alpha1.CanaryFailed {
			// Nothing to compose, yet or at all; the release template
			// still counts it.
			out = append(out, liveWeights{source: "CanaryRelease/" + c.Name, name: c.Name, created: metav1.NewMicroTime(c.CreationTimestamp.Time),
				startedByTemplate: c.Labels[v1alpha1.LabelStartedBy] == v1alpha1.StartedByTemplate && metav1.IsControlledBy(&c, route),
				destination:       c.Spec.Destination, httpRoute: c.Spec.HTTPRoute, canary: c.Spec.Subset, failed: c.Status.Phase == v1alpha1.CanaryFailed})
			continue
		}
		l := liveWeights{source: "CanaryRelease/" + c.Name, name: c.Name, created: metav1.NewMicroTime(c.CreationTimestamp.Time),
			startedByTemplate: c.Labels[v1alpha1.LabelStartedBy] == v1alpha1.StartedByTemplate && metav1.IsControlledBy(&c, route), destination: c.Spec.Destination,
			httpRoute: c.Spec.HTTPRoute, baseline: c.Status.Baseline, weights: maps.Clone(c.Status.Weights),
			canary: c.Spec.Subset, mirror: c.Status.Mirror.DeepCopy(), preview: c.Status.Preview.DeepCopy()}
		if c.Status.Phase.Ended() {
			// Its last step, or else when it was created (ended at once).
			l.end, l.phase = cmp.Or(c.Status.LastStepTime, ptr.To(metav1.NewMicroTime(c.CreationTimestamp.Time))).DeepCopy(), string(c.Status.Phase)
			l.last = endOf(&c, *l.end)
		}
		// Sticky while the canary shares the traffic, a pause included.
		shifting := c.Status.Phase == v1alpha1.CanaryProgressing || c.Status.Phase == v1alpha1.CanaryPaused
		if w := c.Status.Weights[c.Spec.Subset]; c.Spec.SessionAffinity != nil && shifting && w > 0 && w < 100 {
			l.sticky = c.Spec.SessionAffinity.DeepCopy()
		}
		out = append(out, l)
	}
	var experiments v1alpha1.ExperimentList
	if err := r.Client.List(ctx, &experiments, client.InNamespace(route.Namespace), client.MatchingFields{indexRoute: route.Name}, client.UnsafeDisableDeepCopy); err != nil {
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
// sticky rules are composed with it (see compose_extras.go). It returns the
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
			if routesAllTo(rule, kept) {
				// The split sends the rule's traffic where the rule already
				// does (a release's start, or its rollback): the rule stays
				// as written, and the mesh's object with it.
				kept = rule.Route
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

// routesAllTo says whether a rule routes, as written, to one destination
// subset only — the one composed routes carry all its traffic to.
func routesAllTo(rule *v1alpha1.HTTPRoute, composed []v1alpha1.RouteDestination) bool {
	if len(rule.Route) != 1 || len(composed) != 1 {
		return false
	}
	was, now := rule.Route[0], composed[0]
	return was.Destination == now.Destination && was.Subset == now.Subset && was.Port == now.Port &&
		(was.Weight == nil || *was.Weight == 100) && was.Headers == nil
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
