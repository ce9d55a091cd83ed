package residency

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// pageOut reclaims the mapping's pages (madvise MADV_PAGEOUT, Linux 5.4 and
// later): the kernel drops the clean file pages from the process's page
// tables and, unless another process maps them, from the page cache.
func pageOut(m mapping) error {
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.Start, m.End-m.Start, unix.MADV_PAGEOUT); errno != 0 {
		return fmt.Errorf("madvise(MADV_PAGEOUT) %#x-%#x: %w", m.Start, m.End, errno)
	}
	return nil
}
