package reconciler

import (
	"context"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// applicationKind: an Application observes its Deployments — versions
// (the version label), replicas and ready replicas — into its status.
func applicationKind(rc *Reconciler) *kind[*v1alpha1.Application] {
	return &kind[*v1alpha1.Application]{
		name:      "Application",
		newObject: func() *v1alpha1.Application { return &v1alpha1.Application{} },
		execute: func(ctx context.Context, r *run, a *v1alpha1.Application) error {
			p, err := rc.placementOf(ctx, a.Namespace)
			if err != nil {
				return err
			}
			deployments, err := deploymentsOf(ctx, p, a)
			if err != nil {
				return err
			}
			label := orDefault(a.Spec.VersionLabel, "version")
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
			}
			versions := make([]v1alpha1.ApplicationVersion, 0, len(byVersion))
			summary := make([]string, 0, len(byVersion))
			for _, name := range sortedKeys(byVersion) {
				v := byVersion[name]
				versions = append(versions, *v)
				summary = append(summary, fmt.Sprintf("%s %d/%d ready", orDefault(name, "(no "+label+" label)"), v.ReadyReplicas, v.Replicas))
			}
			if _, err := r.policies(ctx, policies.Input{State: map[string]any{"versions": versions}}); err != nil {
				return err
			}
			a.Status.Versions = versions
			if len(deployments) == 0 {
				return userError(ReasonNoDeployments, "no Deployment in namespace %s on %s matches the selector %s",
					p.namespace, p.target, selectorString(applicationSelector(a)))
			}
			r.readyMessage = "versions: " + strings.Join(summary, ", ")
			return nil
		},
		children: func(ctx context.Context, a *v1alpha1.Application) ([]child, error) {
			// Destinations derive their subsets from the versions.
			return rc.childrenOf(ctx, "Destination", &v1alpha1.DestinationList{},
				client.InNamespace(a.Namespace), client.MatchingFields{indexApplication: a.Name})
		},
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
