// Package residency gives the kernel back the resident pages of the
// running executable that the process no longer needs.
//
// A Go binary's code and read-only data are mapped from its file. The
// kernel maps many more of their pages than the process runs: on a fault
// it maps the neighbouring pages already in the page cache too, and the
// start-up (package initialisation, flag parsing, scheme and policy
// compilation) touches code that never runs again. All of them count in
// the process's resident set, and in a container's memory, for as long as
// the process lives: about 100 MiB for the manager, most of which it
// never uses once it runs. Release asks the kernel to reclaim them; the
// pages the process still runs fault back in from the page cache or the
// file, so only its working set stays resident.
package residency

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// mapping is one read-only mapping of the executable's file.
type mapping struct {
	Start, End uintptr
}

// executableMappings parses /proc/self/maps (maps) for the mappings of
// the file exe that the process cannot write: its code and read-only
// data. Writable mappings (initialised data) are private copies that
// cannot be reclaimed without swap.
func executableMappings(maps []byte, exe string) ([]mapping, error) {
	var out []mapping
	s := bufio.NewScanner(bytes.NewReader(maps))
	for s.Scan() {
		// address perms offset dev inode pathname
		fields := strings.Fields(s.Text())
		if len(fields) < 6 || strings.Join(fields[5:], " ") != exe {
			continue
		}
		perms := fields[1]
		if len(perms) < 2 || perms[0] != 'r' || perms[1] == 'w' {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			return nil, fmt.Errorf("maps: address range %q", fields[0])
		}
		start, err := strconv.ParseUint(lo, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("maps: address range %q: %w", fields[0], err)
		}
		end, err := strconv.ParseUint(hi, 16, 64)
		if err != nil || end <= start {
			return nil, fmt.Errorf("maps: address range %q", fields[0])
		}
		out = append(out, mapping{Start: uintptr(start), End: uintptr(end)})
	}
	return out, s.Err()
}

// resident is the process's resident memory mapped from files (RssFile of
// /proc/self/status), in bytes.
func resident() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "RssFile:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("RssFile %q: %w", rest, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no RssFile in /proc/self/status")
}

// Release asks the kernel to reclaim the executable's read-only pages and
// returns the process's file-backed resident memory before and after.
func Release() (before, after int64, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, 0, err
	}
	mappings, err := executableMappings(maps, exe)
	if err != nil {
		return 0, 0, err
	}
	if len(mappings) == 0 {
		return 0, 0, fmt.Errorf("no read-only mapping of %s in /proc/self/maps", exe)
	}
	if before, err = resident(); err != nil {
		return 0, 0, err
	}
	for _, m := range mappings {
		if err := pageOut(m); err != nil {
			return before, before, err
		}
	}
	after, err = resident()
	return before, after, err
}
