package reconciler

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// +kubebuilder:rbac:groups=kubist.io,resources=projects;clusters;virtualclusters;applications;destinations;routes;canaryreleases;experiments;releaseplans,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kubist.io,resources=projects/status;clusters/status;virtualclusters/status;applications/status;destinations/status;routes/status;canaryreleases/status;experiments/status;releaseplans/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kubist.io,resources=applications,verbs=create;delete;deletecollection

// projectExecutor (ProjectExecutor): a Project validates and reports, and
// triggers its Clusters.
type projectExecutor struct{ r *Reconciler }

// projectPlan is what a Project's run found: its number of Clusters.
type projectPlan struct{ clusters int }

func (x projectExecutor) Observe(ctx context.Context, _ *scope, p *v1alpha1.Project) (projectPlan, error) {
	var clusters v1alpha1.ClusterList
	if err := x.r.Client.List(ctx, &clusters, client.MatchingFields{indexProject: p.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return projectPlan{}, err
	}
	return projectPlan{clusters: len(clusters.Items)}, nil
}

func (projectExecutor) Propose(_ *scope, _ *v1alpha1.Project, plan projectPlan) (projectPlan, *policies.Input) {
	return plan, &policies.Input{State: map[string]any{"clusters": plan.clusters}}
}

func (projectExecutor) Apply(_ context.Context, _ *scope, _ *v1alpha1.Project, plan projectPlan, _ *Decision) (projectPlan, error) {
	return plan, nil
}

func (projectExecutor) Status(_ *scope, p *v1alpha1.Project, plan projectPlan) (string, error) {
	p.Status.Clusters = int32(plan.clusters)
	return fmt.Sprintf("%d clusters", plan.clusters), nil
}

func (x projectExecutor) Children(ctx context.Context, p *v1alpha1.Project) ([]child, error) {
	clusters, err := x.r.childrenOf(ctx, "Cluster", &v1alpha1.ClusterList{}, client.MatchingFields{indexProject: p.Name})
	if err != nil {
		return nil, err
	}
	plans, err := x.r.childrenOf(ctx, "ReleasePlan", &v1alpha1.ReleasePlanList{}, client.MatchingFields{indexProject: p.Name})
	return append(clusters, plans...), err
}

func projectKind(r *Reconciler) *kind[*v1alpha1.Project] {
	return &kind[*v1alpha1.Project]{
		name:      "Project",
		newObject: func() *v1alpha1.Project { return &v1alpha1.Project{} },
		executors: map[string]implementation[*v1alpha1.Project]{"ProjectExecutor": phases(projectExecutor{r})},
	}
}
