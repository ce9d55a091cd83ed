package policies

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

var updateDecisions = flag.Bool("update-decisions", false, "rewrite testdata/decisions.golden from the policies as they are")

// decisionVectors is how many inputs each policy decides on, in chunks of
// decisionChunk, each chunk's decisions hashed into the golden file.
const (
	decisionVectors = 12000
	decisionChunk   = 400
	decisionsGolden = "testdata/decisions.golden"
)

// vectorPolicies are the predefined policies the decision vectors cover,
// with the seed of each one's inputs.
var vectorPolicies = []struct {
	name string
	seed uint64
}{{"TimedCanaryRelease", 1}, {"BusinessHoursGate", 2}, {"HealthBasedCanaryRelease", 3}}

// TestDecisionVectors decides the same generated inputs (states in every
// phase, weights, last steps around the period, metrics around the
// thresholds, Promote actions, times around the business hours, inputs
// with and without nowNs and sinceLastStepNs) with the predefined canary
// policies and compares the decisions, hashed by chunk, with
// testdata/decisions.golden: what makes a policy faster must not change
// what it decides. After a change that is meant to change decisions,
// rewrite the file with
//
//	go test ./policies -run TestDecisionVectors -update-decisions
//
// and KUBIST_DECISIONS_DUMP=<policy>/<chunk> prints a chunk's inputs and
// decisions, to compare them with those of an earlier revision.
func TestDecisionVectors(t *testing.T) {
	ctx := context.Background()
	r, err := NewPredefinedRegistry(ctx, newTestCompiler(t))
	if err != nil {
		t.Fatal(err)
	}
	want := readDecisionsGolden(t)
	var got []string
	dump := os.Getenv("KUBIST_DECISIONS_DUMP")
	for _, vp := range vectorPolicies {
		p, ok := r.Policy(vp.name)
		if !ok {
			t.Fatalf("no predefined policy %s", vp.name)
		}
		gen := rand.New(rand.NewPCG(vp.seed, 0))
		outcomes := map[string]int{}
		h := sha256.New()
		for i := range decisionVectors {
			in := vectorInput(gen, vp.name)
			v, err := ast.InterfaceToValue(in)
			if err != nil {
				t.Fatal(err)
			}
			line := decisionLine(ctx, p, v, outcomes)
			fmt.Fprintln(h, line)
			chunk := i / decisionChunk
			if dump == fmt.Sprintf("%s/%d", vp.name, chunk) {
				t.Logf("#%d input %v\n    %s", i, v, line)
			}
			if (i+1)%decisionChunk == 0 {
				got = append(got, fmt.Sprintf("%s %d %x", vp.name, chunk, h.Sum(nil)[:8]))
				h.Reset()
			}
		}
		keys := make([]string, 0, len(outcomes))
		for k, n := range outcomes {
			keys = append(keys, fmt.Sprintf("%s=%d", k, n))
		}
		slices.Sort(keys)
		got = append(got, fmt.Sprintf("%s outcomes %s", vp.name, strings.Join(keys, " ")))
	}
	if *updateDecisions {
		body := "# Decisions of the predefined canary policies on generated inputs (policies/decisions_test.go), hashed by chunk.\n" + strings.Join(got, "\n") + "\n"
		if err := os.WriteFile(decisionsGolden, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !slices.Equal(got, want) {
		for i := range max(len(got), len(want)) {
			g, w := at(got, i), at(want, i)
			if g != w {
				t.Errorf("decisions differ: got %q, want %q", g, w)
			}
		}
		t.Fatalf("the predefined policies decide differently on the decision vectors; if that is meant, run with -update-decisions; KUBIST_DECISIONS_DUMP=<policy>/<chunk> prints a chunk")
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return ""
}

func readDecisionsGolden(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(decisionsGolden)
	if err != nil {
		if *updateDecisions {
			return nil
		}
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := s.Text(); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	return lines
}

// decisionLine is a decision as canonical JSON, or the error.
func decisionLine(ctx context.Context, p *Policy, input ast.Value, outcomes map[string]int) string {
	d, err := p.Evaluate(ctx, input)
	if err != nil {
		outcomes["error"]++
		return "error: " + err.Error()
	}
	outcomes[d.Outcome]++
	b, err := json.Marshal(d)
	if err != nil {
		return "marshal: " + err.Error()
	}
	return string(b)
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// vectorInput is one generated input for a policy.
func vectorInput(r *rand.Rand, policy string) map[string]any {
	now := time.Date(2026, 11, 23+r.IntN(7), r.IntN(24), pick(r, 0, 1, 29, 30, 59), pick(r, 0, 15, 30), 0, time.UTC)
	cw := pick(r, 0, 1, 10, 20, 50, 90, 95, 99, 100)
	weights := map[string]any{}
	if r.IntN(10) > 0 {
		weights["v2"] = cw
	}
	if r.IntN(10) > 0 {
		weights["v1"] = 100 - cw
	}
	if r.IntN(8) == 0 {
		weights["v3"] = 5
	}
	state := map[string]any{"baseline": "v1", "canary": "v2", "weights": weights,
		"phase": pick(r, "Pending", "Progressing", "Progressing", "Progressing", "Promoted", "RolledBack", "Paused", "Aborted", "Failed")}
	var last time.Time
	if r.IntN(6) > 0 {
		last = now.Add(-pick(r, 0, time.Second, 29*time.Second, 30*time.Second, 31*time.Second, 59*time.Second, time.Minute,
			61*time.Second, 90*time.Minute, 1500*time.Millisecond, 1499*time.Millisecond, 150*time.Minute))
		if r.IntN(10) == 0 {
			last = last.Add(123 * time.Millisecond)
		}
		state["lastStepTime"] = last.Format(time.RFC3339Nano)
	}
	observed := map[string]any{"phase": pick(r, "Progressing", "Pending", "Promoted")}
	served := map[string]any{"v1": 100 - cw, "v2": cw}
	if r.IntN(3) == 0 {
		served = map[string]any{"v1": 100 - pick(r, 0, 10, 50), "v2": pick(r, 0, 10, 50)}
	}
	if r.IntN(8) > 0 {
		observed["weights"] = served
	}
	if r.IntN(4) > 0 {
		observed["lastStepTime"] = now.Add(-time.Minute).Format(time.RFC3339)
	}
	in := map[string]any{"kind": "CanaryRelease", "now": now.Format(time.RFC3339Nano), "state": state, "observed": observed,
		"resource": map[string]any{"metadata": map[string]any{"name": "r", "namespace": "ns"}}}
	// The chain gives nowNs and sinceLastStepNs; a test's input may lack them.
	if r.IntN(4) > 0 {
		in["nowNs"] = now.UnixNano()
		if !last.IsZero() {
			in["sinceLastStepNs"] = now.UnixNano() - last.UnixNano()
		}
	}
	if r.IntN(5) > 0 {
		metrics := map[string]any{"v1": map[string]any{"requests": 100, "errorRate": 0.01}}
		if r.IntN(6) > 0 {
			metrics["v2"] = map[string]any{"requests": pick(r, 0, 5, 19, 20, 21, 1000), "errorRate": pick(r, 0.0, 0.004, 0.05, 0.0500001, 0.3, 0.31, 1.0)}
		}
		in["metrics"] = metrics
	}
	if r.IntN(6) == 0 {
		in["action"] = map[string]any{"name": pick(r, "Promote", "Pause", "Approve")}
	}
	switch policy {
	case "TimedCanaryRelease":
		in["parameters"] = map[string]any{"step": pick(r, 1, 10, 33, 50, 100), "period": pick(r, "30s", "1m", "1500ms", "1h", "1m30s", "2.5s")}
	case "HealthBasedCanaryRelease":
		in["parameters"] = map[string]any{"step": pick(r, 1, 10, 33, 100), "period": pick(r, "30s", "1m", "1500ms", "1h"),
			"maxErrorRate": pick(r, 0.0, 0.05, 0.3, 1.0), "minRequests": pick(r, 1, 20, 1000), "rollback": pick(r, "immediate", "gradual")}
	case "BusinessHoursGate":
		in["parameters"] = map[string]any{"timezone": pick(r, "UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata"),
			"from": pick(r, "00:00", "08:00", "09:00", "09:30", "13:00", "23:59"), "to": pick(r, "00:00", "17:00", "18:00", "23:59", "12:00"),
			"days": pick(r, []any{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}, []any{"Saturday", "Sunday"}, []any{},
				[]any{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}),
			"allowRollback": r.IntN(2) == 0}
	}
	return in
}
