package policies

import (
	"encoding/json"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

func testSchema(t *testing.T) *Schema {
	t.Helper()
	s, err := SchemaFromValue(map[string]any{
		"type": "object",
		"properties": map[string]any{
			"step":   map[string]any{"type": "integer", "default": 10},
			"period": map[string]any{"type": "string", "default": "30s"},
			"rate":   map[string]any{"type": "number", "default": 0.3},
			"mode":   map[string]any{"type": "string", "default": "immediate"},
			"limit":  map[string]any{"type": "integer"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func parameters(t *testing.T, s string) v1alpha1.Parameters {
	t.Helper()
	var p v1alpha1.Parameters
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeprecatedForms(t *testing.T) {
	s := testSchema(t)
	path := field.NewPath("spec", "policies").Index(0).Child("parameters")
	for _, tc := range []struct {
		params string
		want   []string
	}{
		{`{"period": "30000ms"}`, []string{`spec.policies[0].parameters.period: "30000ms" is the default "30s" in a deprecated form; write "30s" or leave the parameter out`}},
		{`{"period": "0.5m", "step": 10.0, "rate": 0.30}`, []string{
			`spec.policies[0].parameters.period: "0.5m" is the default "30s" in a deprecated form; write "30s" or leave the parameter out`,
			`spec.policies[0].parameters.rate: 0.30 is the default 0.3 in a deprecated form; write 0.3 or leave the parameter out`,
			`spec.policies[0].parameters.step: 10.0 is the default 10 in a deprecated form; write 10 or leave the parameter out`,
		}},
		// The default as written, other values, and parameters without a
		// default say nothing.
		{`{"period": "30s", "step": 10, "rate": 0.3, "mode": "immediate"}`, nil},
		{`{"period": "45s", "step": 20, "mode": "gradual", "limit": 5}`, nil},
		{`{}`, nil},
	} {
		got := s.DeprecatedForms(parameters(t, tc.params), path)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.params, got, tc.want)
		}
	}
}

func TestResolveRemembersOnlyValidParameters(t *testing.T) {
	s := testSchema(t)
	path := field.NewPath("parameters")
	for range 2 { // the second round is answered from what the first remembered
		params, errs := s.Resolve(parameters(t, `{"step": 20}`), path)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if params["step"] != int64(20) || params["period"] != "30s" || params["rate"] != 0.3 {
			t.Fatalf("defaults not filled: %v", params)
		}
		encoded, ok := s.Defaulted(parameters(t, `{"step": 20}`))
		if !ok || string(encoded["period"].Raw) != `"30s"` || string(encoded["step"].Raw) != "20" {
			t.Fatalf("encoded: %v %v", encoded, ok)
		}
		// Errors name the path they were asked for, every time.
		for _, p := range []*field.Path{path, field.NewPath("spec", "executor", "parameters")} {
			_, errs := s.Resolve(parameters(t, `{"step": "ten", "extra": 1}`), p)
			if len(errs) != 2 || errs[0].Field != p.Child("extra").String() || errs[1].Field != p.Child("step").String() {
				t.Fatalf("errors under %s: %v", p, errs)
			}
		}
	}
}

// TestRenamedParameters: an old name is read as the name now (defaulting
// keeps the name the stanza used), warned about, and refused beside the
// new one; a key YAML made of a bare word says which.
func TestRenamedParameters(t *testing.T) {
	s := testSchema(t)
	if err := s.setRenamed(map[string]string{"on": "mode"}); err != nil {
		t.Fatal(err)
	}
	path := field.NewPath("spec", "policies").Index(1).Child("parameters")

	params, errs := s.Resolve(parameters(t, `{"on": "gradual"}`), path)
	if len(errs) > 0 || params["mode"] != "gradual" || params["on"] != nil {
		t.Fatalf("old name: params %v, errors %v; want mode=gradual", params, errs)
	}
	if encoded, ok := s.Defaulted(parameters(t, `{"on": "gradual"}`)); !ok || string(encoded["on"].Raw) != `"gradual"` || encoded["mode"].Raw != nil {
		t.Errorf("defaulted = %v, want the old name kept", encoded)
	}
	want := `spec.policies[1].parameters.on: on is the old name of mode, still read but deprecated: write mode (YAML 1.1 reads a bare on: as true:, so it works only quoted)`
	if got := s.DeprecatedForms(parameters(t, `{"on": "gradual"}`), path); !slices.Equal(got, []string{want}) {
		t.Errorf("warnings = %q, want %q", got, want)
	}

	for params, want := range map[string]string{
		`{"on": "gradual", "mode": "x"}`: `spec.policies[1].parameters.on: Invalid value: "gradual": on is the old name of mode, and both are set: keep mode only`,
		`{"true": "gradual"}`:            `spec.policies[1].parameters.true: Invalid value: "gradual": YAML 1.1 reads the bare key on as true: this parameter is now called mode; write mode: instead of on:`,
		`{"false": 1}`:                   `spec.policies[1].parameters.false: Invalid value: "(unknown)": YAML 1.1 reads the bare keys off, no, n as false: quote the key ("off": ...); declared parameters: limit, mode, period, rate, step`,
	} {
		_, errs := s.Resolve(parameters(t, params), path)
		if len(errs) != 1 || errs[0].Error() != want {
			t.Errorf("%s: errors %v, want %q", params, errs, want)
		}
	}

	if err := s.setRenamed(map[string]string{"old": "missing"}); err == nil {
		t.Error("a rename to an undeclared parameter must be refused")
	}
	if err := s.setRenamed(map[string]string{"step": "mode"}); err == nil {
		t.Error("a declared parameter cannot be an old name")
	}
}

// TestOneErrorPerMistake: a number where an integer belongs and an object
// where a string belongs are one error each, in the user's words.
func TestOneErrorPerMistake(t *testing.T) {
	s := testSchema(t)
	path := field.NewPath("parameters")
	for params, want := range map[string]string{
		`{"step": 12.5}`:            `parameters.step: Invalid value: "number": must be of type integer`,
		`{"period": {"name": "x"}}`: `parameters.period: Invalid value: "object": must be of type string`,
	} {
		_, errs := s.Resolve(parameters(t, params), path)
		if len(errs) != 1 || errs[0].Error() != want {
			t.Errorf("%s: errors %v, want one: %q", params, errs, want)
		}
	}
}
