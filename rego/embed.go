// Package rego embeds Kubist's predefined policies — one Rego v1 module per
// policy, each beside its _test.rego — and the library modules under lib/
// that policies, including user-defined ones, may import.
package rego

import "embed"

// FS holds every module and test of this directory.
//
//go:embed *.rego lib/*.rego
var FS embed.FS
