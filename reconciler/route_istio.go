// The Istio router: a Route as an Istio VirtualService
// (networking.istio.io/v1) — RouteExecutor, the default.

package reconciler

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	istioapi "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

var virtualServiceObject = managedObject[*networkingv1.VirtualService]{
	kind:    "VirtualService",
	empty:   func() *networkingv1.VirtualService { return &networkingv1.VirtualService{} },
	differs: func(cur, want *networkingv1.VirtualService) bool { return !proto.Equal(&cur.Spec, &want.Spec) },
	update:  func(cur, want *networkingv1.VirtualService) { want.Spec.DeepCopyInto(&cur.Spec) },
}

// istioRouter applies the composed Route as a VirtualService of the
// Route's name in its VirtualCluster's namespace.
type istioRouter struct{}

func (istioRouter) kind() string { return "VirtualService" }

func (istioRouter) empty() client.Object { return &networkingv1.VirtualService{} }

func (istioRouter) applied(status *v1alpha1.RouteStatus) *string { return &status.VirtualService }

func (istioRouter) conditions() []string { return nil }

// observe needs nothing more: a VirtualService names hosts, not ports.
func (istioRouter) observe(context.Context, *Reconciler, *v1alpha1.Route, *routePlan) error {
	return nil
}

// verify has nothing to read: istiod reports nothing on a VirtualService.
func (istioRouter) verify(context.Context, *scope, *v1alpha1.Route, *routePlan) error { return nil }

func (istioRouter) desired(route *v1alpha1.Route, plan *routePlan) (client.Object, error) {
	p := plan.placement
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{
		Name: route.Name, Namespace: p.namespace, Labels: ownerLabels("Route", route, p.vc.Name),
	}}
	return vs, virtualServiceSpec(plan.spec, p.namespace, &vs.Spec)
}

func (x istioRouter) apply(ctx context.Context, s *scope, route *v1alpha1.Route, plan *routePlan) error {
	vs, err := x.desired(route, plan)
	if err != nil {
		return err
	}
	if err := ensure(ctx, s, plan.placement.target, virtualServiceObject, vs.(*networkingv1.VirtualService)); err != nil {
		return err
	}
	plan.applied = plan.placement.namespace + "/" + route.Name
	return nil
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
