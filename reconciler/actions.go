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

// nextAction returns the oldest ReleaseAction of the run's release that is
// still to apply, nil when there is none. Those the history records
// already (a run applied them and stopped before saying so) are marked
// Applied on the way, and those meant for an earlier release of the same
// name are refused.
func (r *run) nextAction(ctx context.Context, history []v1alpha1.ReleaseStep) (*v1alpha1.ReleaseAction, error) {
	if r.readOnly {
		// A ReadOnly executor changes nothing, a person's action included.
		return nil, nil
	}
	// The cache's own objects, read only (settleAction writes a copy):
	// every run of a release asks, most find none.
	var list v1alpha1.ReleaseActionList
	if err := r.Client.List(ctx, &list, client.InNamespace(r.obj.GetNamespace()), client.UnsafeDisableDeepCopy,
		client.MatchingFields{indexActionTarget: ActionTargetKey(r.kind, r.obj.GetName())}); err != nil {
		return nil, fmt.Errorf("list the release's actions: %w", err)
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
	for _, a := range pending {
		if i := slices.IndexFunc(history, func(s v1alpha1.ReleaseStep) bool { return s.ActionName == a.Name }); i >= 0 {
			if err := r.settleAction(ctx, a, v1alpha1.ActionApplied, history[i].Message); err != nil {
				return nil, err
			}
			continue
		}
		if !ownedBy(a, r.obj) {
			if err := r.refuse(ctx, a, fmt.Sprintf("%s %s was replaced since the action was asked for", r.kind, r.obj.GetName())); err != nil {
				return nil, err
			}
			continue
		}
		return a, nil
	}
	return nil, nil
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

// settleAction writes an action's outcome into its status.
func (r *run) settleAction(ctx context.Context, a *v1alpha1.ReleaseAction, phase v1alpha1.ActionPhase, message string) error {
	a = a.DeepCopy()
	a.Status = v1alpha1.ReleaseActionStatus{Phase: phase, Message: message, Time: &metav1.MicroTime{Time: r.now}}
	if err := r.Client.Status().Update(ctx, a); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("ReleaseAction %s: %w", a.Name, err)
	}
	writes.WithLabelValues("ReleaseAction", "status").Inc()
	return nil
}

// refuse settles an action as Refused and says why on the release too.
func (r *run) refuse(ctx context.Context, a *v1alpha1.ReleaseAction, message string) error {
	if err := r.settleAction(ctx, a, v1alpha1.ActionRefused, message); err != nil {
		return err
	}
	releaseActions.WithLabelValues(r.kind, string(a.Spec.Action), string(v1alpha1.ActionRefused)).Inc()
	if r.Recorder != nil {
		r.Recorder.Eventf(r.obj, nil, corev1.EventTypeWarning, ReasonActionRefused, string(a.Spec.Action),
			"%s by %s refused: %s", a.Spec.Summary(), cmp.Or(a.Spec.RequestedBy, "unknown user"), message)
	}
	return nil
}

// recordAction appends an applied action to a release's history, asks for
// the run that marks it Applied, and says so in an Event.
func (r *run) recordAction(history *[]v1alpha1.ReleaseStep, a *v1alpha1.ReleaseAction, step v1alpha1.ReleaseStep) {
	step.Time = metav1.MicroTime{Time: r.now}
	step.Action, step.ActionName, step.User = string(a.Spec.Action), a.Name, a.Spec.RequestedBy
	appendHistory(history, step)
	releaseActions.WithLabelValues(r.kind, string(a.Spec.Action), string(v1alpha1.ActionApplied)).Inc()
	r.requeueAfter(time.Millisecond)
	r.events = append(r.events, policies.Event{Type: corev1.EventTypeNormal, Reason: ReasonAction,
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
