package reconciler

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// +kubebuilder:rbac:groups=kubist.io,resources=projects;clusters;virtualclusters;applications;destinations;routes;canaryreleases;experiments,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kubist.io,resources=projects/status;clusters/status;virtualclusters/status;applications/status;destinations/status;routes/status;canaryreleases/status;experiments/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kubist.io,resources=applications,verbs=create;delete;deletecollection

// projectKind: a Project validates and reports, and triggers its Clusters.
func projectKind(rc *Reconciler) *kind[*v1alpha1.Project] {
	return &kind[*v1alpha1.Project]{
		name:      "Project",
		newObject: func() *v1alpha1.Project { return &v1alpha1.Project{} },
		execute: func(ctx context.Context, r *run, p *v1alpha1.Project) error {
			var clusters v1alpha1.ClusterList
			if err := rc.Client.List(ctx, &clusters, client.MatchingFields{indexProject: p.Name}, client.UnsafeDisableDeepCopy); err != nil {
				return err
			}
			p.Status.Clusters = int32(len(clusters.Items))
			if _, err := r.policies(ctx, policies.Input{State: map[string]any{"clusters": len(clusters.Items)}}); err != nil {
				return err
			}
			r.readyMessage = fmt.Sprintf("%d clusters", len(clusters.Items))
			return nil
		},
		children: func(ctx context.Context, p *v1alpha1.Project) ([]child, error) {
			return rc.childrenOf(ctx, "Cluster", &v1alpha1.ClusterList{}, client.MatchingFields{indexProject: p.Name})
		},
	}
}
