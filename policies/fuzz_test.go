package policies

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// FuzzChainInput runs every predefined policy, alone with its defaults and
// in the three-policy canary chain, on inputs whose user- and
// traffic-shaped parts are arbitrary: weights, phase, last step time, the
// canary's metrics, the resource's annotations (the executor builds the
// input from objects users write and metrics anyone can shape). A policy
// may refuse an input, with an error that names it; it may never panic,
// and what it decides passes the decision checks.
func FuzzChainInput(f *testing.F) {
	ctx := context.Background()
	chains := fuzzChains(f)
	f.Add(uint8(len(chains)-1), int64(80), int64(20), "Progressing", "2026-11-24T12:59:15Z", 2280.0, 0.004, 87.5, []byte(`{"approved": true}`))
	f.Add(uint8(0), int64(-5), int64(1<<40), "", "not a time", -1.0, 2.0, 1e308, []byte(`[1, "x", null]`))

	// The input is a realistic one with the parts a user or the metrics
	// shape — weights, phase, last step, the canary's traffic, the
	// resource's annotations — taken from the fuzzer.
	f.Fuzz(func(t *testing.T, which uint8, baseline, canaryWeight int64, phase, lastStep string, requests, errorRate, latency float64, annotations []byte) {
		c := chains[int(which)%len(chains)]
		in := canaryInput()
		in.Kind = c.kind
		weights := map[string]any{"v1": baseline, "v2": canaryWeight}
		in.State = map[string]any{"baseline": "v1", "canary": "v2", "weights": weights, "phase": phase, "lastStepTime": lastStep}
		in.Observed = map[string]any{"weights": weights, "phase": phase, "lastStepTime": lastStep}
		in.Metrics = map[string]any{
			"v1": map[string]any{"requests": 9120, "errorRate": 0.002, "latencyP99Ms": 81.5},
			"v2": map[string]any{"requests": finite(requests), "errorRate": finite(errorRate), "latencyP99Ms": finite(latency)},
		}
		var extra any
		if json.Unmarshal(annotations, &extra) == nil {
			in.Resource["metadata"].(map[string]any)["annotations"] = extra
		}
		res, err := c.chain.Run(ctx, in)
		checkChainResult(t, c, res, err)
	})
}

// finite keeps a float JSON can carry: the executor reads metrics from
// Prometheus' JSON, where NaN and infinities do not occur.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// fuzzChain is a chain to fuzz: one predefined policy with its defaults,
// or the three-policy canary chain.
type fuzzChain struct {
	names string
	kind  string
	chain Chain
}

func fuzzChains(f *testing.F) []fuzzChain {
	f.Helper()
	r, err := NewPredefinedRegistry(context.Background(), newTestCompiler(f))
	if err != nil {
		f.Fatal(err)
	}
	var chains []fuzzChain
	for _, p := range r.Policies() {
		for _, kind := range p.Kinds {
			chain, errs := r.Chain(kind, []v1alpha1.PolicyRef{{Name: p.Name}}, field.NewPath("spec", "policies"))
			if len(errs) > 0 {
				continue // a policy whose parameters have no defaults
			}
			chains = append(chains, fuzzChain{p.Name, kind, chain})
		}
	}
	chains = append(chains, fuzzChain{"TimedCanaryRelease BusinessHoursGate HealthBasedCanaryRelease", "CanaryRelease", threePolicyChain(f, r)})
	if len(chains) < 5 {
		f.Fatalf("only %d chains to fuzz", len(chains))
	}
	return chains
}

// checkChainResult holds a chain's outcome to what the executor relies on.
func checkChainResult(t *testing.T, c fuzzChain, res *Result, err error) {
	t.Helper()
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
}

// FuzzChainDocument runs the same chains on whole input documents of any
// shape: every field of the input may be missing, of another type, or
// nested without end.
func FuzzChainDocument(f *testing.F) {
	ctx := context.Background()
	chains := fuzzChains(f)
	f.Fuzz(func(t *testing.T, which uint8, doc []byte) {
		var in Input
		if err := json.Unmarshal(doc, &in); err != nil {
			return // the executor builds the input: it is always JSON of this shape
		}
		c := chains[int(which)%len(chains)]
		in.Kind = c.kind
		res, err := c.chain.Run(ctx, in)
		checkChainResult(t, c, res, err)
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
