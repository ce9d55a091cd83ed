package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// The actions people ask of a release (ReleaseAction objects, which
// `kubist canary promote` and its sibling commands create) are applied by
// the release's own executor, one per run, oldest first. The release's
// status is the record: the run that applies an action writes it into the
// history with the user who asked, and a later run, finding it there,
// marks the ReleaseAction Applied. A run that stops in between leaves the
// action Pending and recorded: it is applied once, and never lost.

// +kubebuilder:rbac:groups=kubist.io,resources=releaseactions,verbs=get;list;watch
// +kubebuilder:rbac:groups=kubist.io,resources=releaseactions/status,verbs=get;update;patch

// indexActionTarget finds the ReleaseActions of a release: "Kind/name".
const indexActionTarget = "spec.target"

// ActionTargetKey is a release as ReleaseActions are indexed by it.
func ActionTargetKey(kind, name string) string { return kind + "/" + name }

// Reasons of the Events an action leaves on its release.
const (
	ReasonAction        = "Action"
	ReasonActionRefused = "ActionRefused"
)

// actionAnswer is the outcome a run gives a ReleaseAction without applying
// it: Applied for one the history records already, Refused for one the
// release cannot apply. Observe decides the answers; the skeleton writes
// them (answerActions) before the chain runs.
type actionAnswer struct {
	action  *v1alpha1.ReleaseAction
	phase   v1alpha1.ActionPhase
	message string
	// next: the refused action was the one this run would have applied;
	// the action after it gets a run of its own.
	next bool
}

// pendingActions reads the ReleaseActions of the run's release that are
// still Pending: it returns the oldest one to apply (nil when there is
// none) and the answers to those before it — Applied for those the
// history records already (a run applied them and stopped before saying
// so), Refused for those meant for an earlier release of the same name.
func (s *scope) pendingActions(ctx context.Context, steps *v1alpha1.Steps) (*v1alpha1.ReleaseAction, []actionAnswer, error) {
	if s.readOnly {
		// A ReadOnly executor changes nothing, a person's action included.
		return nil, nil, nil
	}
	// The cache's own objects, read only (answerActions writes a copy):
	// every run of a release asks, most find none.
	var list v1alpha1.ReleaseActionList
	// A ReleasePlan's (cluster-scoped) actions are in the manager's namespace.
	namespace := cmp.Or(s.obj.GetNamespace(), s.Namespace)
	if err := s.Client.List(ctx, &list, client.InNamespace(namespace), client.UnsafeDisableDeepCopy,
		client.MatchingFields{indexActionTarget: ActionTargetKey(s.kind, s.obj.GetName())}); err != nil {
		return nil, nil, fmt.Errorf("list the release's actions: %w", err)
	}
	var pending []*v1alpha1.ReleaseAction
	for i := range list.Items {
		if a := &list.Items[i]; a.Status.Phase == "" || a.Status.Phase == v1alpha1.ActionPending {
			pending = append(pending, a)
		}
	}
	slices.SortFunc(pending, func(a, b *v1alpha1.ReleaseAction) int {
		return cmp.Or(requestedAt(a).Compare(requestedAt(b)), cmp.Compare(a.Name, b.Name))
	})
	var answers []actionAnswer
	for _, a := range pending {
		if i := slices.IndexFunc(steps.History, func(h v1alpha1.ReleaseStep) bool { return h.ActionName == a.Name }); i >= 0 {
			answers = append(answers, actionAnswer{action: a, phase: v1alpha1.ActionApplied, message: steps.History[i].Message})
			continue
		}
		if step, err := s.archivedStep(ctx, a.Name); err != nil || step != nil {
			if err != nil {
				return nil, nil, err
			}
			answers = append(answers, actionAnswer{action: a, phase: v1alpha1.ActionApplied, message: step.Message})
			continue
		}
		if !ownedBy(a, s.obj) {
			answers = append(answers, actionAnswer{action: a, phase: v1alpha1.ActionRefused,
				message: fmt.Sprintf("%s %s was replaced since the action was asked for", s.kind, s.obj.GetName())})
			continue
		}
		return a, answers, nil
	}
	return nil, answers, nil
}

// refusal is the answer to the action a run would have applied, which the
// release refuses.
func refusal(a *v1alpha1.ReleaseAction, message string) actionAnswer {
	return actionAnswer{action: a, phase: v1alpha1.ActionRefused, message: message, next: true}
}

// answerActions writes the answers Observe decided into the actions'
// statuses; a refusal is told on the release too.
func (s *scope) answerActions(ctx context.Context, answers []actionAnswer) error {
	for _, ans := range answers {
		if err := s.writeActionStatus(ctx, ans.action, ans.phase, ans.message); err != nil {
			return err
		}
		if ans.phase != v1alpha1.ActionRefused {
			continue
		}
		a := ans.action
		releaseActions.WithLabelValues(s.kind, string(a.Spec.Action), string(v1alpha1.ActionRefused)).Inc()
		if s.Recorder != nil {
			s.Recorder.Eventf(s.obj, nil, corev1.EventTypeWarning, ReasonActionRefused, string(a.Spec.Action),
				"%s by %s refused: %s", a.Spec.Summary(), cmp.Or(a.Spec.RequestedBy, "unknown user"), ans.message)
		}
		if ans.next {
			s.requeueAfter(time.Millisecond)
		}
	}
	return nil
}

// requestedAt is when an action was admitted.
func requestedAt(a *v1alpha1.ReleaseAction) time.Time {
	if a.Spec.RequestedAt != nil {
		return a.Spec.RequestedAt.Time
	}
	return a.CreationTimestamp.Time
}

// ownedBy says whether an action was asked of this very release: the
// admission webhook makes the release the action's owner.
func ownedBy(a *v1alpha1.ReleaseAction, release client.Object) bool {
	for _, ref := range a.OwnerReferences {
		if ref.UID == release.GetUID() {
			return true
		}
	}
	return len(a.OwnerReferences) == 0
}

// writeActionStatus writes an action's outcome into its status.
func (s *scope) writeActionStatus(ctx context.Context, a *v1alpha1.ReleaseAction, phase v1alpha1.ActionPhase, message string) error {
	a = a.DeepCopy()
	a.Status = v1alpha1.ReleaseActionStatus{Phase: phase, Message: message, Time: &metav1.MicroTime{Time: s.now}}
	if err := s.Client.Status().Update(ctx, a); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("ReleaseAction %s: %w", a.Name, err)
	}
	writes.WithLabelValues("ReleaseAction", "status").Inc()
	return nil
}

// recordAction appends an applied action to a release's history, asks for
// the run that marks it Applied, and says so in an Event.
func (s *scope) recordAction(history *[]v1alpha1.ReleaseStep, a *v1alpha1.ReleaseAction, step v1alpha1.ReleaseStep) {
	step.Time = metav1.MicroTime{Time: s.now}
	step.Action, step.ActionName, step.User = string(a.Spec.Action), a.Name, a.Spec.RequestedBy
	appendHistory(history, step)
	releaseActions.WithLabelValues(s.kind, string(a.Spec.Action), string(v1alpha1.ActionApplied)).Inc()
	s.requeueAfter(time.Millisecond)
	s.events = append(s.events, policies.Event{Type: corev1.EventTypeNormal, Reason: ReasonAction,
		Message: fmt.Sprintf("%s by %s: %s", a.Spec.Summary(), cmp.Or(a.Spec.RequestedBy, "unknown user"), step.Message)})
}

// appendHistory adds a step to a history, keeping the last HistoryLimit.
func appendHistory(history *[]v1alpha1.ReleaseStep, step v1alpha1.ReleaseStep) {
	*history = append(*history, step)
	if n := len(*history); n > v1alpha1.HistoryLimit {
		*history = slices.Clone((*history)[n-v1alpha1.HistoryLimit:])
	}
}

// actionInput is an action as the policies' input.action.
func actionInput(a *v1alpha1.ReleaseAction) map[string]any {
	if a == nil {
		return nil
	}
	in := map[string]any{"name": string(a.Spec.Action), "user": a.Spec.RequestedBy, "time": requestedAt(a).UTC().Format(time.RFC3339Nano)}
	if a.Spec.Full {
		in["full"] = true
	}
	if a.Spec.Weight != nil {
		in["weight"] = int64(*a.Spec.Weight)
	}
	if a.Spec.Winner != "" {
		in["winner"] = a.Spec.Winner
	}
	return in
}
