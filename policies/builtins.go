package policies

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/types"
	"gonum.org/v1/gonum/stat/distuv"
)

// Built-in functions Kubist adds to Rego for the math it lacks. They are
// pure: same arguments, same result.

// sampleType is {mean, stddev, n}: the summary of one sample.
var sampleType = types.NewObject(
	[]*types.StaticProperty{
		types.NewStaticProperty("mean", types.N),
		types.NewStaticProperty("stddev", types.N),
		types.NewStaticProperty("n", types.N),
	},
	types.NewDynamicProperty(types.S, types.A),
)

// welchDecl declares kubist.welch_t_test(a, b) -> {t, df, p}.
var welchDecl = &rego.Function{
	Name:        "kubist.welch_t_test",
	Description: "Welch's unequal-variances t-test of two samples given as {mean, stddev, n}; returns {t, df, p} with the two-sided p-value.",
	Decl: types.NewFunction(
		types.Args(types.Named("a", sampleType), types.Named("b", sampleType)),
		types.Named("result", types.NewObject([]*types.StaticProperty{
			types.NewStaticProperty("t", types.N),
			types.NewStaticProperty("df", types.N),
			types.NewStaticProperty("p", types.N),
		}, nil)),
	),
	Memoize: true,
}

// formatDurationDecl declares kubist.format_duration(ns) -> string.
var formatDurationDecl = &rego.Function{
	Name:        "kubist.format_duration",
	Description: "Formats a whole number of nanoseconds as a requeue duration: whole seconds as \"30s\", otherwise milliseconds rounded up as \"1500ms\", and never under \"1ms\".",
	Decl: types.NewFunction(
		types.Args(types.Named("ns", types.N)),
		types.Named("duration", types.S),
	),
}

// kubistBuiltins lists every built-in Kubist adds: its declaration for the
// compiler's capabilities and the option that adds it to a query. Tests and
// evaluation share this one list.
func kubistBuiltins() []*tester.Builtin {
	return []*tester.Builtin{
		{Decl: declOf(welchDecl), Func: rego.Function2(welchDecl, welchBuiltin)},
		{Decl: declOf(formatDurationDecl), Func: rego.Function1(formatDurationDecl, formatDurationBuiltin)},
	}
}

func declOf(f *rego.Function) *ast.Builtin {
	return &ast.Builtin{Name: f.Name, Description: f.Description, Decl: f.Decl}
}

func formatDurationBuiltin(_ rego.BuiltinContext, ns *ast.Term) (*ast.Term, error) {
	n, ok := ns.Value.(ast.Number)
	if !ok {
		return nil, fmt.Errorf("ns must be a number, got %s", ast.ValueName(ns.Value))
	}
	i, ok := new(big.Int).SetString(string(n), 10)
	if !ok {
		// A whole number in another notation, such as 3e10.
		f, _, err := big.ParseFloat(string(n), 10, 256, big.ToNearestEven)
		if err != nil || !f.IsInt() {
			return nil, fmt.Errorf("ns must be a whole number of nanoseconds, got %s", n)
		}
		i, _ = f.Int(nil)
	}
	return ast.StringTerm(formatDuration(i)), nil
}

// formatDuration writes a duration in nanoseconds as whole seconds when it
// is a whole number of them (and at least one), otherwise as milliseconds
// rounded up, at least one: so that a requeue falls due with what it waits
// for and not up to a second later.
func formatDuration(ns *big.Int) string {
	second, milli := big.NewInt(int64(time.Second)), big.NewInt(int64(time.Millisecond))
	if ns.Cmp(second) >= 0 {
		if q, r := new(big.Int).QuoRem(ns, second, new(big.Int)); r.Sign() == 0 {
			return q.String() + "s"
		}
	}
	if ns.Sign() <= 0 {
		return "1ms"
	}
	// Rounded up: (ns + 999,999) / 1,000,000 for a positive ns.
	ms := new(big.Int).Add(ns, new(big.Int).Sub(milli, big.NewInt(1)))
	return ms.Quo(ms, milli).String() + "ms"
}

func welchBuiltin(_ rego.BuiltinContext, a, b *ast.Term) (*ast.Term, error) {
	sa, err := sampleOf(a, "a")
	if err != nil {
		return nil, err
	}
	sb, err := sampleOf(b, "b")
	if err != nil {
		return nil, err
	}
	r := WelchTTest(sa, sb)
	return ast.ObjectTerm(
		ast.Item(ast.StringTerm("t"), ast.FloatNumberTerm(r.T)),
		ast.Item(ast.StringTerm("df"), ast.FloatNumberTerm(r.DF)),
		ast.Item(ast.StringTerm("p"), ast.FloatNumberTerm(r.P)),
	), nil
}

func sampleOf(t *ast.Term, name string) (Sample, error) {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return Sample{}, fmt.Errorf("%s must be an object {mean, stddev, n}", name)
	}
	get := func(key string) (float64, error) {
		v := obj.Get(ast.StringTerm(key))
		if v == nil {
			return 0, fmt.Errorf("%s.%s is missing", name, key)
		}
		n, ok := v.Value.(ast.Number)
		if !ok {
			return 0, fmt.Errorf("%s.%s must be a number", name, key)
		}
		f, _ := n.Float64()
		return f, nil
	}
	var s Sample
	var errs []error
	var err error
	s.Mean, err = get("mean")
	errs = append(errs, err)
	s.Stddev, err = get("stddev")
	errs = append(errs, err)
	s.N, err = get("n")
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return Sample{}, err
	}
	if s.N < 2 {
		return Sample{}, fmt.Errorf("%s.n must be at least 2, got %v", name, s.N)
	}
	if s.Stddev < 0 || math.IsNaN(s.Stddev) {
		return Sample{}, fmt.Errorf("%s.stddev must not be negative, got %v", name, s.Stddev)
	}
	return s, nil
}

// Sample summarises a sample by its mean, standard deviation and size.
type Sample struct {
	Mean, Stddev, N float64
}

// TTest is the outcome of a t-test: the statistic, the degrees of freedom
// and the two-sided p-value.
type TTest struct {
	T, DF, P float64
}

// WelchTTest runs Welch's unequal-variances t-test. When neither sample
// varies, equal means give p = 1 and different ones p = 0 (with t at the
// largest finite value of its sign, as JSON has no infinity).
func WelchTTest(a, b Sample) TTest {
	va, vb := a.Stddev*a.Stddev/a.N, b.Stddev*b.Stddev/b.N
	se2 := va + vb
	diff := a.Mean - b.Mean
	if se2 == 0 {
		df := a.N + b.N - 2
		switch {
		case diff == 0:
			return TTest{T: 0, DF: df, P: 1}
		case diff > 0:
			return TTest{T: math.MaxFloat64, DF: df, P: 0}
		default:
			return TTest{T: -math.MaxFloat64, DF: df, P: 0}
		}
	}
	t := diff / math.Sqrt(se2)
	df := se2 * se2 / (va*va/(a.N-1) + vb*vb/(b.N-1))
	student := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
	p := 2 * student.Survival(math.Abs(t))
	return TTest{T: t, DF: df, P: math.Min(1, p)}
}
