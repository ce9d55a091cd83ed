package policies

import (
	"context"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Input is the document a policy decides on (docs/architecture.md, "The
// policy chain"; rego/README.md documents its fields). The executor
// gathers everything before the chain runs: policies do no I/O.
type Input struct {
	// Kind of the resource, e.g. CanaryRelease.
	Kind string `json:"kind"`
	// Resource is the object: metadata, spec, status.
	Resource map[string]any `json:"resource,omitempty"`
	// Observed is what the executor observed, e.g. the weights served now.
	Observed map[string]any `json:"observed,omitempty"`
	// State is the executor's proposal.
	State map[string]any `json:"state"`
	// Metrics per subset, e.g. {"v2": {"requests": 1234, "errorRate": 0.01}}.
	Metrics map[string]any `json:"metrics,omitempty"`
	// Now is the time every policy of the chain sees.
	Now time.Time `json:"now"`
	// Action is the action a person asked for that this run applies, e.g.
	// {"name": "Promote", "user": "alice", "time": "…"}; absent otherwise,
	// so that a policy can tell a manual promotion from its own step.
	Action map[string]any `json:"action,omitempty"`
	// Hooks are the answers of the outside HTTP hooks the chain's webhook
	// policies name, called before the chain runs, by hook: {"statusCode":
	// 200, "body": "…", "latencyMs": 12.5, "error": "…"}.
	Hooks map[string]any `json:"hooks,omitempty"`
	// Tree is, for a release, the levels above it by kind (project,
	// cluster, virtualCluster), each {"name", "labels", "annotations"}.
	Tree map[string]any `json:"tree,omitempty"`
	// Plan is, for a release a ReleasePlan started, the plan: {"name",
	// "phase", "wave", "group": [{"route", "release", "phase",
	// "canaryWeight"}]}, its group being the plan's other releases in
	// the release's VirtualCluster.
	Plan map[string]any `json:"plan,omitempty"`

	// resource is Resource as a Rego value, when SetResource converted it:
	// a run that evaluates its chain twice converts the resource once.
	resource ast.Value
}

// SetResource sets the input's resource and converts it for the chains
// that run on this input or on a copy of it (which must not set Resource
// to another object).
func (in *Input) SetResource(resource map[string]any) error {
	v, err := objectValue(resource)
	if err != nil {
		return fmt.Errorf("input.resource: %w", err)
	}
	in.Resource, in.resource = resource, v
	return nil
}

// Step is one policy of a chain with its (defaulted) parameters.
type Step struct {
	Policy     *Policy
	Parameters map[string]any

	// params are the Parameters as a Rego value, converted once when the
	// registry builds the chain.
	params ast.Value
}

// NewStep returns a step with its parameters converted for evaluation.
func NewStep(p *Policy, params map[string]any) (Step, error) {
	v, err := objectValue(params)
	if err != nil {
		return Step{}, fmt.Errorf("policy %s: parameters: %w", p.Name, err)
	}
	return Step{Policy: p, Parameters: params, params: v}, nil
}

// StepResult is what one policy of the chain decided.
type StepResult struct {
	Policy   string
	Decision *Decision
	Duration time.Duration
}

// Result is the outcome of a whole chain.
type Result struct {
	// State is the last policy's state: the desired state to apply.
	State map[string]any
	// Events of every policy, in order.
	Events []Event
	// RequeueAfter is the smallest requeue any policy asked for; 0 if none.
	RequeueAfter time.Duration
	// Steps holds every policy's decision, for status and debugging.
	Steps []StepResult
}

// Chain is a resource's policies in order.
type Chain []Step

// PolicyError is the failure of one policy of a chain; its message is
// the policy's own, which names it.
type PolicyError struct {
	Policy string
	Err    error
}

func (e *PolicyError) Error() string { return e.Err.Error() }
func (e *PolicyError) Unwrap() error { return e.Err }

// Run threads the input's state through the policies: each one's decided
// state is the next one's input state; the last one wins. Events
// accumulate and the smallest requeueAfter is kept. A failing policy stops
// the chain with an error that names it; nothing of a partial run is
// returned as a result.
func (c Chain) Run(ctx context.Context, in Input) (*Result, error) {
	fixed, err := fixedInput(in)
	if err != nil {
		return nil, err
	}
	state, err := objectValue(in.State)
	if err != nil {
		return nil, fmt.Errorf("input.state: %w", err)
	}
	res := &Result{Steps: make([]StepResult, 0, len(c))}
	for i, step := range c {
		if step.Policy == nil {
			return nil, fmt.Errorf("chain step %d has no policy", i)
		}
		if step.params == nil {
			if step, err = NewStep(step.Policy, step.Parameters); err != nil {
				return nil, &PolicyError{Policy: step.Policy.Name, Err: err}
			}
		}
		start := time.Now()
		d, err := step.Policy.Evaluate(ctx, stepInput(fixed, in.Now, step.params, state))
		if err != nil {
			return nil, &PolicyError{Policy: step.Policy.Name, Err: err}
		}
		res.Steps = append(res.Steps, StepResult{Policy: step.Policy.Name, Decision: d, Duration: time.Since(start)})
		state = d.state
		res.Events = append(res.Events, d.Events...)
		if d.RequeueAfter > 0 && (res.RequeueAfter == 0 || d.RequeueAfter < res.RequeueAfter) {
			res.RequeueAfter = d.RequeueAfter
		}
	}
	final, err := ast.JSON(state)
	if err != nil {
		return nil, fmt.Errorf("chain state: %w", err)
	}
	res.State, _ = final.(map[string]any)
	return res, nil
}

// fixedInput converts the parts of the input every step shares, once.
func fixedInput(in Input) ([][2]*ast.Term, error) {
	fixed := [][2]*ast.Term{
		{ast.StringTerm("kind"), ast.StringTerm(in.Kind)},
		{ast.StringTerm("now"), ast.StringTerm(in.Now.UTC().Format(time.RFC3339Nano))},
		{ast.StringTerm("nowNs"), ast.InternedTerm(in.Now.UnixNano())},
	}
	// action, hooks, tree and plan are absent unless a run has them, so that a
	// policy can test for them.
	for _, part := range []struct {
		key      string
		value    map[string]any
		optional bool
	}{{"resource", in.Resource, false}, {"observed", in.Observed, false}, {"metrics", in.Metrics, false},
		{"action", in.Action, true}, {"hooks", in.Hooks, true}, {"tree", in.Tree, true}, {"plan", in.Plan, true}} {
		if part.optional && part.value == nil {
			continue
		}
		if part.key == "resource" && in.resource != nil {
			fixed = append(fixed, [2]*ast.Term{ast.StringTerm(part.key), ast.NewTerm(in.resource)})
			continue
		}
		v, err := objectValue(part.value)
		if err != nil {
			return nil, fmt.Errorf("input.%s: %w", part.key, err)
		}
		fixed = append(fixed, [2]*ast.Term{ast.StringTerm(part.key), ast.NewTerm(v)})
	}
	return fixed, nil
}

// stepInput is the input document of one step: the shared parts, the
// step's parameters and state, and sinceLastStepNs, the time from the
// state's lastStepTime (when it has one) to now, so that no policy parses
// the two again.
func stepInput(fixed [][2]*ast.Term, now time.Time, params, state ast.Value) ast.Value {
	obj := ast.NewObjectWithCapacity(len(fixed) + 3)
	for _, kv := range fixed {
		obj.Insert(kv[0], kv[1])
	}
	obj.Insert(ast.StringTerm("parameters"), ast.NewTerm(params))
	obj.Insert(ast.StringTerm("state"), ast.NewTerm(state))
	if s, ok := state.(ast.Object); ok {
		if term := s.Get(ast.InternedTerm("lastStepTime")); term != nil {
			if last, ok := term.Value.(ast.String); ok {
				if t, err := time.Parse(time.RFC3339, string(last)); err == nil {
					obj.Insert(ast.StringTerm("sinceLastStepNs"), ast.InternedTerm(now.UnixNano()-t.UnixNano()))
				}
			}
		}
	}
	return obj
}

// objectValue converts a JSON object to Rego; nil is the empty object.
func objectValue(m map[string]any) (ast.Value, error) {
	if m == nil {
		return ast.NewObject(), nil
	}
	return toValue(m)
}
