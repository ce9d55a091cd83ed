package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/ancestry"
	"github.com/kubist-io/kubist/internal/manager/notify"
)

// Notifications are sent by the run that wrote a release's status, once
// the write succeeded: what the history gained (steps, promotions,
// rollbacks, people's actions), a gate that started waiting, a policy
// error. Send only queues them, so no receiver delays a step.

// notifyAfterWrite sends what a status write tells people, to the
// receivers the release inherits.
func (s *scope) notifyAfterWrite(ctx context.Context, old, updated v1alpha1.Object) {
	if s.Notifier == nil {
		return
	}
	notes := notificationsOf(s.kind, old, updated)
	if len(notes) == 0 {
		return
	}
	receivers, err := s.receiversOf(ctx, updated)
	if err != nil {
		// The others still hear of it.
		log.FromContext(ctx).Error(err, "Cannot resolve some of the release's notification receivers", "release", client.ObjectKeyFromObject(updated))
	}
	for _, n := range notes {
		s.Notifier.Send(receivers, n)
	}
}

// notificationsOf compares a release before and after a status write.
func notificationsOf(kind string, old, updated v1alpha1.Object) []notify.Notification {
	var before, after []v1alpha1.ReleaseStep
	var phase string
	var weights map[string]int32
	switch o := updated.(type) {
	case *v1alpha1.CanaryRelease:
		before, after = old.(*v1alpha1.CanaryRelease).Status.History, o.Status.History
		phase, weights = string(o.Status.Phase), o.Status.Weights
	case *v1alpha1.Experiment:
		before, after = old.(*v1alpha1.Experiment).Status.History, o.Status.History
		phase, weights = string(o.Status.Phase), o.Status.Weights
	case *v1alpha1.ReleasePlan:
		before, after = old.(*v1alpha1.ReleasePlan).Status.History, o.Status.History
		phase = string(o.Status.Phase)
	default:
		return nil
	}
	base := notify.Notification{Kind: kind, Namespace: updated.GetNamespace(), Name: updated.GetName(), Phase: phase, Weights: weights,
		Plan: updated.GetLabels()[v1alpha1.LabelPlan], Wave: updated.GetLabels()[v1alpha1.LabelWave]}
	if p, ok := updated.(*v1alpha1.ReleasePlan); ok && p.Status.Wave > 0 && int(p.Status.Wave) <= len(p.Status.Waves) {
		base.Wave = p.Status.Waves[p.Status.Wave-1].Name
	}
	var out []notify.Notification
	for _, step := range newSteps(before, after) {
		n := base
		n.Reason, n.Level = stepReason(step)
		n.Message, n.User, n.Time, n.Phase, n.Weights = step.Message, step.User, step.Time.Time, step.Phase, step.Weights
		if step.Action != "" {
			n.Message = fmt.Sprintf("%s by %s: %s", step.Action, cmp.Or(step.User, "unknown user"), step.Message)
		}
		out = append(out, n)
	}
	oldStatus, status := old.GetCommonStatus(), updated.GetCommonStatus()
	for _, d := range status.Decisions {
		if d.Outcome != "Gate" || gateWaiting(oldStatus.Decisions, d) {
			continue
		}
		n := base
		n.Reason, n.Level, n.Message = "GateWaiting", notify.Info, fmt.Sprintf("%s: %s", d.Policy, d.Message)
		if d.Time != nil {
			n.Time = d.Time.Time
		}
		out = append(out, n)
	}
	was := meta.FindStatusCondition(oldStatus.Conditions, v1alpha1.ConditionReady)
	if ready := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady); ready != nil && ready.Reason == ReasonPolicyError &&
		(was == nil || was.Reason != ReasonPolicyError || was.Message != ready.Message) {
		n := base
		n.Reason, n.Level, n.Message, n.Time = ReasonPolicyError, notify.Error, ready.Message, ready.LastTransitionTime.Time
		out = append(out, n)
	}
	return out
}

// newSteps are the steps a history gained: those after the last one it had.
func newSteps(before, after []v1alpha1.ReleaseStep) []v1alpha1.ReleaseStep {
	if len(before) == 0 {
		return after
	}
	last := before[len(before)-1].Time
	for i, s := range after {
		if s.Time.After(last.Time) {
			return after[i:]
		}
	}
	return nil
}

// gateWaiting says whether a gate's decision was there before already.
func gateWaiting(before []v1alpha1.PolicyDecision, d v1alpha1.PolicyDecision) bool {
	for _, o := range before {
		if o.Policy == d.Policy && o.Outcome == d.Outcome && o.Message == d.Message {
			return true
		}
	}
	return false
}

// stepReason names what a step of the history was, and how much it matters.
func stepReason(s v1alpha1.ReleaseStep) (string, notify.Level) {
	switch v1alpha1.ActionName(s.Action) {
	case v1alpha1.ActionAbort:
		return "Aborted", notify.Warning
	case v1alpha1.ActionPause:
		return "Paused", notify.Warning
	case v1alpha1.ActionResume:
		return "Resumed", notify.Info
	case v1alpha1.ActionRetry:
		return "Retried", notify.Info
	case v1alpha1.ActionApprove:
		return "Approved", notify.Info
	}
	switch s.Phase {
	case string(v1alpha1.CanaryPromoted):
		return "Promoted", notify.Info
	case string(v1alpha1.CanaryRolledBack):
		return "RolledBack", notify.Error
	case string(v1alpha1.ExperimentConcluded):
		return "Concluded", notify.Info
	case string(v1alpha1.PlanHalted):
		return "Halted", notify.Error
	}
	if strings.HasSuffix(s.Message, " started") || strings.Contains(s.Message, ": starting ") {
		return "WaveStarted", notify.Info
	}
	return "Step", notify.Info
}

// receiversOf finds the notifications a release inherits: its own, else
// its VirtualCluster's (the one whose management namespace it is in), its
// Cluster's, its Project's; the first that has a notifications stanza
// decides. The URLs and tokens are read from Secrets in the manager's
// namespace.
func (s *scope) receiversOf(ctx context.Context, obj v1alpha1.Object) ([]notify.Receiver, error) {
	stanza := obj.GetStanzas().Notifications
	if p, ok := obj.(*v1alpha1.ReleasePlan); ok && stanza == nil {
		// A plan inherits its Project's.
		if levels := ancestry.OfProject(ctx, s.Client, p.Spec.Project).Levels(); len(levels) > 0 {
			stanza = levels[0].Object.GetStanzas().Notifications
		}
	}
	if stanza == nil && obj.GetNamespace() != "" {
		stanza = s.inheritedNotifications(ctx, obj.GetNamespace())
	}
	if stanza == nil {
		return nil, nil
	}
	var out []notify.Receiver
	var problems []string
	for _, rc := range stanza.Receivers {
		level, err := notify.ParseLevel(rc.MinLevel)
		if err != nil {
			problems = append(problems, fmt.Sprintf("receiver %s: %v", rc.Name, err))
			continue
		}
		var secret corev1.Secret
		if err := s.Client.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: rc.SecretRef.Name}, &secret); err != nil {
			problems = append(problems, fmt.Sprintf("receiver %s: Secret %s/%s: %v", rc.Name, s.Namespace, rc.SecretRef.Name, err))
			continue
		}
		url := strings.TrimSpace(string(secret.Data["url"]))
		if url == "" {
			problems = append(problems, fmt.Sprintf("receiver %s: Secret %s/%s has no key url", rc.Name, s.Namespace, rc.SecretRef.Name))
			continue
		}
		out = append(out, notify.Receiver{Name: rc.Name, Type: rc.Type, URL: url,
			Token: strings.TrimSpace(string(secret.Data["token"])), MinLevel: level})
	}
	if len(problems) > 0 {
		return out, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return out, nil
}

// inheritedNotifications walks up from a management namespace: its
// VirtualCluster, that one's Cluster, that one's Project.
func (s *scope) inheritedNotifications(ctx context.Context, namespace string) *v1alpha1.Notifications {
	for _, l := range slices.Backward(ancestry.Of(ctx, s.Client, namespace).Levels()) {
		if n := l.Object.GetStanzas().Notifications; n != nil {
			return n
		}
	}
	return nil
}
