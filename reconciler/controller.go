package reconciler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/notify"
	"github.com/kubist-io/kubist/policies"
)

// runTimeout bounds one executor run.
const runTimeout = 30 * time.Second

// Finalizer is set on the resources whose executors create objects on a
// target cluster, so that deleting the resource removes them.
const Finalizer = "kubist.io/cleanup"

// Reasons of the Ready and PoliciesApplied conditions shared by every kind.
const (
	ReasonReady             = "Ready"
	ReasonReadOnly          = "ReadOnly"
	ReasonUnknownExecutor   = "UnknownExecutor"
	ReasonInvalidParameters = "InvalidParameters"
	ReasonInvalidPolicies   = "InvalidPolicies"
	ReasonPolicyError       = "PolicyError"
	ReasonPoliciesApplied   = "Applied"
	ReasonConflict          = "Conflict"
	ReasonError             = "Error"
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

// kind describes how one Kubist kind is reconciled.
type kind[T v1alpha1.Object] struct {
	name      string
	newObject func() T
	// execute observes, proposes, runs the policies (r.policies) and
	// applies; it writes the kind's own status fields into obj.
	execute func(ctx context.Context, r *run, obj T) error
	// finalize removes what the executor created; nil for kinds that
	// create nothing outside the management cluster's Kubist objects.
	finalize func(ctx context.Context, r *run, obj T) error
	// children are the resources the executor triggers after it ran.
	children func(ctx context.Context, obj T) ([]child, error)
	// gone, when set, forgets what is kept for a resource that no longer exists.
	gone func(key types.NamespacedName)
	// timeout bounds a run; runTimeout when zero.
	timeout time.Duration
}

// child names a resource to trigger.
type child struct {
	kind string
	key  types.NamespacedName
}

// run is one execution of a resource's executor.
type run struct {
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
	// base is the controller's context, without the run's timeout.
	base context.Context
	// now is when the run started, to the microsecond that status times
	// keep; started is exact.
	now     time.Time
	started time.Time

	requeue time.Duration
	// drift lists what a ReadOnly executor found different from the
	// desired state, i.e. what the default executor would write.
	drift  []string
	events []policies.Event
	// readyMessage is the Ready condition's message on success.
	readyMessage string
}

// requeueAfter asks for the executor to run again within d.
func (r *run) requeueAfter(d time.Duration) {
	if d > 0 && (r.requeue == 0 || d < r.requeue) {
		r.requeue = d
	}
}

// requeueFromNow is the requeue the policies asked for, counted from the
// time they saw as now: a step falls due when they said.
func (r *run) requeueFromNow() time.Duration {
	if r.requeue == 0 {
		return 0
	}
	return max(r.requeue-r.started.Sub(r.now), time.Millisecond)
}

// condition sets a kind-specific condition on the working copy.
func (r *run) condition(conditionType string, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&r.obj.GetCommonStatus().Conditions, metav1.Condition{
		Type: conditionType, Status: status, Reason: reason, Message: message,
		ObservedGeneration: r.obj.GetGeneration(),
	})
}

// chain is the resource's policy chain: its stanza, or the kind's default
// policy when the stanza is empty; nil when there is none. An invalid
// stanza is reported on PoliciesApplied.
func (r *run) chain() (policies.Chain, error) {
	refs := r.obj.GetStanzas().Policies
	if len(refs) == 0 {
		if name, ok := policies.DefaultPolicies[r.kind]; ok {
			refs = []v1alpha1.PolicyRef{{Name: name}}
		}
	}
	if len(refs) == 0 {
		status := r.obj.GetCommonStatus()
		meta.RemoveStatusCondition(&status.Conditions, v1alpha1.ConditionPoliciesApplied)
		status.Decisions = nil
		return nil, nil
	}
	chain, errs := r.Registry.Chain(r.kind, refs, field.NewPath("spec", "policies"))
	if len(errs) > 0 {
		msg := errs.ToAggregate().Error()
		r.condition(v1alpha1.ConditionPoliciesApplied, false, ReasonInvalidPolicies, msg)
		return nil, userError(ReasonInvalidPolicies, "%s", msg)
	}
	return chain, nil
}

// policies runs the resource's policy chain on the proposal (see
// runChain); it returns nil and no error when there are no policies.
func (r *run) policies(ctx context.Context, in policies.Input) (*policies.Result, error) {
	chain, err := r.chain()
	if chain == nil {
		return nil, err
	}
	return r.runChain(ctx, chain, in)
}

// runChain runs a chain on the proposal and records its decisions in the
// status; a policy failure is reported on PoliciesApplied and returned.
func (r *run) runChain(ctx context.Context, chain policies.Chain, in policies.Input) (*policies.Result, error) {
	res, err := r.evaluate(ctx, chain, in)
	if err != nil {
		r.condition(v1alpha1.ConditionPoliciesApplied, false, ReasonPolicyError, err.Error())
		policyDecisions.WithLabelValues(policyOf(err), "Error").Inc()
		return nil, userError(ReasonPolicyError, "%s", err.Error())
	}
	for _, step := range res.Steps {
		policyDecisions.WithLabelValues(step.Policy, outcomeLabel(step.Decision.Outcome)).Inc()
	}
	r.recordDecisions(res)
	r.events = append(r.events, res.Events...)
	r.requeueAfter(res.RequeueAfter)
	return res, nil
}

// evaluate runs a chain on an input completed with the kind, the time of
// the run and the resource.
func (r *run) evaluate(ctx context.Context, chain policies.Chain, in policies.Input) (*policies.Result, error) {
	if err := r.complete(&in); err != nil {
		return nil, err
	}
	res, err := chain.Run(ctx, in)
	if errors.Is(err, policies.ErrDeadline) && ctx.Err() == nil {
		// The deadline is wall-clock time: on a busy machine a policy can
		// miss it without being at fault. A second miss in a row is its own.
		res, err = chain.Run(ctx, in)
	}
	return res, err
}

// complete adds to a chain's input the kind, the time of the run and, once,
// the resource as a JSON document.
func (r *run) complete(in *policies.Input) error {
	in.Kind = r.kind
	in.Now = r.now
	if in.Resource == nil {
		resource, err := toMap(r.obj)
		if err != nil {
			return err
		}
		in.Resource = resource
	}
	return nil
}

// recordDecisions puts a chain's decisions in the status and summarizes
// them on PoliciesApplied.
func (r *run) recordDecisions(res *policies.Result) {
	status := r.obj.GetCommonStatus()
	decisions := make([]v1alpha1.PolicyDecision, 0, len(res.Steps))
	summary := make([]string, 0, len(res.Steps))
	for i, step := range res.Steps {
		d := v1alpha1.PolicyDecision{Policy: step.Policy, Outcome: step.Decision.Outcome, Message: step.Decision.Message}
		// The time of a decision is when it was first made: a repeated
		// decision keeps its time, so a steady state writes nothing.
		d.Time = &metav1.Time{Time: r.now}
		if i < len(status.Decisions) {
			if old := status.Decisions[i]; old.Policy == d.Policy && old.Outcome == d.Outcome && old.Message == d.Message && old.Time != nil {
				d.Time = old.Time
			}
		}
		decisions = append(decisions, d)
		summary = append(summary, fmt.Sprintf("%s: %s", step.Policy, orDash(step.Decision.Outcome)))
	}
	status.Decisions = decisions
	r.condition(v1alpha1.ConditionPoliciesApplied, true, ReasonPoliciesApplied, strings.Join(summary, "; "))
}

// policyOf names the policy a chain error comes from, for the metric.
func policyOf(err error) string {
	if perr, ok := errors.AsType[*policies.PolicyError](err); ok {
		return perr.Policy
	}
	return "unknown"
}

func outcomeLabel(outcome string) string {
	if outcome == "" {
		return "None"
	}
	return outcome
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Reconciler runs the executors of every Kubist kind.
type Reconciler struct {
	Client   client.Client
	Registry *policies.Registry
	Recorder recorder.EventRecorder
	Clusters *Clusters
	// Metrics gathers the figures canary and experiment policies decide
	// on; nil when no Prometheus is configured.
	Metrics policies.MetricsProvider
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// ImportGrace is how long a Deployment exists before its VirtualCluster
	// imports it as an Application.
	ImportGrace time.Duration
	// Notifier sends the releases' notifications; nil sends none.
	Notifier *notify.Notifier
	// Namespace is the manager's own, where notification Secrets are read.
	Namespace string

	triggers map[string]chan event.GenericEvent
	// cascade holds the resources a parent (or the root run) triggered,
	// each with its cascadeMark: their runs trigger their own children in
	// turn. A run for another reason (its own change, a requeue) triggers
	// them only when its status changed, so that a periodic re-check does
	// not walk a subtree.
	cascade sync.Map
	// due holds when each resource asked to run again, for the lateness
	// of that run and for the root pass to leave it to that run.
	due sync.Map
	// resync is the root run's period (DefaultResyncPeriod when zero).
	resync time.Duration
	// leaves are the kinds without children.
	leaves map[string]bool
	// pass holds a slot for each resource of the root run's pass in
	// flight (nil: unpaced); paced holds which resources took one.
	pass  chan struct{}
	paced sync.Map
}

// rootPassDepth is how many resources without children the root run's
// pass keeps in flight (queued or running) at a time.
const rootPassDepth = 4

// cascadeMark tells a triggered run whether the root run's pass reached
// it (through parents that did not change) or a parent's change did.
type cascadeMark struct{ fromRoot bool }

func cascadeKey(kind string, key types.NamespacedName) string { return kind + "/" + key.String() }

// clock is the time a run starts. Policies see it to the microsecond (the
// precision of lastStepTime); requeues are measured from the exact time.
func (rc *Reconciler) clock() time.Time {
	if rc.Now != nil {
		return rc.Now().UTC()
	}
	return time.Now().UTC()
}

// trigger enqueues resources in their kinds' work queues.
//
// The root run's pass (fromRoot) is paced: it leaves a resource without
// children that runs anyway before the next pass (a canary waiting for its
// next step, a retry) to that run, and it keeps at most rootPassDepth of
// the others in flight, waiting for one to finish before it queues the
// next. A pass over the tree then neither floods the work queues nor takes
// every worker and core from the canary steps that fall due meanwhile; the
// parents run at once, so that the pass reaches the whole tree. Only
// resources without children wait for a slot: their runs never trigger
// anything, so a waiting parent always gets one.
func (rc *Reconciler) trigger(ctx context.Context, children []child, fromRoot bool) {
	now := time.Now()
	horizon := now.Add(cmp.Or(rc.resync, DefaultResyncPeriod))
	for _, c := range children {
		ch, ok := rc.triggers[c.kind]
		if !ok {
			continue
		}
		key := cascadeKey(c.kind, c.key)
		if !fromRoot {
			rc.cascade.Store(key, cascadeMark{})
			ch <- event.GenericEvent{Object: triggered(c.key)}
			continue
		}
		if rc.leaves[c.kind] {
			if at, ok := rc.due.Load(key); ok && at.(time.Time).After(now) && at.(time.Time).Before(horizon) {
				continue
			}
		}
		// A change's mark stays: the run passes the change on. A marked
		// resource is queued already.
		if _, marked := rc.cascade.LoadOrStore(key, cascadeMark{fromRoot: true}); marked {
			continue
		}
		if rc.leaves[c.kind] && rc.pass != nil {
			select {
			case rc.pass <- struct{}{}:
				rc.paced.Store(key, struct{}{})
			case <-ctx.Done():
				rc.cascade.Delete(key)
				return
			}
		}
		ch <- event.GenericEvent{Object: triggered(c.key)}
	}
}

// triggered is the event that queues a resource.
func triggered(key types.NamespacedName) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
}

// reconcile is the contract every executor shares (DESIGN.md §2): observe,
// propose, policies, apply, status, trigger the children.
func reconcileKind[T v1alpha1.Object](ctx context.Context, rc *Reconciler, k *kind[T], req ctrl.Request) (ctrl.Result, error) {
	// A run that hangs on an unreachable cluster gives its worker back.
	timeout := k.timeout
	if timeout == 0 {
		timeout = runTimeout
	}
	// Triggering the children may wait for the root pass's slots longer
	// than the run's own time: only the manager's end stops it.
	base := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key := cascadeKey(k.name, req.NamespacedName)
	// Taken first, so that the mark of a resource gone meanwhile goes too.
	mark, cascade := rc.cascade.LoadAndDelete(key)
	if _, paced := rc.paced.LoadAndDelete(key); paced {
		defer func() { <-rc.pass }()
	}
	// The cache's own object, read only: a run writes its working copy,
	// and copies the object before it changes its finalizers.
	obj := k.newObject()
	if err := rc.Client.Get(ctx, req.NamespacedName, obj, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			rc.due.Delete(key)
			if k.gone != nil {
				k.gone(req.NamespacedName)
			}
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ref := obj.GetStanzas().Executor
	executor := rc.Registry.DefaultExecutorFor(k.name)
	if ref != nil && ref.Name != "" {
		executor = ref.Name
	}
	started := rc.clock()
	r := &run{Reconciler: rc, kind: k.name, executor: executor, now: started.Truncate(time.Microsecond), started: started,
		readOnly: strings.HasPrefix(executor, "ReadOnly"), cascade: cascade, fromRoot: cascade && mark.(cascadeMark).fromRoot, base: base}

	start := time.Now()
	result, err := runKind(ctx, k, r, obj)
	outcome := "success"
	if err != nil {
		outcome = "error"
	}
	// An early run (another trigger) is no late one: it replaces the due
	// time with its own, or clears it.
	if at, ok := rc.due.Load(key); ok && !start.Before(at.(time.Time)) {
		lateness.WithLabelValues(k.name).Observe(start.Sub(at.(time.Time)).Seconds())
	}
	if result.RequeueAfter > 0 {
		rc.due.Store(key, time.Now().Add(result.RequeueAfter))
		// Work that falls due (a step, a retry) is not behind a cascade,
		// whatever brought the resource into the queue this time.
		result.Priority = ptr.To(0)
	} else {
		rc.due.Delete(key)
	}
	executorRuns.WithLabelValues(k.name, executor, outcome).Inc()
	executorDuration.WithLabelValues(k.name, executor).Observe(time.Since(start).Seconds())
	return result, err
}

func runKind[T v1alpha1.Object](ctx context.Context, k *kind[T], r *run, obj T) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	if !obj.GetDeletionTimestamp().IsZero() {
		return finalizeObject(ctx, r, k, obj.DeepCopyObject().(T))
	}
	// A finalizer first, so that nothing is created on a target cluster
	// that deleting the resource would leave behind.
	if k.finalize != nil && !r.readOnly && !controllerutil.ContainsFinalizer(obj, Finalizer) {
		obj = obj.DeepCopyObject().(T)
		controllerutil.AddFinalizer(obj, Finalizer)
		if err := r.Client.Update(ctx, obj); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		writes.WithLabelValues(k.name, "finalizer").Inc()
	}

	working := obj.DeepCopyObject().(T)
	r.obj = working
	err := executeWith(ctx, r, k, working)
	status := working.GetCommonStatus()
	status.ObservedGeneration = obj.GetGeneration()
	var cerr *conditionError
	switch {
	case err == nil && r.readOnly && len(r.drift) > 0:
		r.condition(v1alpha1.ConditionReady, false, ReasonReadOnly,
			fmt.Sprintf("read-only executor %s: %d objects differ from the desired state: %s", r.executor, len(r.drift), strings.Join(r.drift, "; ")))
	case err == nil:
		r.condition(v1alpha1.ConditionReady, true, ReasonReady, orDefault(r.readyMessage, k.name+" is reconciled"))
	case errors.As(err, &cerr):
		r.condition(v1alpha1.ConditionReady, false, cerr.reason, cerr.message)
	default:
		r.condition(v1alpha1.ConditionReady, false, ReasonError, err.Error())
	}

	// Executors write only the working copy's status: any difference is a
	// status change.
	changed := !equality.Semantic.DeepEqual(obj, working)
	if changed {
		if uerr := r.Client.Status().Update(ctx, working); uerr != nil {
			if apierrors.IsConflict(uerr) || apierrors.IsNotFound(uerr) {
				// A newer version exists: run again on it; nothing of this
				// run is kept, so no step is applied twice.
				return ctrl.Result{RequeueAfter: time.Millisecond}, nil
			}
			return ctrl.Result{}, fmt.Errorf("write status: %w", uerr)
		}
		writes.WithLabelValues(k.name, "status").Inc()
		r.emit(obj, working)
		r.notifyAfterWrite(ctx, obj, working)
	}

	if k.children != nil && err == nil && (r.cascade || changed) {
		children, cerr := k.children(ctx, working)
		if cerr != nil {
			return ctrl.Result{}, cerr
		}
		// A parent that changed passes the change on, at once.
		r.trigger(r.base, children, r.fromRoot && !changed)
	}
	switch {
	case err == nil:
		return ctrl.Result{RequeueAfter: r.requeueFromNow()}, nil
	case errors.As(err, &cerr) && !cerr.retry:
		logger.V(1).Info("executor reports a problem", "reason", cerr.reason, "message", cerr.message)
		return ctrl.Result{RequeueAfter: r.requeueFromNow()}, nil
	default:
		return ctrl.Result{}, err
	}
}

// executeWith resolves the executor's parameters and runs it.
func executeWith[T v1alpha1.Object](ctx context.Context, r *run, k *kind[T], obj T) error {
	ref := obj.GetStanzas().Executor
	if ref == nil {
		ref = &v1alpha1.ExecutorRef{Name: r.executor}
	}
	params, errs := r.Registry.ExecutorParameters(r.kind, ref, field.NewPath("spec", "executor"))
	if len(errs) > 0 {
		reason := ReasonInvalidParameters
		if _, ok := r.Registry.Executor(ref.Name); !ok {
			reason = ReasonUnknownExecutor
		}
		return userError(reason, "%s", errs.ToAggregate().Error())
	}
	r.params = params
	return k.execute(ctx, r, obj)
}

// finalizeObject removes what the executor created and then the finalizer.
func finalizeObject[T v1alpha1.Object](ctx context.Context, r *run, k *kind[T], obj T) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return ctrl.Result{}, nil
	}
	r.obj = obj
	if k.finalize != nil {
		if err := k.finalize(ctx, r, obj); err != nil {
			return ctrl.Result{}, fmt.Errorf("clean up %s %s: %w", k.name, obj.GetName(), err)
		}
	}
	controllerutil.RemoveFinalizer(obj, Finalizer)
	if err := r.Client.Update(ctx, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	writes.WithLabelValues(k.name, "finalizer").Inc()
	return ctrl.Result{}, nil
}

// emit records Events for a status just written: the Ready condition when
// it changed (not a first Ready=True: thousands of resources becoming
// Ready at once would say nothing worth an Event each), and what the
// policies asked for.
func (r *run) emit(old, updated v1alpha1.Object) {
	countSteps(old, updated)
	if r.Recorder == nil {
		return
	}
	before := meta.FindStatusCondition(old.GetCommonStatus().Conditions, v1alpha1.ConditionReady)
	after := meta.FindStatusCondition(updated.GetCommonStatus().Conditions, v1alpha1.ConditionReady)
	first := before == nil && after != nil && after.Status == metav1.ConditionTrue
	if after != nil && !first && (before == nil || before.Status != after.Status || before.Reason != after.Reason) {
		eventType := corev1.EventTypeNormal
		if after.Status != metav1.ConditionTrue {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(updated, nil, eventType, after.Reason, "Reconcile", "%s", after.Message)
	}
	for _, e := range r.events {
		eventType := corev1.EventTypeNormal
		if e.Type == corev1.EventTypeWarning {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(updated, nil, eventType, orDefault(e.Reason, "Policy"), "Policy", "%s", e.Message)
	}
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

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
