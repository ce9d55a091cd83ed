//go:build !manager_only

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubist-io/kubist/catalog"
	"github.com/kubist-io/kubist/internal/cli/offline"
)

// run runs the kubist command line with args, as a user would.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPolicyList(t *testing.T) {
	out, err := run(t, "policy", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 14 || strings.Join(strings.Fields(lines[0]), " ") != "NAME KINDS DESCRIPTION" {
		t.Fatalf("want a header and 13 policies, got:\n%s", out)
	}
	if !strings.Contains(out, "SubsetDetector ") || !strings.Contains(out, "Destination") {
		t.Fatalf("SubsetDetector and its kind missing:\n%s", out)
	}
}

func TestPolicyTest(t *testing.T) {
	out, err := run(t, "policy", "test")
	if err != nil || !strings.Contains(out, "PASS: ") || strings.Contains(out, "FAIL") {
		t.Fatalf("predefined policy tests: err=%v\n%s", err, out)
	}

	dir := t.TempDir()
	writeFile(t, dir, "p_test.rego", "package p_test\n\ntest_ok if true\n\ntest_broken if 1 == 2\n")
	out, err = run(t, "policy", "test", dir)
	if err == nil || !strings.Contains(out, "FAIL: 1/2") || !strings.Contains(out, "test_broken: FAIL") {
		t.Fatalf("a failing test must fail the command: err=%v\n%s", err, out)
	}
}

func TestPolicyEval(t *testing.T) {
	dir := t.TempDir()
	input := writeFile(t, dir, "input.yaml", `kind: CanaryRelease
parameters: {step: 25}
state: {baseline: v1, canary: v2, weights: {v1: 90, v2: 10}, phase: Progressing, lastStepTime: "2026-11-24T12:00:00Z"}
now: "2026-11-24T12:01:00Z"
`)
	out, err := run(t, "policy", "eval", "TimedCanaryRelease", "--input", input)
	if err != nil {
		t.Fatal(err)
	}
	var decision struct {
		State struct {
			Weights map[string]int `json:"weights"`
		} `json:"state"`
		Outcome      string `json:"outcome"`
		RequeueAfter string `json:"requeueAfter"`
	}
	if err := json.Unmarshal([]byte(out), &decision); err != nil {
		t.Fatalf("output is not a JSON decision: %v\n%s", err, out)
	}
	if decision.State.Weights["v2"] != 35 || decision.Outcome != "Step" || decision.RequeueAfter != "30s" {
		t.Fatalf("decision = %+v", decision)
	}
}

func TestPolicyEvalModule(t *testing.T) {
	root := filepath.Join("..", "..", "rego", "examples", "max_weight")
	out, err := run(t, "policy", "eval", "MaxWeight",
		"--file", filepath.Join(root, "max_weight.rego"), "--input", filepath.Join(root, "input.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"outcome": "Cap"`) || !strings.Contains(out, `"v2": 40`) {
		t.Fatalf("MaxWeight with max 40 must cap v2 at 40:\n%s", out)
	}
}

func TestPolicyEvalErrors(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		args []string
		want []string
	}{
		"an unknown policy suggests the closest": {
			args: []string{"policy", "eval", "TimedCanary", "--input", writeFile(t, dir, "a.yaml", "state: {}\n")},
			want: []string{"no policy named TimedCanary (did you mean TimedCanaryRelease?)"},
		},
		"bad parameters are listed with their paths": {
			args: []string{"policy", "eval", "TimedCanaryRelease", "--input", writeFile(t, dir, "b.yaml", "parameters: {step: 150, speed: 2}\nstate: {}\n")},
			want: []string{"parameters.speed: Invalid value: \"(unknown)\": unknown parameter", "parameters.step: Invalid value: 150: should be less than or equal to 100"},
		},
		"a policy used on the wrong kind": {
			args: []string{"policy", "eval", "SubsetDetector", "--input", writeFile(t, dir, "c.yaml", "kind: CanaryRelease\nstate: {}\n")},
			want: []string{"policy SubsetDetector applies to Destination, not CanaryRelease"},
		},
		"unknown fields of the input document": {
			args: []string{"policy", "eval", "TimedCanaryRelease", "--input", writeFile(t, dir, "d.yaml", "stat: {}\n")},
			want: []string{`unknown field "stat"`},
		},
		"a module that does not compile": {
			args: []string{"policy", "eval", "X", "--input", writeFile(t, dir, "e.yaml", "state: {}\n"),
				"--file", writeFile(t, dir, "x.rego", "# METADATA\n# title: X\n# custom:\n#   kinds: [Route]\npackage x\n\ndecision := {\"state\": http.send({})}\n")},
			want: []string{"x.rego:7:23: undefined function http.send"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := run(t, tc.args...)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// The README's table of executors is `kubist executor list --markdown`.
func TestREADMEListsEveryExecutor(t *testing.T) {
	executors, err := catalog.New()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	if err := offline.ExecutorTable(&want, executors.Executors()); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- executors:begin -->\n")
	got, _, ok2 := strings.Cut(rest, "<!-- executors:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md lacks the executors' table markers")
	}
	if got != want.String() {
		t.Errorf("README.md's table of executors is stale; replace it with `kubist executor list --markdown`:\n%s", want.String())
	}
	if n := strings.Count(got, "\n| `"); n != 20 {
		t.Errorf("%d executors in the table, want 20 (9 kinds and GatewayAPIRouteExecutor, each with its ReadOnly twin)", n)
	}
}
