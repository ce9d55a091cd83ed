package webhook

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// +kubebuilder:rbac:groups=kubist.io,resources=projects;clusters;virtualclusters;applications;destinations;routes;canaryreleases;experiments;policies,verbs=get;list;watch

// reference is a parent or sibling an object names.
type reference struct {
	path *field.Path
	obj  client.Object
	key  types.NamespacedName
	kind string
}

// referenceWarnings says which parents and siblings an object names that do
// not exist yet. They are warnings, not denials, so that kubectl apply -f
// dir/ and GitOps tools work in any order.
func (a *Admission) referenceWarnings(ctx context.Context, obj v1alpha1.Object) []string {
	if a.Reader == nil {
		return nil
	}
	spec := field.NewPath("spec")
	ns := obj.GetNamespace()
	var refs []reference
	add := func(path *field.Path, target client.Object, kind, namespace, name string) {
		if name != "" {
			refs = append(refs, reference{path: path, obj: target, kind: kind, key: types.NamespacedName{Namespace: namespace, Name: name}})
		}
	}
	switch o := obj.(type) {
	case *v1alpha1.Cluster:
		add(spec.Child("project"), &v1alpha1.Project{}, "Project", "", o.Spec.Project)
	case *v1alpha1.VirtualCluster:
		add(spec.Child("cluster"), &v1alpha1.Cluster{}, "Cluster", "", o.Spec.Cluster)
	case *v1alpha1.Destination:
		add(spec.Child("application"), &v1alpha1.Application{}, "Application", ns, o.Spec.Application)
	case *v1alpha1.Route:
		seen := map[string]bool{}
		for i, rule := range o.Spec.HTTP {
			for j, d := range rule.Route {
				if !seen[d.Destination] {
					seen[d.Destination] = true
					add(spec.Child("http").Index(i).Child("route").Index(j).Child("destination"), &v1alpha1.Destination{}, "Destination", ns, d.Destination)
				}
			}
		}
	case *v1alpha1.CanaryRelease:
		add(spec.Child("route"), &v1alpha1.Route{}, "Route", ns, o.Spec.Route)
		add(spec.Child("destination"), &v1alpha1.Destination{}, "Destination", ns, o.Spec.Destination)
	case *v1alpha1.Experiment:
		add(spec.Child("route"), &v1alpha1.Route{}, "Route", ns, o.Spec.Route)
		add(spec.Child("destination"), &v1alpha1.Destination{}, "Destination", ns, o.Spec.Destination)
	}
	var warnings []string
	for _, r := range refs {
		// Only whether it exists matters: no copy out of the cache, and
		// the object read is never changed.
		err := a.Reader.Get(ctx, r.key, r.obj, client.UnsafeDisableDeepCopy)
		switch {
		case apierrors.IsNotFound(err):
			warnings = append(warnings, fmt.Sprintf("%s: %s %q does not exist yet; the %s waits for it", r.path, r.kind, r.key.Name, KindOf(obj)))
		case err != nil:
			warnings = append(warnings, fmt.Sprintf("%s: could not check %s %q: %v", r.path, r.kind, r.key.Name, err))
		}
	}
	return warnings
}

// ValidateDelete refuses to delete a Project, Cluster or VirtualCluster
// that still has children, naming them, unless the object carries the
// annotation kubist.io/delete-children: "true".
func (a *Admission) ValidateDelete(ctx context.Context, obj v1alpha1.Object) error {
	if a.Reader == nil || obj.GetAnnotations()[v1alpha1.AnnotationDeleteChildren] == "true" {
		return nil
	}
	children, err := a.children(ctx, obj)
	if err != nil {
		return fmt.Errorf("list the children of %s %q: %w", KindOf(obj), obj.GetName(), err)
	}
	if len(children) == 0 {
		return nil
	}
	const shown = 10
	list := children
	if len(list) > shown {
		list = append(list[:shown:shown], fmt.Sprintf("and %d more", len(children)-shown))
	}
	noun := "children"
	if len(children) == 1 {
		noun = "child"
	}
	return fmt.Errorf("%s %q still has %d %s: %s; delete them first, or annotate it with %s=true to delete it anyway",
		KindOf(obj), obj.GetName(), len(children), noun, strings.Join(list, ", "), v1alpha1.AnnotationDeleteChildren)
}

// children lists an object's children as Kind/name.
func (a *Admission) children(ctx context.Context, obj v1alpha1.Object) ([]string, error) {
	var out []string
	switch o := obj.(type) {
	case *v1alpha1.Project:
		var list v1alpha1.ClusterList
		if err := a.Reader.List(ctx, &list); err != nil {
			return nil, err
		}
		for _, c := range list.Items {
			if c.Spec.Project == o.Name {
				out = append(out, "Cluster/"+c.Name)
			}
		}
	case *v1alpha1.Cluster:
		var list v1alpha1.VirtualClusterList
		if err := a.Reader.List(ctx, &list); err != nil {
			return nil, err
		}
		for _, vc := range list.Items {
			if vc.Spec.Cluster == o.Name {
				out = append(out, "VirtualCluster/"+vc.Name)
			}
		}
	case *v1alpha1.VirtualCluster:
		ns := o.Spec.Namespace
		if ns == "" {
			ns = o.Name
		}
		for _, l := range []struct {
			kind string
			list client.ObjectList
		}{
			{"Application", &v1alpha1.ApplicationList{}}, {"Destination", &v1alpha1.DestinationList{}},
			{"Route", &v1alpha1.RouteList{}}, {"CanaryRelease", &v1alpha1.CanaryReleaseList{}},
			{"Experiment", &v1alpha1.ExperimentList{}},
		} {
			if err := a.Reader.List(ctx, l.list, client.InNamespace(ns)); err != nil {
				return nil, err
			}
			items, err := metaItems(l.list)
			if err != nil {
				return nil, err
			}
			for _, name := range items {
				out = append(out, l.kind+"/"+name)
			}
		}
	}
	return out, nil
}

// metaItems lists the names of a list's items.
func metaItems(list client.ObjectList) ([]string, error) {
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(items))
	for _, item := range items {
		m, err := meta.Accessor(item)
		if err != nil {
			return nil, err
		}
		names = append(names, m.GetName())
	}
	return names, nil
}
