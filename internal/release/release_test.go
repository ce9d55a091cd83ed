package release

import (
	"maps"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

func action(name v1alpha1.ActionName, mutate ...func(*v1alpha1.ReleaseActionSpec)) *v1alpha1.ReleaseAction {
	a := &v1alpha1.ReleaseAction{Spec: v1alpha1.ReleaseActionSpec{Action: name}}
	for _, m := range mutate {
		m(&a.Spec)
	}
	return a
}

func TestCanary(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	progressing := State{Weights: map[string]int32{"v1": 70, "v2": 30}, Phase: "Progressing"}
	for name, tc := range map[string]struct {
		action  *v1alpha1.ReleaseAction
		state   State
		gated   bool
		weights map[string]int32
		phase   string
		chain   bool
		refused string
	}{
		"promote leaves the step to the policies":          {action: action(v1alpha1.ActionPromote), state: progressing, chain: true, weights: progressing.Weights, phase: "Progressing"},
		"promote --full goes to 100% at once":              {action: action(v1alpha1.ActionPromote, func(s *v1alpha1.ReleaseActionSpec) { s.Full = true }), state: progressing, weights: map[string]int32{"v1": 0, "v2": 100}, phase: "Promoted"},
		"promote --full of a paused release":               {action: action(v1alpha1.ActionPromote, func(s *v1alpha1.ReleaseActionSpec) { s.Full = true }), state: with(progressing, "Paused"), weights: map[string]int32{"v1": 0, "v2": 100}, phase: "Promoted"},
		"promoting a promoted release is refused":          {action: action(v1alpha1.ActionPromote), state: with(progressing, "Promoted"), refused: "the release is Promoted: there is nothing to promote"},
		"promoting a paused release is refused":            {action: action(v1alpha1.ActionPromote), state: with(progressing, "Paused"), refused: "resume it first"},
		"abort sends everything to the baseline":           {action: action(v1alpha1.ActionAbort), state: progressing, weights: map[string]int32{"v1": 100, "v2": 0}, phase: "Aborted"},
		"aborting a rolled-back release is refused":        {action: action(v1alpha1.ActionAbort), state: with(progressing, "RolledBack"), refused: "RolledBack already"},
		"pause keeps the weights":                          {action: action(v1alpha1.ActionPause), state: progressing, weights: progressing.Weights, phase: "Paused"},
		"pausing a promoted release is refused":            {action: action(v1alpha1.ActionPause), state: with(progressing, "Promoted"), refused: "only a Pending or Progressing release can be paused"},
		"resume returns to the phase it paused in":         {action: action(v1alpha1.ActionResume), state: State{Weights: progressing.Weights, Phase: "Paused", PausedPhase: "Pending"}, weights: progressing.Weights, phase: "Pending"},
		"resuming a release that is not paused is refused": {action: action(v1alpha1.ActionResume), state: progressing, refused: "not Paused"},
		"approve stores the weight":                        {action: action(v1alpha1.ActionApprove, func(s *v1alpha1.ReleaseActionSpec) { s.Weight = ptr.To[int32](40) }), state: progressing, gated: true, weights: progressing.Weights, phase: "Progressing"},
		"approving without a ManualGate is refused":        {action: action(v1alpha1.ActionApprove, func(s *v1alpha1.ReleaseActionSpec) { s.Weight = ptr.To[int32](40) }), state: progressing, refused: "no ManualGate"},
		"retry starts from the first step":                 {action: action(v1alpha1.ActionRetry), state: State{Weights: map[string]int32{"v1": 100, "v2": 0}, Phase: "Aborted"}, weights: map[string]int32{"v1": 100, "v2": 0}, phase: "Pending"},
		"retrying a progressing release is refused":        {action: action(v1alpha1.ActionRetry), state: progressing, refused: "only a RolledBack or Aborted release can be retried"},
		"conclude is for experiments":                      {action: action(v1alpha1.ActionConclude), state: progressing, refused: "does not apply to a CanaryRelease"},
	} {
		t.Run(name, func(t *testing.T) {
			res := Canary(tc.action, tc.state, "v2", "v1", tc.gated, now)
			if tc.refused != "" {
				if !strings.Contains(res.Refused, tc.refused) {
					t.Fatalf("refused %q, want it to say %q", res.Refused, tc.refused)
				}
				return
			}
			if res.Refused != "" {
				t.Fatalf("refused: %s", res.Refused)
			}
			if res.Chain != tc.chain || !maps.Equal(res.State.Weights, tc.weights) || res.State.Phase != tc.phase {
				t.Fatalf("got chain %v, weights %v, phase %s; want %v, %v, %s", res.Chain, res.State.Weights, res.State.Phase, tc.chain, tc.weights, tc.phase)
			}
		})
	}
}

func TestCanaryRetryForgetsTheApproval(t *testing.T) {
	res := Canary(action(v1alpha1.ActionRetry), State{Weights: map[string]int32{"v1": 100, "v2": 0}, Phase: "RolledBack", Approved: ptr.To[int32](50)}, "v2", "v1", true, time.Now())
	if res.State.Approved != nil || res.State.Last != nil {
		t.Fatalf("retry kept approval %v or last step %v", res.State.Approved, res.State.Last)
	}
}

func TestExperiment(t *testing.T) {
	subsets := []string{"a", "b", "c"}
	running := State{Weights: map[string]int32{"a": 34, "b": 33, "c": 33}, Phase: "Running"}
	for name, tc := range map[string]struct {
		action  *v1alpha1.ReleaseAction
		state   State
		weights map[string]int32
		phase   string
		refused string
	}{
		"conclude gives the winner everything":  {action: action(v1alpha1.ActionConclude, func(s *v1alpha1.ReleaseActionSpec) { s.Winner = "b" }), state: running, weights: map[string]int32{"a": 0, "b": 100, "c": 0}, phase: "Concluded"},
		"conclude with an unknown subset":       {action: action(v1alpha1.ActionConclude, func(s *v1alpha1.ReleaseActionSpec) { s.Winner = "z" }), state: running, refused: `winner "z" is not one of the experiment's subsets (a, b, c)`},
		"abort gives the first subset all":      {action: action(v1alpha1.ActionAbort), state: running, weights: map[string]int32{"a": 100, "b": 0, "c": 0}, phase: "Aborted"},
		"pause and the weights stay":            {action: action(v1alpha1.ActionPause), state: running, weights: running.Weights, phase: "Paused"},
		"resume goes back to Running":           {action: action(v1alpha1.ActionResume), state: State{Weights: running.Weights, Phase: "Paused", PausedPhase: "Running"}, weights: running.Weights, phase: "Running"},
		"concluding a concluded one is refused": {action: action(v1alpha1.ActionConclude, func(s *v1alpha1.ReleaseActionSpec) { s.Winner = "b" }), state: with(running, "Concluded"), refused: "Concluded already"},
		"promote is for canaries":               {action: action(v1alpha1.ActionPromote), state: running, refused: "does not apply to an Experiment"},
	} {
		t.Run(name, func(t *testing.T) {
			res := Experiment(tc.action, tc.state, subsets, time.Now())
			if tc.refused != "" {
				if !strings.Contains(res.Refused, tc.refused) {
					t.Fatalf("refused %q, want it to say %q", res.Refused, tc.refused)
				}
				return
			}
			if res.Refused != "" {
				t.Fatalf("refused: %s", res.Refused)
			}
			if !maps.Equal(res.State.Weights, tc.weights) || res.State.Phase != tc.phase {
				t.Fatalf("got weights %v, phase %s; want %v, %s", res.State.Weights, res.State.Phase, tc.weights, tc.phase)
			}
		})
	}
}

func with(s State, phase string) State { s.Phase = phase; return s }

// TestApplicable: what no release's state changes is refused with the
// field at fault, offline as in admission.
func TestApplicable(t *testing.T) {
	for name, tc := range map[string]struct {
		kind    string
		action  *v1alpha1.ReleaseAction
		field   string
		refused string
	}{
		"promote a canary":       {kind: "CanaryRelease", action: action(v1alpha1.ActionPromote, func(s *v1alpha1.ReleaseActionSpec) { s.Full = true })},
		"conclude an experiment": {kind: "Experiment", action: action(v1alpha1.ActionConclude, func(s *v1alpha1.ReleaseActionSpec) { s.Winner = "v2" })},
		"conclude a canary": {kind: "CanaryRelease", action: action(v1alpha1.ActionConclude), field: "action",
			refused: "Conclude does not apply to a CanaryRelease; it takes Promote, Abort, Pause, Resume, Approve, Retry"},
		"promote an experiment": {kind: "Experiment", action: action(v1alpha1.ActionPromote), field: "action",
			refused: "Promote does not apply to an Experiment; it takes Abort, Pause, Resume, Conclude"},
		"full is Promote's": {kind: "CanaryRelease", action: action(v1alpha1.ActionAbort, func(s *v1alpha1.ReleaseActionSpec) { s.Full = true }), field: "full",
			refused: "full is for Promote, not Abort: leave it out"},
		"weight is Approve's": {kind: "CanaryRelease", action: action(v1alpha1.ActionPromote, func(s *v1alpha1.ReleaseActionSpec) { s.Weight = ptr.To[int32](40) }), field: "weight",
			refused: "weight is for Approve, not Promote: leave it out"},
		"winner is Conclude's": {kind: "Experiment", action: action(v1alpha1.ActionAbort, func(s *v1alpha1.ReleaseActionSpec) { s.Winner = "v2" }), field: "winner",
			refused: "winner is for Conclude, not Abort: leave it out"},
		"no such kind": {kind: "Route", action: action(v1alpha1.ActionAbort), field: "target.kind",
			refused: `"Route" is not a kind of release: CanaryRelease, Experiment or ReleasePlan`},
	} {
		t.Run(name, func(t *testing.T) {
			f, refused := Applicable(tc.kind, tc.action.Spec)
			if f != tc.field || refused != tc.refused {
				t.Errorf("Applicable = %q, %q; want %q, %q", f, refused, tc.field, tc.refused)
			}
		})
	}
}

// TestReadableFigures: figures read by people have at most three
// significant digits, as rego/lib/format.rego renders them.
func TestReadableFigures(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Percent(0.2015703567431595), "20.2%"},
		{Percent(0.026), "2.6%"},
		{Percent(0.0945), "9.45%"},
		{Percent(1), "100%"},
		{Percent(0), "0%"},
		{Percent(0.000123), "0.012%"},
		{Millis(245.37), "245ms"},
		{Millis(3.6249), "3.62ms"},
		{Millis(12.25), "12.3ms"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	requests, errorRate, p99 := StepFigures([]v1alpha1.StepMetrics{
		{Subset: "v1", Requests: "412", ErrorRate: "0", LatencyP99Ms: "87.4"},
		{Subset: "v2", Requests: "48", ErrorRate: "0.0208333", LatencyP99Ms: ""},
	})
	if requests != "v1 412, v2 48" || errorRate != "v1 0%, v2 2.08%" || p99 != "v1 87.4ms, v2 -" {
		t.Errorf("StepFigures = %q, %q, %q", requests, errorRate, p99)
	}
}
