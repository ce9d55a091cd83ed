//go:build tools

// Package tools pins runc, the OCI runtime containerd's shim runs; built
// with seccomp (cgo, Debian's libseccomp-dev), which pod sandboxes need.
package tools

import _ "github.com/opencontainers/runc"
