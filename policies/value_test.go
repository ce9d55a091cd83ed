package policies

import (
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestToValueMatchesOPA: the fast converter gives what OPA's general one gives.
func TestToValueMatchesOPA(t *testing.T) {
	for name, v := range map[string]any{
		"nested":      map[string]any{"a": []any{1, int64(2), int32(3), 4.5, "x", true, nil}, "b": map[string]any{"c": json.Number("7")}},
		"typed map":   map[string]int32{"v1": 80, "v2": 20},
		"large float": 1e21,
		"negative":    -3,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := toValue(v)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ast.InterfaceToValue(v)
			if err != nil {
				t.Fatal(err)
			}
			if got.Compare(want) != 0 {
				t.Fatalf("toValue = %v, InterfaceToValue = %v", got, want)
			}
		})
	}
}
