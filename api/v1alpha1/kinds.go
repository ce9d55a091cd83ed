package v1alpha1

import (
	"fmt"
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// How the kinds hang together, said once: admission's reference warnings
// and delete protection, the executors' kinds, and the tree views read
// it. Adding a kind means a row in Tree and the kind's References.

// Reference is a name one resource's spec gives to another resource.
//
// +kubebuilder:object:generate=false
type Reference struct {
	// Field is the spec field that holds the name, e.g. "project" or
	// "http[0].route[1].destination".
	Field string
	// Kind of the resource named.
	Kind string
	// Name of the resource named; it is in the referring resource's
	// namespace when Kind is namespaced.
	Name string
	// Parent marks the reference that places the resource in the tree.
	Parent bool
}

// ObjectList is a list of one kind, as a client lists it.
//
// +kubebuilder:object:generate=false
type ObjectList interface {
	runtime.Object
	metav1.ListInterface
}

// KindInfo describes one kind of the tree.
//
// +kubebuilder:object:generate=false
type KindInfo struct {
	Kind string
	// Namespaced kinds live in a VirtualCluster's namespace.
	Namespaced bool
	// Parent is the kind of the resource above this one in the tree:
	// named by the reference marked Parent or, for namespaced kinds
	// without one, the VirtualCluster that owns the namespace.
	Parent string
	// Protected kinds may not be deleted while they have children,
	// unless annotated with AnnotationDeleteChildren.
	Protected bool
	// ParentCounts marks a kind its parent counts in its status (a
	// Project its Clusters, …): the parent runs when one comes or goes.
	ParentCounts bool
	// ParentReadsStatus marks a kind whose status its parent's run reads
	// (a Route composes its releases' weights): the parent runs on every
	// change of it.
	ParentReadsStatus bool
	New               func() Object
	NewList           func() ObjectList
}

// Tree lists the kinds that executors reconcile, parents before children.
var Tree = []KindInfo{
	{Kind: "Project", Protected: true, New: func() Object { return &Project{} }, NewList: func() ObjectList { return &ProjectList{} }},
	{Kind: "Cluster", Parent: "Project", Protected: true, ParentCounts: true, New: func() Object { return &Cluster{} }, NewList: func() ObjectList { return &ClusterList{} }},
	{Kind: "VirtualCluster", Parent: "Cluster", Protected: true, ParentCounts: true, New: func() Object { return &VirtualCluster{} }, NewList: func() ObjectList { return &VirtualClusterList{} }},
	{Kind: "Application", Namespaced: true, Parent: "VirtualCluster", ParentCounts: true, New: func() Object { return &Application{} }, NewList: func() ObjectList { return &ApplicationList{} }},
	{Kind: "Destination", Namespaced: true, Parent: "VirtualCluster", New: func() Object { return &Destination{} }, NewList: func() ObjectList { return &DestinationList{} }},
	{Kind: "Route", Namespaced: true, Parent: "VirtualCluster", New: func() Object { return &Route{} }, NewList: func() ObjectList { return &RouteList{} }},
	{Kind: "CanaryRelease", Namespaced: true, Parent: "Route", ParentReadsStatus: true, New: func() Object { return &CanaryRelease{} }, NewList: func() ObjectList { return &CanaryReleaseList{} }},
	{Kind: "Experiment", Namespaced: true, Parent: "Route", ParentReadsStatus: true, New: func() Object { return &Experiment{} }, NewList: func() ObjectList { return &ExperimentList{} }},
	{Kind: "ReleasePlan", Parent: "Project", New: func() Object { return &ReleasePlan{} }, NewList: func() ObjectList { return &ReleasePlanList{} }},
}

// KindOf names an object's kind from its Go type: typed objects read
// from a cache carry no apiVersion and kind.
func KindOf(obj Object) string { return reflect.TypeOf(obj).Elem().Name() }

// TreeKind describes a kind of the tree.
func TreeKind(kind string) (KindInfo, bool) {
	for _, k := range Tree {
		if k.Kind == kind {
			return k, true
		}
	}
	return KindInfo{}, false
}

// TreeKindNames are the names of the kinds of the tree, parents first.
func TreeKindNames() []string {
	names := make([]string, len(Tree))
	for i, k := range Tree {
		names[i] = k.Kind
	}
	return names
}

// ChildKinds are the kinds whose parent is kind.
func ChildKinds(kind string) []KindInfo {
	var out []KindInfo
	for _, k := range Tree {
		if k.Parent == kind {
			out = append(out, k)
		}
	}
	return out
}

// NamespacedKinds are the kinds of the tree that live in a
// VirtualCluster's namespace.
func NamespacedKinds() []KindInfo {
	var out []KindInfo
	for _, k := range Tree {
		if k.Namespaced {
			out = append(out, k)
		}
	}
	return out
}

// ParentOf is the reference that places obj in the tree, if its spec
// names its parent (namespaced kinds under a VirtualCluster do not).
func ParentOf(obj Object) (Reference, bool) {
	for _, r := range obj.References() {
		if r.Parent {
			return r, true
		}
	}
	return Reference{}, false
}

func ref(field, kind, name string, parent bool) []Reference {
	if name == "" {
		return nil
	}
	return []Reference{{Field: field, Kind: kind, Name: name, Parent: parent}}
}

// References names the Project.
func (o *Project) References() []Reference { return nil }

// References names the Cluster's Project.
func (o *Cluster) References() []Reference { return ref("project", "Project", o.Spec.Project, true) }

// References names the VirtualCluster's Cluster.
func (o *VirtualCluster) References() []Reference {
	return ref("cluster", "Cluster", o.Spec.Cluster, true)
}

// References is empty: an Application names no other resource.
func (o *Application) References() []Reference { return nil }

// References names the Destination's Application.
func (o *Destination) References() []Reference {
	return ref("application", "Application", o.Spec.Application, false)
}

// References names each Destination the Route's rules route or mirror
// to, once.
func (o *Route) References() []Reference {
	var out []Reference
	seen := map[string]bool{}
	add := func(field, name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, ref(field, "Destination", name, false)...)
		}
	}
	for i, rule := range o.Spec.HTTP {
		for j, d := range rule.Route {
			add(fmt.Sprintf("http[%d].route[%d].destination", i, j), d.Destination)
		}
		if rule.Mirror != nil {
			add(fmt.Sprintf("http[%d].mirror.destination", i), rule.Mirror.Destination)
		}
	}
	if t := o.Spec.Release; t != nil {
		add("release.destination", t.Destination)
	}
	return out
}

// BaselineSubset is the subset the canary is compared with: the spec's,
// or the one the executor found on the Route when the spec names none.
func (o *CanaryRelease) BaselineSubset() string {
	if o.Spec.Baseline != "" {
		return o.Spec.Baseline
	}
	return o.Status.Baseline
}

// References names the CanaryRelease's Route (its parent) and Destination.
func (o *CanaryRelease) References() []Reference {
	return append(ref("route", "Route", o.Spec.Route, true), ref("destination", "Destination", o.Spec.Destination, false)...)
}

// References names the Experiment's Route (its parent) and Destination.
func (o *Experiment) References() []Reference {
	return append(ref("route", "Route", o.Spec.Route, true), ref("destination", "Destination", o.Spec.Destination, false)...)
}

// References names the ReleasePlan's Project (its parent).
func (o *ReleasePlan) References() []Reference {
	return ref("project", "Project", o.Spec.Project, true)
}

// References is empty: a Policy names no other resource.
func (o *Policy) References() []Reference { return nil }
