// Package config holds Kubist's generated manifests (CRDs, RBAC, webhook
// configuration), Istio's and the Gateway API's CRDs and the samples, embedded so the kubist
// binary can install them — `kubist dev` does — without the source tree.
// `make manifests` writes the files; this package only reads them.
package config

import (
	"embed"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubist-io/kubist/internal/manifest"
)

//go:embed crd/*.yaml istio/crds.yaml gateway-api/crds.yaml samples/*.yaml demo/*.yaml webhook/manifests.yaml
var files embed.FS

// KubistCRDs returns the CustomResourceDefinitions of every Kubist kind.
func KubistCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	return crds("crd")
}

// IstioCRDs returns Istio's CustomResourceDefinitions, copied from the
// istio.io/api module that go.mod pins.
func IstioCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	return crds("istio")
}

// GatewayAPICRDs returns the Gateway API's standard-channel
// CustomResourceDefinitions that GatewayAPIRouteExecutor and istiod use
// (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant), copied
// from the sigs.k8s.io/gateway-api module that go.mod pins.
func GatewayAPICRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	return crds("gateway-api")
}

// Samples returns the sample tree in the order it must be applied.
func Samples() ([]manifest.Object, error) {
	return manifest.DecodeFS(files, "samples")
}

// NextVersion returns what `make run` applies once the sample canary has
// promoted v2: the Deployment of reviews v3.
func NextVersion() ([]manifest.Object, error) {
	return manifest.DecodeFS(files, "demo")
}

// WebhookConfigurations returns the generated mutating and validating
// webhook configurations; their service and caBundle are for the installer
// (Helm, or the local control plane) to fill.
func WebhookConfigurations() ([]*admissionregistrationv1.MutatingWebhookConfiguration, []*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	objects, err := manifest.DecodeFS(files, "webhook")
	if err != nil {
		return nil, nil, err
	}
	var mutating []*admissionregistrationv1.MutatingWebhookConfiguration
	var validating []*admissionregistrationv1.ValidatingWebhookConfiguration
	for _, o := range objects {
		var target any
		switch o.GetKind() {
		case "MutatingWebhookConfiguration":
			m := &admissionregistrationv1.MutatingWebhookConfiguration{}
			mutating, target = append(mutating, m), m
		case "ValidatingWebhookConfiguration":
			v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			validating, target = append(validating, v), v
		default:
			continue
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, target); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", o.Source, err)
		}
	}
	return mutating, validating, nil
}

func crds(dir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	objects, err := manifest.DecodeFS(files, dir)
	if err != nil {
		return nil, err
	}
	out := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(objects))
	for _, o := range objects {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, crd); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Source, err)
		}
		out = append(out, crd)
	}
	return out, nil
}
