package reconciler

import (
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestEventPacer(t *testing.T) {
	var p eventPacer
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	admit := func(uid types.UID, reason string, at time.Duration) (int, time.Time, bool) {
		return p.admit(uid, reason, t0.Add(at))
	}
	if held, _, ok := admit("a", "Step", 0); !ok || held != 0 {
		t.Fatalf("a reason's first Event goes out: ok=%v held=%d", ok, held)
	}
	for _, at := range []time.Duration{10 * time.Second, 20 * time.Second, 50 * time.Second} {
		if _, _, ok := admit("a", "Step", at); ok {
			t.Fatalf("a Step %s after the last one is held back", at)
		}
	}
	if _, _, ok := admit("a", "Promote", 55*time.Second); !ok {
		t.Fatal("another reason is paced on its own")
	}
	if _, _, ok := admit("b", "Step", 55*time.Second); !ok {
		t.Fatal("another resource is paced on its own")
	}
	held, since, ok := admit("a", "Step", EventInterval)
	if !ok || held != 3 || !since.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("an interval later the Event goes out counting the 3 held since 10:00:10: ok=%v held=%d since=%s", ok, held, since)
	}
	if held, _, ok := admit("a", "Step", 3*EventInterval); !ok || held != 0 {
		t.Fatalf("nothing held since the last one: ok=%v held=%d", ok, held)
	}
}

func TestEventPacerForgetsOldEntries(t *testing.T) {
	var p eventPacer
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for i := range pacerPrune {
		p.admit(types.UID(strconv.Itoa(i)), "Step", t0)
	}
	p.admit("new", "Step", t0.Add(EventInterval))
	if len(p.last) != 1 {
		t.Fatalf("past %d entries the ones an interval old are forgotten: %d left", pacerPrune, len(p.last))
	}
}
