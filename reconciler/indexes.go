package reconciler

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Field indexes of the manager's cache: each finds the resources that
// name another one.
const (
	indexProject     = "spec.project"
	indexCluster     = "spec.cluster"
	indexApplication = "spec.application"
	indexRoute       = "spec.route"
	indexSecret      = "spec.kubeconfigSecretRef.name"
	indexTargetNS    = "status.targetNamespace"
)

// namesOf indexes the names a resource's spec gives to resources of a
// kind, as its References say.
func namesOf(kind string) client.IndexerFunc {
	return func(o client.Object) []string {
		var names []string
		for _, r := range o.(v1alpha1.Object).References() {
			if r.Kind == kind {
				names = append(names, r.Name)
			}
		}
		return names
	}
}

// indexes registers every field index the executors use.
func indexes() []struct {
	obj     client.Object
	field   string
	extract client.IndexerFunc
} {
	one := func(s string) []string {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	return []struct {
		obj     client.Object
		field   string
		extract client.IndexerFunc
	}{
		{&v1alpha1.Cluster{}, indexProject, namesOf("Project")},
		{&v1alpha1.ReleasePlan{}, indexProject, namesOf("Project")},
		{&v1alpha1.Cluster{}, indexSecret, func(o client.Object) []string {
			if ref := o.(*v1alpha1.Cluster).Spec.KubeconfigSecretRef; ref != nil {
				return one(ref.Name)
			}
			return nil
		}},
		{&v1alpha1.VirtualCluster{}, indexCluster, namesOf("Cluster")},
		{&v1alpha1.VirtualCluster{}, indexTargetNS, func(o client.Object) []string { return one(targetNamespace(o.(*v1alpha1.VirtualCluster))) }},
		{&v1alpha1.Destination{}, indexApplication, namesOf("Application")},
		{&v1alpha1.CanaryRelease{}, indexRoute, namesOf("Route")},
		{&v1alpha1.Experiment{}, indexRoute, namesOf("Route")},
		{&v1alpha1.ReleaseAction{}, indexActionTarget, func(o client.Object) []string {
			t := o.(*v1alpha1.ReleaseAction).Spec.Target
			return one(ActionTargetKey(t.Kind, t.Name))
		}},
	}
}

// childrenOf lists the resources of a kind that match the options, as
// children to trigger.
func (r *Reconciler) childrenOf(ctx context.Context, kind string, list client.ObjectList, opts ...client.ListOption) ([]child, error) {
	// Only the keys are read: the cache's own objects will do.
	if err := r.Client.List(ctx, list, append(opts, client.UnsafeDisableDeepCopy)...); err != nil {
		return nil, err
	}
	var out []child
	err := meta.EachListItem(list, func(o runtime.Object) error {
		obj := o.(client.Object)
		out = append(out, child{kind: kind, key: client.ObjectKeyFromObject(obj)})
		return nil
	})
	return out, err
}
