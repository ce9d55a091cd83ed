package controlplane

import (
	"errors"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// execWithParentDeathSignal sets the parent-death signal to SIGKILL and
// execs path with this process's arguments; the signal outlives exec.
func execWithParentDeathSignal(path, parent string) error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return err
	}
	// The parent may have ended before the signal was set.
	if strconv.Itoa(os.Getppid()) != parent {
		return errors.New("the process that started it has ended")
	}
	return syscall.Exec(path, append([]string{path}, os.Args[1:]...), os.Environ())
}
