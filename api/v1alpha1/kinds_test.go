package v1alpha1

import (
	"reflect"
	"strings"
	"testing"
)

// The description of the tree holds together: every parent is a kind of
// the tree, listed before its children; a kind whose parent is not the
// VirtualCluster of its namespace names it in a reference marked Parent;
// New and NewList make that kind.
func TestTreeHoldsTogether(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Tree {
		obj := k.New()
		if got := reflect.TypeOf(obj).Elem().Name(); got != k.Kind {
			t.Errorf("%s: New makes a %s", k.Kind, got)
		}
		if got := reflect.TypeOf(k.NewList()).Elem().Name(); got != k.Kind+"List" {
			t.Errorf("%s: NewList makes a %s", k.Kind, got)
		}
		if k.Parent != "" && !seen[k.Parent] {
			t.Errorf("%s: parent %q is not a kind listed before it", k.Kind, k.Parent)
		}
		seen[k.Kind] = true
	}
	withParents := map[string]Object{
		"Cluster":        &Cluster{Spec: ClusterSpec{Project: "p"}},
		"VirtualCluster": &VirtualCluster{Spec: VirtualClusterSpec{Cluster: "c"}},
		"CanaryRelease":  &CanaryRelease{Spec: CanaryReleaseSpec{Route: "r", Destination: "d"}},
		"Experiment":     &Experiment{Spec: ExperimentSpec{Route: "r", Destination: "d"}},
		"ReleasePlan":    &ReleasePlan{Spec: ReleasePlanSpec{Project: "p"}},
	}
	for _, k := range Tree {
		obj, named := withParents[k.Kind]
		if !named {
			if k.Parent != "" && k.Parent != "VirtualCluster" {
				t.Errorf("%s: its parent %s is named by no reference the test knows", k.Kind, k.Parent)
			}
			continue
		}
		parent, ok := ParentOf(obj)
		if !ok || parent.Kind != k.Parent {
			t.Errorf("%s: parent reference %+v, want one to a %s", k.Kind, parent, k.Parent)
		}
	}
	if got := NamespacedKinds(); len(got) != 5 {
		t.Errorf("%d namespaced kinds, want Application, Destination, Route, CanaryRelease, Experiment", len(got))
	}
	if !strings.Contains(strings.Join(Kinds, ","), "Project,Cluster,VirtualCluster") || Kinds[len(Kinds)-1] != "Policy" {
		t.Errorf("Kinds %v", Kinds)
	}
}

func TestRouteReferencesEachDestinationOnce(t *testing.T) {
	w := int32(50)
	r := &Route{Spec: RouteSpec{HTTP: []HTTPRoute{
		{Route: []RouteDestination{{Destination: "a", Weight: &w}, {Destination: "b", Weight: &w}}},
		{Route: []RouteDestination{{Destination: "a"}}},
	}}}
	got := r.References()
	want := []Reference{
		{Field: "http[0].route[0].destination", Kind: "Destination", Name: "a"},
		{Field: "http[0].route[1].destination", Kind: "Destination", Name: "b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("references %+v, want %+v", got, want)
	}
}
