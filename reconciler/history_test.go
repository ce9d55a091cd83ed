package reconciler

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/manager/notify"
)

func TestStepMetricsRoundsRequestCounts(t *testing.T) {
	got := stepMetrics(map[string]any{
		"v1": map[string]any{"requests": 415.012, "errorRate": 0.0, "latencyP99Ms": 0.495},
		"v2": map[string]any{"requests": 36.088, "errorRate": 0.0208},
	}, "v2", "v1")
	want := []v1alpha1.StepMetrics{
		{Subset: "v1", Requests: "415", ErrorRate: "0", LatencyP99Ms: "0.495"},
		{Subset: "v2", Requests: "36", ErrorRate: "0.0208"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

// notificationsOf tells what a status write added: new history steps (a
// person's action named with who), a gate that started waiting, a policy
// error; and nothing for a write that added none of them.
func TestNotificationsOf(t *testing.T) {
	at := func(s int) metav1.MicroTime {
		return metav1.MicroTime{Time: time.Date(2026, 12, 2, 12, 0, s, 0, time.UTC)}
	}
	old := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "web-v2"}}
	old.Status.History = []v1alpha1.ReleaseStep{{Time: at(0), Weights: map[string]int32{"v1": 90, "v2": 10}, Phase: "Progressing", Message: "canary v2 at 10%"}}
	updated := old.DeepCopy()
	updated.Status.History = append(updated.Status.History,
		v1alpha1.ReleaseStep{Time: at(30), Weights: map[string]int32{"v1": 100, "v2": 0}, Phase: "Aborted", Message: "aborted: baseline v1 at 100%", Action: "Abort", User: "alice"})
	updated.Status.Decisions = []v1alpha1.PolicyDecision{{Policy: "ManualGate", Outcome: "Gate", Message: "waiting for approval"}}
	notes := notificationsOf("CanaryRelease", old, updated)
	var got []string
	for _, n := range notes {
		got = append(got, n.Reason+"/"+n.Level.String()+": "+n.Message)
	}
	want := []string{"Aborted/warning: Abort by alice: aborted: baseline v1 at 100%", "GateWaiting/info: ManualGate: waiting for approval"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if again := notificationsOf("CanaryRelease", updated, updated.DeepCopy()); len(again) != 0 {
		t.Fatalf("a write that adds nothing tells %+v", again)
	}
	if reason, level := stepReason(v1alpha1.ReleaseStep{Phase: "RolledBack"}); reason != "RolledBack" || level != notify.Error {
		t.Fatalf("a rollback is %s/%s", reason, level)
	}
}
