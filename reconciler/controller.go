package reconciler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
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
	"github.com/kubist-io/kubist/catalog"
	"github.com/kubist-io/kubist/internal/manager/notify"
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

// kind describes how one Kubist kind is reconciled.
type kind[T v1alpha1.Object] struct {
	name      string
	newObject func() T
	// executors are the kind's implementations by the name of the
	// executor that writes; its ReadOnly twin runs the same one. The
	// catalog says what each is (kinds, parameters, ReadOnly).
	executors map[string]implementation[T]
	// gone, when set, forgets what is kept for a resource that no longer exists.
	gone func(key types.NamespacedName)
	// timeout bounds a run; runTimeout when zero.
	timeout time.Duration
}

// implementation is the executor a run uses: the one named, or else (an
// unknown name, which the run reports) the kind's default, which still
// finalizes and triggers the children.
func (k *kind[T]) implementation(name string, executors *catalog.Catalog) implementation[T] {
	if e, ok := k.executors[strings.TrimPrefix(name, "ReadOnly")]; ok {
		return e
	}
	return k.executors[executors.DefaultFor(k.name)]
}

// implementsCatalog checks that the kind has a Go implementation for
// every executor the catalog declares for it, and none the catalog lacks.
func (k *kind[T]) implementsCatalog(executors *catalog.Catalog) error {
	declared := map[string]bool{}
	for _, name := range executors.NamesFor(k.name) {
		declared[name] = true
		if _, ok := k.executors[strings.TrimPrefix(name, "ReadOnly")]; !ok {
			return fmt.Errorf("executor %s is declared for %s but has no implementation", name, k.name)
		}
	}
	for name := range k.executors {
		if !declared[name] {
			return fmt.Errorf("%s has an implementation of executor %s, which is not declared for it", k.name, name)
		}
	}
	return nil
}

// child names a resource to trigger.
type child struct {
	kind string
	key  types.NamespacedName
}

// Reconciler runs the executors of every Kubist kind.
type Reconciler struct {
	Client    client.Client
	Registry  *policies.Registry
	Executors *catalog.Catalog
	Recorder  recorder.EventRecorder
	Clusters  *Clusters
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
	// Shard limits the manager to one shard's Projects (see Options.Shard).
	Shard string

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
	// pass feeds the root run's pass to the work queues (nil: unpaced);
	// inPass holds which resources took one of its slots.
	pass   *rootPass
	inPass sync.Map
	// throttle holds back the policies' repeated Normal Events.
	throttle eventThrottle
	// ownedProjects are the Projects of the shard seen so far: one that
	// joins it (its label changed) passes its run on to its whole tree.
	ownedProjects sync.Map
}

// reconcileKind is the contract every executor shares (see
// docs/architecture.md): observe, propose, policies, apply, status,
// trigger the children.
func reconcileKind[T v1alpha1.Object](ctx context.Context, r *Reconciler, k *kind[T], req ctrl.Request) (ctrl.Result, error) {
	// A run that hangs on an unreachable cluster gives its worker back.
	timeout := k.timeout
	if timeout == 0 {
		timeout = runTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key := cascadeKey(k.name, req.NamespacedName)
	// Taken first, so that the mark of a resource gone meanwhile goes too.
	mark, cascade := r.cascade.LoadAndDelete(key)
	if _, paced := r.inPass.LoadAndDelete(key); paced {
		defer r.pass.done()
	}
	// The cache's own object, read only: a run writes its working copy,
	// and copies the object before it changes its finalizers.
	obj := k.newObject()
	if err := r.Client.Get(ctx, req.NamespacedName, obj, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			r.due.Delete(key)
			if k.gone != nil {
				k.gone(req.NamespacedName)
			}
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	owned, joined := r.owns(ctx, obj)
	if !owned {
		// Another shard's: its manager runs it.
		r.due.Delete(key)
		return ctrl.Result{}, nil
	}
	if joined {
		mark, cascade = cascadeMark{fromRoot: true}, true
	}
	ref := obj.GetStanzas().Executor
	executor := r.Executors.DefaultFor(k.name)
	if ref != nil && ref.Name != "" {
		executor = ref.Name
	}
	// Read-only is a property of the registered executor.
	e, known := r.Executors.Executor(executor)
	started := r.clock()
	s := &scope{Reconciler: r, kind: k.name, executor: executor, now: started.Truncate(time.Microsecond), started: started, metrics: r.Metrics,
		readOnly: known && e.ReadOnly, cascade: cascade, fromRoot: cascade && mark.(cascadeMark).fromRoot}
	impl := k.implementation(executor, r.Executors)

	start := time.Now()
	result, err := run(ctx, k, impl, s, obj)
	outcome := "success"
	if err != nil {
		outcome = "error"
	}
	// An early run (another trigger) is no late one: it replaces the due
	// time with its own, or clears it.
	if at, ok := r.due.Load(key); ok && !start.Before(at.(time.Time)) {
		lateness.WithLabelValues(k.name).Observe(start.Sub(at.(time.Time)).Seconds())
	}
	if result.RequeueAfter > 0 {
		r.due.Store(key, time.Now().Add(result.RequeueAfter))
		// Work that falls due (a step, a retry) is not behind a cascade,
		// whatever brought the resource into the queue this time.
		result.Priority = ptr.To(0)
	} else {
		r.due.Delete(key)
	}
	executorRuns.WithLabelValues(k.name, executor, outcome).Inc()
	executorDuration.WithLabelValues(k.name, executor).Observe(time.Since(start).Seconds())
	return result, err
}

func run[T v1alpha1.Object](ctx context.Context, k *kind[T], impl implementation[T], s *scope, obj T) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	if !obj.GetDeletionTimestamp().IsZero() {
		return finalizeObject(ctx, s, k, impl, obj.DeepCopyObject().(T))
	}
	// A finalizer first, so that nothing is created on a target cluster
	// that deleting the resource would leave behind.
	if impl.needsFinalizer(obj) && !s.readOnly && !controllerutil.ContainsFinalizer(obj, Finalizer) {
		obj = obj.DeepCopyObject().(T)
		controllerutil.AddFinalizer(obj, Finalizer)
		if err := s.Client.Update(ctx, obj); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		writes.WithLabelValues(k.name, "finalizer").Inc()
	}

	working := obj.DeepCopyObject().(T)
	s.obj = working
	err := executeWith(ctx, s, impl, working)
	status := working.GetCommonStatus()
	status.ObservedGeneration = obj.GetGeneration()
	var cerr *conditionError
	switch {
	case err == nil && s.readOnly && len(s.drift) > 0:
		s.condition(v1alpha1.ConditionReady, false, ReasonReadOnly,
			fmt.Sprintf("read-only executor %s: %d objects differ from the desired state: %s", s.executor, len(s.drift), strings.Join(s.drift, "; ")))
	case err == nil:
		s.condition(v1alpha1.ConditionReady, true, ReasonReady, cmp.Or(s.readyMessage, k.name+" is reconciled"))
	case errors.As(err, &cerr):
		s.condition(v1alpha1.ConditionReady, false, cerr.reason, cerr.message)
	default:
		s.condition(v1alpha1.ConditionReady, false, ReasonError, err.Error())
	}

	// Executors write only the working copy's status: any difference is a
	// status change.
	changed := !equality.Semantic.DeepEqual(statusOf(obj), statusOf(working))
	if changed {
		if rel, ok := any(working).(v1alpha1.Release); ok {
			if aerr := s.archiveHistory(ctx, rel); aerr != nil {
				if apierrors.IsConflict(aerr) || apierrors.IsAlreadyExists(aerr) {
					return ctrl.Result{RequeueAfter: time.Millisecond}, nil
				}
				return ctrl.Result{}, aerr
			}
		}
		if uerr := s.Client.Status().Update(ctx, working, metadataReply); uerr != nil {
			if apierrors.IsConflict(uerr) || apierrors.IsNotFound(uerr) {
				// A newer version exists: run again on it; nothing of this
				// run is kept, so no step is applied twice.
				return ctrl.Result{RequeueAfter: time.Millisecond}, nil
			}
			return ctrl.Result{}, fmt.Errorf("write status: %w", uerr)
		}
		writes.WithLabelValues(k.name, "status").Inc()
		s.emit(obj, working)
		s.notifyAfterWrite(ctx, obj, working)
		if !s.readOnly && !impl.needsFinalizer(obj) && impl.needsFinalizer(working) && !controllerutil.ContainsFinalizer(working, Finalizer) {
			// Entering a state that needs the Finalizer: added now, on the
			// status just written (the run its event brings finds nothing
			// to do).
			controllerutil.AddFinalizer(working, Finalizer)
			if err := s.Client.Update(ctx, working); err != nil {
				return ctrl.Result{}, client.IgnoreNotFound(err)
			}
			writes.WithLabelValues(k.name, "finalizer").Inc()
		}
	}

	if !s.leaves[k.name] && err == nil && (s.cascade || changed) {
		children, cerr := impl.children(ctx, working)
		if cerr != nil {
			return ctrl.Result{}, cerr
		}
		// A parent that changed passes the change on, at once.
		s.trigger(children, s.fromRoot && !changed)
	}
	switch {
	case err == nil:
		return ctrl.Result{RequeueAfter: s.requeueFromNow()}, nil
	case errors.As(err, &cerr) && !cerr.retry:
		logger.V(1).Info("executor reports a problem", "reason", cerr.reason, "message", cerr.message)
		return ctrl.Result{RequeueAfter: s.requeueFromNow()}, nil
	default:
		return ctrl.Result{}, err
	}
}

// statusOf is the Status field of a Kubist object: what a run may change
// and a status write stores, compared without the rest of the object.
func statusOf(o v1alpha1.Object) any {
	return reflect.ValueOf(o).Elem().FieldByName("Status").Interface()
}

// executeWith resolves the executor's parameters and runs it.
func executeWith[T v1alpha1.Object](ctx context.Context, s *scope, impl implementation[T], obj T) error {
	ref := obj.GetStanzas().Executor
	if ref == nil {
		ref = &v1alpha1.ExecutorRef{Name: s.executor}
	}
	params, errs := s.Executors.Parameters(s.kind, ref, field.NewPath("spec", "executor"))
	if len(errs) > 0 {
		reason := ReasonInvalidParameters
		if _, ok := s.Executors.Executor(ref.Name); !ok {
			reason = ReasonUnknownExecutor
		}
		return userError(reason, "%s", errs.ToAggregate().Error())
	}
	s.params = params
	return impl.execute(ctx, s, obj)
}

// finalizeObject removes what the executor created and then the finalizer.
func finalizeObject[T v1alpha1.Object](ctx context.Context, s *scope, k *kind[T], impl implementation[T], obj T) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return ctrl.Result{}, nil
	}
	s.obj = obj
	if finalize := impl.finalizer(); finalize != nil {
		if err := finalize(ctx, s, obj); err != nil {
			return ctrl.Result{}, fmt.Errorf("clean up %s %s: %w", k.name, obj.GetName(), err)
		}
	}
	controllerutil.RemoveFinalizer(obj, Finalizer)
	if err := s.Client.Update(ctx, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	writes.WithLabelValues(k.name, "finalizer").Inc()
	return ctrl.Result{}, nil
}

// emit records Events for a status just written: the Ready condition when
// it changed (not a first Ready=True: thousands of resources becoming
// Ready at once would say nothing worth an Event each), and what the
// policies asked for.
func (s *scope) emit(old, updated v1alpha1.Object) {
	countSteps(old, updated)
	if s.Recorder == nil {
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
		s.Recorder.Eventf(updated, nil, eventType, after.Reason, "Reconcile", "%s", after.Message)
	}
	for _, e := range s.events {
		eventType, reason, note := corev1.EventTypeNormal, cmp.Or(e.Reason, "Policy"), e.Message
		switch {
		case e.Type == corev1.EventTypeWarning:
			eventType = corev1.EventTypeWarning
		case reason == ReasonAction:
			// A person's action is always told.
		default:
			held, since, ok := s.throttle.admit(updated.GetUID(), reason, s.now)
			if !ok {
				continue
			}
			if held > 0 {
				note = fmt.Sprintf("%s (and %d earlier %s since %s: see the status)", note, held, reason, since.Format(time.TimeOnly))
			}
		}
		s.Recorder.Eventf(updated, nil, eventType, reason, "Policy", "%s", note)
	}
}
