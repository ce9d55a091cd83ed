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
		key := map[string]string{"Project": "project", "Cluster": "cluster", "VirtualCluster": "virtualCluster"}[l.Kind]
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
