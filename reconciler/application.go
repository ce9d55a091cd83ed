package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// ReasonNoDeployments says that an Application's selector matches no Deployment.
const ReasonNoDeployments = "NoDeployments"

// applicationSelector is an Application's Deployment selector: spec.selector,
// or app=<name>.
func applicationSelector(a *v1alpha1.Application) map[string]string {
	if len(a.Spec.Selector) > 0 {
		return a.Spec.Selector
	}
	return map[string]string{appLabel: a.Name}
}

// applicationExecutor (ApplicationExecutor): an Application observes its
// Deployments — versions (the version label), replicas and ready replicas
// — into its status, and triggers the Destinations that derive their
// subsets from them.
type applicationExecutor struct{ r *Reconciler }

// applicationPlan is what an Application's run found.
type applicationPlan struct {
	placement   *placement
	deployments int
	// scale are the replicas scaleDownRetired writes (application_retire.go).
	scale    []scaling
	versions []v1alpha1.ApplicationVersion
	summary  []string
	// columns is the status's summary: "v1 2/2, v2 1/2".
	columns []string
}

func (x applicationExecutor) Observe(ctx context.Context, s *scope, a *v1alpha1.Application) (applicationPlan, error) {
	p, err := x.r.placementOf(ctx, a.Namespace)
	if err != nil {
		return applicationPlan{}, err
	}
	deployments, err := deploymentsOf(ctx, p, a)
	if err != nil {
		return applicationPlan{}, err
	}
	label := cmp.Or(a.Spec.VersionLabel, "version")
	byVersion := map[string]*v1alpha1.ApplicationVersion{}
	for _, d := range deployments {
		name := d.Labels[label]
		if name == "" {
			name = d.Spec.Template.Labels[label]
		}
		v, ok := byVersion[name]
		if !ok {
			v = &v1alpha1.ApplicationVersion{Name: name, Deployment: d.Name}
			byVersion[name] = v
		}
		if d.Spec.Replicas != nil {
			v.Replicas += *d.Spec.Replicas
		}
		v.ReadyReplicas += d.Status.ReadyReplicas
		if v.Created == nil || v.Created.Before(&d.CreationTimestamp) {
			v.Created = d.CreationTimestamp.DeepCopy()
		}
	}
	plan := applicationPlan{placement: p, deployments: len(deployments),
		versions: make([]v1alpha1.ApplicationVersion, 0, len(byVersion)), summary: make([]string, 0, len(byVersion)),
		columns: make([]string, 0, len(byVersion))}
	for _, name := range sortedKeys(byVersion) {
		plan.versions = append(plan.versions, *byVersion[name])
	}
	ret, err := x.r.retirementOf(ctx, a)
	if err != nil {
		return plan, err
	}
	retiredVersions(plan.versions, deployments, label, ret)
	var params struct {
		ScaleDownRetired string `json:"scaleDownRetired"`
	}
	_ = fromMap(s.params, &params)
	after, _ := time.ParseDuration(params.ScaleDownRetired)
	var next time.Duration
	plan.scale, next = planScaling(deployments, label, ret, after, s.now)
	s.requeueAfter(next)
	for _, v := range plan.versions {
		state := ""
		switch {
		case v.ScaledDown:
			state = " retired, scaled down"
		case v.Retired != nil:
			state = " retired"
		}
		plan.summary = append(plan.summary, fmt.Sprintf("%s %d/%d ready%s", cmp.Or(v.Name, "(no "+label+" label)"), v.ReadyReplicas, v.Replicas, state))
		plan.columns = append(plan.columns, fmt.Sprintf("%s %d/%d%s", cmp.Or(v.Name, "-"), v.ReadyReplicas, v.Replicas, state))
	}
	return plan, nil
}

func (applicationExecutor) Propose(_ *scope, _ *v1alpha1.Application, plan applicationPlan) (applicationPlan, *policies.Input) {
	return plan, &policies.Input{State: map[string]any{"versions": plan.versions}}
}

// Apply writes nothing but the replicas of retired versions, with
// scaleDownRetired: an Application otherwise only observes.
func (applicationExecutor) Apply(ctx context.Context, s *scope, _ *v1alpha1.Application, plan applicationPlan, _ *Decision) (applicationPlan, error) {
	return plan, applyScaling(ctx, s, plan.placement, plan.scale)
}

func (applicationExecutor) Status(_ *scope, a *v1alpha1.Application, plan applicationPlan) (string, error) {
	a.Status.Versions, a.Status.Summary = plan.versions, strings.Join(plan.columns, ", ")
	if plan.deployments == 0 {
		return "", userError(ReasonNoDeployments, "no Deployment in namespace %s on %s matches the selector %s",
			plan.placement.namespace, plan.placement.target, selectorString(applicationSelector(a)))
	}
	return "versions: " + strings.Join(plan.summary, ", "), nil
}

func (x applicationExecutor) Children(ctx context.Context, a *v1alpha1.Application) ([]child, error) {
	// Destinations derive their subsets from the versions.
	return x.r.childrenOf(ctx, "Destination", &v1alpha1.DestinationList{},
		client.InNamespace(a.Namespace), client.MatchingFields{indexApplication: a.Name})
}

// routesOfApplication maps an Application (or a Destination) to the
// Routes whose release template releases its versions (the Destination
// it names is the Application's, or that one). A watch, not the Application's run, brings them: their
// run reads the Application's status from the cache, which the watch's
// event has updated first.
func (r *Reconciler) routesOfApplication(ctx context.Context, o client.Object) []reconcile.Request {
	var dests v1alpha1.DestinationList
	if d, ok := o.(*v1alpha1.Destination); ok {
		// A Destination's own subsets changed.
		dests.Items = []v1alpha1.Destination{*d}
	} else if err := r.Client.List(ctx, &dests, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexApplication: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil || len(dests.Items) == 0 {
		return nil
	}
	var routes v1alpha1.RouteList
	if err := r.Client.List(ctx, &routes, client.InNamespace(o.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, route := range routes.Items {
		t := route.Spec.Release
		if t != nil && slices.ContainsFunc(dests.Items, func(d v1alpha1.Destination) bool { return d.Name == t.Destination }) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&route)})
		}
	}
	return out
}

func applicationKind(r *Reconciler) *kind[*v1alpha1.Application] {
	return &kind[*v1alpha1.Application]{
		name:      "Application",
		newObject: func() *v1alpha1.Application { return &v1alpha1.Application{} },
		executors: map[string]implementation[*v1alpha1.Application]{"ApplicationExecutor": phases(applicationExecutor{r})},
	}
}

// deploymentsOf lists an Application's Deployments on its target, by name.
// They are the cache's own objects (read, never written).
func deploymentsOf(ctx context.Context, p *placement, a *v1alpha1.Application) ([]appsv1.Deployment, error) {
	var list appsv1.DeploymentList
	if err := p.target.Client.List(ctx, &list, client.InNamespace(p.namespace), client.MatchingLabels(applicationSelector(a)), client.UnsafeDisableDeepCopy); err != nil {
		return nil, applyError("Deployments in "+p.namespace, err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

func selectorString(sel map[string]string) string {
	parts := make([]string, 0, len(sel))
	for _, k := range sortedKeys(sel) {
		parts = append(parts, k+"="+sel[k])
	}
	return strings.Join(parts, ",")
}
