package reconciler

import (
	"cmp"
	"context"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// DefaultShard is the shard of the Projects without the kubist.io/shard
// label, and of the resources whose Project cannot be found yet (its
// manager reports what is missing).
const DefaultShard = "default"

// ShardOf is the shard a Project belongs to.
func ShardOf(p *v1alpha1.Project) string {
	return cmp.Or(p.Labels[v1alpha1.LabelShard], DefaultShard)
}

// owns says whether this manager runs obj: every object without a shard;
// with one, the objects under the shard's Projects. joined says that obj
// is a Project this manager runs for the first time, so that its run
// passes on to its whole tree, paced as a root run's pass (a Project
// whose label moved it here).
func (r *Reconciler) owns(ctx context.Context, obj v1alpha1.Object) (owned, joined bool) {
	if r.Shard == "" {
		return true, false
	}
	if p, ok := obj.(*v1alpha1.Project); ok {
		owned = ShardOf(p) == r.Shard
		if !owned {
			r.ownedProjects.Delete(p.Name)
			return false, false
		}
		_, seen := r.ownedProjects.LoadOrStore(p.Name, struct{}{})
		return true, !seen
	}
	project, ok := r.projectOf(ctx, obj)
	if !ok {
		return r.Shard == DefaultShard, false
	}
	return r.ownsProject(ctx, project), false
}

// ownsProject says whether the named Project is this manager's; a Project
// that does not exist is the default shard's.
func (r *Reconciler) ownsProject(ctx context.Context, name string) bool {
	if r.Shard == "" {
		return true
	}
	p := &v1alpha1.Project{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, p, client.UnsafeDisableDeepCopy); err != nil {
		return r.Shard == DefaultShard
	}
	return ShardOf(p) == r.Shard
}

// projectOf finds the Project above obj through the cache: a Cluster
// names it, a VirtualCluster names its Cluster, and the namespaced kinds
// live in the namespace named after their VirtualCluster.
func (r *Reconciler) projectOf(ctx context.Context, obj v1alpha1.Object) (string, bool) {
	switch o := obj.(type) {
	case *v1alpha1.Cluster:
		return o.Spec.Project, o.Spec.Project != ""
	case *v1alpha1.VirtualCluster:
		return r.projectOfCluster(ctx, o.Spec.Cluster)
	}
	if obj.GetNamespace() == "" {
		return "", false
	}
	vc := &v1alpha1.VirtualCluster{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: obj.GetNamespace()}, vc, client.UnsafeDisableDeepCopy); err != nil {
		return "", false
	}
	return r.projectOfCluster(ctx, vc.Spec.Cluster)
}

func (r *Reconciler) projectOfCluster(ctx context.Context, name string) (string, bool) {
	c := &v1alpha1.Cluster{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, c, client.UnsafeDisableDeepCopy); err != nil {
		return "", false
	}
	return c.Spec.Project, c.Spec.Project != ""
}
