// One executor run: its scope (the resource, the executor and its
// parameters, the time it sees), the conditions it sets, and the errors
// that become them.

package reconciler

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// conditionError is a failure with the Ready reason it reports; the
// message is the user's guide to fixing it.
type conditionError struct {
	reason  string
	message string
	// retry asks for a retry with backoff; user errors wait for a change.
	retry bool
}

func (e *conditionError) Error() string { return e.message }

// userError reports a problem only a change to some resource can fix.
func userError(reason, format string, args ...any) error {
	return &conditionError{reason: reason, message: fmt.Sprintf(format, args...)}
}

// transientError reports a problem worth retrying with backoff.
func transientError(reason, format string, args ...any) error {
	return &conditionError{reason: reason, message: fmt.Sprintf(format, args...), retry: true}
}

// scope is what one run of a resource's executor sees and sets: the
// resource and its working copy, the executor and its parameters, the
// time it sees as now, and what it asks for besides the status (a
// requeue, Events, the drift a ReadOnly executor reports). Every phase
// gets it; the plan carries what a phase hands the next.
type scope struct {
	*Reconciler
	kind     string
	obj      v1alpha1.Object
	executor string
	params   map[string]any
	readOnly bool
	// cascade: a parent or the root run triggered this run; fromRoot: the
	// root run's pass did, through unchanged parents.
	cascade  bool
	fromRoot bool
	// now is when the run started, to the microsecond that status times
	// keep; started is exact.
	now     time.Time
	started time.Time

	// The resource's policy chain, resolved once (chain).
	chainResolved bool
	resolvedChain policies.Chain
	chainErr      error
	// tree is what a release's policies see of the levels above it.
	tree map[string]any
	// metrics is where a release reads its metrics: its Cluster's
	// Prometheus, else the manager's (nil: none, the policies hold).
	metrics policies.MetricsProvider
	// collectingTill is, while a canary's metrics since its last step do
	// not count yet, until when (input.observed.collectingUntil).
	collectingTill string

	requeue time.Duration
	// drift lists what a ReadOnly executor found different from the
	// desired state, i.e. what the default executor would write.
	drift  []string
	events []policies.Event
	// readyMessage is the Ready condition's message on success.
	readyMessage string
}

// requeueAfter asks for the executor to run again within d.
func (s *scope) requeueAfter(d time.Duration) {
	if d > 0 && (s.requeue == 0 || d < s.requeue) {
		s.requeue = d
	}
}

// requeueFromNow is the requeue the policies asked for, counted from the
// time they saw as now: a step falls due when they said.
func (s *scope) requeueFromNow() time.Duration {
	if s.requeue == 0 {
		return 0
	}
	return max(s.requeue-s.started.Sub(s.now), time.Millisecond)
}

// condition sets a kind-specific condition on the working copy.
func (s *scope) condition(conditionType string, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	s.setCondition(conditionType, status, reason, message)
}

// setCondition sets a condition, Unknown included, on the working copy.
func (s *scope) setCondition(conditionType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&s.obj.GetCommonStatus().Conditions, metav1.Condition{
		Type: conditionType, Status: status, Reason: reason, Message: message,
		ObservedGeneration: s.obj.GetGeneration(),
	})
}

// toMap is an object as plain JSON values, for a policy's input.resource.
func toMap(obj any) (map[string]any, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// fromMap decodes a policy's state into a typed value.
func fromMap(m map[string]any, into any) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
