package policies

import (
	"context"
	"io"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

func newTestCompiler(t testing.TB) *Compiler {
	t.Helper()
	c, err := NewCompiler(DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// module writes a user policy module with a METADATA block around body.
func module(pkg, body string) string {
	return "# METADATA\n# title: test-policy\n# description: A test.\n# custom:\n#   kinds: [CanaryRelease]\npackage " + pkg + "\n\n" + body + "\n"
}

// TestPredefinedPolicyTests runs every _test.rego of rego/ as `kubist policy test` does.
func TestPredefinedPolicyTests(t *testing.T) {
	c := newTestCompiler(t)
	modules, err := LoadModules(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	summary, err := c.Test(context.Background(), modules, &out, true)
	if err != nil {
		t.Fatal(err)
	}
	if !summary.OK() || summary.Passed < 40 {
		t.Fatalf("policy tests: %+v\n%s", summary, out.String())
	}
	t.Logf("%d Rego tests passed", summary.Passed)
}

func TestEveryPredefinedPolicyCompiles(t *testing.T) {
	c := newTestCompiler(t)
	r, err := NewPredefinedRegistry(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"BlueGreenRelease", "BusinessHoursGate", "FreezeGate", "HealthBasedCanaryRelease", "ManualGate", "MetricCanaryRelease",
		"MirrorThenShift", "PlanLockstep", "SubsetDetector", "TimedCanaryRelease", "WavePacing", "WebhookGate", "WelchExperiment"}
	var got []string
	for _, p := range r.Policies() {
		got = append(got, p.Name)
		if p.Description == "" || len(p.Kinds) == 0 {
			t.Errorf("%s: description and kinds are required", p.Name)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("predefined policies = %v, want %v", got, want)
	}
	if p, _ := r.Policy("MetricCanaryRelease"); strings.Join(p.Queries, ",") != "query" {
		t.Fatalf("MetricCanaryRelease declares queries %v, want [query]", p.Queries)
	}
}

func TestCompileRefusals(t *testing.T) {
	tests := map[string]struct {
		source string
		want   []string
	}{
		"http.send is not in the sandbox": {
			source: module("policies.fetch", `decision := {"state": http.send({"method": "GET", "url": "http://127.0.0.1:1"}).body}`),
			want:   []string{"policy/test-policy.rego:8:23: undefined function http.send"},
		},
		"net lookups are not in the sandbox": {
			source: module("policies.dns", `decision := {"state": {"ips": net.lookup_ip_addr("example.com")}}`),
			want:   []string{"undefined function net.lookup_ip_addr"},
		},
		"the runtime is not readable": {
			source: module("policies.env", `decision := {"state": opa.runtime().env}`),
			want:   []string{"undefined function opa.runtime"},
		},
		"the clock comes from input.now only": {
			source: module("policies.clock", `decision := {"state": {"t": time.now_ns()}}`),
			want:   []string{"undefined function time.now_ns"},
		},
		"randomness is not in the sandbox": {
			source: module("policies.dice", `decision := {"state": {"n": rand.intn("x", 6)}}`),
			want:   []string{"undefined function rand.intn"},
		},
		"syntax errors give line and column": {
			source: module("policies.broken", "decision := {\"state\": {}\n\nbroken if {"),
			want:   []string{"policy/test-policy.rego:10:1: unexpected identifier token"},
		},
		"Rego v0 syntax is refused": {
			source: module("policies.old", `decision = {"state": {}} { true }`),
			want:   []string{"policy/test-policy.rego:8:1: `if` keyword is required before rule body"},
		},
		"a decision rule is required": {
			source: module("policies.nodecision", `allow := true`),
			want:   []string{"has no `decision` rule"},
		},
		"METADATA is required": {
			source: "package policies.bare\n\ndecision := {\"state\": {}}\n",
			want:   []string{"no METADATA block"},
		},
		"kinds must be Kubist kinds": {
			source: "# METADATA\n# title: p\n# custom:\n#   kinds: [Deployment]\npackage policies.k\n\ndecision := {\"state\": {}}\n",
			want:   []string{`"Deployment" is not a Kubist kind`, "valid kinds: Project, Cluster"},
		},
		"the kubist package namespace is reserved": {
			source: module("kubist.lib.canary", `decision := {"state": {}}`),
			want:   []string{"package kubist.lib.canary is reserved"},
		},
		"a parameter schema must be structural": {
			source: "# METADATA\n# title: p\n# custom:\n#   kinds: [Route]\n#   parameters:\n#     type: object\n#     properties:\n#       x: {}\npackage policies.s\n\ndecision := {\"state\": {}}\n",
			want:   []string{"parameters schema is not structural", "parameters.properties[x].type: Required value"},
		},
	}
	c := newTestCompiler(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := c.CompilePolicyObject(context.Background(), &v1alpha1.Policy{
				ObjectMeta: metav1.ObjectMeta{Name: "test-policy"},
				Spec:       v1alpha1.PolicySpec{Rego: tc.source},
			})
			if err == nil {
				t.Fatal("compiled; want a refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestUserPolicyUsesTheLibrary(t *testing.T) {
	c := newTestCompiler(t)
	p, err := c.Compile(context.Background(), Source{Name: "always-step", File: "always.rego", Rego: module("policies.always",
		`import data.kubist.lib.canary

decision := {"state": canary.step_forward(input.state, 50, input.now), "outcome": "Step"}`)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Chain{{Policy: p}}.Run(context.Background(), Input{
		Kind:  "CanaryRelease",
		State: map[string]any{"baseline": "v1", "canary": "v2", "weights": map[string]any{"v1": 100, "v2": 0}, "phase": "Pending"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.State["weights"].(map[string]any)["v2"]; toString(got) != "50" {
		t.Fatalf("canary weight = %v, want 50", got)
	}
}

func TestEvaluationLimits(t *testing.T) {
	c := newTestCompiler(t)
	tests := map[string]struct {
		body string
		want string
	}{
		"a combinatorial explosion is cut off by the deadline": {
			body: `decision := {"state": {"n": count([1 | some a in numbers.range(1, 100000); some b in numbers.range(1, 100000); a == b + 1])}}`,
			want: "policy explode: evaluation exceeded its deadline of 100ms",
		},
		"a decision over 64 KiB is refused": {
			// 234 × a 300-character literal: large, yet built in 234
			// steps, far inside the deadline even on a loaded machine.
			body: `decision := {"state": {"big": concat("", [row | some i in numbers.range(1, 234); row := "` + strings.Repeat("x", 300) + `"])}}`,
			want: "policy explode: decision is 70",
		},
		"an undefined decision is an error": {
			body: `decision := {"state": {}} if input.never`,
			want: "policy explode: decision is undefined for this input",
		},
		"events must be Normal or Warning": {
			body: `decision := {"state": {}, "events": [{"type": "Loud", "reason": "R", "message": "m"}]}`,
			want: "decision.events[0].type must be Normal or Warning",
		},
		"unknown decision fields are refused": {
			body: `decision := {"state": {}, "weights": {}}`,
			want: `unknown field "weights"`,
		},
		"requeueAfter must be a duration": {
			body: `decision := {"state": {}, "requeueAfter": "soon"}`,
			want: `decision.requeueAfter "soon" is not a duration`,
		},
		"built-in errors are errors, not undefined": {
			body: `decision := {"state": {"n": to_number("many")}}`,
			want: "policy explode: ",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := c.Compile(context.Background(), Source{Name: "explode", File: "explode.rego", Rego: module("policies.explode", tc.body)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = Chain{{Policy: p}}.Run(context.Background(), Input{Kind: "CanaryRelease"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestPolicyTestReportsFailures(t *testing.T) {
	c := newTestCompiler(t)
	modules := map[string]string{
		"p_test.rego": "package p_test\n\ntest_passes if true\n\ntest_fails if 1 == 2\n",
	}
	summary, err := c.Test(context.Background(), modules, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	if summary.Passed != 1 || summary.Failed != 1 || summary.OK() {
		t.Fatalf("summary = %+v, want 1 passed and 1 failed", summary)
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	default:
		b, _ := jsonMarshal(x)
		return string(b)
	}
}

func TestCompileReusesAModuleCompiledBefore(t *testing.T) {
	c := newTestCompiler(t)
	ctx := context.Background()
	src := Source{Name: "hold", File: "hold.rego", Rego: module("policies.hold", `decision := {"state": input.state, "outcome": "Hold"}`)}
	first, err := c.Compile(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Compile(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatal("the same source was compiled twice")
	}
	src.Rego += "\n# changed\n"
	changed, err := c.Compile(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if changed == first {
		t.Fatal("a changed source gave the policy compiled before the change")
	}
	// A refused module is refused every time, not remembered as compiled.
	bad := Source{Name: "bad", File: "bad.rego", Rego: module("policies.bad", `decision := http.send({"method": "get", "url": "http://x"})`)}
	for range 2 {
		if _, err := c.Compile(ctx, bad); err == nil || !strings.Contains(err.Error(), "http.send") {
			t.Fatalf("http.send: %v", err)
		}
	}
}

// A policy sees its own input and Kubist's library, nothing of another
// resource: not the input of a chain that ran before it, not another
// resource's state, not even the predefined policies' rules: each policy
// is compiled with the library alone.
func TestPolicyCannotReadAnotherResource(t *testing.T) {
	ctx := context.Background()
	c := newTestCompiler(t)
	r, err := NewPredefinedRegistry(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	other := canaryInput()
	other.Resource["metadata"].(map[string]any)["annotations"] = map[string]any{"secret": "resource-a-only"}
	other.State["marker"] = "resource-a-only"
	if _, err := threePolicyChain(t, r).Run(ctx, other); err != nil {
		t.Fatal(err)
	}
	snoop, err := c.Compile(ctx, Source{Name: "snoop", File: "snoop.rego", Rego: module("policies.snoop",
		`decision := {"state": object.union(input.state, {"library": json.marshal(data.kubist), "timed": [d | d := data.policies.timed_canary_release.decision]})}`)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Chain{{Policy: snoop}}.Run(ctx, canaryInput())
	if err != nil {
		t.Fatal(err)
	}
	seen, err := jsonMarshal(res.State)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(seen), "resource-a-only") {
		t.Fatalf("a policy read another resource's data: %s", seen)
	}
	if lib, _ := res.State["library"].(string); !strings.Contains(lib, `"lib"`) {
		t.Fatalf("the policy did not see the library: %v", res.State["library"])
	}
	if timed, ok := res.State["timed"].([]any); !ok || len(timed) != 0 {
		t.Fatalf("a policy reads another policy's package: %v", res.State["timed"])
	}
}
