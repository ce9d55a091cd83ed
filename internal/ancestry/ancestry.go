// Package ancestry walks up the tree from a management namespace: its
// VirtualCluster, that one's Cluster, that one's Project — what a
// release inherits from (notifications, releasePolicies), read by the
// reconciler and by admission alike.
package ancestry

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// Ancestors are the levels above the resources of a management namespace,
// as far as they exist: the reader's own objects (a cache's, read only).
type Ancestors struct {
	VirtualCluster *v1alpha1.VirtualCluster
	Cluster        *v1alpha1.Cluster
	Project        *v1alpha1.Project
}

// Of walks up from a management namespace, which is named after its
// VirtualCluster.
func Of(ctx context.Context, c client.Reader, namespace string) Ancestors {
	var a Ancestors
	vc := &v1alpha1.VirtualCluster{}
	if c.Get(ctx, types.NamespacedName{Name: namespace}, vc, client.UnsafeDisableDeepCopy) != nil {
		return a
	}
	a.VirtualCluster = vc
	cluster := &v1alpha1.Cluster{}
	if c.Get(ctx, types.NamespacedName{Name: vc.Spec.Cluster}, cluster, client.UnsafeDisableDeepCopy) != nil {
		return a
	}
	a.Cluster = cluster
	project := &v1alpha1.Project{}
	if c.Get(ctx, types.NamespacedName{Name: cluster.Spec.Project}, project, client.UnsafeDisableDeepCopy) != nil {
		return a
	}
	a.Project = project
	return a
}

// OfProject is a Project's own level: what a ReleasePlan inherits.
func OfProject(ctx context.Context, c client.Reader, name string) Ancestors {
	project := &v1alpha1.Project{}
	if c.Get(ctx, types.NamespacedName{Name: name}, project, client.UnsafeDisableDeepCopy) != nil {
		return Ancestors{}
	}
	return Ancestors{Project: project}
}

// For is what a release or a plan inherits from: the levels above it
// and, for a release a ReleasePlan started, the plan, which adds
// PlanLockstep last.
func For(ctx context.Context, c client.Reader, obj v1alpha1.Object) []Level {
	if p, ok := obj.(*v1alpha1.ReleasePlan); ok {
		return OfProject(ctx, c, p.Spec.Project).Levels()
	}
	levels := Of(ctx, c, obj.GetNamespace()).Levels()
	if name := obj.GetLabels()[v1alpha1.LabelPlan]; name != "" && obj.GetLabels()[LabelPlanRole] == "" {
		plan := &v1alpha1.ReleasePlan{}
		if c.Get(ctx, types.NamespacedName{Name: name}, plan, client.UnsafeDisableDeepCopy) == nil {
			levels = append(levels, Level{Object: plan, Level: policies.Level{Kind: "ReleasePlan", Name: name,
				Refs: []v1alpha1.PolicyRef{{Name: PlanLockstep}}}})
		}
	}
	return levels
}

// PlanLockstep is the policy a plan adds to its releases' chains.
const PlanLockstep = "PlanLockstep"

// LabelPlanRole is "revert" on the release that sends a Route back to the
// baseline when a plan rolls back a VirtualCluster it promoted: no
// lockstep for it.
const LabelPlanRole = "kubist.io/plan-role"

// Levels are the ancestors from the top (Project first), each with the
// releasePolicies it sets and its stanzas.
func (a Ancestors) Levels() []Level {
	var out []Level
	if a.Project != nil {
		out = append(out, Level{Object: a.Project, Level: policies.Level{Kind: "Project", Name: a.Project.Name, Refs: a.Project.Spec.ReleasePolicies}})
	}
	if a.Cluster != nil {
		out = append(out, Level{Object: a.Cluster, Level: policies.Level{Kind: "Cluster", Name: a.Cluster.Name, Refs: a.Cluster.Spec.ReleasePolicies}})
	}
	if a.VirtualCluster != nil {
		out = append(out, Level{Object: a.VirtualCluster, Level: policies.Level{Kind: "VirtualCluster", Name: a.VirtualCluster.Name, Refs: a.VirtualCluster.Spec.ReleasePolicies}})
	}
	return out
}

// Level is one ancestor, with what a chain needs of it.
type Level struct {
	policies.Level
	Object v1alpha1.Object
}

// PolicyLevels are the levels as the policy chain takes them.
func PolicyLevels(levels []Level) []policies.Level {
	out := make([]policies.Level, len(levels))
	for i, l := range levels {
		out[i] = l.Level
	}
	return out
}

// TreeInput is what a release's policies see of the levels above it
// (input.tree): each one's name, labels and annotations, by kind
// (project, cluster, virtualCluster).
func TreeInput(levels []Level) map[string]any {
	tree := make(map[string]any, len(levels))
	for _, l := range levels {
		key, ok := map[string]string{"Project": "project", "Cluster": "cluster", "VirtualCluster": "virtualCluster"}[l.Kind]
		if !ok {
			continue
		}
		tree[key] = map[string]any{
			"name": l.Name, "labels": stringMap(l.Object.GetLabels()), "annotations": stringMap(l.Object.GetAnnotations()),
		}
	}
	return tree
}

// stringMap is a map of strings as policy input: never null.
func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
