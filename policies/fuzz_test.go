package policies

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// FuzzChainInput runs every predefined policy, alone with its defaults and
// in the three-policy canary chain, on arbitrary input documents (the
// executor builds them from objects users write and metrics anyone can
// shape). A policy may refuse an input, with an error that names it; it
// may never panic, and what it decides passes the decision checks.
func FuzzChainInput(f *testing.F) {
	ctx := context.Background()
	r, err := NewPredefinedRegistry(ctx, newTestCompiler(f))
	if err != nil {
		f.Fatal(err)
	}
	type named struct {
		names string
		kind  string
		chain Chain
	}
	var chains []named
	for _, p := range r.Policies() {
		for _, kind := range p.Kinds {
			chain, errs := r.Chain(kind, []v1alpha1.PolicyRef{{Name: p.Name}}, field.NewPath("spec", "policies"))
			if len(errs) > 0 {
				continue // a policy whose parameters have no defaults
			}
			chains = append(chains, named{p.Name, kind, chain})
		}
	}
	chains = append(chains, named{"TimedCanaryRelease BusinessHoursGate HealthBasedCanaryRelease", "CanaryRelease", threePolicyChain(f, r)})
	if len(chains) < 5 {
		f.Fatalf("only %d chains to fuzz", len(chains))
	}
	seed, err := json.Marshal(canaryInput())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(len(chains)-1), seed)

	f.Fuzz(func(t *testing.T, which uint8, doc []byte) {
		var in Input
		if err := json.Unmarshal(doc, &in); err != nil {
			return // the executor builds the input; it is always JSON
		}
		c := chains[int(which)%len(chains)]
		in.Kind = c.kind
		if in.Now.IsZero() {
			in.Now = time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)
		}
		res, err := c.chain.Run(ctx, in)
		if err != nil {
			if !namesOneOf(err.Error(), strings.Fields(c.names)) && !strings.Contains(err.Error(), "input") {
				t.Fatalf("%s: an error that names no policy and no input: %v", c.names, err)
			}
			return
		}
		if res.State == nil {
			t.Fatalf("%s: no state decided", c.names)
		}
		if _, err := json.Marshal(res.State); err != nil {
			t.Fatalf("%s: the decided state is not JSON: %v", c.names, err)
		}
		for _, e := range res.Events {
			if e.Type != "Normal" && e.Type != "Warning" {
				t.Fatalf("%s: an event of type %q passed the checks", c.names, e.Type)
			}
		}
		if res.RequeueAfter < 0 {
			t.Fatalf("%s: requeue after %s", c.names, res.RequeueAfter)
		}
	})
}

func namesOneOf(s string, names []string) bool {
	for _, n := range names {
		if strings.Contains(s, n) || strings.Contains(s, SnakeCase(n)) {
			return true
		}
	}
	return false
}

// FuzzCompilePolicy compiles arbitrary Policy modules in the sandbox, as
// admission does for every Policy object. A module is compiled or refused
// with an error; nothing panics, and a module that compiles evaluates
// within the sandbox's deadline.
func FuzzCompilePolicy(f *testing.F) {
	ctx := context.Background()
	c := newTestCompiler(f)
	f.Add(module("policies.fuzzed", `decision := {"state": input.state}`))
	f.Add(module("policies.fuzzed", `decision := {"state": http.send({"method": "GET", "url": "http://127.0.0.1:1"}).body}`))
	f.Add(module("policies.fuzzed", `decision := {"state": {"n": count([1 | some a in numbers.range(1, 100000); some b in numbers.range(1, 100000); a == b + 1])}}`))
	f.Add("package x\n")
	f.Add("")

	input, err := json.Marshal(canaryInput())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rego string) {
		p, err := c.Compile(ctx, Source{Name: "fuzzed", File: "fuzzed.rego", Rego: rego})
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("refused with an empty error")
			}
			return
		}
		var in Input
		if err := json.Unmarshal(input, &in); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, _ = Chain{{Policy: p}}.Run(ctx, in)
		// The deadline is 100ms; the evaluator checks it between steps.
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("evaluation ran %s past a deadline of %s", took, DefaultLimits.Timeout)
		}
	})
}
