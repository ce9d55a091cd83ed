//go:build tools

// Package tools pins the Kubernetes commands that tests run as a real control plane.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
