package reconciler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

func TestEventPacer(t *testing.T) {
	var p eventThrottle
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
	var p eventThrottle
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for i := range pacerPrune {
		p.admit(types.UID(strconv.Itoa(i)), "Step", t0)
	}
	p.admit("new", "Step", t0.Add(EventInterval))
	if len(p.last) != 1 {
		t.Fatalf("past %d entries the ones an interval old are forgotten: %d left", pacerPrune, len(p.last))
	}
}

// emit paces a release's repeated Normal policy Events, and never its
// Warnings or a person's actions.
func TestEmitPacesPolicyEvents(t *testing.T) {
	recorder := events.NewFakeRecorder(20)
	rc := &Reconciler{Recorder: recorder}
	cr := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1"}}
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for i, at := range []time.Duration{0, 10 * time.Second, 20 * time.Second, time.Minute} {
		r := &scope{Reconciler: rc, now: t0.Add(at), events: []policies.Event{
			{Type: corev1.EventTypeNormal, Reason: "Step", Message: fmt.Sprintf("canary v2 at %d%%", 10*(i+1))},
			{Type: corev1.EventTypeWarning, Reason: "SlowStep", Message: "late"},
			{Type: corev1.EventTypeNormal, Reason: ReasonAction, Message: "Pause by alice"},
		}}
		r.emit(cr, cr)
	}
	close(recorder.Events)
	var got []string
	for e := range recorder.Events {
		got = append(got, e)
	}
	want := []string{
		"Normal Step canary v2 at 10%", "Warning SlowStep late", "Normal Action Pause by alice",
		"Warning SlowStep late", "Normal Action Pause by alice",
		"Warning SlowStep late", "Normal Action Pause by alice",
		"Normal Step canary v2 at 40% (and 2 earlier Step since 10:00:10: see the status)", "Warning SlowStep late", "Normal Action Pause by alice",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
