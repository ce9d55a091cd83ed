package policies

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Registry holds every policy by name. The webhook, the reconciler and
// the command-line tool share one; it is safe for concurrent use, as
// Policy objects come and go while it serves.
type Registry struct {
	mu       sync.RWMutex
	policies map[string]*Policy
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{policies: map[string]*Policy{}}
}

// SetPolicy adds or replaces a policy. A Policy object may not take the
// name of a predefined policy.
func (r *Registry) SetPolicy(p *Policy) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.policies[p.Name]; ok && old.Predefined != p.Predefined {
		return fmt.Errorf("policy name %s is taken by a predefined policy", p.Name)
	}
	r.policies[p.Name] = p
	return nil
}

// RemovePolicy removes a user-defined policy; predefined ones stay.
func (r *Registry) RemovePolicy(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.policies[name]; ok && !p.Predefined {
		delete(r.policies, name)
	}
}

// Policy looks a policy up by name.
func (r *Registry) Policy(name string) (*Policy, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.policies[name]
	return p, ok
}

// Policies returns every policy, sorted by name.
func (r *Registry) Policies() []*Policy {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.SortedFunc(maps.Values(r.policies), func(a, b *Policy) int { return strings.Compare(a.Name, b.Name) })
}

// PolicyNamesFor lists the policies that apply to a kind, sorted.
func (r *Registry) PolicyNamesFor(kind string) []string {
	var names []string
	for _, p := range r.Policies() {
		if p.AppliesTo(kind) {
			names = append(names, p.Name)
		}
	}
	return names
}

// ResolvePolicies checks a resource's policies stanza: every name must
// exist and apply to the kind, and every parameter set is defaulted and
// checked against its schema. It returns the policies and their defaulted
// parameters by index (nil where that entry has errors) and every problem
// at once, each under path (spec.policies).
func (r *Registry) ResolvePolicies(kind string, refs []v1alpha1.PolicyRef, path *field.Path) ([]*Policy, []map[string]any, field.ErrorList) {
	var errs field.ErrorList
	resolved := make([]*Policy, len(refs))
	parameters := make([]map[string]any, len(refs))
	for i, ref := range refs {
		var perrs field.ErrorList
		resolved[i], parameters[i], perrs = r.resolve(kind, ref, path.Index(i))
		errs = append(errs, perrs...)
	}
	return resolved, parameters, errs
}

// resolve checks one entry of a policies stanza, at path.
func (r *Registry) resolve(kind string, ref v1alpha1.PolicyRef, path *field.Path) (*Policy, map[string]any, field.ErrorList) {
	policy, ok := r.Policy(ref.Name)
	switch {
	case !ok:
		return nil, nil, field.ErrorList{field.Invalid(path.Child("name"), ref.Name, UnknownNameDetail("policy", ref.Name, r.PolicyNamesFor(kind)))}
	case !policy.AppliesTo(kind):
		return nil, nil, field.ErrorList{field.Invalid(path.Child("name"), ref.Name,
			fmt.Sprintf("policy %s applies to %s, not %s; policies for %s: %s",
				ref.Name, strings.Join(policy.Kinds, ", "), kind, kind, ListOrNone(r.PolicyNamesFor(kind))))}
	}
	params, errs := policy.Schema.Resolve(ref.Parameters, path.Child("parameters"))
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return policy, params, nil
}

// Chain resolves a resource's policies stanza into a runnable chain (see
// ResolvePolicies); it fails if any entry has errors.
func (r *Registry) Chain(kind string, refs []v1alpha1.PolicyRef, path *field.Path) (Chain, field.ErrorList) {
	chain := make(Chain, 0, len(refs))
	var errs field.ErrorList
	for i, ref := range refs {
		step, serrs := r.Step(kind, ref, path.Index(i))
		chain, errs = append(chain, step), append(errs, serrs...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return chain, nil
}

// Step resolves one entry of a policies stanza, at path, into a step of
// a chain.
func (r *Registry) Step(kind string, ref v1alpha1.PolicyRef, path *field.Path) (Step, field.ErrorList) {
	policy, params, errs := r.resolve(kind, ref, path)
	if len(errs) > 0 {
		return Step{}, errs
	}
	step, err := NewStep(policy, params)
	if err != nil {
		return Step{}, field.ErrorList{field.Invalid(path.Child("parameters"), "", err.Error())}
	}
	return step, nil
}

// DecodeParameters turns a stanza's parameters into plain JSON values with
// integers as int64, as the API server decodes them.
func DecodeParameters(params v1alpha1.Parameters, path *field.Path) (map[string]any, field.ErrorList) {
	out := make(map[string]any, len(params))
	var errs field.ErrorList
	for key, raw := range params {
		var v any
		if err := utiljson.Unmarshal(raw.Raw, &v); err != nil {
			errs = append(errs, field.Invalid(path.Child(key), string(raw.Raw), "not valid JSON: "+err.Error()))
			continue
		}
		out[key] = v
	}
	return out, errs
}

// EncodeParameters is the inverse of DecodeParameters, for writing
// defaulted parameters back into a stanza.
func EncodeParameters(params map[string]any) (v1alpha1.Parameters, error) {
	out := make(v1alpha1.Parameters, len(params))
	for key, v := range params {
		raw, err := utiljson.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", key, err)
		}
		out[key] = apiextensionsv1.JSON{Raw: raw}
	}
	return out, nil
}

// UnknownNameDetail says which names are valid and which is closest.
func UnknownNameDetail(what, name string, valid []string) string {
	msg := fmt.Sprintf("no %s named %s; valid: %s", what, name, ListOrNone(valid))
	if closest := Closest(name, valid); closest != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", closest)
	}
	return msg
}

// ListOrNone joins names, or says none.
func ListOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Closest returns the candidate a misspelt or shortened name most likely
// meant, ignoring case: the nearest by edit distance when it is close enough
// to be a typo, else the shortest candidate that has the name's letters in
// order (TimedCanary, CanaryExecutor); "" when none is likely.
func Closest(name string, candidates []string) string {
	lower := strings.ToLower(name)
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(lower, strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist >= 0 && bestDist <= max(2, len(name)/3) {
		return best
	}
	best = ""
	for _, c := range candidates {
		if len(lower) >= 4 && isSubsequence(lower, strings.ToLower(c)) && (best == "" || len(c) < len(best)) {
			best = c
		}
	}
	return best
}

// isSubsequence reports whether a's letters appear in b in order.
func isSubsequence(a, b string) bool {
	i := 0
	for j := 0; i < len(a) && j < len(b); j++ {
		if a[i] == b[j] {
			i++
		}
	}
	return i == len(a)
}

// editDistance is the Levenshtein distance between two strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// NewPredefinedRegistry compiles Kubist's predefined policies into a new
// registry.
func NewPredefinedRegistry(ctx context.Context, c *Compiler) (*Registry, error) {
	compiled, err := c.CompilePredefined(ctx)
	if err != nil {
		return nil, err
	}
	r := NewRegistry()
	for _, p := range compiled {
		if err := r.SetPolicy(p); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// DefaultPolicies names the policy that a kind's chain runs when its
// policies stanza is empty; the mutating webhook writes it into the stanza.
var DefaultPolicies = map[string]string{
	"CanaryRelease": "HealthBasedCanaryRelease",
	"Experiment":    "WelchExperiment",
	"ReleasePlan":   "WavePacing",
}
