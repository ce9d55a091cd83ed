// Package tree arranges Kubist resources the way people read them:
// Project → Cluster → VirtualCluster → its Applications, Destinations and
// Routes, each Route's CanaryReleases and Experiments. `kubist tree`
// draws it as text and `kubist dashboard` in the browser.
package tree

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Objects are the resources a tree is made of, by kind (the kinds of
// v1alpha1.Tree).
type Objects map[string][]v1alpha1.Object

// Read lists every kind of the tree.
func Read(ctx context.Context, c client.Reader) (Objects, error) {
	o := Objects{}
	for _, k := range v1alpha1.Tree {
		list := k.NewList()
		if err := c.List(ctx, list); err != nil {
			return nil, fmt.Errorf("list Kubist resources: %w", err)
		}
		if err := meta.EachListItem(list, func(item runtime.Object) error {
			o[k.Kind] = append(o[k.Kind], item.(v1alpha1.Object))
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Node is one resource of the tree and the resources beneath it. The
// group of resources whose parent does not exist has no Object.
type Node struct {
	Kind     string
	Object   v1alpha1.Object
	Detail   string
	Children []*Node
}

// Orphans is the Kind of the group of resources whose parent does not
// exist (yet).
const Orphans = "(resources whose parent does not exist)"

// Build arranges the objects as v1alpha1.Tree says they hang together:
// one root per resource of a kind without a parent (a Project), every
// other resource under its parent, children grouped by kind in the tree's
// order, and the orphans' group last when there are any.
func Build(o Objects) []*Node {
	type key struct{ kind, namespace, name string }
	nodes := map[key]*Node{}
	for _, k := range v1alpha1.Tree {
		for _, obj := range o[k.Kind] {
			nodes[key{k.Kind, obj.GetNamespace(), obj.GetName()}] = &Node{Kind: k.Kind, Object: obj, Detail: detail(obj)}
		}
	}
	var roots []*Node
	orphans := &Node{Kind: Orphans}
	for _, k := range v1alpha1.Tree {
		for _, obj := range o[k.Kind] {
			n := nodes[key{k.Kind, obj.GetNamespace(), obj.GetName()}]
			if k.Parent == "" {
				roots = append(roots, n)
				continue
			}
			parent, ok := nodes[key{k.Parent, parentNamespace(k.Parent, obj), parentName(obj)}]
			if !ok {
				orphans.Children = append(orphans.Children, n)
				continue
			}
			parent.Children = append(parent.Children, n)
		}
	}
	if len(orphans.Children) > 0 {
		roots = append(roots, orphans)
	}
	return roots
}

// parentNamespace is where an object's parent of that kind lives: the
// object's own namespace for a namespaced parent, none for a cluster-scoped
// one.
func parentNamespace(kind string, obj v1alpha1.Object) string {
	if k, _ := v1alpha1.TreeKind(kind); k.Namespaced {
		return obj.GetNamespace()
	}
	return ""
}

// detail is what a line of the tree says of a resource besides its name;
// a frozen level (kubist freeze) says so first.
func detail(obj v1alpha1.Object) string {
	d := kindDetail(obj)
	if reason, ok := obj.GetAnnotations()[v1alpha1.AnnotationFreeze]; ok {
		d = strings.TrimSpace("FROZEN (" + reason + ")  " + d)
	}
	return d
}

func kindDetail(obj v1alpha1.Object) string {
	switch o := obj.(type) {
	case *v1alpha1.Cluster:
		if istio := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionIstioReady); istio != nil {
			return fmt.Sprintf("IstioReady=%s (%s)", istio.Status, istio.Reason)
		}
	case *v1alpha1.VirtualCluster:
		return "namespace " + o.Status.Namespace
	case *v1alpha1.Application:
		return versionsDetail(o)
	case *v1alpha1.Destination:
		return "subsets " + strings.Join(o.Status.Subsets, ", ")
	case *v1alpha1.Route:
		return routeDetail(o)
	case *v1alpha1.CanaryRelease:
		return canaryDetail(o)
	case *v1alpha1.Experiment:
		return experimentDetail(o)
	case *v1alpha1.ReleasePlan:
		return planDetail(o)
	}
	return ""
}

// parentName is the name of the parent an object's references name (see
// v1alpha1.Tree); namespaced kinds without one sit under the VirtualCluster
// of their namespace, which is named as the namespace.
func parentName(obj v1alpha1.Object) string {
	if parent, ok := v1alpha1.ParentOf(obj); ok {
		return parent.Name
	}
	return obj.GetNamespace()
}

// routeDetail names the object a Route applied and its stable subsets,
// marking those its spec does not name yet ("stable v2, spec v1").
func routeDetail(r *v1alpha1.Route) string {
	detail := "VirtualService " + r.Status.VirtualService
	if r.Status.HTTPRoute != "" {
		detail = "HTTPRoute " + r.Status.HTTPRoute
	}
	var stable []string
	for _, e := range r.Status.Stable {
		s := fmt.Sprintf("%s %s: %s", e.Rule, e.Destination, e.Subset)
		if e.Subset != e.SpecSubset {
			s += fmt.Sprintf(" (spec %s)", e.SpecSubset)
		}
		stable = append(stable, s)
	}
	if len(stable) > 0 {
		detail += "  stable " + strings.Join(stable, ", ")
	}
	return detail
}

func canaryDetail(c *v1alpha1.CanaryRelease) string {
	var policies []string
	for _, p := range c.Spec.Policies {
		policies = append(policies, p.Name)
	}
	detail := fmt.Sprintf("%s  %s", Phase(string(c.Status.Phase)), Weights(c.Status.Weights))
	if s := c.Status.Served; s != nil {
		// What the mesh reported serving, measured after the last step.
		detail += "  served " + s.Summary
	}
	detail = fmt.Sprintf("%s  [%s]", detail, strings.Join(policies, ", "))
	if plan := c.Labels[v1alpha1.LabelPlan]; plan != "" {
		detail += fmt.Sprintf("  plan %s, wave %s", plan, c.Labels[v1alpha1.LabelWave])
	}
	return detail
}

// planDetail is a plan's subset and progress.
func planDetail(p *v1alpha1.ReleasePlan) string {
	subset := p.Status.Subset
	if subset == "" {
		subset = p.Spec.Subset
	}
	return fmt.Sprintf("%s of %s  %s", subset, strings.Join(p.Spec.Routes, ", "), p.Status.Summary)
}

func experimentDetail(e *v1alpha1.Experiment) string {
	s := fmt.Sprintf("%s  %s", Phase(string(e.Status.Phase)), Weights(e.Status.Weights))
	if e.Status.Winner != "" {
		s += "  winner " + e.Status.Winner
	}
	return s
}

func versionsDetail(a *v1alpha1.Application) string {
	var parts []string
	for _, v := range a.Status.Versions {
		part := fmt.Sprintf("%s %d/%d ready", v.Name, v.ReadyReplicas, v.Replicas)
		switch {
		case v.ScaledDown:
			part += " (retired, scaled down)"
		case v.Retired != nil:
			part += " (retired)"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// Weights renders a release's weights, e.g. "v1 80% / v2 20%".
func Weights(w map[string]int32) string {
	if len(w) == 0 {
		return "no weights yet"
	}
	return v1alpha1.SplitString(w)
}

// Phase is a release's phase, Pending before it has one.
func Phase(s string) string {
	if s == "" {
		return "Pending"
	}
	return s
}
