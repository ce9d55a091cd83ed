//go:build tools

// Package tools pins the CNI plugins a node's pods are networked with: a
// bridge on this machine, host-local addresses, port mappings, loopback.
package tools

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/containernetworking/plugins/plugins/meta/portmap"
)
