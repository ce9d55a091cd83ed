// The pipeline of a run, in order: observe (reads only), answer people's
// actions, propose the chain's input, call the chain's webhooks, decide
// (run the chain), apply, decide again on the split a step leaves, status.
// The chain is resolved once per run, and its decisions are recorded in
// the status.

package reconciler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// execute runs a resource's executor up to its status (the skeleton,
// runKind, writes it). Every write a run makes besides the status and the
// objects Apply ensures is a step of its own here, skipped by a ReadOnly
// executor: answering people's actions and calling hooks.
func (x phased[T, P]) execute(ctx context.Context, r *run, obj T) error {
	plan, err := x.e.Observe(ctx, r, obj)
	if err != nil {
		return err
	}
	if a, ok := x.e.(answerer[P]); ok && !r.readOnly {
		if err := r.answerActions(ctx, a.answers(plan)); err != nil {
			return err
		}
	}
	plan, in := x.e.Propose(r, obj, plan)
	var decided *Decided
	if in != nil {
		if decided, err = r.decide(ctx, *in); err != nil {
			return err
		}
	}
	if plan, err = x.e.Apply(ctx, r, obj, plan, decided); err != nil {
		return err
	}
	if s, ok := x.e.(stepper[P]); ok && decided != nil && !r.readOnly {
		step := s.stepped(plan)
		if next := step.nextInput(decided); next != nil {
			r.decideAfterStep(ctx, *next, step.holds)
		}
	}
	r.readyMessage, err = x.e.Status(r, obj, plan)
	return err
}

// chain is the resource's policy chain: its stanza, or the kind's default
// policy when the stanza is empty; nil when there is none. An invalid
// stanza is reported on PoliciesApplied. A run resolves it once.
func (r *run) chain() (policies.Chain, error) {
	if !r.chainResolved {
		r.chainResolved = true
		r.resolvedChain, r.chainErr = r.resolveChain()
	}
	return r.resolvedChain, r.chainErr
}

func (r *run) resolveChain() (policies.Chain, error) {
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

// decide runs the resource's policy chain on a proposal, after calling
// the hooks of its webhook policies (their answers are input.hooks); it
// returns nil and no error when the resource has no policies.
func (r *run) decide(ctx context.Context, in policies.Input) (*Decided, error) {
	chain, err := r.chain()
	if chain == nil {
		return nil, err
	}
	// Completed here, so that a second evaluation (decideAfterStep)
	// reuses the resource's conversion.
	if err := r.complete(&in); err != nil {
		return nil, err
	}
	if !r.readOnly {
		// A ReadOnly executor changes nothing, a load generator included.
		in.Hooks = r.callHooks(ctx, chain, in)
	}
	res, err := r.runChain(ctx, chain, in)
	if err != nil {
		return nil, err
	}
	return &Decided{Input: in, Result: res}, nil
}

// decideAfterStep evaluates the chain once more on the state a run that
// moved the split leaves, as the next run will see it (next), and records
// those decisions instead: the hold that follows a step is then in the
// status the step writes, and the runs until the next step find nothing
// to write. Its events are not emitted. When it would change the split
// again (holds says no), or fails, the run's own decisions stay, and the
// next run decides.
func (r *run) decideAfterStep(ctx context.Context, next policies.Input, holds func(state map[string]any) bool) {
	chain, _ := r.chain()
	if chain == nil {
		return
	}
	res, err := r.evaluate(ctx, chain, next)
	if err != nil || !holds(res.State) {
		return
	}
	r.recordDecisions(res)
	r.requeueAfter(res.RequeueAfter)
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
		summary = append(summary, fmt.Sprintf("%s: %s", step.Policy, cmp.Or(step.Decision.Outcome, "-")))
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
