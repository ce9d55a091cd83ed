// Admission's check on the target cluster: the objects a Route or a
// Destination would make its cluster hold, composed as their executors
// compose them and submitted there as a server-side dry run, so that the
// cluster's own admission (Istio's validating webhook, the CRDs' schemas)
// judges them before the resource is stored.

package reconciler

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// CheckOnTarget composes the objects a Route (its VirtualService or
// HTTPRoute, with the stable subsets and the live weights of its releases)
// or a Destination (its Service and DestinationRule) would make its target
// cluster hold, and submits each there as a dry run: nothing is stored.
// It returns the cluster's refusals, each naming the object and the
// cluster with the cluster's own message; an error when the check could
// not be made (no VirtualCluster yet, the namespace
// or the API missing there, the cluster unreachable). Other kinds make
// nothing on a cluster: nil, nil.
func (r *Reconciler) CheckOnTarget(ctx context.Context, obj v1alpha1.Object) ([]string, error) {
	var objs []client.Object
	var p *placement
	var err error
	switch o := obj.(type) {
	case *v1alpha1.Route:
		p, objs, err = r.routeObjects(ctx, o)
	case *v1alpha1.Destination:
		p, objs, err = r.destinationObjects(ctx, o)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var refusals []string
	for _, o := range objs {
		refused, err := dryRun(ctx, p.target, o)
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s on %s: %w", r.kindOf(o), o.GetNamespace(), o.GetName(), p.target, err)
		}
		if refused != "" {
			refusals = append(refusals, fmt.Sprintf("%s %s/%s on %s: %s", r.kindOf(o), o.GetNamespace(), o.GetName(), p.target, refused))
		}
	}
	return refusals, nil
}

// routeObjects is what a Route's executor would apply, before its chain.
func (r *Reconciler) routeObjects(ctx context.Context, route *v1alpha1.Route) (*placement, []client.Object, error) {
	name := ""
	if route.Spec.Executor != nil {
		name = strings.TrimPrefix(route.Spec.Executor.Name, "ReadOnly")
	}
	router, ok := routers[name]
	if !ok {
		return nil, nil, fmt.Errorf("the executor %q applies nothing to check", name)
	}
	p, err := r.placementOf(ctx, route.Namespace)
	if err != nil {
		return nil, nil, err
	}
	plan := routePlan{placement: p}
	if plan.live, err = r.liveWeightsOf(ctx, route); err != nil {
		return nil, nil, err
	}
	if err := router.observe(ctx, r, route, &plan); err != nil {
		return nil, nil, err
	}
	plan.composeSpec(route, metav1.NewMicroTime(time.Now()))
	obj, err := router.desired(route, &plan)
	if err != nil {
		return nil, nil, err
	}
	return p, []client.Object{obj}, nil
}

// destinationObjects is what a Destination's executor would apply with
// the subsets its spec declares (a SubsetDetector's are found later).
func (r *Reconciler) destinationObjects(ctx context.Context, d *v1alpha1.Destination) (*placement, []client.Object, error) {
	p, err := r.placementOf(ctx, d.Namespace)
	if err != nil {
		return nil, nil, err
	}
	app := &v1alpha1.Application{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: d.Spec.Application}, app); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, nil, err
		}
		// Not there yet: its default selector.
		app = &v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Name: d.Spec.Application}}
	}
	service, rule := destinationObjects(d, destinationPlan{placement: p, app: app,
		host: serviceHost(d.Name, p.namespace), subsets: d.Spec.Subsets})
	return p, []client.Object{service, rule}, nil
}

// dryRun submits an object to a target without storing it: created, or
// updated over the one there. It returns the message of a refusal by the
// cluster's admission (a webhook's denial, or the API server's own
// validation), and an error when the cluster could not judge it.
func dryRun(ctx context.Context, t *Target, obj client.Object) (string, error) {
	err := t.Client.Create(ctx, obj, client.DryRunAll)
	if apierrors.IsAlreadyExists(err) {
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			current := obj.DeepCopyObject().(client.Object)
			if err := t.Client.Get(ctx, client.ObjectKeyFromObject(obj), current); err != nil {
				return err
			}
			obj.SetResourceVersion(current.GetResourceVersion())
			return t.Client.Update(ctx, obj, client.DryRunAll)
		})
	}
	if err == nil {
		return "", nil
	}
	// On one line: Istio lists several errors on lines of their own.
	if msg, ok := webhookDenial(err); ok {
		return strings.Join(strings.Fields(msg), " "), nil
	}
	if apierrors.IsInvalid(err) {
		return strings.Join(strings.Fields(err.Error()), " "), nil
	}
	if meta.IsNoMatchError(err) {
		return "", fmt.Errorf("its API is not installed there")
	}
	return "", err
}

// kindOf names an object's kind.
func (r *Reconciler) kindOf(obj client.Object) string {
	gvk, err := apiutil.GVKForObject(obj, r.Client.Scheme())
	if err != nil {
		return fmt.Sprintf("%T", obj)
	}
	return gvk.Kind
}
