package policies

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// BenchmarkChain measures TimedCanaryRelease → BusinessHoursGate →
// HealthBasedCanaryRelease on a realistic CanaryRelease input:
//   - prepared: the engine's way, each module compiled once and its
//     prepared query evaluated per call;
//   - per-call: the same chain built with rego.New(...).Eval on every call
//     (modules parsed once, compiled per evaluation), as Gatekeeper's
//     per-request evaluation does;
//   - floor: three policies that pass the state on, the cost of the chain
//     and of OPA's evaluator before any policy logic;
//   - floor1: one such policy alone, OPA's floor for one evaluation;
//   - policy/NAME: each policy of the chain alone.
func BenchmarkChain(b *testing.B) {
	ctx := context.Background()
	c := newTestCompiler(b)
	r, err := NewPredefinedRegistry(ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	chain := threePolicyChain(b, r)
	in := canaryInput()

	b.Run("prepared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := chain.Run(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	// floor: three policies that only pass the state on, on the same
	// input: what the chain and OPA cost before a policy decides anything.
	pass, err := c.Compile(ctx, Source{Name: "pass", File: "pass.rego", Rego: module("policies.pass", `decision := {"state": input.state, "outcome": "Pass"}`)})
	if err != nil {
		b.Fatal(err)
	}
	floor := Chain{{Policy: pass}, {Policy: pass}, {Policy: pass}}
	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := floor.Run(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	floor1 := Chain{{Policy: pass}}
	b.Run("floor1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := floor1.Run(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Each policy of the chain alone, on the state the one before it
	// decided: where the chain's time goes.
	res, err := chain.Run(ctx, in)
	if err != nil {
		b.Fatal(err)
	}
	for i, step := range chain {
		alone := in
		if i > 0 {
			if alone.State, err = res.Steps[i-1].Decision.State(); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("policy/"+step.Policy.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := (Chain{step}).Run(ctx, alone); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("per-call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := runPerCall(ctx, c, chain, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// runPerCall runs a chain building a new rego.Rego for every policy.
func runPerCall(ctx context.Context, c *Compiler, chain Chain, in Input) (map[string]any, error) {
	fixed, err := fixedInput(in)
	if err != nil {
		return nil, err
	}
	state, err := objectValue(in.State)
	if err != nil {
		return nil, err
	}
	for _, step := range chain {
		params, err := objectValue(step.Parameters)
		if err != nil {
			return nil, err
		}
		doc := stepInput(fixed, in.Now, params, state)
		opts := append(c.queryOptions(step.Policy.Package, step.Policy.module), rego.ParsedInput(doc))
		rs, err := rego.New(opts...).Eval(ctx)
		if err != nil {
			return nil, err
		}
		d, err := step.Policy.decode(rs[0].Expressions[0].Value.(*ast.Term).Value)
		if err != nil {
			return nil, err
		}
		state = d.state
	}
	final, err := ast.JSON(state)
	if err != nil {
		return nil, err
	}
	return final.(map[string]any), nil
}

// TestPerCallMatchesPrepared keeps the benchmark honest: both ways decide alike.
func TestPerCallMatchesPrepared(t *testing.T) {
	ctx := context.Background()
	c := newTestCompiler(t)
	r, err := NewPredefinedRegistry(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	chain := threePolicyChain(t, r)
	prepared, err := chain.Run(ctx, canaryInput())
	if err != nil {
		t.Fatal(err)
	}
	perCall, err := runPerCall(ctx, c, chain, canaryInput())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := jsonMarshal(prepared.State)
	b, _ := jsonMarshal(perCall)
	if string(a) != string(b) {
		t.Fatalf("prepared state %s != per-call state %s", a, b)
	}
}
