//go:build !linux

package residency

import "errors"

func pageOut(mapping) error {
	return errors.New("releasing the executable's pages needs Linux")
}
