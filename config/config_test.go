package config

import (
	"slices"
	"testing"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

func TestEmbeddedManifests(t *testing.T) {
	kubist, err := KubistCRDs()
	if err != nil {
		t.Fatal(err)
	}
	// One per kind of the tree, ReleaseAction and ReleaseHistory.
	if want := len(v1alpha1.Kinds) + 2; len(kubist) != want {
		t.Fatalf("got %d Kubist CRDs, want %d (one per kind, ReleaseAction and ReleaseHistory)", len(kubist), want)
	}
	for _, crd := range kubist {
		if crd.Spec.Group != v1alpha1.GroupVersion.Group {
			t.Errorf("CRD %s has group %q", crd.Name, crd.Spec.Group)
		}
	}
	istio, err := IstioCRDs()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, crd := range istio {
		if crd.Name == "virtualservices.networking.istio.io" {
			found = true
		}
	}
	if !found {
		t.Fatalf("Istio CRDs (%d) lack virtualservices.networking.istio.io", len(istio))
	}
	gateway, err := GatewayAPICRDs()
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, crd := range gateway {
		for _, v := range crd.Spec.Versions {
			if v.Served && v.Name == "v1" {
				served = append(served, crd.Name)
			}
		}
	}
	if !slices.Contains(served, "httproutes.gateway.networking.k8s.io") || !slices.Contains(served, "gateways.gateway.networking.k8s.io") {
		t.Fatalf("Gateway API CRDs serving v1: %v; want HTTPRoute and Gateway among them", served)
	}
	samples, err := Samples()
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) == 0 || samples[0].GetKind() != "Project" {
		t.Fatalf("samples must start with the Project, got %d objects", len(samples))
	}
}
