// The Gateway API router: a Route as a Gateway API HTTPRoute
// (gateway.networking.k8s.io/v1) — GatewayAPIRouteExecutor.

package reconciler

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;update;patch;delete;deletecollection

// Reasons and condition of the Gateway API Route executor.
const (
	// ConditionRouteAccepted mirrors the Accepted and ResolvedRefs
	// conditions the Gateway API implementation (istiod) sets on the
	// HTTPRoute a Route applies.
	ConditionRouteAccepted  = "RouteAccepted"
	ReasonGatewayAPIMissing = "GatewayAPIMissing"
	ReasonAccepted          = "Accepted"
	ReasonNotAccepted       = "NotAccepted"
	ReasonPending           = "Pending"
	ReasonUnsupported       = "Unsupported"
)

// acceptanceRecheck is how soon a Route looks again at an HTTPRoute that
// its implementation has not accepted (nothing watches the HTTPRoute).
const acceptanceRecheck = 5 * time.Second

var httpRouteObject = managedObject[*gatewayv1.HTTPRoute]{
	kind:    "HTTPRoute",
	empty:   func() *gatewayv1.HTTPRoute { return &gatewayv1.HTTPRoute{} },
	differs: func(cur, want *gatewayv1.HTTPRoute) bool { return !equality.Semantic.DeepEqual(cur.Spec, want.Spec) },
	update:  func(cur, want *gatewayv1.HTTPRoute) { want.Spec.DeepCopyInto(&cur.Spec) },
	missing: "install the Gateway API CRDs (standard channel: kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.3/standard-install.yaml; `kubist dev` installs them), or use RouteExecutor",
}

// gatewayAPIRouter (GatewayAPIRouteExecutor) applies the composed Route
// as a Gateway API HTTPRoute instead of a VirtualService. Its parents are
// the Services of its hosts (mesh traffic, as GAMMA attaches routes) or
// the Gateways of spec.gateways; each destination subset is a backendRef
// to the subset's own Service, which the Destination applies with its
// executor parameter subsetServices.
type gatewayAPIRouter struct{}

func (gatewayAPIRouter) kind() string { return "HTTPRoute" }

func (gatewayAPIRouter) empty() client.Object { return &gatewayv1.HTTPRoute{} }

func (gatewayAPIRouter) applied(status *v1alpha1.RouteStatus) *string { return &status.HTTPRoute }

func (gatewayAPIRouter) conditions() []string { return []string{ConditionRouteAccepted} }

// observe reads the Destinations the Route's rules route and mirror to,
// for their ports.
func (gatewayAPIRouter) observe(ctx context.Context, r *Reconciler, route *v1alpha1.Route, plan *routePlan) error {
	plan.destinations = map[string]*v1alpha1.Destination{}
	for _, ref := range route.References() {
		dest := &v1alpha1.Destination{}
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: route.Namespace, Name: ref.Name}, dest, client.UnsafeDisableDeepCopy); err != nil {
			if client.IgnoreNotFound(err) == nil {
				return userError(ReasonDestinationMissing, "Destination %s (spec.%s) does not exist in namespace %s", ref.Name, ref.Field, route.Namespace)
			}
			return err
		}
		plan.destinations[ref.Name] = dest
	}
	return nil
}

// apply applies the HTTPRoute.
func (gatewayAPIRouter) desired(route *v1alpha1.Route, plan *routePlan) (client.Object, error) {
	p := plan.placement
	hr := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{
		Name: route.Name, Namespace: p.namespace, Labels: ownerLabels("Route", route, p.vc.Name),
	}}
	notes, err := httpRouteSpec(plan.spec, plan.destinations, &hr.Spec)
	plan.notes = notes
	return hr, err
}

func (x gatewayAPIRouter) apply(ctx context.Context, s *scope, route *v1alpha1.Route, plan *routePlan) error {
	hr, err := x.desired(route, plan)
	if err != nil {
		return err
	}
	if err := ensure(ctx, s, plan.placement.target, httpRouteObject, hr.(*gatewayv1.HTTPRoute)); err != nil {
		return err
	}
	plan.applied = plan.placement.namespace + "/" + route.Name
	return nil
}

func (gatewayAPIRouter) verify(ctx context.Context, s *scope, route *v1alpha1.Route, plan *routePlan) error {
	if s.readOnly {
		return nil
	}
	return acceptance(ctx, s, plan.placement.target, client.ObjectKey{Namespace: plan.placement.namespace, Name: route.Name})
}

// acceptance reads what the Gateway API implementation said of the
// HTTPRoute at its current generation into RouteAccepted: Unknown until it
// says (looked at again soon), False with its reason when it refused a
// parent or could not resolve a backend.
func acceptance(ctx context.Context, s *scope, t *Target, key client.ObjectKey) error {
	hr := &gatewayv1.HTTPRoute{}
	if err := t.Client.Get(ctx, key, hr); err != nil {
		return applyError("HTTPRoute "+key.String(), err)
	}
	var refused []string
	accepted := 0
	for _, parent := range hr.Status.Parents {
		for _, c := range parent.Conditions {
			if c.ObservedGeneration != hr.Generation {
				continue
			}
			switch {
			case c.Status == metav1.ConditionFalse && (c.Type == string(gatewayv1.RouteConditionAccepted) || c.Type == string(gatewayv1.RouteConditionResolvedRefs)):
				refused = append(refused, fmt.Sprintf("%s for parent %s: %s: %s", c.Type, parentName(parent.ParentRef), c.Reason, c.Message))
			case c.Status == metav1.ConditionTrue && c.Type == string(gatewayv1.RouteConditionAccepted):
				accepted++
			}
		}
	}
	switch {
	case len(refused) > 0:
		msg := fmt.Sprintf("HTTPRoute %s on %s: %s", key, t, strings.Join(refused, "; "))
		s.condition(ConditionRouteAccepted, false, ReasonNotAccepted, msg)
		s.requeueAfter(acceptanceRecheck)
		return userError(ReasonNotAccepted, "%s", msg)
	case accepted == 0 || accepted < len(hr.Spec.ParentRefs):
		s.setCondition(ConditionRouteAccepted, metav1.ConditionUnknown, ReasonPending,
			fmt.Sprintf("HTTPRoute %s on %s: waiting for the Gateway API implementation (istiod) to accept it at generation %d", key, t, hr.Generation))
		s.requeueAfter(acceptanceRecheck)
	default:
		controllers := make([]string, 0, len(hr.Status.Parents))
		for _, parent := range hr.Status.Parents {
			controllers = append(controllers, string(parent.ControllerName))
		}
		slices.Sort(controllers)
		s.condition(ConditionRouteAccepted, true, ReasonAccepted,
			fmt.Sprintf("HTTPRoute %s accepted by %s for %d parents", key, strings.Join(slices.Compact(controllers), ", "), accepted))
	}
	return nil
}

func parentName(ref gatewayv1.ParentReference) string {
	kind := "Gateway"
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	return kind + "/" + string(ref.Name)
}

// httpRouteSpec translates a Route spec into a Gateway API HTTPRoute spec.
// Every field the API server would default is set, so that the live
// object compares equal at rest. It returns what of the Route the
// HTTPRoute cannot carry.
func httpRouteSpec(spec *v1alpha1.RouteSpec, destinations map[string]*v1alpha1.Destination, out *gatewayv1.HTTPRouteSpec) ([]string, error) {
	var notes []string
	parents, hostnames, err := httpRouteParents(spec)
	if err != nil {
		return nil, err
	}
	out.ParentRefs, out.Hostnames = parents, hostnames
	for i, rule := range spec.HTTP {
		at := fmt.Sprintf("spec.http[%d]", i)
		hr := gatewayv1.HTTPRouteRule{}
		if rule.Name != "" && len(validation.IsDNS1123Subdomain(rule.Name)) == 0 {
			hr.Name = ptr.To(gatewayv1.SectionName(rule.Name))
		}
		for j, m := range rule.Match {
			match, err := httpRouteMatch(m, fmt.Sprintf("%s.match[%d]", at, j))
			if err != nil {
				return nil, err
			}
			hr.Matches = append(hr.Matches, match)
		}
		if len(hr.Matches) == 0 {
			hr.Matches = []gatewayv1.HTTPRouteMatch{{Path: pathMatch(gatewayv1.PathMatchPathPrefix, "/")}}
		}
		for j, d := range rule.Route {
			ref, err := backendRef(d, destinations, fmt.Sprintf("%s.route[%d]", at, j))
			if err != nil {
				return nil, err
			}
			weight := int32(1)
			if d.Weight != nil {
				weight = *d.Weight
			}
			hr.BackendRefs = append(hr.BackendRefs, gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: ref, Weight: ptr.To(weight)},
				Filters: headerFilters(d.Headers)})
		}
		if m := rule.Mirror; m != nil {
			ref, err := backendRef(v1alpha1.RouteDestination{Destination: m.Destination, Subset: m.Subset, Port: m.Port}, destinations, at+".mirror")
			if err != nil {
				return nil, err
			}
			hr.Filters = append(hr.Filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror,
				RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: ref, Percent: m.Percent}})
		}
		if rule.Timeout != "" {
			d, err := time.ParseDuration(rule.Timeout)
			if err != nil {
				return nil, userError(ReasonError, "%s.timeout: %v", at, err)
			}
			hr.Timeouts = &gatewayv1.HTTPRouteTimeouts{Request: ptr.To(gatewayDuration(d))}
		}
		if rule.Retries != nil {
			notes = append(notes, fmt.Sprintf("%s.retries is not applied: retries are not in Gateway API's standard channel", at))
		}
		out.Rules = append(out.Rules, hr)
	}
	return notes, nil
}

// headerFilters are a destination's header operations as a backendRef's
// header modifier filters; nil without any.
func headerFilters(h *v1alpha1.Headers) []gatewayv1.HTTPRouteFilter {
	if h == nil {
		return nil
	}
	modifier := func(o *v1alpha1.HeaderOperations) *gatewayv1.HTTPHeaderFilter {
		if o == nil {
			return nil
		}
		f := &gatewayv1.HTTPHeaderFilter{Remove: o.Remove}
		for _, name := range sortedKeys(o.Set) {
			f.Set = append(f.Set, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(name), Value: o.Set[name]})
		}
		for _, name := range sortedKeys(o.Add) {
			f.Add = append(f.Add, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(name), Value: o.Add[name]})
		}
		return f
	}
	var out []gatewayv1.HTTPRouteFilter
	if f := modifier(h.Request); f != nil {
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: f})
	}
	if f := modifier(h.Response); f != nil {
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: f})
	}
	return out
}

// httpRouteParents are an HTTPRoute's parents: the Gateways of
// spec.gateways, with the hosts as hostnames; or, for mesh traffic (no
// gateways, or "mesh"), the Services the hosts name.
func httpRouteParents(spec *v1alpha1.RouteSpec) ([]gatewayv1.ParentReference, []gatewayv1.Hostname, error) {
	var gateways []gatewayv1.ParentReference
	mesh := len(spec.Gateways) == 0
	for _, g := range spec.Gateways {
		if g == "mesh" {
			mesh = true
			continue
		}
		ref := gatewayv1.ParentReference{Group: ptr.To(gatewayv1.Group(gatewayv1.GroupName)), Kind: ptr.To(gatewayv1.Kind("Gateway"))}
		if ns, name, ok := strings.Cut(g, "/"); ok {
			ref.Namespace, ref.Name = ptr.To(gatewayv1.Namespace(ns)), gatewayv1.ObjectName(name)
		} else {
			ref.Name = gatewayv1.ObjectName(g)
		}
		gateways = append(gateways, ref)
	}
	if mesh && len(gateways) > 0 {
		return nil, nil, userError(ReasonUnsupported, "spec.gateways mixes mesh with Gateways: GatewayAPIRouteExecutor applies one HTTPRoute, attached either to Services (mesh) or to Gateways; split the Route in two")
	}
	if !mesh {
		hostnames := make([]gatewayv1.Hostname, 0, len(spec.Hosts))
		for i, h := range spec.Hosts {
			if h == "*" {
				continue
			}
			if errs := validation.IsWildcardDNS1123Subdomain(h); len(errs) > 0 && len(validation.IsDNS1123Subdomain(h)) > 0 {
				return nil, nil, userError(ReasonUnsupported, "spec.hosts[%d] %q is not a Gateway API hostname: %s", i, h, strings.Join(errs, "; "))
			}
			hostnames = append(hostnames, gatewayv1.Hostname(h))
		}
		if len(hostnames) == 0 {
			hostnames = nil
		}
		return gateways, hostnames, nil
	}
	var services []gatewayv1.ParentReference
	for i, h := range spec.Hosts {
		name, _, _ := strings.Cut(h, ".")
		if len(validation.IsDNS1035Label(name)) > 0 {
			return nil, nil, userError(ReasonUnsupported, "spec.hosts[%d] %q does not name a Service: for mesh traffic GatewayAPIRouteExecutor attaches the HTTPRoute to the Service of each host (GAMMA); use the Service's name", i, h)
		}
		ref := gatewayv1.ParentReference{Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")), Name: gatewayv1.ObjectName(name)}
		if !slices.ContainsFunc(services, func(s gatewayv1.ParentReference) bool { return s.Name == ref.Name }) {
			services = append(services, ref)
		}
	}
	return services, nil, nil
}

// httpRouteMatch translates one match. Gateway API matches a path prefix
// by whole path segments and has no header prefix: a header or query
// prefix becomes a regular expression.
func httpRouteMatch(m v1alpha1.HTTPMatchRequest, at string) (gatewayv1.HTTPRouteMatch, error) {
	out := gatewayv1.HTTPRouteMatch{Path: pathMatch(gatewayv1.PathMatchPathPrefix, "/")}
	if u := m.URI; u != nil {
		switch {
		case u.Exact != "":
			out.Path = pathMatch(gatewayv1.PathMatchExact, u.Exact)
		case u.Prefix != "":
			out.Path = pathMatch(gatewayv1.PathMatchPathPrefix, u.Prefix)
		case u.Regex != "":
			out.Path = pathMatch(gatewayv1.PathMatchRegularExpression, u.Regex)
		}
	}
	for _, name := range sortedKeys(m.Headers) {
		v := m.Headers[name]
		kind, value := matchOf(v)
		out.Headers = append(out.Headers, gatewayv1.HTTPHeaderMatch{Type: ptr.To(gatewayv1.HeaderMatchType(kind)), Name: gatewayv1.HTTPHeaderName(name), Value: value})
	}
	if m.Cookie != nil {
		out.Headers = append(out.Headers, gatewayv1.HTTPHeaderMatch{Type: ptr.To(gatewayv1.HeaderMatchRegularExpression), Name: "cookie", Value: cookieRegex(m.Cookie)})
	}
	for _, name := range sortedKeys(m.QueryParams) {
		kind, value := matchOf(m.QueryParams[name])
		out.QueryParams = append(out.QueryParams, gatewayv1.HTTPQueryParamMatch{Type: ptr.To(gatewayv1.QueryParamMatchType(kind)), Name: gatewayv1.HTTPHeaderName(name), Value: value})
	}
	if m.Method != nil {
		if m.Method.Exact == "" {
			return out, userError(ReasonUnsupported, "%s.method: Gateway API matches a method exactly; use method.exact", at)
		}
		out.Method = ptr.To(gatewayv1.HTTPMethod(m.Method.Exact))
	}
	return out, nil
}

func pathMatch(kind gatewayv1.PathMatchType, value string) *gatewayv1.HTTPPathMatch {
	return &gatewayv1.HTTPPathMatch{Type: ptr.To(kind), Value: ptr.To(value)}
}

// matchOf is a string match as Gateway API's Exact or RegularExpression.
func matchOf(m v1alpha1.StringMatch) (string, string) {
	switch {
	case m.Exact != "":
		return "Exact", m.Exact
	case m.Prefix != "":
		return "RegularExpression", "^" + regexp.QuoteMeta(m.Prefix) + ".*"
	default:
		return "RegularExpression", m.Regex
	}
}

// backendRef is a destination's Service — the subset's own when it names
// one — on the destination's port: the one named, or the Destination's
// only port.
func backendRef(d v1alpha1.RouteDestination, destinations map[string]*v1alpha1.Destination, at string) (gatewayv1.BackendObjectReference, error) {
	dest, ok := destinations[d.Destination]
	if !ok {
		return gatewayv1.BackendObjectReference{}, userError(ReasonDestinationMissing, "Destination %s (%s.destination) was not observed: a policy may not add destinations under GatewayAPIRouteExecutor", d.Destination, at)
	}
	port := d.Port
	if port == 0 {
		if len(dest.Spec.Ports) != 1 {
			return gatewayv1.BackendObjectReference{}, userError(ReasonUnsupported, "%s.port: Destination %s has %d ports; name the one to route to", at, d.Destination, len(dest.Spec.Ports))
		}
		port = dest.Spec.Ports[0].Port
	}
	name := d.Destination
	if d.Subset != "" {
		name = subsetService(d.Destination, d.Subset)
	}
	return gatewayv1.BackendObjectReference{
		Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")),
		Name: gatewayv1.ObjectName(name), Port: ptr.To(port),
	}, nil
}

// gatewayDuration renders a duration in Gateway API's format: up to four
// parts of hours, minutes, seconds and milliseconds, e.g. 1m30s.
func gatewayDuration(d time.Duration) gatewayv1.Duration {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	if b.Len() == 0 {
		return "1ms"
	}
	return gatewayv1.Duration(b.String())
}

var _ router = gatewayAPIRouter{}
