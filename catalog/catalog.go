// Package catalog declares Kubist's executors once — their names, the
// kinds they reconcile, their parameter schemas and properties (Default,
// ReadOnly) — and builds the policy engine that the manager, the webhook
// and the command-line tool share. It imports no Kubernetes client, Istio
// or Helm: `kubist policy` and `kubist validate` use it without the
// reconciler, which attaches a Go implementation to each name.
package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// Executor describes an executor: the webhook checks executor stanzas
// against it, the reconciler runs the implementation of the same name.
type Executor struct {
	Name        string
	Description string
	// Kinds the executor reconciles.
	Kinds []string
	// Schema of its parameters.
	Schema *policies.Schema
	// Default marks the executor the webhook fills in when a resource of
	// its kinds names none.
	Default bool
	// ReadOnly executors compute and report the desired state without
	// writing it: no finalizer, no object on a cluster, drift reported.
	ReadOnly bool
}

// AppliesTo reports whether the executor may be used on a kind.
func (e *Executor) AppliesTo(kind string) bool { return slices.Contains(e.Kinds, kind) }

// Catalog is every executor, by name. It is built once (New) and only
// read after, so it needs no lock.
type Catalog struct {
	byName map[string]*Executor
	// sorted are the executors in name order.
	sorted []*Executor
}

// parameters are the parameter schemas of each kind's executors: every
// executor of a kind and their ReadOnly twins take the same parameters.
var parameters = map[string]string{
	"Application": `
type: object
properties:
  scaleDownRetired:
    description: Scale a retired version's Deployments (one that serves no traffic since a release ended, with no release to it) to zero once retired this long, e.g. 10m; their replicas are kept in an annotation and restored when a release needs the version again. Unset, Kubist never writes a Deployment.
    type: string
    pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
`,
	"Destination": `
type: object
properties:
  subsetServices:
    description: Also apply one Service per subset, named <destination>-<subset> and selecting the subset's labels — the backends a Gateway API HTTPRoute (GatewayAPIRouteExecutor) weighs.
    type: boolean
    default: false
`,
	"Cluster": `
type: object
properties:
  installIstio:
    description: Install Istio with Helm (charts base and istiod) when it is missing or at another version.
    type: boolean
    default: false
  istioVersion:
    description: Istio version to install and to expect, e.g. 1.27.3, or 1.31-alpha.<commit> for a development build; empty accepts any installed version.
    type: string
    pattern: '^[0-9]+\.[0-9]+(\.[0-9]+)?(-[0-9A-Za-z.-]+)?$'
  chartRepository:
    description: Helm repository of Istio's charts.
    type: string
    pattern: '^https?://'
    default: https://istio-release.storage.googleapis.com/charts
  revision:
    description: Istio revision; namespaces are then labelled istio.io/rev instead of istio-injection.
    type: string
    maxLength: 63
    pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
`,
	"CanaryRelease": `
type: object
properties:
  metricsWindow:
    description: Longest window of the Prometheus figures the policies see, e.g. 1m; a decision sees only the requests since the last step plus meshGracePeriod.
    type: string
    pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
    default: 1m
  servedWindow:
    description: Window over which the split the mesh served is counted (istio_requests_total by destination_version), e.g. 30s; at least two Prometheus scrape intervals.
    type: string
    pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
    default: 30s
  servedTolerance:
    description: Most percentage points a subset's served share may differ from its weight while the mesh still counts as doing what was asked.
    type: integer
    minimum: 0
    maximum: 100
    default: 10
  meshGracePeriod:
    description: Time the mesh gets to apply a step; the metrics the policies see, and the split the mesh served, are counted from this long after it.
    type: string
    pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
    default: 10s
`,
	"Experiment": `
type: object
properties:
  metricsWindow:
    description: Window of the Prometheus rates the policies see, e.g. 5m.
    type: string
    pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
    default: 5m
`,
}

// alternatives are the executors a kind has besides its default, each
// with a ReadOnly twin.
var alternatives = map[string][]alternative{
	"Route": {{"GatewayAPIRouteExecutor", "Reconciles a Route as a Gateway API HTTPRoute (gateway.networking.k8s.io/v1) instead of an Istio VirtualService: parents are the hosts' Services (mesh) or spec.gateways, each subset a weighted backendRef to its own Service (set subsetServices on the Destination's executor)."}},
}

type alternative struct{ name, description string }

// New declares every kind's executors — the default, which applies the
// desired state, any alternative implementation, and for each its ReadOnly
// twin, which computes and reports the desired state without writing it —
// for every kind of the tree (v1alpha1.Tree).
func New() (*Catalog, error) {
	c := &Catalog{byName: map[string]*Executor{}}
	for _, k := range v1alpha1.Tree {
		kind := k.Kind
		var props any
		if s, ok := parameters[kind]; ok {
			if err := yaml.Unmarshal([]byte(s), &props); err != nil {
				return nil, fmt.Errorf("%sExecutor parameters: %w", kind, err)
			}
		}
		entries := []Executor{
			{Name: kind + "Executor", Description: fmt.Sprintf("Reconciles %s %s and applies its desired state.", article(kind), kind), Default: true},
			{Name: "ReadOnly" + kind + "Executor", Description: fmt.Sprintf("Computes and reports %s %s's desired state without writing it.", article(kind), kind), ReadOnly: true},
		}
		for _, alt := range alternatives[kind] {
			entries = append(entries, Executor{Name: alt.name, Description: alt.description},
				Executor{Name: "ReadOnly" + alt.name, Description: fmt.Sprintf("Computes and reports what %s would write, without writing it.", alt.name), ReadOnly: true})
		}
		for _, e := range entries {
			schema, err := policies.SchemaFromValue(props)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e.Name, err)
			}
			e.Kinds, e.Schema = []string{kind}, schema
			if _, dup := c.byName[e.Name]; dup {
				return nil, fmt.Errorf("executor %s is declared twice", e.Name)
			}
			c.byName[e.Name] = &e
		}
	}
	c.sorted = slices.SortedFunc(func(yield func(*Executor) bool) {
		for _, e := range c.byName {
			if !yield(e) {
				return
			}
		}
	}, func(a, b *Executor) int { return strings.Compare(a.Name, b.Name) })
	return c, nil
}

// Executor looks an executor up by name.
func (c *Catalog) Executor(name string) (*Executor, bool) {
	e, ok := c.byName[name]
	return e, ok
}

// Executors returns every executor, sorted by name.
func (c *Catalog) Executors() []*Executor { return c.sorted }

// DefaultFor names the default executor of a kind; "" if none.
func (c *Catalog) DefaultFor(kind string) string {
	for _, e := range c.sorted {
		if e.Default && e.AppliesTo(kind) {
			return e.Name
		}
	}
	return ""
}

// NamesFor lists the executors that apply to a kind, sorted.
func (c *Catalog) NamesFor(kind string) []string {
	var names []string
	for _, e := range c.sorted {
		if e.AppliesTo(kind) {
			names = append(names, e.Name)
		}
	}
	return names
}

// Parameters resolves a resource's executor stanza: the name must exist
// and apply to the kind, and the parameters are defaulted and checked
// against its schema. It returns the defaulted parameters.
func (c *Catalog) Parameters(kind string, ref *v1alpha1.ExecutorRef, path *field.Path) (map[string]any, field.ErrorList) {
	e, ok := c.Executor(ref.Name)
	switch {
	case !ok:
		return nil, field.ErrorList{field.Invalid(path.Child("name"), ref.Name,
			policies.UnknownNameDetail("executor", ref.Name, c.NamesFor(kind)))}
	case !e.AppliesTo(kind):
		return nil, field.ErrorList{field.Invalid(path.Child("name"), ref.Name,
			fmt.Sprintf("executor %s reconciles %s, not %s; executors for %s: %s",
				ref.Name, strings.Join(e.Kinds, ", "), kind, kind, policies.ListOrNone(c.NamesFor(kind))))}
	}
	params, errs := e.Schema.Resolve(ref.Parameters, path.Child("parameters"))
	if len(errs) > 0 {
		return nil, errs
	}
	return params, nil
}

// article is "an" before a kind that starts with a vowel, "a" otherwise.
func article(kind string) string {
	if strings.ContainsRune("AEIOU", rune(kind[0])) {
		return "an"
	}
	return "a"
}

// Engine is what the manager, the webhook and the command-line tool
// evaluate and check resources with: the sandboxed policy compiler, the
// registry of policies, and the executors.
type Engine struct {
	Compiler  *policies.Compiler
	Registry  *policies.Registry
	Executors *Catalog
}

// NewEngine builds an engine: the sandboxed compiler, the registry with
// the predefined policies compiled, and every executor declared.
func NewEngine(ctx context.Context, limits policies.Limits) (Engine, error) {
	compiler, err := policies.NewCompiler(limits)
	if err != nil {
		return Engine{}, fmt.Errorf("policy engine: %w", err)
	}
	registry, err := policies.NewPredefinedRegistry(ctx, compiler)
	if err != nil {
		return Engine{}, fmt.Errorf("policy engine: %w", err)
	}
	executors, err := New()
	if err != nil {
		return Engine{}, fmt.Errorf("executors: %w", err)
	}
	return Engine{Compiler: compiler, Registry: registry, Executors: executors}, nil
}
