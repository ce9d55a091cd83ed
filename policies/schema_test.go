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
