package policies

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

func TestWelchTTest(t *testing.T) {
	tests := map[string]struct {
		a, b      Sample
		t, df, p  float64
		tolerance float64
	}{
		// Reference values from numerical integration of Student's t density.
		"unequal variances":  {a: Sample{10, 2, 30}, b: Sample{12, 3, 25}, t: -2.847474, df: 40.475086, p: 0.006891, tolerance: 1e-5},
		"identical samples":  {a: Sample{5, 1, 10}, b: Sample{5, 1, 10}, t: 0, df: 18, p: 1, tolerance: 1e-9},
		"no variance, equal": {a: Sample{3, 0, 5}, b: Sample{3, 0, 5}, t: 0, df: 8, p: 1, tolerance: 0},
		"no variance, apart": {a: Sample{4, 0, 5}, b: Sample{3, 0, 5}, t: math.MaxFloat64, df: 8, p: 0, tolerance: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := WelchTTest(tc.a, tc.b)
			if math.Abs(r.T-tc.t) > tc.tolerance || math.Abs(r.DF-tc.df) > tc.tolerance*10 || math.Abs(r.P-tc.p) > tc.tolerance {
				t.Fatalf("WelchTTest = %+v, want t=%v df=%v p=%v", r, tc.t, tc.df, tc.p)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for ns, want := range map[string]string{
		"30000000000":          "30s",
		"1000000000":           "1s",
		"3e10":                 "30s", // a whole number in exponent notation
		"1500000000":           "1500ms",
		"999999999":            "1000ms",
		"1000001":              "2ms", // rounded up: the requeue never falls due early
		"1000000":              "1ms",
		"1":                    "1ms",
		"0":                    "1ms",
		"-5000000000":          "1ms",          // overdue: at once
		"86400000000000000000": "86400000000s", // beyond int64
	} {
		got, err := formatDurationBuiltin(rego.BuiltinContext{}, ast.NumberTerm(json.Number(ns)))
		if err != nil {
			t.Fatalf("format_duration(%s): %v", ns, err)
		}
		if got.Value.Compare(ast.String(want)) != 0 {
			t.Errorf("format_duration(%s) = %v, want %q", ns, got, want)
		}
	}
	for _, bad := range []*ast.Term{ast.NumberTerm("1.5"), ast.NumberTerm("1000000000.5"), ast.StringTerm("30s")} {
		if _, err := formatDurationBuiltin(rego.BuiltinContext{}, bad); err == nil || !strings.Contains(err.Error(), "ns must be") {
			t.Errorf("format_duration(%v) error = %v, want one that names ns", bad, err)
		}
	}
}
