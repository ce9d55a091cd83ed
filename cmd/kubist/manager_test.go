package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestSoftMemoryLimit(t *testing.T) {
	for _, c := range []struct{ container, want int64 }{
		{384 << 20, 256 << 20}, // the chart's default
		{768 << 20, 640 << 20}, // 3,000 canaries (docs/scale.md)
		{192 << 20, 96 << 20},  // small: at least half
		{128 << 20, 64 << 20},  // smaller than the headroom
		{4 << 30, 4<<30 - 128<<20},
	} {
		if got := softMemoryLimit(c.container); got != c.want {
			t.Errorf("softMemoryLimit(%d MiB) = %d MiB, want %d MiB", c.container>>20, got>>20, c.want>>20)
		}
	}
}

func TestApplyMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	// As the chart passes it: the container's limits.memory in bytes.
	if err := applyMemoryLimit("402653184"); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 256<<20 {
		t.Errorf("soft limit %d MiB, want 256", got>>20)
	}
	for _, bad := range []string{"lots", "0", "-1Gi"} {
		err := applyMemoryLimit(bad)
		if err == nil || !strings.Contains(err.Error(), "--memory-limit") || !strings.Contains(err.Error(), "384Mi") {
			t.Errorf("--memory-limit=%s: %v, want an error naming the flag and an example", bad, err)
		}
	}
	// GOMEMLIMIT wins.
	debug.SetMemoryLimit(before)
	t.Setenv("GOMEMLIMIT", "300MiB")
	if err := applyMemoryLimit("1Gi"); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with GOMEMLIMIT set, the soft limit changed to %d MiB", got>>20)
	}
}
