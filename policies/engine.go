package policies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/kubist-io/kubist/api/v1alpha1"
	predefined "github.com/kubist-io/kubist/rego"
)

// predefinedPackagePrefix is where predefined policies live; user-defined
// policies may not use the kubist package namespace.
const (
	predefinedPackagePrefix = "kubist.policies."
	reservedPackagePrefix   = "kubist."
	entrypointRule          = "decision"
)

// Metadata is what a policy module declares in its METADATA block.
type Metadata struct {
	// Title is the name stanzas use for a predefined policy.
	Title string
	// Description says what the policy does, for `kubist policy list`.
	Description string
	// Kinds the policy applies to.
	Kinds []string
	// Queries names the string parameters that hold PromQL templates; the
	// executor evaluates them per subset before the chain runs.
	Queries []string
	// Gate marks a policy that only limits what the policies before it
	// proposed (custom.gate: true).
	Gate bool
	// Webhook marks a predefined policy whose executor calls an outside
	// HTTP hook before the chain runs (custom.webhook: true): its
	// parameters name the hook (secretRef or service), its timeout and
	// when it applies (when); the answer is the policy's input.hooks.
	Webhook bool
	// AfterSteps, for a policy that acts on the shifts the policies
	// before it propose without being a gate, says what it does when no
	// step policy comes before it (custom.afterSteps), for admission's
	// ordering warning.
	AfterSteps string
	// Renamed maps parameters' old names to their names now
	// (custom.renamed): stanzas may still use an old name, with a
	// deprecation warning, and admission writes the name now.
	Renamed map[string]string
}

// Policy is a compiled policy: its declaration and its prepared query.
type Policy struct {
	Metadata
	// Name is how stanzas refer to it: the title of a predefined policy, the
	// metadata.name of a Policy object.
	Name string
	// Predefined is true for the policies embedded in Kubist.
	Predefined bool
	// Schema of its parameters.
	Schema *Schema
	// Package of the module, e.g. kubist.policies.timed_canary_release.
	Package string

	query  rego.PreparedEvalQuery
	module *ast.Module
	limits Limits
}

// Steps says whether the policy proposes steps of its own: it is neither a
// gate nor a policy that acts on the steps before it.
func (p *Policy) Steps() bool { return !p.Gate && p.AfterSteps == "" }

// AppliesTo reports whether the policy may be used on a kind.
func (p *Policy) AppliesTo(kind string) bool { return slices.Contains(p.Kinds, kind) }

// Source is one policy module to compile.
type Source struct {
	// Name stanzas will use; empty means the METADATA title (predefined).
	Name string
	// File names the module in error messages.
	File string
	// Rego is the module's text.
	Rego string
	// Predefined marks Kubist's own modules, which must live in
	// package kubist.policies.<snake_case_title>.
	Predefined bool
}

// Compiler compiles policy modules in the sandbox, each with Kubist's
// library modules, into prepared queries.
type Compiler struct {
	caps    *ast.Capabilities
	library []*ast.Module
	limits  Limits

	// compiled remembers the policies compiled from each source: the
	// validating webhook, the Policy controller of every replica and each
	// re-apply of an unchanged Policy compile the same module.
	mu       sync.Mutex
	compiled map[Source]*Policy
}

// maxCompiled bounds the modules a Compiler remembers; when it is full it
// starts again empty.
const maxCompiled = 256

// NewCompiler parses the library modules and returns a compiler whose
// policies evaluate within limits.
func NewCompiler(limits Limits) (*Compiler, error) {
	c := &Compiler{caps: sandboxCapabilities(), limits: limits}
	libs, err := fs.Glob(predefined.FS, "lib/*.rego")
	if err != nil {
		return nil, err
	}
	for _, file := range libs {
		if strings.HasSuffix(file, "_test.rego") {
			continue
		}
		data, err := fs.ReadFile(predefined.FS, file)
		if err != nil {
			return nil, err
		}
		m, err := c.parse(file, string(data))
		if err != nil {
			return nil, err
		}
		c.library = append(c.library, m)
	}
	return c, nil
}

// Library returns the parsed library modules, keyed by file.
func (c *Compiler) Library() map[string]*ast.Module {
	out := make(map[string]*ast.Module, len(c.library))
	for _, m := range c.library {
		out[m.Package.Location.File] = m
	}
	return out
}

// Capabilities returns the sandbox's capabilities.
func (c *Compiler) Capabilities() *ast.Capabilities { return c.caps }

func (c *Compiler) parse(file, source string) (*ast.Module, error) {
	m, err := ast.ParseModuleWithOpts(file, source, ast.ParserOptions{
		ProcessAnnotation: true,
		RegoVersion:       ast.RegoV1,
		Capabilities:      c.caps,
	})
	if err != nil {
		return nil, formatRegoError(err)
	}
	return m, nil
}

// Compile parses, checks and prepares one policy module. Every error says
// where (file:line:column) and what is wrong. A source compiled before
// gives the same Policy again without compiling it.
func (c *Compiler) Compile(ctx context.Context, src Source) (*Policy, error) {
	c.mu.Lock()
	p, ok := c.compiled[src]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := c.compile(ctx, src)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.compiled == nil || len(c.compiled) >= maxCompiled {
		c.compiled = map[Source]*Policy{}
	}
	c.compiled[src] = p
	c.mu.Unlock()
	return p, nil
}

func (c *Compiler) compile(ctx context.Context, src Source) (*Policy, error) {
	m, err := c.parse(src.File, src.Rego)
	if err != nil {
		return nil, err
	}
	meta, params, err := metadataOf(m, src.File)
	if err != nil {
		return nil, err
	}
	schema, err := SchemaFromValue(params)
	if err != nil {
		return nil, fmt.Errorf("%s: METADATA custom.parameters: %w", src.File, err)
	}
	if err := schema.setRenamed(meta.Renamed); err != nil {
		return nil, fmt.Errorf("%s: METADATA custom.renamed: %w", src.File, err)
	}
	if err := checkQueries(meta.Queries, schema, src.File); err != nil {
		return nil, err
	}
	name := src.Name
	if name == "" {
		name = meta.Title
	}
	pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
	if err := checkPackage(pkg, meta.Title, src); err != nil {
		return nil, err
	}
	if !hasRule(m, entrypointRule) {
		return nil, fmt.Errorf("%s: package %s has no `decision` rule: a policy's entrypoint is the rule decision", src.File, pkg)
	}

	query, err := rego.New(c.queryOptions(pkg, m)...).PrepareForEval(ctx)
	if err != nil {
		return nil, formatRegoError(err)
	}
	return &Policy{
		Metadata:   meta,
		Name:       name,
		Predefined: src.Predefined,
		Schema:     schema,
		Package:    pkg,
		query:      query,
		module:     m,
		limits:     c.limits,
	}, nil
}

// queryOptions are the options of a policy's decision query: the module
// with the library, in the sandbox, with Kubist's built-ins.
func (c *Compiler) queryOptions(pkg string, m *ast.Module) []func(*rego.Rego) {
	opts := []func(*rego.Rego){
		rego.Query("data." + pkg + "." + entrypointRule),
		rego.ParsedModule(m),
		rego.Capabilities(c.caps),
		rego.SetRegoVersion(ast.RegoV1),
		rego.StrictBuiltinErrors(true),
		rego.GenerateJSON(resultAsTerm),
	}
	for _, lib := range c.library {
		opts = append(opts, rego.ParsedModule(lib))
	}
	for _, b := range kubistBuiltins() {
		opts = append(opts, b.Func)
	}
	return opts
}

// CompilePredefined compiles every predefined policy embedded in Kubist.
func (c *Compiler) CompilePredefined(ctx context.Context) ([]*Policy, error) {
	files, err := fs.Glob(predefined.FS, "*.rego")
	if err != nil {
		return nil, err
	}
	var out []*Policy
	for _, file := range files {
		if strings.HasSuffix(file, "_test.rego") {
			continue
		}
		data, err := fs.ReadFile(predefined.FS, file)
		if err != nil {
			return nil, err
		}
		p, err := c.Compile(ctx, Source{File: path.Join("rego", file), Rego: string(data), Predefined: true})
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// CompilePolicyObject compiles the module of a Policy resource: the name
// stanzas use is the object's metadata.name.
func (c *Compiler) CompilePolicyObject(ctx context.Context, obj *v1alpha1.Policy) (*Policy, error) {
	return c.Compile(ctx, Source{Name: obj.Name, File: "policy/" + obj.Name + ".rego", Rego: obj.Spec.Rego})
}

// metadataOf reads the package-scoped METADATA block.
func metadataOf(m *ast.Module, file string) (Metadata, any, error) {
	var a *ast.Annotations
	for _, candidate := range m.Annotations {
		if candidate.Scope == "package" {
			a = candidate
		}
	}
	if a == nil {
		return Metadata{}, nil, fmt.Errorf("%s: no METADATA block before the package: declare title, description and custom.kinds", file)
	}
	meta := Metadata{Title: a.Title, Description: a.Description}
	if meta.Title == "" {
		return meta, nil, fmt.Errorf("%s: METADATA title is required: it names the policy", file)
	}
	kinds, err := stringList(a.Custom["kinds"])
	if err != nil || len(kinds) == 0 {
		return meta, nil, fmt.Errorf("%s: METADATA custom.kinds must list the Kubist kinds the policy applies to (%s)", file, strings.Join(policyKinds(), ", "))
	}
	for _, k := range kinds {
		if !slices.Contains(policyKinds(), k) {
			return meta, nil, fmt.Errorf("%s: METADATA custom.kinds: %q is not a Kubist kind; valid kinds: %s", file, k, strings.Join(policyKinds(), ", "))
		}
	}
	meta.Kinds = kinds
	if meta.Queries, err = stringList(a.Custom["queries"]); err != nil {
		return meta, nil, fmt.Errorf("%s: METADATA custom.queries must be a list of parameter names", file)
	}
	if gate, ok := a.Custom["gate"]; ok {
		if meta.Gate, ok = gate.(bool); !ok {
			return meta, nil, fmt.Errorf("%s: METADATA custom.gate must be true or false", file)
		}
	}
	if webhook, ok := a.Custom["webhook"]; ok {
		if meta.Webhook, ok = webhook.(bool); !ok {
			return meta, nil, fmt.Errorf("%s: METADATA custom.webhook must be true or false", file)
		}
	}
	if after, ok := a.Custom["afterSteps"]; ok {
		if meta.AfterSteps, ok = after.(string); !ok || meta.AfterSteps == "" {
			return meta, nil, fmt.Errorf("%s: METADATA custom.afterSteps must say what the policy does when no step policy comes before it", file)
		}
	}
	if renamed, ok := a.Custom["renamed"]; ok {
		m, ok := renamed.(map[string]any)
		if !ok {
			return meta, nil, fmt.Errorf("%s: METADATA custom.renamed must map old parameter names to new ones", file)
		}
		meta.Renamed = make(map[string]string, len(m))
		for old, now := range m {
			if meta.Renamed[old], ok = now.(string); !ok {
				return meta, nil, fmt.Errorf("%s: METADATA custom.renamed.%s must be the parameter's name now", file, old)
			}
		}
	}
	for key := range a.Custom {
		switch key {
		case "kinds", "parameters", "queries", "gate", "webhook", "afterSteps", "renamed":
		default:
			return meta, nil, fmt.Errorf("%s: METADATA custom.%s is not known; custom holds kinds, parameters, queries, gate, webhook, afterSteps and renamed", file, key)
		}
	}
	return meta, a.Custom["parameters"], nil
}

// policyKinds are the kinds a policy may apply to: every kind but Policy.
func policyKinds() []string {
	return slices.DeleteFunc(slices.Clone(v1alpha1.Kinds), func(k string) bool { return k == "Policy" })
}

func stringList(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, errors.New("not a list")
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, errors.New("not a list of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

func checkQueries(queries []string, schema *Schema, file string) error {
	for _, q := range queries {
		prop, ok := schema.Props.Properties[q]
		if !ok || prop.Type != "string" {
			return fmt.Errorf("%s: METADATA custom.queries names %q, which must be a string parameter", file, q)
		}
	}
	return nil
}

var snakeBoundary = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// SnakeCase turns a PascalCase policy title into its package name segment.
func SnakeCase(title string) string {
	return strings.ToLower(snakeBoundary.ReplaceAllString(title, "${1}_${2}"))
}

func checkPackage(pkg, title string, src Source) error {
	if src.Predefined {
		if want := predefinedPackagePrefix + SnakeCase(title); pkg != want {
			return fmt.Errorf("%s: predefined policy %s must be in package %s, not %s", src.File, title, want, pkg)
		}
		return nil
	}
	if pkg == "kubist" || strings.HasPrefix(pkg, reservedPackagePrefix) {
		return fmt.Errorf("%s: package %s is reserved for Kubist's own modules; use another, for example package policies.%s", src.File, pkg, strings.ReplaceAll(SnakeCase(title), "-", "_"))
	}
	return nil
}

func hasRule(m *ast.Module, name string) bool {
	for _, r := range m.Rules {
		if ref := r.Head.Ref(); len(ref) == 1 && ref[0].Value.Compare(ast.Var(name)) == 0 {
			return true
		}
	}
	return false
}

// formatRegoError renders OPA's parse and compile errors one per line as
// file:line:column: message.
func formatRegoError(err error) error {
	var astErrs ast.Errors
	if !errors.As(err, &astErrs) {
		return err
	}
	lines := make([]string, 0, len(astErrs))
	for _, e := range astErrs {
		if e.Location != nil {
			lines = append(lines, fmt.Sprintf("%s:%d:%d: %s", e.Location.File, e.Location.Row, e.Location.Col, e.Message))
		} else {
			lines = append(lines, e.Message)
		}
	}
	sort.Strings(lines)
	return errors.New(strings.Join(lines, "\n"))
}

// ErrDeadline is the error of an evaluation cut off by its deadline.
var ErrDeadline = errors.New("evaluation exceeded its deadline")

// Event is an Event a policy asks the executor to emit.
type Event struct {
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Decision is one policy's output.
type Decision struct {
	// Outcome summarises the decision: Step, Hold, Promote, RollBack, …
	Outcome string `json:"outcome,omitempty"`
	// Message explains the decision to a person.
	Message string `json:"message,omitempty"`
	// Events to emit.
	Events []Event `json:"events,omitempty"`
	// RequeueAfter asks to be evaluated again after this long; 0 means no ask.
	RequeueAfter time.Duration `json:"-"`

	// state stays a Rego value: it is the next policy's input as it is.
	state ast.Object
}

// State is the proposal after this policy, as JSON values.
func (d *Decision) State() (map[string]any, error) {
	v, err := ast.JSON(d.state)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	return m, nil
}

// MarshalJSON writes the decision in the contract's shape, with
// requeueAfter as a duration string.
func (d *Decision) MarshalJSON() ([]byte, error) {
	state, err := d.State()
	if err != nil {
		return nil, err
	}
	raw := struct {
		State        map[string]any `json:"state"`
		Outcome      string         `json:"outcome,omitempty"`
		Message      string         `json:"message,omitempty"`
		Events       []Event        `json:"events,omitempty"`
		RequeueAfter string         `json:"requeueAfter,omitempty"`
	}{state, d.Outcome, d.Message, d.Events, ""}
	if d.RequeueAfter > 0 {
		raw.RequeueAfter = d.RequeueAfter.String()
	}
	return json.Marshal(raw)
}

// resultAsTerm keeps the query's result as a Rego term rather than
// converting it to Go values, which the chain would only convert back.
func resultAsTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// Evaluate runs the policy on an input document within its limits.
//
// The deadline cancels OPA's evaluation from a timer, and the caller's
// context from a callback: no goroutine per evaluation, as OPA starts by
// default to watch the context. OPA's metrics, which nothing reads, are
// not gathered.
func (p *Policy) Evaluate(ctx context.Context, input ast.Value) (*Decision, error) {
	cancel := topdown.NewCancel()
	timer := time.AfterFunc(p.limits.Timeout, cancel.Cancel)
	stop := context.AfterFunc(ctx, cancel.Cancel)
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(input), rego.EvalExternalCancel(cancel), rego.EvalMetrics(metrics.NoOp()))
	expired := !timer.Stop()
	stop()
	if err != nil {
		if expired || ctx.Err() != nil {
			return nil, fmt.Errorf("policy %s: %w of %s", p.Name, ErrDeadline, p.limits.Timeout)
		}
		return nil, fmt.Errorf("policy %s: %w", p.Name, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, fmt.Errorf("policy %s: decision is undefined for this input; a policy must always decide", p.Name)
	}
	term, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("policy %s: unexpected result %T", p.Name, rs[0].Expressions[0].Value)
	}
	return p.decode(term.Value)
}

// decode checks a decision's shape and size and reads its fields.
func (p *Policy) decode(v ast.Value) (*Decision, error) {
	if size := jsonSize(v); size > p.limits.MaxDecisionBytes {
		return nil, fmt.Errorf("policy %s: decision is %d bytes, over the limit of %d", p.Name, size, p.limits.MaxDecisionBytes)
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("policy %s: decision must be an object {state, outcome, message, events, requeueAfter}", p.Name)
	}
	d := &Decision{}
	var err error
	obj.Foreach(func(k, val *ast.Term) {
		if err != nil {
			return
		}
		key, _ := k.Value.(ast.String)
		switch key {
		case "state":
			if d.state, ok = val.Value.(ast.Object); !ok {
				err = fmt.Errorf("policy %s: decision.state must be an object", p.Name)
			}
		case "outcome":
			d.Outcome, err = stringField(val, "decision.outcome")
		case "message":
			d.Message, err = stringField(val, "decision.message")
		case "requeueAfter":
			var s string
			if s, err = stringField(val, "decision.requeueAfter"); err == nil {
				if d.RequeueAfter, err = time.ParseDuration(s); err != nil || d.RequeueAfter < 0 {
					err = fmt.Errorf("decision.requeueAfter %q is not a duration such as 30s", s)
				}
			}
		case "events":
			d.Events, err = decodeEvents(val)
		default:
			err = fmt.Errorf("decision has an unknown field %s; it holds state, outcome, message, events and requeueAfter", k)
		}
	})
	if err == nil && d.state == nil {
		err = errors.New("decision.state must be an object")
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "policy ") {
			return nil, err
		}
		return nil, fmt.Errorf("policy %s: %w", p.Name, err)
	}
	return d, nil
}

func stringField(t *ast.Term, name string) (string, error) {
	s, ok := t.Value.(ast.String)
	if !ok {
		return "", fmt.Errorf("%s must be a string", name)
	}
	return string(s), nil
}

func decodeEvents(t *ast.Term) ([]Event, error) {
	arr, ok := t.Value.(*ast.Array)
	if !ok {
		return nil, errors.New("decision.events must be an array")
	}
	events := make([]Event, 0, arr.Len())
	for i := 0; i < arr.Len(); i++ {
		obj, ok := arr.Elem(i).Value.(ast.Object)
		if !ok {
			return nil, fmt.Errorf("decision.events[%d] must be an object {type, reason, message}", i)
		}
		var e Event
		for _, f := range []struct {
			key string
			dst *string
		}{{"type", &e.Type}, {"reason", &e.Reason}, {"message", &e.Message}} {
			if v := obj.Get(ast.StringTerm(f.key)); v != nil {
				s, ok := v.Value.(ast.String)
				if !ok {
					return nil, fmt.Errorf("decision.events[%d].%s must be a string", i, f.key)
				}
				*f.dst = string(s)
			}
		}
		if e.Type != "Normal" && e.Type != "Warning" {
			return nil, fmt.Errorf("decision.events[%d].type must be Normal or Warning, not %q", i, e.Type)
		}
		if e.Reason == "" {
			return nil, fmt.Errorf("decision.events[%d].reason is required", i)
		}
		events = append(events, e)
	}
	return events, nil
}

// jsonSize is the size of a value written as JSON, escapes aside.
func jsonSize(v ast.Value) int {
	switch x := v.(type) {
	case ast.String:
		return len(x) + 2
	case ast.Number:
		return len(x)
	case ast.Boolean:
		if x {
			return 4
		}
		return 5
	case ast.Null:
		return 4
	case *ast.Array:
		n := 2 + max(0, x.Len()-1)
		for i := 0; i < x.Len(); i++ {
			n += jsonSize(x.Elem(i).Value)
		}
		return n
	case ast.Set:
		n := 2 + max(0, x.Len()-1)
		x.Foreach(func(t *ast.Term) { n += jsonSize(t.Value) })
		return n
	case ast.Object:
		n := 2 + max(0, x.Len()-1)
		x.Foreach(func(k, val *ast.Term) { n += jsonSize(k.Value) + 1 + jsonSize(val.Value) })
		return n
	default:
		return len(v.String())
	}
}
