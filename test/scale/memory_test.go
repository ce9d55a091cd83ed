package scale

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubist-io/kubist/test/testenv"
)

// memPeaks are the highest memory figures of the manager seen while the
// bench ran: its resident set by kind (anonymous: heap, stacks and the
// runtime's own; file: the binary's pages) and the Go heap's.
type memPeaks struct {
	rssAnon, rssFile, heapInUse, heapGoal float64
	// atPeak is the sample of the highest resident set: its anonymous and
	// file-backed parts then; lastFile is the file-backed part at the end.
	atPeak   struct{ anon, file float64 }
	lastFile float64
	// softLimit and gcPercent are the Go runtime's settings in effect
	// (GOMEMLIMIT or --memory-limit; GOGC).
	softLimit, gcPercent float64
}

// sampleMemory samples the manager's memory until stopped: its resident
// set every second, its heap every 15 s (a scrape of its metrics, which
// name every release, is work the manager would not do otherwise: the
// root-run poller already scrapes every 2 s).
func sampleMemory(ctx context.Context, pid int, metricsURL string) func() memPeaks {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var peaks memPeaks
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			status := procStatus(pid)
			var heap map[string]float64
			if i%15 == 0 {
				heap, _ = testenv.MetricSums(metricsURL, "", "go_memstats_heap_inuse_bytes", "go_gc_heap_goal_bytes", "go_gc_gomemlimit_bytes", "go_gc_gogc_percent")
			}
			mu.Lock()
			peaks.rssAnon = max(peaks.rssAnon, status["RssAnon"])
			peaks.rssFile = max(peaks.rssFile, status["RssFile"])
			if status["RssAnon"]+status["RssFile"] > peaks.atPeak.anon+peaks.atPeak.file {
				peaks.atPeak.anon, peaks.atPeak.file = status["RssAnon"], status["RssFile"]
			}
			if f, ok := status["RssFile"]; ok {
				peaks.lastFile = f
			}
			if heap != nil {
				peaks.heapInUse = max(peaks.heapInUse, heap["go_memstats_heap_inuse_bytes"])
				peaks.heapGoal = max(peaks.heapGoal, heap["go_gc_heap_goal_bytes"])
				peaks.softLimit, peaks.gcPercent = heap["go_gc_gomemlimit_bytes"], heap["go_gc_gogc_percent"]
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return func() memPeaks {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peaks
	}
}

// procStatus reads the kB figures of /proc/PID/status, in bytes.
func procStatus(pid int) map[string]float64 {
	out := map[string]float64{}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		key, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasSuffix(rest, "kB") {
			continue
		}
		if kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(rest, "kB")), 64); err == nil {
			out[key] = kb * 1024
		}
	}
	return out
}

// moduleFootprint is what one Go module (or the standard library) takes
// of the binary's code and read-only data, and how much of that is
// resident in the running manager.
type moduleFootprint struct {
	module         string
	size, resident float64
}

// binaryFootprint attributes the manager's resident pages of its own
// executable to the modules whose symbols lie on them. The running binary
// is stripped; the symbols come from the same build without -s -w, whose
// sections lie at the same addresses (checked).
func binaryFootprint(b *testing.B, dir string, pid int) []moduleFootprint {
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	symbols := filepath.Join(dir, "kubist-symbols")
	cmd := exec.Command("go", "build", "-tags", "manager_only", "-trimpath", "-o", symbols, "./cmd/kubist")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the manager with symbols: %v\n%s", err, out)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		b.Fatal(err)
	}
	running, err := elf.Open(exe)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = running.Close() }()
	f, err := elf.Open(symbols)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if a, c := running.Section(".text"), f.Section(".text"); a == nil || c == nil || a.Addr != c.Addr || a.Size != c.Size {
		// The tree changed since the manager was built: no table, and the
		// bench's other figures stand.
		b.Logf("no footprint by module: the build with symbols lays out .text differently from the running manager's (was the code changed during the run?)")
		return nil
	}
	resident := residentPages(b, pid, exe)

	info, err := buildinfo.ReadFile(symbols)
	if err != nil {
		b.Fatal(err)
	}
	modules := []string{info.Main.Path}
	for _, d := range info.Deps {
		modules = append(modules, d.Path)
	}
	// Longest first, so that a nested module wins over its parent.
	slices.SortFunc(modules, func(x, y string) int { return len(y) - len(x) })
	moduleOf := func(pkg string) string {
		for _, m := range modules {
			if pkg == m || strings.HasPrefix(pkg, m+"/") {
				return m
			}
		}
		if first, _, _ := strings.Cut(pkg, "/"); !strings.Contains(first, ".") {
			return "the standard library"
		}
		return "other"
	}
	syms, err := f.Symbols()
	if err != nil {
		b.Fatal(err)
	}
	byModule := map[string]*moduleFootprint{}
	seen := map[uint64]bool{}
	for _, s := range syms {
		// Aliases share an address; the section-wide symbols (runtime.text,
		// the function table) are not one module's.
		if seen[s.Value] || strings.HasPrefix(s.Name, "local.") || s.Size == 0 || s.Size >= 4<<20 ||
			s.Section == elf.SHN_UNDEF || int(s.Section) >= len(f.Sections) {
			continue
		}
		sec := f.Sections[s.Section]
		if sec.Flags&elf.SHF_ALLOC == 0 || sec.Type == elf.SHT_NOBITS {
			continue
		}
		seen[s.Value] = true
		m := moduleOf(symbolPackage(s.Name))
		fp := byModule[m]
		if fp == nil {
			fp = &moduleFootprint{module: m}
			byModule[m] = fp
		}
		fp.size += float64(s.Size)
		for a := s.Value; a < s.Value+s.Size; {
			end := min((a/4096+1)*4096, s.Value+s.Size)
			if resident[a/4096] {
				fp.resident += float64(end - a)
			}
			a = end
		}
	}
	out := make([]moduleFootprint, 0, len(byModule))
	for _, fp := range byModule {
		out = append(out, *fp)
	}
	slices.SortFunc(out, func(x, y moduleFootprint) int { return int(y.size - x.size) })
	return out
}

// symbolPackage is the package a Go symbol belongs to: "k8s.io/api/core/v1"
// for "k8s.io/api/core/v1.(*Pod).Reset" or "type:*k8s.io/api/core/v1.Pod".
func symbolPackage(name string) string {
	n := strings.TrimPrefix(strings.TrimPrefix(name, "type:"), "go:")
	for {
		t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimLeft(n, "*[]"), "map["), "func(")
		if t == n {
			break
		}
		n = t
	}
	if i := strings.IndexAny(n, "[("); i >= 0 {
		n = n[:i]
	}
	slash := strings.LastIndex(n, "/")
	dot := strings.Index(n[slash+1:], ".")
	if dot < 0 {
		return n
	}
	return n[:slash+1+dot]
}

// residentPages are the page numbers of exe's mappings in process pid
// that are in memory (/proc/PID/pagemap's present bit; needs root).
func residentPages(b *testing.B, pid int, exe string) map[uint64]bool {
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = maps.Close() }()
	pagemap, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = pagemap.Close() }()
	resident := map[uint64]bool{}
	entry := make([]byte, 8)
	scanner := bufio.NewScanner(maps)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 6 || fields[5] != exe {
			continue
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			b.Fatalf("bad mapping %q", fields[0])
		}
		for page := start / 4096; page < end/4096; page++ {
			if _, err := pagemap.ReadAt(entry, int64(page*8)); err != nil {
				b.Fatal(err)
			}
			if binary.LittleEndian.Uint64(entry)&(1<<63) != 0 {
				resident[page] = true
			}
		}
	}
	if err := scanner.Err(); err != nil {
		b.Fatal(err)
	}
	return resident
}
