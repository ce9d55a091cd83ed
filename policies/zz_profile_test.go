package policies

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/profiler"
	"github.com/open-policy-agent/opa/v1/rego"
)

func TestZZProfile(t *testing.T) {
	ctx := context.Background()
	c := newTestCompiler(t)
	r, _ := NewPredefinedRegistry(ctx, c)
	chain := threePolicyChain(t, r)
	in := canaryInput()
	fixed, _ := fixedInput(in)
	state, _ := objectValue(in.State)
	for _, step := range chain {
		params, _ := objectValue(step.Parameters)
		doc := stepInput(fixed, params, state)
		p := profiler.New()
		opts := append(c.queryOptions(step.Policy.Package, step.Policy.module), rego.ParsedInput(doc), rego.QueryTracer(p))
		pq, err := rego.New(opts...).PrepareForEval(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var rs rego.ResultSet
		for i := 0; i < 200; i++ {
			rs, err = pq.Eval(ctx, rego.EvalParsedInput(doc), rego.EvalQueryTracer(p))
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, st := range p.ReportTopNResults(25, []string{"total_time_ns"}) {
			fmt.Printf("%8d ns %5d evals %s:%d %s\n", st.ExprTimeNs/200, st.NumEval/200, st.Location.File, st.Location.Row, string(st.Location.Text))
		}
		d, _ := step.Policy.decode(rs[0].Expressions[0].Value.(*ast.Term).Value)
		state = d.state
		os.Stdout.WriteString(step.Policy.Name + "\n")
	}
}
