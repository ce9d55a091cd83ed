//go:build !linux

package localmesh

import "os/exec"

// dieWithParent needs Linux's parent-death signal; elsewhere the process
// is stopped only by Stop.
func dieWithParent(*exec.Cmd) {}
