package policies

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"
)

// toValue converts a JSON-shaped Go value (as encoding/json, sigs.k8s.io/yaml
// or the API machinery decode it, or as Go code builds it with ints) to a
// Rego value without a JSON round trip.
func toValue(v any) (ast.Value, error) {
	switch x := v.(type) {
	case nil:
		return ast.Null{}, nil
	case string:
		return ast.String(x), nil
	case bool:
		return ast.Boolean(x), nil
	case int:
		return ast.Number(strconv.Itoa(x)), nil
	case int32:
		return ast.Number(strconv.FormatInt(int64(x), 10)), nil
	case int64:
		return ast.Number(strconv.FormatInt(x, 10)), nil
	case float64:
		return ast.Number(strconv.FormatFloat(x, 'g', -1, 64)), nil
	case json.Number:
		return ast.Number(x), nil
	case map[string]any:
		obj := ast.NewObjectWithCapacity(len(x))
		for k, e := range x {
			ev, err := toValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			obj.Insert(ast.StringTerm(k), ast.NewTerm(ev))
		}
		return obj, nil
	case []any:
		terms := make([]*ast.Term, len(x))
		for i, e := range x {
			ev, err := toValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			terms[i] = ast.NewTerm(ev)
		}
		return ast.NewArray(terms...), nil
	default:
		// Anything else (typed maps, structs) goes the slow, general way.
		return ast.InterfaceToValue(v)
	}
}
