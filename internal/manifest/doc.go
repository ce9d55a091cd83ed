// Package manifest reads Kubernetes manifests: multi-document YAML or JSON
// from files, directories or streams, into unstructured objects, keeping the
// order and the source of every object so errors can name where it came from.
package manifest
