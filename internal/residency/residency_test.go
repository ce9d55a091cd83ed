package residency

import (
	"runtime"
	"slices"
	"testing"
)

func TestExecutableMappings(t *testing.T) {
	maps := []byte(`00400000-00fac000 r-xp 00000000 fd:01 1234 /usr/local/bin/kubist
00fac000-019f0000 r--p 00bac000 fd:01 1234 /usr/local/bin/kubist
019f0000-01a40000 rw-p 015f0000 fd:01 1234 /usr/local/bin/kubist
01a40000-01a80000 rw-p 00000000 00:00 0
c000000000-c004000000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 fd:01 99 /usr/lib/locale/C.utf8/LC_CTYPE
7f0000002000-7f0000003000 r-xp 00000000 fd:01 77 /opt/my tools/kubist
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
`)
	got, err := executableMappings(maps, "/usr/local/bin/kubist")
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{{0x400000, 0xfac000}, {0xfac000, 0x19f0000}}
	if !slices.Equal(got, want) {
		t.Errorf("mappings of /usr/local/bin/kubist: got %x, want %x (code and read-only data, not the writable data)", got, want)
	}
	got, err = executableMappings(maps, "/opt/my tools/kubist")
	if err != nil {
		t.Fatal(err)
	}
	if want := []mapping{{0x7f0000002000, 0x7f0000003000}}; !slices.Equal(got, want) {
		t.Errorf("a path with a space: got %x, want %x", got, want)
	}
	if _, err := executableMappings([]byte("zz-00fac000 r-xp 00000000 fd:01 1234 /k\n"), "/k"); err == nil {
		t.Error("a malformed address range: no error")
	}
}

// TestRelease pages out this test binary's code and read-only data: its
// file-backed resident set shrinks, and the process runs on (the pages it
// uses fault back in). Elsewhere than on Linux, Release says it cannot.
func TestRelease(t *testing.T) {
	before, after, err := Release()
	if runtime.GOOS != "linux" {
		// No /proc, no MADV_PAGEOUT: an error, and nothing else happens.
		if err == nil {
			t.Fatalf("released on %s: %d → %d bytes, want an error", runtime.GOOS, before, after)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("file-backed resident memory: %d KiB before, %d KiB after", before>>10, after>>10)
	if before <= 0 || after >= before {
		t.Fatalf("file-backed resident memory %d bytes before and %d after: want it smaller after", before, after)
	}
	// Code that had not run since: its pages fault back in.
	if got := slices.Sorted(slices.Values([]int{3, 1, 2})); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("sorted: %v", got)
	}
	again, err := resident()
	if err != nil || again <= 0 {
		t.Fatalf("resident after running on: %d, %v", again, err)
	}
}
