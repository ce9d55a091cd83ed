//go:build tools

// Package tools pins containerd, with its CRI plugin, its runc shim and
// ctr: the container runtime of a node that tests and `make run-node` run.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
