package residency

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// pageOut reclaims the mapping's pages: the kernel drops the clean file
// pages from the process's page tables and, unless another process maps
// them, from the page cache (madvise MADV_PAGEOUT, Linux 5.4 and later).
// Reading the mapping at random first (MADV_RANDOM) turns read-ahead off
// for it, so that a page the process runs again faults back in alone, not
// with the large folio around it: what stays resident is what runs.
func pageOut(m Mapping) error {
	for _, advice := range []struct {
		name string
		flag uintptr
	}{{"MADV_RANDOM", unix.MADV_RANDOM}, {"MADV_PAGEOUT", unix.MADV_PAGEOUT}} {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.Start, m.End-m.Start, advice.flag); errno != 0 {
			return fmt.Errorf("madvise(%s) %#x-%#x: %w", advice.name, m.Start, m.End, errno)
		}
	}
	return nil
}
