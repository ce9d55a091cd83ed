package reconciler

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// +kubebuilder:rbac:groups=kubist.io,resources=policies,verbs=get;list;watch
// +kubebuilder:rbac:groups=kubist.io,resources=policies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reasons of the Compiled condition.
const (
	ReasonCompiled     = "Compiled"
	ReasonCompileError = "CompileError"
)

// PolicyReconciler compiles Policy objects into the shared registry and
// reports the outcome in their status: a module that does not compile is
// taken out of the registry, so stanzas naming it fail plainly rather than
// run an older version.
//
// It runs on every replica, leader or not, because every replica serves
// admission from its own registry; only the leader writes status.
type PolicyReconciler struct {
	Client   client.Client
	Compiler *policies.Compiler
	Registry *policies.Registry
	Recorder recorder.EventRecorder
	// Elected is closed once this replica leads; nil means it always does.
	Elected <-chan struct{}
	// NoStatus leaves the status to another manager: with shards, every
	// manager compiles every Policy, and the default shard's writes.
	NoStatus bool

	// loaded records the generation of each Policy last compiled, for the
	// readiness check.
	loaded sync.Map
}

// SetupWithManager registers the controller, on every replica.
func (r *PolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Policy{}).
		Named("policy").
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false)}).
		Complete(r)
}

// LoadedChecker is a readiness check: ready once every Policy object in the
// cache has been compiled at its current generation, so that admission
// never judges a stanza against a registry that lacks its policy.
func (r *PolicyReconciler) LoadedChecker() healthz.Checker {
	return func(req *http.Request) error {
		ctx := context.Background()
		if req != nil {
			ctx = req.Context()
		}
		var list v1alpha1.PolicyList
		if err := r.Client.List(ctx, &list); err != nil {
			return fmt.Errorf("list Policy objects: %w", err)
		}
		for _, p := range list.Items {
			if gen, ok := r.loaded.Load(p.Name); !ok || gen.(int64) != p.Generation {
				return fmt.Errorf("policy %s is not loaded yet", p.Name)
			}
		}
		return nil
	}
}

func (r *PolicyReconciler) leading() bool {
	if r.NoStatus {
		return false
	}
	if r.Elected == nil {
		return true
	}
	select {
	case <-r.Elected:
		return true
	default:
		return false
	}
}

// Reconcile compiles one Policy. Compile errors are the user's to fix: they
// go into the status and an Event, and the reconcile returns no error, so
// there is no retry loop on a broken module.
func (r *PolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	obj := &v1alpha1.Policy{}
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Registry.RemovePolicy(req.Name)
			r.loaded.Delete(req.Name)
			logger.Info("Policy removed from the registry")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !obj.DeletionTimestamp.IsZero() {
		r.Registry.RemovePolicy(obj.Name)
		r.loaded.Delete(obj.Name)
		return ctrl.Result{}, nil
	}

	updated := obj.DeepCopy()
	compiled, err := r.Compiler.CompilePolicyObject(ctx, obj)
	if err == nil {
		err = r.Registry.SetPolicy(compiled)
	}
	if err != nil {
		r.Registry.RemovePolicy(obj.Name)
		setCompiled(updated, metav1.ConditionFalse, ReasonCompileError, err.Error())
		updated.Status.Title, updated.Status.Kinds = "", nil
	} else {
		setCompiled(updated, metav1.ConditionTrue, ReasonCompiled,
			fmt.Sprintf("compiled; applies to %v", compiled.Kinds))
		updated.Status.Title, updated.Status.Kinds = compiled.Title, compiled.Kinds
	}
	updated.Status.ObservedGeneration = obj.Generation
	r.loaded.Store(obj.Name, obj.Generation)

	if !r.leading() || equality.Semantic.DeepEqual(obj.Status, updated.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.Client.Status().Update(ctx, updated); err != nil {
		return ctrl.Result{}, err
	}
	r.emitOnChange(obj, updated)
	return ctrl.Result{}, nil
}

// emitOnChange emits an Event when the Compiled condition changed.
func (r *PolicyReconciler) emitOnChange(old, updated *v1alpha1.Policy) {
	before := meta.FindStatusCondition(old.Status.Conditions, v1alpha1.ConditionCompiled)
	after := meta.FindStatusCondition(updated.Status.Conditions, v1alpha1.ConditionCompiled)
	if r.Recorder == nil || after == nil || (before != nil && before.Status == after.Status && before.Message == after.Message) {
		return
	}
	eventType := corev1.EventTypeNormal
	if after.Status != metav1.ConditionTrue {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(updated, nil, eventType, after.Reason, "Compile", "%s", after.Message)
}

func setCompiled(p *v1alpha1.Policy, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{
		Type:               v1alpha1.ConditionCompiled,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: p.Generation,
	})
}
