// The executor contract as Go code: the phases every executor implements,
// and how the skeleton calls the implementation a resource names.

package reconciler

import (
	"context"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// Executor is a Go implementation of one kind's executor (see
// docs/architecture.md, "The executor contract"). The skeleton
// (reconcileKind) calls its phases in order for each run of a resource
// whose spec.executor names it; P is what one run carries from a phase to
// the next: what Observe read, what Propose proposed, what Apply applied.
type Executor[T v1alpha1.Object, P any] interface {
	// Observe reads the current state the run decides on: the resource's
	// parents and targets from the cache, its target cluster, metrics.
	Observe(ctx context.Context, s *scope, obj T) (P, error)
	// Propose computes the desired state and returns it as the input of
	// the policy chain; a nil input asks no policy (a release that is
	// over, say).
	Propose(s *scope, obj T, plan P) (P, *policies.Input)
	// Apply makes the decided state true where it belongs, idempotently:
	// nothing is written when nothing differs. decided is nil when no
	// chain ran. It returns what it applied.
	Apply(ctx context.Context, s *scope, obj T, plan P, decided *Decision) (P, error)
	// Status writes what was applied into obj's status (obj is the run's
	// working copy; the skeleton writes it when it changed) and returns
	// the Ready message, or the problem that keeps obj from being Ready.
	Status(s *scope, obj T, plan P) (string, error)
	// Children are the resources to trigger after the run.
	Children(ctx context.Context, obj T) ([]child, error)
}

// A release's executor (CanaryRelease, Experiment) has two more parts,
// which the skeleton uses around the chain (pipeline.go).

// answerer is an executor whose Observe decides answers to people's
// actions (ReleaseActions) that it does not apply: the skeleton writes
// them before the chain runs.
type answerer[P any] interface {
	answers(plan P) []actionAnswer
}

// stepper is an executor whose Apply may move traffic: the skeleton
// evaluates the chain once more on the split a step leaves.
type stepper[P any] interface {
	stepped(plan P) trafficStep
}

// Cleaner is an Executor that creates objects outside the management
// cluster's Kubist resources: the resource then carries the Finalizer, and
// deleting it calls Finalize, which removes them.
type Cleaner[T v1alpha1.Object] interface {
	Finalize(ctx context.Context, s *scope, obj T) error
}

// Decision is what the policy chain decided, with the input it decided on.
type Decision struct {
	Input policies.Input
	*policies.Result
}

// implementation is an Executor as the skeleton holds it, whatever its P.
type implementation[T v1alpha1.Object] interface {
	execute(ctx context.Context, s *scope, obj T) error
	children(ctx context.Context, obj T) ([]child, error)
	// finalizer is nil for an executor that is not a Cleaner;
	// needsFinalizer says whether obj should carry it yet.
	finalizer() func(ctx context.Context, s *scope, obj T) error
	needsFinalizer(obj T) bool
	// leaf: the executor never has children to trigger.
	leaf() bool
}

// phases adapts an Executor for the skeleton.
func phases[T v1alpha1.Object, P any](e Executor[T, P]) implementation[T] { return phased[T, P]{e} }

type phased[T v1alpha1.Object, P any] struct{ e Executor[T, P] }

func (x phased[T, P]) children(ctx context.Context, obj T) ([]child, error) {
	return x.e.Children(ctx, obj)
}

func (x phased[T, P]) finalizer() func(ctx context.Context, s *scope, obj T) error {
	if f, ok := x.e.(Cleaner[T]); ok {
		return f.Finalize
	}
	return nil
}

// A lateCleaner is a Cleaner whose resources need the Finalizer only
// in some states (a CanaryRelease once it has ended): the skeleton adds it
// with the status write that enters one, not on the first run.
type lateCleaner[T v1alpha1.Object] interface {
	NeedsFinalizer(obj T) bool
}

func (x phased[T, P]) needsFinalizer(obj T) bool {
	if l, ok := x.e.(lateCleaner[T]); ok {
		return l.NeedsFinalizer(obj)
	}
	return x.finalizer() != nil
}

func (x phased[T, P]) leaf() bool {
	_, ok := x.e.(interface{ isLeaf() })
	return ok
}

// noChildren is the Children phase of the executors that trigger none.
type noChildren[T v1alpha1.Object] struct{}

func (noChildren[T]) Children(context.Context, T) ([]child, error) { return nil, nil }

func (noChildren[T]) isLeaf() {}
