package app

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
)

type syncedCache bool

func (s syncedCache) WaitForCacheSync(context.Context) bool { return bool(s) }

// TestPageRelease runs the manager's page release in this test binary:
// once the caches have synced it releases the executable's pages and says
// how many stayed; before they sync (the manager stopping) it does
// nothing.
func TestPageRelease(t *testing.T) {
	var logged []string
	log := funcr.New(func(_, args string) { logged = append(logged, args) }, funcr.Options{})

	p := &pageRelease{cache: syncedCache(false), log: log}
	if p.NeedLeaderElection() {
		t.Error("every replica, leader or not, should release its pages")
	}
	if err := p.Start(t.Context()); err != nil || len(logged) != 0 {
		t.Fatalf("caches never synced: %v, logged %q; want nothing done", err, logged)
	}

	p.cache = syncedCache(true)
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(logged) != 1 {
		t.Fatalf("logged %q, want one line", logged)
	}
	want := `"msg"="released the executable's resident pages"`
	if runtime.GOOS != "linux" {
		want = `"msg"="the executable's pages stay resident"`
	}
	if !strings.Contains(logged[0], want) || (runtime.GOOS == "linux" && !strings.Contains(logged[0], `"afterMiB"=`)) {
		t.Errorf("logged %s, want %s with the resident MiB before and after", logged[0], want)
	}
}
