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

// Objects are the resources a tree is made of.
type Objects struct {
	Projects        v1alpha1.ProjectList
	Clusters        v1alpha1.ClusterList
	VirtualClusters v1alpha1.VirtualClusterList
	Applications    v1alpha1.ApplicationList
	Destinations    v1alpha1.DestinationList
	Routes          v1alpha1.RouteList
	CanaryReleases  v1alpha1.CanaryReleaseList
	Experiments     v1alpha1.ExperimentList
}

// Lists are the Objects' lists, in the tree's order.
func (o *Objects) Lists() []client.ObjectList {
	return []client.ObjectList{&o.Projects, &o.Clusters, &o.VirtualClusters, &o.Applications, &o.Destinations, &o.Routes, &o.CanaryReleases, &o.Experiments}
}

// Read lists every Kubist resource of the tree.
func Read(ctx context.Context, c client.Reader) (*Objects, error) {
	o := &Objects{}
	for _, l := range o.Lists() {
		if err := c.List(ctx, l); err != nil {
			return nil, fmt.Errorf("list Kubist resources: %w", err)
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

// Build arranges the objects: one root per Project, and the orphans'
// group last when there are any.
func Build(o *Objects) []*Node {
	var roots []*Node
	placed := map[string]bool{}
	mark := func(kind string, obj client.Object) { placed[kind+"/"+obj.GetNamespace()+"/"+obj.GetName()] = true }

	routeNode := func(r *v1alpha1.Route) *Node {
		n := &Node{Kind: "Route", Object: r, Detail: "VirtualService " + r.Status.VirtualService}
		mark("Route", r)
		for i := range o.CanaryReleases.Items {
			cr := &o.CanaryReleases.Items[i]
			if cr.Namespace == r.Namespace && parentName(cr) == r.Name {
				mark("CanaryRelease", cr)
				n.Children = append(n.Children, &Node{Kind: "CanaryRelease", Object: cr, Detail: canaryDetail(cr)})
			}
		}
		for i := range o.Experiments.Items {
			e := &o.Experiments.Items[i]
			if e.Namespace == r.Namespace && parentName(e) == r.Name {
				mark("Experiment", e)
				n.Children = append(n.Children, &Node{Kind: "Experiment", Object: e, Detail: experimentDetail(e)})
			}
		}
		return n
	}
	vcNode := func(vc *v1alpha1.VirtualCluster) *Node {
		n := &Node{Kind: "VirtualCluster", Object: vc, Detail: "namespace " + vc.Status.Namespace}
		mark("VirtualCluster", vc)
		for i := range o.Applications.Items {
			if a := &o.Applications.Items[i]; a.Namespace == vc.Name {
				mark("Application", a)
				n.Children = append(n.Children, &Node{Kind: "Application", Object: a, Detail: versionsDetail(a)})
			}
		}
		for i := range o.Destinations.Items {
			if d := &o.Destinations.Items[i]; d.Namespace == vc.Name {
				mark("Destination", d)
				n.Children = append(n.Children, &Node{Kind: "Destination", Object: d, Detail: "subsets " + strings.Join(d.Status.Subsets, ", ")})
			}
		}
		for i := range o.Routes.Items {
			if r := &o.Routes.Items[i]; r.Namespace == vc.Name {
				n.Children = append(n.Children, routeNode(r))
			}
		}
		return n
	}
	clusterNode := func(cl *v1alpha1.Cluster) *Node {
		detail := ""
		if istio := meta.FindStatusCondition(cl.Status.Conditions, v1alpha1.ConditionIstioReady); istio != nil {
			detail = fmt.Sprintf("IstioReady=%s (%s)", istio.Status, istio.Reason)
		}
		n := &Node{Kind: "Cluster", Object: cl, Detail: detail}
		mark("Cluster", cl)
		for i := range o.VirtualClusters.Items {
			if vc := &o.VirtualClusters.Items[i]; parentName(vc) == cl.Name {
				n.Children = append(n.Children, vcNode(vc))
			}
		}
		return n
	}
	for i := range o.Projects.Items {
		p := &o.Projects.Items[i]
		n := &Node{Kind: "Project", Object: p}
		mark("Project", p)
		for j := range o.Clusters.Items {
			if cl := &o.Clusters.Items[j]; parentName(cl) == p.Name {
				n.Children = append(n.Children, clusterNode(cl))
			}
		}
		roots = append(roots, n)
	}
	// Resources whose parent does not exist (yet) are listed apart.
	orphans := &Node{Kind: Orphans}
	for i := range o.Clusters.Items {
		if cl := &o.Clusters.Items[i]; !placed["Cluster//"+cl.Name] {
			orphans.Children = append(orphans.Children, clusterNode(cl))
		}
	}
	for i := range o.VirtualClusters.Items {
		if vc := &o.VirtualClusters.Items[i]; !placed["VirtualCluster//"+vc.Name] {
			orphans.Children = append(orphans.Children, vcNode(vc))
		}
	}
	for _, l := range []client.ObjectList{&o.Applications, &o.Destinations, &o.Routes, &o.CanaryReleases, &o.Experiments} {
		_ = meta.EachListItem(l, func(item runtime.Object) error {
			obj := item.(v1alpha1.Object)
			kind := v1alpha1.KindOf(obj)
			if !placed[kind+"/"+obj.GetNamespace()+"/"+obj.GetName()] {
				switch x := obj.(type) {
				case *v1alpha1.Route:
					orphans.Children = append(orphans.Children, routeNode(x))
				case *v1alpha1.CanaryRelease:
					orphans.Children = append(orphans.Children, &Node{Kind: kind, Object: obj, Detail: canaryDetail(x)})
				case *v1alpha1.Experiment:
					orphans.Children = append(orphans.Children, &Node{Kind: kind, Object: obj, Detail: experimentDetail(x)})
				default:
					orphans.Children = append(orphans.Children, &Node{Kind: kind, Object: obj})
				}
			}
			return nil
		})
	}
	if len(orphans.Children) > 0 {
		roots = append(roots, orphans)
	}
	return roots
}

// parentName is the name of the parent an object's references name (see
// v1alpha1.Tree); namespaced kinds without one sit under the VirtualCluster
// of their namespace.
func parentName(obj v1alpha1.Object) string {
	parent, _ := v1alpha1.ParentOf(obj)
	return parent.Name
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
	return fmt.Sprintf("%s  [%s]", detail, strings.Join(policies, ", "))
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
		parts = append(parts, fmt.Sprintf("%s %d/%d ready", v.Name, v.ReadyReplicas, v.Replicas))
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
