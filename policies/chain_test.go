package policies

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/test/testenv"
)

var jsonMarshal = json.Marshal

// canaryInput is a realistic CanaryRelease input: a canary at 20% whose
// last step was 45 seconds ago, healthy metrics, on a Tuesday afternoon.
func canaryInput() Input {
	return Input{
		Kind: "CanaryRelease",
		Resource: map[string]any{
			"apiVersion": "kubist.io/v1alpha1", "kind": "CanaryRelease",
			"metadata": map[string]any{"name": "reviews-v2", "namespace": "bookinfo", "annotations": map[string]any{}},
			"spec":     map[string]any{"route": "reviews", "destination": "reviews", "subset": "v2", "baseline": "v1"},
		},
		Observed: map[string]any{
			"weights": map[string]any{"v1": 80, "v2": 20}, "phase": "Progressing", "lastStepTime": "2026-11-24T12:59:15Z",
		},
		State: map[string]any{
			"baseline": "v1", "canary": "v2", "weights": map[string]any{"v1": 80, "v2": 20},
			"phase": "Progressing", "lastStepTime": "2026-11-24T12:59:15Z",
		},
		Metrics: map[string]any{
			"v1": map[string]any{"requests": 9120, "errorRate": 0.002, "latencyP99Ms": 81.5},
			"v2": map[string]any{"requests": 2280, "errorRate": 0.004, "latencyP99Ms": 87.5},
		},
		Now: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC),
	}
}

// threePolicyChain is TimedCanaryRelease → BusinessHoursGate →
// HealthBasedCanaryRelease, resolved through the registry as an executor would.
func threePolicyChain(t testing.TB, r *Registry) Chain {
	t.Helper()
	chain, errs := r.Chain("CanaryRelease", []v1alpha1.PolicyRef{
		{Name: "TimedCanaryRelease", Parameters: testenv.Parameters(t, `{"step": 10, "period": "30s"}`)},
		{Name: "BusinessHoursGate", Parameters: testenv.Parameters(t, `{"timezone": "Europe/Amsterdam", "from": "08:00", "to": "18:00"}`)},
		{Name: "HealthBasedCanaryRelease", Parameters: testenv.Parameters(t, `{"step": 10, "period": "30s", "maxErrorRate": 0.05}`)},
	}, field.NewPath("spec", "policies"))
	if len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	return chain
}

func TestChainThreadsStateThroughPolicies(t *testing.T) {
	r, err := NewPredefinedRegistry(context.Background(), newTestCompiler(t))
	if err != nil {
		t.Fatal(err)
	}
	res, err := threePolicyChain(t, r).Run(context.Background(), canaryInput())
	if err != nil {
		t.Fatal(err)
	}
	// Timed steps 20 → 30; the gate is open at 14:00 in Amsterdam; the
	// health-based policy sees the proposal's lastStepTime (now), so it
	// holds the proposal and asks to come back in 30s.
	weights, _ := json.Marshal(res.State["weights"])
	if string(weights) != `{"v1":70,"v2":30}` {
		t.Fatalf("weights = %s, want v2 at 30", weights)
	}
	if len(res.Steps) != 3 || res.Steps[0].Decision.Outcome != "Step" || res.Steps[1].Decision.Outcome != "Pass" || res.Steps[2].Decision.Outcome != "Hold" {
		t.Fatalf("outcomes = %v", outcomes(res))
	}
	if res.RequeueAfter != 30*time.Second {
		t.Fatalf("requeueAfter = %s, want the smallest asked for, 30s", res.RequeueAfter)
	}
	if len(res.Events) != 1 || res.Events[0].Reason != "Step" {
		t.Fatalf("events = %+v, want the Timed step's event", res.Events)
	}
}

func TestChainGateRevertsOutsideTheWindow(t *testing.T) {
	r, err := NewPredefinedRegistry(context.Background(), newTestCompiler(t))
	if err != nil {
		t.Fatal(err)
	}
	// A gate gates the policies before it: here both step policies.
	chain, errs := r.Chain("CanaryRelease", []v1alpha1.PolicyRef{
		{Name: "TimedCanaryRelease"},
		{Name: "HealthBasedCanaryRelease"},
		{Name: "BusinessHoursGate", Parameters: testenv.Parameters(t, `{"timezone": "Europe/Amsterdam"}`)},
	}, field.NewPath("spec", "policies"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	in := canaryInput()
	in.Now = time.Date(2026, 11, 24, 22, 0, 0, 0, time.UTC) // 23:00 in Amsterdam
	res, err := chain.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	weights, _ := json.Marshal(res.State["weights"])
	if string(weights) != `{"v1":80,"v2":20}` || res.Steps[2].Decision.Outcome != "Gate" || res.State["lastStepTime"] != "2026-11-24T12:59:15Z" {
		t.Fatalf("weights = %s, outcomes %v: the gate must keep what is served", weights, outcomes(res))
	}
}

func outcomes(res *Result) []string {
	var out []string
	for _, s := range res.Steps {
		out = append(out, s.Policy+":"+s.Decision.Outcome)
	}
	return out
}

func TestRegistryChainErrors(t *testing.T) {
	r, err := NewPredefinedRegistry(context.Background(), newTestCompiler(t))
	if err != nil {
		t.Fatal(err)
	}
	_, errs := r.Chain("CanaryRelease", []v1alpha1.PolicyRef{
		{Name: "TimedCanary"},
		{Name: "TimedCanaryRelease", Parameters: testenv.Parameters(t, `{"step": 150, "speed": 3}`)},
		{Name: "SubsetDetector"},
		{Name: "HealthBasedCanaryRelease", Parameters: testenv.Parameters(t, `{"rollback": "sometimes", "maxErrorRate": "high"}`)},
	}, field.NewPath("spec", "policies"))
	want := []string{
		`spec.policies[0].name: Invalid value: "TimedCanary": no policy named TimedCanary; valid: BlueGreenRelease, BusinessHoursGate, FreezeGate, HealthBasedCanaryRelease, ManualGate, MetricCanaryRelease, MirrorThenShift, PlanLockstep, TimedCanaryRelease, WebhookGate (did you mean TimedCanaryRelease?)`,
		`spec.policies[1].parameters.speed: Invalid value: "(unknown)": unknown parameter; declared parameters: period, step`,
		`spec.policies[1].parameters.step: Invalid value: 150: should be less than or equal to 100`,
		`spec.policies[2].name: Invalid value: "SubsetDetector": policy SubsetDetector applies to Destination, not CanaryRelease`,
		`spec.policies[3].parameters.maxErrorRate: Invalid value: "string": must be of type number`,
		`spec.policies[3].parameters.rollback: Unsupported value: "sometimes": supported values: "immediate", "gradual"`,
	}
	got := map[string]bool{}
	for _, e := range errs {
		got[e.Error()] = true
	}
	for _, w := range want {
		found := false
		for g := range got {
			if len(g) >= len(w) && g[:len(w)] == w {
				found = true
			}
		}
		if !found {
			t.Errorf("missing error %q\ngot: %v", w, errs)
		}
	}
}

func TestSchemaDefaults(t *testing.T) {
	r, err := NewPredefinedRegistry(context.Background(), newTestCompiler(t))
	if err != nil {
		t.Fatal(err)
	}
	chain, errs := r.Chain("CanaryRelease", []v1alpha1.PolicyRef{{Name: "HealthBasedCanaryRelease"}}, field.NewPath("spec", "policies"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got, _ := json.Marshal(chain[0].Parameters)
	want := `{"maxErrorRate":0.3,"minRequests":20,"period":"30s","rollback":"immediate","step":10}`
	if string(got) != want {
		t.Fatalf("defaulted parameters = %s, want %s", got, want)
	}
}

func TestRegistryKeepsPredefinedNames(t *testing.T) {
	c := newTestCompiler(t)
	r, err := NewPredefinedRegistry(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := c.Compile(context.Background(), Source{Name: "TimedCanaryRelease", File: "x.rego", Rego: module("policies.x", `decision := {"state": {}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetPolicy(impostor); err == nil {
		t.Fatal("a user policy replaced a predefined one")
	}
	r.RemovePolicy("TimedCanaryRelease")
	if _, ok := r.Policy("TimedCanaryRelease"); !ok {
		t.Fatal("a predefined policy was removed")
	}
}

func TestChainErrorNamesThePolicy(t *testing.T) {
	c := newTestCompiler(t)
	// A policy whose decision is undefined for every input.
	failing, err := c.Compile(context.Background(), Source{Name: "Undecided", File: "undecided.rego", Rego: module("policies.undecided", `decision := {"state": {}} if { false }`)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Chain{{Policy: failing}}.Run(context.Background(), canaryInput())
	var perr *PolicyError
	if !errors.As(err, &perr) || perr.Policy != "Undecided" {
		t.Fatalf("the chain's error %v is not a PolicyError naming Undecided", err)
	}
	if !strings.Contains(err.Error(), "policy Undecided: decision is undefined") {
		t.Errorf("the message %q is not the policy's own", err)
	}
}

// Each step's input carries nowNs and, from its own state's lastStepTime,
// sinceLastStepNs; a state without one gets none.
func TestStepInputPrecomputedTimes(t *testing.T) {
	in := canaryInput()
	fixed, err := fixedInput(in)
	if err != nil {
		t.Fatal(err)
	}
	get := func(doc ast.Value, key string) *ast.Term { return doc.(ast.Object).Get(ast.StringTerm(key)) }
	state, err := objectValue(in.State)
	if err != nil {
		t.Fatal(err)
	}
	doc := stepInput(fixed, in.Now, ast.NewObject(), state)
	if got, want := get(doc, "nowNs").String(), strconv.FormatInt(in.Now.UnixNano(), 10); got != want {
		t.Errorf("nowNs = %s, want %s", got, want)
	}
	// lastStepTime 12:59:15, now 13:00:00.
	if got, want := get(doc, "sinceLastStepNs").String(), strconv.FormatInt((45*time.Second).Nanoseconds(), 10); got != want {
		t.Errorf("sinceLastStepNs = %s, want %s", got, want)
	}
	delete(in.State, "lastStepTime")
	state, err = objectValue(in.State)
	if err != nil {
		t.Fatal(err)
	}
	if term := get(stepInput(fixed, in.Now, ast.NewObject(), state), "sinceLastStepNs"); term != nil {
		t.Errorf("a state without lastStepTime gets no sinceLastStepNs, got %s", term)
	}
}
