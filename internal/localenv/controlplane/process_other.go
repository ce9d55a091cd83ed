//go:build !linux

package controlplane

import "errors"

func execWithParentDeathSignal(string, string) error {
	return errors.New("a control plane that dies with its parent needs Linux's parent-death signal")
}
