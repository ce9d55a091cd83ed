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
	"github.com/kubist-io/kubist/internal/ancestry"
	"github.com/kubist-io/kubist/policies"
)

// execute runs a resource's executor up to its status (the skeleton,
// run, writes it). Every write a run makes besides the status and the
// objects Apply ensures is a step of its own here, skipped by a ReadOnly
// executor: answering people's actions and calling hooks.
func (x phased[T, P]) execute(ctx context.Context, s *scope, obj T) error {
	plan, err := x.e.Observe(ctx, s, obj)
	if err != nil {
		return err
	}
	if a, ok := x.e.(answerer[P]); ok && !s.readOnly {
		if err := s.answerActions(ctx, a.answers(plan)); err != nil {
			return err
		}
	}
	plan, in := x.e.Propose(s, obj, plan)
	var decided *Decision
	if in != nil {
		if decided, err = s.decide(ctx, *in); err != nil {
			return err
		}
	}
	if plan, err = x.e.Apply(ctx, s, obj, plan, decided); err != nil {
		return err
	}
	if st, ok := x.e.(stepper[P]); ok && decided != nil && !s.readOnly {
		step := st.stepped(plan)
		if next := step.nextInput(decided); next != nil {
			s.decideAfterStep(ctx, *next, step.holds)
		}
	}
	s.readyMessage, err = x.e.Status(s, obj, plan)
	return err
}

// chain is the resource's policy chain: its stanza, or the kind's default
// policy when the stanza is empty, and for a release what the levels above
// it add (release_policies.go); nil when there is none. An invalid chain
// is reported on PoliciesApplied. A run resolves it once.
func (s *scope) chain(ctx context.Context) (policies.Chain, error) {
	if !s.chainResolved {
		s.chainResolved = true
		s.resolvedChain, s.chainErr = s.resolveChain(ctx)
	}
	return s.resolvedChain, s.chainErr
}

func (s *scope) resolveChain(ctx context.Context) (policies.Chain, error) {
	refs := s.obj.GetStanzas().Policies
	if len(refs) == 0 {
		if name, ok := policies.DefaultPolicies[s.kind]; ok {
			refs = []v1alpha1.PolicyRef{{Name: name}}
		}
	}
	status := s.obj.GetCommonStatus()
	var levels []ancestry.Level
	if s.kind == "CanaryRelease" || s.kind == "Experiment" || s.kind == "ReleasePlan" {
		levels = ancestry.For(ctx, s.Client, s.obj)
		s.tree = ancestry.TreeInput(levels)
	}
	if len(refs) == 0 && len(levels) == 0 {
		meta.RemoveStatusCondition(&status.Conditions, v1alpha1.ConditionPoliciesApplied)
		status.Decisions = nil
		return nil, nil
	}
	chain, errs := s.Registry.Chain(s.kind, refs, field.NewPath("spec", "policies"))
	if len(errs) == 0 {
		chain, status.EffectivePolicies, errs = s.Registry.EffectiveChain(s.kind, chain, ancestry.PolicyLevels(levels))
	}
	if len(errs) > 0 {
		msg := errs.ToAggregate().Error()
		s.condition(v1alpha1.ConditionPoliciesApplied, false, ReasonInvalidPolicies, msg)
		return nil, userError(ReasonInvalidPolicies, "%s", msg)
	}
	if len(chain) == 0 {
		meta.RemoveStatusCondition(&status.Conditions, v1alpha1.ConditionPoliciesApplied)
		status.Decisions = nil
		return nil, nil
	}
	return chain, nil
}

// decide runs the resource's policy chain on a proposal, after calling
// the hooks of its webhook policies (their answers are input.hooks); it
// returns nil and no error when the resource has no policies.
func (s *scope) decide(ctx context.Context, in policies.Input) (*Decision, error) {
	chain, err := s.chain(ctx)
	if chain == nil {
		return nil, err
	}
	// Completed here, so that a second evaluation (decideAfterStep)
	// reuses the resource's conversion.
	if err := s.complete(&in); err != nil {
		return nil, err
	}
	if !s.readOnly {
		// A ReadOnly executor changes nothing, a load generator included.
		in.Hooks = s.callHooks(ctx, chain, in)
	}
	res, err := s.decideWith(ctx, chain, in)
	if err != nil {
		return nil, err
	}
	return &Decision{Input: in, Result: res}, nil
}

// decideAfterStep evaluates the chain once more on the state a run that
// moved the split leaves, as the next run will see it (next), and records
// those decisions instead: the hold that follows a step is then in the
// status the step writes, and the runs until the next step find nothing
// to write. Its events are not emitted. When it would change the split
// again (holds says no), or fails, the run's own decisions stay, and the
// next run decides.
func (s *scope) decideAfterStep(ctx context.Context, next policies.Input, holds func(state map[string]any) bool) {
	chain, _ := s.chain(ctx)
	if chain == nil {
		return
	}
	res, err := s.evaluate(ctx, chain, next)
	if err != nil || !holds(res.State) {
		return
	}
	s.recordDecisions(res)
	s.requeueAfter(res.RequeueAfter)
}

// decideWith runs a chain on the proposal and records its decisions in the
// status; a policy failure is reported on PoliciesApplied and returned.
func (s *scope) decideWith(ctx context.Context, chain policies.Chain, in policies.Input) (*policies.Result, error) {
	res, err := s.evaluate(ctx, chain, in)
	if err != nil {
		s.condition(v1alpha1.ConditionPoliciesApplied, false, ReasonPolicyError, err.Error())
		policyDecisions.WithLabelValues(policyOf(err), "Error").Inc()
		return nil, userError(ReasonPolicyError, "%s", err.Error())
	}
	for _, step := range res.Steps {
		policyDecisions.WithLabelValues(step.Policy, outcomeLabel(step.Decision.Outcome)).Inc()
	}
	s.recordDecisions(res)
	s.events = append(s.events, res.Events...)
	s.requeueAfter(res.RequeueAfter)
	return res, nil
}

// evaluate runs a chain on an input completed with the kind, the time of
// the run and the resource.
func (s *scope) evaluate(ctx context.Context, chain policies.Chain, in policies.Input) (*policies.Result, error) {
	if err := s.complete(&in); err != nil {
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
func (s *scope) complete(in *policies.Input) error {
	in.Kind = s.kind
	in.Now = s.now
	in.Tree = s.tree
	if in.Resource == nil {
		resource, err := toMap(s.obj)
		if err != nil {
			return err
		}
		return in.SetResource(resource)
	}
	return nil
}

// recordDecisions puts a chain's decisions in the status and summarizes
// them on PoliciesApplied.
func (s *scope) recordDecisions(res *policies.Result) {
	status := s.obj.GetCommonStatus()
	decisions := make([]v1alpha1.PolicyDecision, 0, len(res.Steps))
	summary := make([]string, 0, len(res.Steps))
	for i, step := range res.Steps {
		d := v1alpha1.PolicyDecision{Policy: step.Policy, Outcome: step.Decision.Outcome, Message: step.Decision.Message}
		// The time of a decision is when it was first made: a repeated
		// decision keeps its time, so a steady state writes nothing.
		d.Time = &metav1.Time{Time: s.now}
		if i < len(status.Decisions) {
			if old := status.Decisions[i]; old.Policy == d.Policy && old.Outcome == d.Outcome && old.Message == d.Message && old.Time != nil {
				d.Time = old.Time
			}
		}
		decisions = append(decisions, d)
		summary = append(summary, fmt.Sprintf("%s: %s", step.Policy, cmp.Or(step.Decision.Outcome, "-")))
	}
	status.Decisions = decisions
	s.condition(v1alpha1.ConditionPoliciesApplied, true, ReasonPoliciesApplied, strings.Join(summary, "; "))
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
