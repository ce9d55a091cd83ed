package webhook

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/release"
)

// A Route is released by one plan at a time, and while a plan releases it
// in a VirtualCluster nothing else starts a release of it there: the plan
// wins, being the wider intent (its Route's own template waits, saying so
// on its Releasing condition), and admission refuses the other.

// planOverlaps refuses a plan that would release a Route, in a
// VirtualCluster, that another unfinished plan releases there, and warns
// of a Route it names that a VirtualCluster it reaches does not have.
func (a *Admission) planOverlaps(ctx context.Context, p *v1alpha1.ReleasePlan) (field.ErrorList, []string) {
	var plans v1alpha1.ReleasePlanList
	var clusters v1alpha1.ClusterList
	var vcs v1alpha1.VirtualClusterList
	if a.Reader.List(ctx, &plans, client.UnsafeDisableDeepCopy) != nil ||
		a.Reader.List(ctx, &clusters, client.UnsafeDisableDeepCopy) != nil ||
		a.Reader.List(ctx, &vcs, client.UnsafeDisableDeepCopy) != nil {
		return nil, nil
	}
	mine, err := release.Place(p, clusters.Items, vcs.Items)
	if err != nil {
		return nil, nil
	}
	reached := mine.Namespaces(p)
	var warnings []string
	for _, ns := range slices.Sorted(maps.Keys(reached)) {
		for j, route := range p.Spec.Routes {
			var r v1alpha1.Route
			if err := a.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: route}, &r); apierrors.IsNotFound(err) {
				warnings = append(warnings, fmt.Sprintf("spec.routes[%d]: VirtualCluster %s (wave %s) has no Route %s: the plan cannot release it there", j, ns, reached[ns], route))
			}
		}
	}
	for i := range plans.Items {
		other := &plans.Items[i]
		if other.Name == p.Name || other.Status.Phase.Ended() {
			continue
		}
		theirs, err := release.Place(other, clusters.Items, vcs.Items)
		if err != nil {
			continue
		}
		for ns, wave := range theirs.Namespaces(other) {
			if _, ok := reached[ns]; !ok {
				continue
			}
			for j, route := range p.Spec.Routes {
				if slices.Contains(other.Spec.Routes, route) {
					return field.ErrorList{field.Invalid(field.NewPath("spec", "routes").Index(j), route, fmt.Sprintf(
						"ReleasePlan %s (%s) releases Route %s in VirtualCluster %s (wave %s): one plan releases a Route at a time; wait until it ends, or abort it (kubist plan abort %s)",
						other.Name, cmp.Or(other.Status.Phase, v1alpha1.PlanPending), route, ns, wave, other.Name))}, warnings
				}
			}
		}
	}
	return nil, warnings
}

// plannedRoute refuses a CanaryRelease that a plan did not start on a
// Route that an unfinished plan releases in its namespace.
func (a *Admission) plannedRoute(ctx context.Context, c *v1alpha1.CanaryRelease) field.ErrorList {
	var plans v1alpha1.ReleasePlanList
	if a.Reader.List(ctx, &plans, client.UnsafeDisableDeepCopy) != nil {
		return nil
	}
	for i := range plans.Items {
		p := &plans.Items[i]
		if c.Labels[v1alpha1.LabelPlan] == p.Name {
			continue
		}
		if wave, ok := release.Covering(p, c.Namespace, c.Spec.Route); ok {
			return field.ErrorList{field.Invalid(field.NewPath("spec", "route"), c.Spec.Route, fmt.Sprintf(
				"ReleasePlan %s (%s) releases Route %s in this namespace (wave %s): a release of it waits until the plan ends (or kubist plan abort %s)",
				p.Name, cmp.Or(p.Status.Phase, v1alpha1.PlanPending), c.Spec.Route, wave, p.Name))}
		}
	}
	return nil
}
