package reconciler

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/manager/notify"
	"github.com/kubist-io/kubist/internal/release"
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

	// A plan's release says its plan and wave; the plan says its wave.
	old.Labels = map[string]string{v1alpha1.LabelPlan: "shop-v2", v1alpha1.LabelWave: "eu"}
	updated.Labels = old.Labels
	if n := notificationsOf("CanaryRelease", old, updated)[0]; n.Subject() != "CanaryRelease ops/web-v2 (ReleasePlan shop-v2, wave eu)" {
		t.Fatalf("a plan's release's notification is about %q", n.Subject())
	}
	plan := &v1alpha1.ReleasePlan{ObjectMeta: metav1.ObjectMeta{Name: "shop-v2"}}
	started := plan.DeepCopy()
	started.Status.Wave, started.Status.Waves = 2, []v1alpha1.WaveStatus{{Name: "canary"}, {Name: "eu"}}
	started.Status.History = []v1alpha1.ReleaseStep{{Time: at(40), Policy: "WavePacing", Phase: "Progressing", Message: "wave 2/2 eu started"}}
	notes = notificationsOf("ReleasePlan", plan, started)
	if len(notes) != 1 || notes[0].Reason != "WaveStarted" || notes[0].Subject() != "ReleasePlan shop-v2 (wave eu)" {
		t.Fatalf("a wave's start tells %+v", notes)
	}
}

// steps are n steps of a canary from number first on, a second apart,
// the canary's weight rising by one per step.
func steps(first, n int) []v1alpha1.ReleaseStep {
	var out []v1alpha1.ReleaseStep
	for i := first; i < first+n; i++ {
		out = append(out, v1alpha1.ReleaseStep{Time: metav1.NewMicroTime(phaseNow.Add(time.Duration(i) * time.Second)), Policy: "TimedCanaryRelease",
			Weights: map[string]int32{"v1": int32(100 - i%100), "v2": int32(i % 100)}, Phase: "Progressing", Message: fmt.Sprintf("step %d", i)})
	}
	return out
}

// firstSteps are the numbers of a release's first HistoryInStatus steps.
func firstSteps() []int {
	out := make([]int, v1alpha1.HistoryInStatus)
	for i := range out {
		out[i] = i
	}
	return out
}

// numbers are the step numbers a history holds, from their messages.
func numbers(h []v1alpha1.ReleaseStep) []int {
	var out []int
	for _, s := range h {
		var n int
		_, _ = fmt.Sscanf(s.Message, "step %d", &n)
		out = append(out, n)
	}
	return out
}

// A release's status moves its older steps into ReleaseHistory pages once
// it holds HistoryInStatus of them; readers see one history, in order,
// with nothing lost or twice, also when a run stopped between the page's
// write and the status's, or an earlier release of the same name left a
// page; pages that fall out of the last HistoryLimit steps are deleted.
func TestArchiveHistory(t *testing.T) {
	ctx := context.Background()
	canary := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web-v2", Namespace: "shop", UID: "canary"}}
	rc := phaseReconciler(t, canary)
	s := phaseRun(t, rc, "CanaryRelease", "CanaryReleaseExecutor", canary)
	merged := func(c *v1alpha1.CanaryRelease) []int {
		t.Helper()
		h, err := testHistory(ctx, rc, c)
		if err != nil {
			t.Fatal(err)
		}
		return numbers(h)
	}

	const moved = v1alpha1.HistoryInStatus - v1alpha1.HistoryKept
	c := canary.DeepCopy()
	c.Status.History = steps(0, v1alpha1.HistoryInStatus-1)
	if err := s.archiveHistory(ctx, c); err != nil || len(c.Status.History) != v1alpha1.HistoryInStatus-1 {
		t.Fatalf("a status below HistoryInStatus moved steps: %d left, %v", len(c.Status.History), err)
	}

	c.Status.History = steps(0, v1alpha1.HistoryInStatus)
	stopped := c.DeepCopy()
	if err := s.archiveHistory(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := numbers(c.Status.History); !slices.Equal(got, firstSteps()[moved:]) || c.Status.HistoryArchived != moved {
		t.Fatalf("status after the move: steps %v, archived %d", got, c.Status.HistoryArchived)
	}
	page := get(t, rc, "canaryrelease.web-v2.0", &v1alpha1.ReleaseHistory{})
	if page.First != 0 || len(page.Steps) != moved || !metav1.IsControlledBy(page, canary) || page.Release.Name != "web-v2" {
		t.Fatalf("page %+v", page)
	}

	// A run stopped after writing the page: the status still holds the
	// moved steps, readers show each once, the next run moves them again
	// onto the page already there.
	if got := merged(stopped); !slices.Equal(got, firstSteps()) {
		t.Fatalf("history between the two writes: %v", got)
	}
	if err := s.archiveHistory(ctx, stopped); err != nil || stopped.Status.HistoryArchived != moved || len(stopped.Status.History) != v1alpha1.HistoryKept {
		t.Fatalf("the run after: archived %d, %d left, %v", stopped.Status.HistoryArchived, len(stopped.Status.History), err)
	}

	// Steps go on; pages older than the last HistoryLimit steps go.
	for next := 10; next < 75; next++ {
		c.Status.History = append(c.Status.History, steps(next, 1)...)
		if err := s.archiveHistory(ctx, c); err != nil {
			t.Fatal(err)
		}
		if len(c.Status.History) >= v1alpha1.HistoryInStatus {
			t.Fatalf("the status holds %d steps", len(c.Status.History))
		}
	}
	got := merged(c)
	if len(got) < v1alpha1.HistoryLimit || got[len(got)-1] != 74 {
		t.Fatalf("history after 75 steps: %v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("history after 75 steps has a gap or a repeat: %v", got)
		}
	}
	var pages v1alpha1.ReleaseHistoryList
	if err := rc.Client.List(ctx, &pages); err != nil {
		t.Fatal(err)
	}
	if n := len(pages.Items); n > v1alpha1.HistoryLimit/moved+1 {
		t.Fatalf("%d pages kept for 75 steps", n)
	}

	// An earlier release of the same name left a page where the new one
	// writes its first: it is deleted and the run tried again.
	again := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web-v3", Namespace: "shop", UID: "new"}}
	left := &v1alpha1.ReleaseHistory{ObjectMeta: metav1.ObjectMeta{Name: "canaryrelease.web-v3.0", Namespace: "shop",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CanaryRelease", Name: "web-v3", UID: "old", Controller: ptr.To(true)}}},
		Release: v1alpha1.ActionTarget{Kind: "CanaryRelease", Name: "web-v3"}, Steps: steps(100, moved)}
	if err := rc.Client.Create(ctx, left); err != nil {
		t.Fatal(err)
	}
	again.Status.History = steps(0, v1alpha1.HistoryInStatus)
	if got := merged(again); !slices.Equal(got, firstSteps()) {
		t.Fatalf("an earlier release's page is shown: %v", got)
	}
	s.obj = again
	if err := s.archiveHistory(ctx, again); !apierrors.IsConflict(err) {
		t.Fatalf("an earlier release's page: %v", err)
	}
	if err := s.archiveHistory(ctx, again); err != nil || again.Status.HistoryArchived != moved {
		t.Fatalf("the run after: archived %d, %v", again.Status.HistoryArchived, err)
	}
	if got := merged(again); !slices.Equal(got, firstSteps()) {
		t.Fatalf("history of the new release: %v", got)
	}
}

// An action whose step was moved into a page is Applied, not applied again.
func TestPendingActionFoundInPage(t *testing.T) {
	ctx := context.Background()
	canary := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web-v2", Namespace: "shop", UID: "canary"}}
	objs := append([]client.Object{canary}, waitingActions("CanaryRelease", canary, v1alpha1.ActionRetry)...)
	rc := phaseReconciler(t, objs...)
	c := canary.DeepCopy()
	c.Status.History = steps(0, v1alpha1.HistoryInStatus)
	c.Status.History[1].ActionName, c.Status.History[1].Message = "canaryrelease-recorded", "paused"
	s := phaseRun(t, rc, "CanaryRelease", "CanaryReleaseExecutor", c)
	if err := s.archiveHistory(ctx, c); err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(c.Status.History, func(h v1alpha1.ReleaseStep) bool { return h.ActionName != "" }) {
		t.Fatal("the action's step is still in the status")
	}
	next, answers, err := s.pendingActions(ctx, &c.Status.Steps)
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) == 0 || answers[0].action.Name != "canaryrelease-recorded" || answers[0].phase != v1alpha1.ActionApplied || answers[0].message != "paused" {
		t.Fatalf("answers %+v", answers)
	}
	if next == nil || next.Name != "canaryrelease-refused" {
		t.Fatalf("next action %v", next)
	}
}

// testHistory is a release's whole history as kubist get reads it.
func testHistory(ctx context.Context, rc *Reconciler, rel v1alpha1.Release) ([]v1alpha1.ReleaseStep, error) {
	var pages v1alpha1.ReleaseHistoryList
	if err := rc.Client.List(ctx, &pages, client.InNamespace(rel.GetNamespace()), client.MatchingFields{v1alpha1.HistoryField: rel.GetName()}); err != nil {
		return nil, err
	}
	return release.History(rel, pages.Items), nil
}
