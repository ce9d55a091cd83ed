//go:build tools

// Package tools pins istiod (pilot-discovery), which tests and `make run` run
// as the real Istio control plane, and the module whose charts the Cluster
// executor installs.
package tools

import _ "istio.io/istio/pilot/cmd/pilot-discovery"
