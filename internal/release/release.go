// Package release decides what a person's action (a ReleaseAction:
// promote, abort, pause, resume, approve, retry, conclude) does to a
// CanaryRelease or an Experiment. The admission webhook asks it whether an
// action can apply now, to refuse one up front; the release's executor
// asks it again when it applies the action.
package release

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// State is the part of a release's status that actions change.
type State struct {
	Weights     map[string]int32
	Phase       string
	PausedPhase string
	Last        *metav1.MicroTime
	Approved    *int32
}

// Result is what an action makes of a release: its state after,
// the message for the history, or why it is refused. Chain says the
// policies decide, with the action as input (a Promote that is not full).
type Result struct {
	State   State
	Message string
	Refused string
	Chain   bool
}

// actionsOf are the actions each kind of release takes.
var actionsOf = map[string][]v1alpha1.ActionName{
	"CanaryRelease": {v1alpha1.ActionPromote, v1alpha1.ActionAbort, v1alpha1.ActionPause, v1alpha1.ActionResume, v1alpha1.ActionApprove, v1alpha1.ActionRetry},
	"Experiment":    {v1alpha1.ActionAbort, v1alpha1.ActionPause, v1alpha1.ActionResume, v1alpha1.ActionConclude},
	"ReleasePlan":   {v1alpha1.ActionPromote, v1alpha1.ActionAbort, v1alpha1.ActionPause, v1alpha1.ActionResume},
}

// Applicable says why an action can apply to no release of a kind,
// whatever the release's state: an action the kind does not take, or a
// field of another action (full is Promote's, weight Approve's, winner
// Conclude's). It returns the field at fault and why, or "" when the
// action may apply; the rest depends on the release as it stands (Decide).
// It needs no cluster: kubist validate checks it offline.
func Applicable(kind string, spec v1alpha1.ReleaseActionSpec) (fieldName, refused string) {
	actions, ok := actionsOf[kind]
	if !ok {
		return "target.kind", fmt.Sprintf("%q is not a kind of release: CanaryRelease, Experiment or ReleasePlan", kind)
	}
	if !slices.Contains(actions, spec.Action) {
		names := make([]string, len(actions))
		for i, a := range actions {
			names[i] = string(a)
		}
		return "action", fmt.Sprintf("%s does not apply to a%s %s; it takes %s", spec.Action, article(kind), kind, strings.Join(names, ", "))
	}
	if kind == "ReleasePlan" && spec.Full {
		return "full", "full is for a release's Promote: a plan's Promote promotes its current wave at once; leave it out"
	}
	for _, f := range []struct {
		name   string
		set    bool
		action v1alpha1.ActionName
	}{
		{"full", spec.Full, v1alpha1.ActionPromote},
		{"weight", spec.Weight != nil, v1alpha1.ActionApprove},
		{"winner", spec.Winner != "", v1alpha1.ActionConclude},
	} {
		if f.set && spec.Action != f.action {
			return f.name, fmt.Sprintf("%s is for %s, not %s: leave it out", f.name, f.action, spec.Action)
		}
	}
	return "", ""
}

// article is "n" before a kind that starts with a vowel.
func article(kind string) string {
	if strings.ContainsRune("AEIOU", rune(kind[0])) {
		return "n"
	}
	return ""
}

// Gated says whether a chain has a ManualGate, which an Approve opens.
func Gated(chain []v1alpha1.PolicyRef) bool {
	return slices.ContainsFunc(chain, func(p v1alpha1.PolicyRef) bool { return p.Name == "ManualGate" })
}

// Canary decides what an action does to a canary's state; gated says
// whether its chain has a ManualGate.
func Canary(a *v1alpha1.ReleaseAction, s State, canary, baseline string, gated bool, now time.Time) Result {
	phase := v1alpha1.CanaryPhase(s.Phase)
	active := phase == v1alpha1.CanaryPending || phase == v1alpha1.CanaryProgressing
	stepped := &metav1.MicroTime{Time: now}
	split := func(w int32) map[string]int32 { return map[string]int32{canary: w, baseline: 100 - w} }
	switch a.Spec.Action {
	case v1alpha1.ActionPromote:
		switch {
		case phase == v1alpha1.CanaryPromoted || phase == v1alpha1.CanaryRolledBack || phase == v1alpha1.CanaryAborted:
			return Result{Refused: fmt.Sprintf("the release is %s: there is nothing to promote (retry starts a rolled-back or aborted one again)", phase)}
		case a.Spec.Full:
			s.Weights, s.Phase, s.PausedPhase, s.Last = split(100), string(v1alpha1.CanaryPromoted), "", stepped
			return Result{State: s, Message: fmt.Sprintf("promoted at once: canary %s at 100%%", canary)}
		case phase == v1alpha1.CanaryPaused:
			return Result{Refused: "the release is Paused: resume it first, or promote --full"}
		}
		return Result{State: s, Chain: true}
	case v1alpha1.ActionAbort:
		if phase == v1alpha1.CanaryAborted || phase == v1alpha1.CanaryRolledBack {
			return Result{Refused: fmt.Sprintf("the release is %s already: the baseline %s carries all traffic", phase, baseline)}
		}
		s.Weights, s.Phase, s.PausedPhase, s.Last = split(0), string(v1alpha1.CanaryAborted), "", stepped
		return Result{State: s, Message: fmt.Sprintf("aborted: baseline %s at 100%%", baseline)}
	case v1alpha1.ActionPause, v1alpha1.ActionResume:
		return pauseOrResume(a.Spec.Action, s, active, "release", "Pending or Progressing", string(v1alpha1.CanaryPaused), string(v1alpha1.CanaryProgressing))
	case v1alpha1.ActionApprove:
		switch {
		case !gated:
			return Result{Refused: "the release has no ManualGate among its policies: there is nothing to approve"}
		case !active && phase != v1alpha1.CanaryPaused:
			return Result{Refused: fmt.Sprintf("the release is %s: there is nothing left to approve", phase)}
		}
		s.Approved = a.Spec.Weight
		return Result{State: s, Message: fmt.Sprintf("approved up to %d%%", *a.Spec.Weight)}
	case v1alpha1.ActionRetry:
		if phase != v1alpha1.CanaryRolledBack && phase != v1alpha1.CanaryAborted {
			return Result{Refused: fmt.Sprintf("the release is %s: only a RolledBack or Aborted release can be retried", phase)}
		}
		s.Weights, s.Phase, s.PausedPhase, s.Last, s.Approved = split(0), string(v1alpha1.CanaryPending), "", nil, nil
		return Result{State: s, Message: "started again from the first step"}
	}
	return Result{Refused: fmt.Sprintf("%s does not apply to a CanaryRelease", a.Spec.Action)}
}

// Experiment decides what an action does to an experiment's state;
// subsets are the experiment's, the first one its baseline.
func Experiment(a *v1alpha1.ReleaseAction, s State, subsets []string, now time.Time) Result {
	phase := v1alpha1.ExperimentPhase(s.Phase)
	active := phase == v1alpha1.ExperimentPending || phase == v1alpha1.ExperimentRunning
	over := phase == v1alpha1.ExperimentConcluded || phase == v1alpha1.ExperimentAborted
	all := func(winner string) map[string]int32 {
		w := make(map[string]int32, len(subsets))
		for _, sub := range subsets {
			w[sub] = 0
		}
		w[winner] = 100
		return w
	}
	stepped := &metav1.MicroTime{Time: now}
	switch a.Spec.Action {
	case v1alpha1.ActionPause, v1alpha1.ActionResume:
		return pauseOrResume(a.Spec.Action, s, active, "experiment", "Pending or Running", string(v1alpha1.ExperimentPaused), string(v1alpha1.ExperimentRunning))
	case v1alpha1.ActionAbort:
		if over {
			return Result{Refused: fmt.Sprintf("the experiment is %s already", phase)}
		}
		s.Weights, s.Phase, s.PausedPhase, s.Last = all(subsets[0]), string(v1alpha1.ExperimentAborted), "", stepped
		return Result{State: s, Message: fmt.Sprintf("aborted: %s at 100%%", subsets[0])}
	case v1alpha1.ActionConclude:
		switch {
		case over:
			return Result{Refused: fmt.Sprintf("the experiment is %s already", phase)}
		case !slices.Contains(subsets, a.Spec.Winner):
			return Result{Refused: fmt.Sprintf("winner %q is not one of the experiment's subsets (%s)", a.Spec.Winner, strings.Join(subsets, ", "))}
		}
		s.Weights, s.Phase, s.PausedPhase, s.Last = all(a.Spec.Winner), string(v1alpha1.ExperimentConcluded), "", stepped
		return Result{State: s, Message: fmt.Sprintf("concluded: winner %s at 100%%", a.Spec.Winner)}
	}
	return Result{Refused: fmt.Sprintf("%s does not apply to an Experiment", a.Spec.Action)}
}

// Plan decides what an action does to a ReleasePlan's phase: Promote
// (promote-wave) promotes the current wave's releases at once and starts
// the next wave without its soak, through the plan's chain; Abort ends
// the plan and aborts its running releases; Pause and Resume.
func Plan(a *v1alpha1.ReleaseAction, s State) Result {
	phase := v1alpha1.PlanPhase(s.Phase)
	switch a.Spec.Action {
	case v1alpha1.ActionPromote:
		if phase != v1alpha1.PlanProgressing {
			return Result{Refused: fmt.Sprintf("the plan is %s: only a Progressing plan has a wave to promote", phase)}
		}
		return Result{State: s, Chain: true, Message: "current wave promoted at once"}
	case v1alpha1.ActionAbort:
		if phase.Ended() {
			return Result{Refused: fmt.Sprintf("the plan is %s already: it starts nothing more", phase)}
		}
		s.Phase, s.PausedPhase = string(v1alpha1.PlanAborted), ""
		return Result{State: s, Message: "aborted: no wave starts any more, the running releases are aborted"}
	case v1alpha1.ActionPause:
		if phase != v1alpha1.PlanPending && phase != v1alpha1.PlanProgressing {
			return Result{Refused: fmt.Sprintf("the plan is %s: only a Pending or Progressing plan can be paused", phase)}
		}
		s.PausedPhase, s.Phase = s.Phase, string(v1alpha1.PlanPaused)
		return Result{State: s, Message: "paused: no wave starts and its releases hold their weights"}
	case v1alpha1.ActionResume:
		if phase != v1alpha1.PlanPaused {
			return Result{Refused: fmt.Sprintf("the plan is %s, not Paused", phase)}
		}
		s.Phase, s.PausedPhase = cmp.Or(s.PausedPhase, string(v1alpha1.PlanProgressing)), ""
		return Result{State: s, Message: "resumed"}
	}
	return Result{Refused: fmt.Sprintf("%s does not apply to a ReleasePlan", a.Spec.Action)}
}

// pauseOrResume freezes an active release (what, e.g. "release"; active
// names its active phases for the refusal) in the paused phase, or lets a
// paused one go on in the phase it paused in (running, if unknown).
func pauseOrResume(action v1alpha1.ActionName, s State, active bool, what, activePhases, paused, running string) Result {
	if action == v1alpha1.ActionPause {
		if !active {
			return Result{Refused: fmt.Sprintf("the %s is %s: only a %s %s can be paused", what, s.Phase, activePhases, what)}
		}
		s.PausedPhase, s.Phase = s.Phase, paused
		return Result{State: s, Message: fmt.Sprintf("paused at %s", v1alpha1.SplitString(s.Weights))}
	}
	if s.Phase != paused {
		return Result{Refused: fmt.Sprintf("the %s is %s, not %s", what, s.Phase, paused)}
	}
	s.Phase, s.PausedPhase = cmp.Or(s.PausedPhase, running), ""
	return Result{State: s, Message: fmt.Sprintf("resumed at %s", v1alpha1.SplitString(s.Weights))}
}

// Decide is what an action makes of its release (a CanaryRelease or an
// Experiment) as it stands: admission refuses what it refuses, and the
// dashboard offers only the actions it would not refuse.
func Decide(a *v1alpha1.ReleaseAction, target v1alpha1.Object, now time.Time) Result {
	kind := "CanaryRelease"
	switch target.(type) {
	case *v1alpha1.Experiment:
		kind = "Experiment"
	case *v1alpha1.ReleasePlan:
		kind = "ReleasePlan"
	}
	if _, refused := Applicable(kind, a.Spec); refused != "" {
		return Result{Refused: refused}
	}
	switch t := target.(type) {
	case *v1alpha1.CanaryRelease:
		s := State{Weights: t.Status.Weights, Phase: string(t.Status.Phase), PausedPhase: string(t.Status.PausedPhase)}
		if s.Phase == "" {
			s.Phase = string(v1alpha1.CanaryPending)
		}
		return Canary(a, s, t.Spec.Subset, t.BaselineSubset(), Gated(t.Spec.Policies), now)
	case *v1alpha1.Experiment:
		s := State{Weights: t.Status.Weights, Phase: string(t.Status.Phase), PausedPhase: string(t.Status.PausedPhase)}
		if s.Phase == "" {
			s.Phase = string(v1alpha1.ExperimentPending)
		}
		return Experiment(a, s, t.Spec.Subsets, now)
	case *v1alpha1.ReleasePlan:
		return Plan(a, State{Phase: string(cmp.Or(t.Status.Phase, v1alpha1.PlanPending)), PausedPhase: string(t.Status.PausedPhase)})
	}
	return Result{Refused: fmt.Sprintf("a %T is not a release", target)}
}
