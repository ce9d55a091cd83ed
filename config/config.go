// Package config holds Kubist's generated manifests (CRDs, RBAC, webhook
// configuration), Istio's CRDs and the samples, embedded so the kubist
// binary can install them — `kubist dev` does — without the source tree.
// `make manifests` writes the files; this package only reads them.
package config

import (
	"embed"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubist-io/kubist/internal/manifest"
)

//go:embed crd/*.yaml istio/crds.yaml samples/*.yaml
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

// Samples returns the sample tree in the order it must be applied.
func Samples() ([]manifest.Object, error) {
	return manifest.DecodeFS(files, "samples")
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
