package webhook

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
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
	var refs []reference
	for _, r := range obj.References() {
		target, ok := v1alpha1.TreeKind(r.Kind)
		if !ok {
			continue
		}
		namespace := ""
		if target.Namespaced {
			namespace = obj.GetNamespace()
		}
		refs = append(refs, reference{path: fieldPath(spec, r.Field), obj: target.New(), kind: r.Kind, key: types.NamespacedName{Namespace: namespace, Name: r.Name}})
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
// (the kinds v1alpha1.Tree marks Protected) that still has children,
// naming them, unless the object carries the annotation
// kubist.io/delete-children: "true"; and warns of deleting a CanaryRelease
// that still shifts traffic.
func (a *Admission) ValidateDelete(ctx context.Context, obj v1alpha1.Object) ([]string, error) {
	if c, ok := obj.(*v1alpha1.CanaryRelease); ok {
		return shiftingWarning(c), nil
	}
	if a.Reader == nil || obj.GetAnnotations()[v1alpha1.AnnotationDeleteChildren] == "true" {
		return nil, nil
	}
	if k, ok := v1alpha1.TreeKind(KindOf(obj)); !ok || !k.Protected {
		return nil, nil
	}
	children, err := a.children(ctx, obj)
	if err != nil {
		return nil, fmt.Errorf("list the children of %s %q: %w", KindOf(obj), obj.GetName(), err)
	}
	if len(children) == 0 {
		return nil, nil
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
	return nil, fmt.Errorf("%s %q still has %d %s: %s; delete them first, or annotate it with %s=true to delete it anyway",
		KindOf(obj), obj.GetName(), len(children), noun, strings.Join(list, ", "), v1alpha1.AnnotationDeleteChildren)
}

// shiftingWarning warns of deleting a release whose canary still gets
// traffic: its Route sends all of it to the stable subset at once.
func shiftingWarning(c *v1alpha1.CanaryRelease) []string {
	canary := c.Status.Weights[c.Spec.Subset]
	if c.Status.Baseline == "" || canary == 0 || c.Status.Phase.Ended() {
		return nil
	}
	return []string{fmt.Sprintf("CanaryRelease %s is %s with %s: deleting it sends all of that traffic to Route %s's stable subset %s at once; to end it first, kubist canary promote or abort %s",
		c.Name, c.Status.Phase, v1alpha1.SplitString(c.Status.Weights), c.Spec.Route, c.Status.Baseline, c.Name)}
}

// children lists an object's children as Kind/name: the resources of the
// kinds below it that name it as their parent or, for a VirtualCluster,
// everything in its namespace, which deleting it deletes.
func (a *Admission) children(ctx context.Context, obj v1alpha1.Object) ([]string, error) {
	var out []string
	kinds := v1alpha1.ChildKinds(KindOf(obj))
	var opts []client.ListOption
	byNamespace := false
	if vc, ok := obj.(*v1alpha1.VirtualCluster); ok {
		ns := vc.Spec.Namespace
		if ns == "" {
			ns = vc.Name
		}
		kinds, opts, byNamespace = v1alpha1.NamespacedKinds(), []client.ListOption{client.InNamespace(ns)}, true
	}
	for _, k := range kinds {
		list := k.NewList()
		if err := a.Reader.List(ctx, list, opts...); err != nil {
			return nil, err
		}
		err := meta.EachListItem(list, func(item runtime.Object) error {
			child, ok := item.(v1alpha1.Object)
			if !ok {
				return fmt.Errorf("a %T is not a Kubist object", item)
			}
			if parent, named := v1alpha1.ParentOf(child); byNamespace || (named && parent.Kind == KindOf(obj) && parent.Name == obj.GetName()) {
				out = append(out, k.Kind+"/"+child.GetName())
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fieldPath turns a spec field such as http[0].route[1].destination into
// a path below spec.
func fieldPath(spec *field.Path, dotted string) *field.Path {
	p := spec
	for _, part := range strings.Split(dotted, ".") {
		name, rest, _ := strings.Cut(part, "[")
		p = p.Child(name)
		for rest != "" {
			index, after, _ := strings.Cut(rest, "]")
			if i, err := strconv.Atoi(index); err == nil {
				p = p.Index(i)
			}
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return p
}
