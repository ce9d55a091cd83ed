package policies

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Schema checks and defaults the parameters of an executor or a policy
// against the OpenAPI v3 schema it declares. It uses the API server's own
// structural-schema machinery, so errors read like the API server's, with
// field paths.
type Schema struct {
	// Props is the schema as declared, for documentation.
	Props      apiextensionsv1.JSONSchemaProps
	structural *structuralschema.Structural
	validator  validation.SchemaValidator
	// defaults are the top-level parameters' defaults as JSON.
	defaults map[string][]byte
	// renamed maps a parameter's old name to its name now (METADATA
	// custom.renamed): the old name is still read, with a warning.
	renamed map[string]string

	// resolved remembers the outcome of Resolve for parameter sets seen
	// before: most resources share a handful of them, and admission and
	// every run of a resource's executor resolve them again.
	mu       sync.Mutex
	resolved map[string]resolvedParameters
}

// maxResolved bounds the parameter sets a Schema remembers; when it is
// full it starts again empty.
const maxResolved = 1024

// NewSchema compiles an OpenAPI v3 schema of parameters. It must be a
// structural schema of type object, as a CRD's would be.
func NewSchema(props apiextensionsv1.JSONSchemaProps) (*Schema, error) {
	if props.Type == "" {
		props.Type = "object"
	}
	if props.Type != "object" {
		return nil, fmt.Errorf("parameters schema: type must be object, not %q", props.Type)
	}
	internal := &apiextensions.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(&props, internal, nil); err != nil {
		return nil, fmt.Errorf("parameters schema: %w", err)
	}
	structural, err := structuralschema.NewStructural(internal)
	if err != nil {
		return nil, fmt.Errorf("parameters schema: %w", err)
	}
	if errs := structuralschema.ValidateStructural(field.NewPath("parameters"), structural); len(errs) > 0 {
		return nil, fmt.Errorf("parameters schema is not structural: %w", errs.ToAggregate())
	}
	validator, _, err := validation.NewSchemaValidator(internal)
	if err != nil {
		return nil, fmt.Errorf("parameters schema: %w", err)
	}
	defaults := map[string][]byte{}
	for name, prop := range structural.Properties {
		if prop.Default.Object != nil {
			if defaults[name], err = utiljson.Marshal(prop.Default.Object); err != nil {
				return nil, fmt.Errorf("parameters schema: default of %s: %w", name, err)
			}
		}
	}
	return &Schema{Props: props, structural: structural, validator: validator, defaults: defaults}, nil
}

// SchemaFromValue builds a Schema from a decoded JSON or YAML value, such
// as the `parameters` of a METADATA block.
func SchemaFromValue(v any) (*Schema, error) {
	props := apiextensionsv1.JSONSchemaProps{Type: "object"}
	if v != nil {
		data, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("parameters schema: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&props); err != nil {
			return nil, fmt.Errorf("parameters schema: %w", err)
		}
	}
	return NewSchema(props)
}

// setRenamed declares parameters' old names (old → now): each name now
// must be declared, and no old name may be.
func (s *Schema) setRenamed(renamed map[string]string) error {
	for old, now := range renamed {
		if _, ok := s.structural.Properties[now]; !ok {
			return fmt.Errorf("%s: %s is not a declared parameter", old, now)
		}
		if _, ok := s.structural.Properties[old]; ok {
			return fmt.Errorf("%s is declared: an old name cannot be a parameter too", old)
		}
	}
	s.renamed = renamed
	return nil
}

// Resolve decodes a stanza's parameters, fills defaults and checks them
// against the schema (see Apply). The result may be shared with other
// callers: read it, never change it.
func (s *Schema) Resolve(raw v1alpha1.Parameters, path *field.Path) (map[string]any, field.ErrorList) {
	r, errs := s.resolve(raw, path)
	if len(errs) > 0 {
		return nil, errs
	}
	return r.params, nil
}

// Defaulted returns a stanza's parameters with the defaults filled in,
// encoded to be written back into the stanza; false when they do not
// validate (validation reports why). The result is shared by every caller
// with the same parameters: read it, never change it.
func (s *Schema) Defaulted(raw v1alpha1.Parameters) (v1alpha1.Parameters, bool) {
	r, errs := s.resolve(raw, nil)
	return r.encoded, len(errs) == 0
}

// resolvedParameters are a parameter set checked and defaulted, decoded
// and encoded.
type resolvedParameters struct {
	params  map[string]any
	encoded v1alpha1.Parameters
}

func (s *Schema) resolve(raw v1alpha1.Parameters, path *field.Path) (resolvedParameters, field.ErrorList) {
	key := parametersKey(raw)
	s.mu.Lock()
	cached, ok := s.resolved[key]
	s.mu.Unlock()
	if ok {
		return cached, nil
	}
	params, errs := DecodeParameters(raw, path)
	if len(errs) == 0 {
		errs = s.Apply(params, path)
	}
	if len(errs) > 0 {
		// Errors name the stanza's path, so they are not remembered.
		return resolvedParameters{}, errs
	}
	encoded, err := EncodeParameters(params)
	if err != nil {
		return resolvedParameters{}, field.ErrorList{field.InternalError(path, err)}
	}
	// Defaulting keeps the name a stanza used: an object in Git stays as
	// it is written (validation warns about the old name).
	for old, now := range s.renamed {
		if _, ok := raw[old]; ok {
			encoded[old] = encoded[now]
			delete(encoded, now)
		}
	}
	r := resolvedParameters{params: params, encoded: encoded}
	s.mu.Lock()
	if s.resolved == nil || len(s.resolved) >= maxResolved {
		s.resolved = map[string]resolvedParameters{}
	}
	s.resolved[key] = r
	s.mu.Unlock()
	return r, nil
}

// DeprecatedForms finds parameters set to their default written another
// way, such as a period of 30000ms or 0.5m where the default is 30s. They
// work, but the canonical form is what defaulting writes and what
// documentation and diffs show, so each one gets a warning naming it.
func (s *Schema) DeprecatedForms(raw v1alpha1.Parameters, path *field.Path) []string {
	var warnings []string
	for old, now := range s.renamed {
		if _, ok := raw[old]; ok {
			warnings = append(warnings, fmt.Sprintf("%s: %s is the old name of %s, still read but deprecated: write %s", path.Child(old), old, now, now)+
				yamlTrap(old))
		}
	}
	for name := range raw {
		canonical, ok := s.defaults[name]
		if !ok || bytes.Equal(raw[name].Raw, canonical) {
			continue
		}
		var value any
		if err := utiljson.Unmarshal(raw[name].Raw, &value); err != nil {
			continue
		}
		if sameValue(value, s.structural.Properties[name].Default.Object) {
			warnings = append(warnings, fmt.Sprintf("%s: %s is the default %s in a deprecated form; write %s or leave the parameter out",
				path.Child(name), raw[name].Raw, canonical, canonical))
		}
	}
	slices.Sort(warnings)
	return warnings
}

// yamlTrap says why a parameter was renamed when its old name is a word
// YAML 1.1 reads as a boolean.
func yamlTrap(name string) string {
	for b, words := range yamlBooleans {
		if slices.Contains(words, name) {
			return fmt.Sprintf(" (YAML 1.1 reads a bare %s: as %s:, so it works only quoted)", name, b)
		}
	}
	return ""
}

// sameValue says whether two parameter values mean the same: durations
// of equal length, or equal numbers.
func sameValue(a, b any) bool {
	if x, ok := a.(string); ok {
		y, ok := b.(string)
		if !ok {
			return false
		}
		dx, errx := time.ParseDuration(x)
		dy, erry := time.ParseDuration(y)
		return errx == nil && erry == nil && dx == dy
	}
	x, okx := number(a)
	y, oky := number(b)
	return okx && oky && x == y
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// parametersKey is the exact text of a parameter set, keys in order.
func parametersKey(raw v1alpha1.Parameters) string {
	if len(raw) == 0 {
		return ""
	}
	keys := make([]string, 0, 8)
	size := 0
	for k, v := range raw {
		keys = append(keys, k)
		size += len(k) + len(v.Raw) + 2
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(size)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.Write(raw[k].Raw)
		b.WriteByte(0)
	}
	return b.String()
}

// Apply fills defaults into params and checks them against the schema,
// reporting every problem under path. Parameters the schema does not
// declare are errors, not silently dropped. params is changed in place
// (defaults filled, unknown fields pruned), so pass a copy and use it only
// when there are no errors; numbers must be decoded as the API server does
// (int64 for integers), as k8s.io/apimachinery/pkg/util/json does.
func (s *Schema) Apply(params map[string]any, path *field.Path) field.ErrorList {
	errs := s.rename(params, path)
	// The values of the keys YAML made of bare words, for the errors.
	booleans := map[string]any{"true": params["true"], "false": params["false"]}
	unknown := pruning.PruneWithOptions(params, s.structural, false, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, p := range unknown {
		if s.insideScalar(p) {
			// Fields inside a value of the wrong type (an object where a
			// string belongs): the type error says it once.
			continue
		}
		errs = append(errs, field.Invalid(childPath(path, p), unknownValue(booleans, p), s.unknownDetail(p)))
	}
	defaulting.Default(params, s.structural)
	errs = append(errs, readable(validation.ValidateCustomResource(path, params, s.validator))...)
	return errs
}

// rename moves parameters set under an old name (METADATA custom.renamed)
// to their name now; setting both is an error.
func (s *Schema) rename(params map[string]any, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for old, now := range s.renamed {
		v, ok := params[old]
		if !ok {
			continue
		}
		if _, both := params[now]; both {
			errs = append(errs, field.Invalid(path.Child(old), v,
				fmt.Sprintf("%s is the old name of %s, and both are set: keep %s only", old, now, now)))
			delete(params, old)
			continue
		}
		params[now] = v
		delete(params, old)
	}
	return errs
}

// insideScalar says whether an unknown field is inside a parameter that
// is not an object (secretRef: {name: x} where a string belongs): the
// validator reports that parameter's type.
func (s *Schema) insideScalar(dotted string) bool {
	top, _, nested := strings.Cut(dotted, ".")
	prop, declared := s.structural.Properties[top]
	return nested && declared && prop.Type != "object"
}

// readable words the validator's errors for people: without the field's
// name or the value repeated ("step in body should be ...", "must be of
// type integer: \"number\""), and without the second
// error it reports for a number of the wrong type ("Checked value must be
// of type integer (default format) in percent") beside the first.
func readable(errs field.ErrorList) field.ErrorList {
	out := make(field.ErrorList, 0, len(errs))
	for _, e := range errs {
		if strings.HasPrefix(e.Detail, "Checked value must be of type ") {
			name := e.Detail[strings.LastIndex(e.Detail, " in ")+len(" in "):]
			if slices.ContainsFunc(errs, func(o *field.Error) bool { return o.Field == e.Field+"."+name && o != e }) {
				continue
			}
		}
		e.Detail = strings.TrimPrefix(e.Detail, lastSegment(e.Field)+" in body ")
		// "must be of type integer: \"number\"" repeats the value shown.
		e.Detail = strings.TrimSuffix(e.Detail, fmt.Sprintf(": %q", e.BadValue))
		out = append(out, e)
	}
	return out
}

// yamlBooleans are the words YAML 1.1 (which kubectl and sigs.k8s.io/yaml
// speak) reads as booleans when they stand bare, as a key too.
var yamlBooleans = map[string][]string{
	"true":  {"on", "yes", "y"},
	"false": {"off", "no", "n"},
}

// unknownValue is what an error shows of an unknown parameter's value:
// the value of a key true or false when it is a string, else "(unknown)".
func unknownValue(booleans map[string]any, dotted string) any {
	if v, ok := booleans[dotted].(string); ok {
		return v
	}
	return "(unknown)"
}

// unknownDetail says why a parameter is unknown and what is declared; for
// a key true or false, which word YAML turned into it.
func (s *Schema) unknownDetail(dotted string) string {
	words, boolean := yamlBooleans[dotted]
	if !boolean {
		return "unknown parameter; " + s.declaredNames(dotted)
	}
	for _, w := range words {
		if now, ok := s.renamed[w]; ok {
			return fmt.Sprintf("YAML 1.1 reads the bare key %s as %s: this parameter is now called %s; write %s: instead of %s:", w, dotted, now, now, w)
		}
	}
	return fmt.Sprintf("YAML 1.1 reads the bare keys %s as %s: quote the key (\"%s\": ...); %s",
		strings.Join(words, ", "), dotted, words[0], s.declaredNames(dotted))
}

// lastSegment is the last name of a field path such as a.b[0].c.
func lastSegment(path string) string {
	return path[strings.LastIndexAny(path, ".]")+1:]
}

// declaredNames says which parameters exist beside an unknown one.
func (s *Schema) declaredNames(unknownPath string) string {
	props := s.structural.Properties
	if i := strings.LastIndex(unknownPath, "."); i >= 0 {
		// Nested: the parent's fields.
		if parent, ok := props[strings.SplitN(unknownPath, ".", 2)[0]]; ok {
			props = parent.Properties
		}
	}
	if len(props) == 0 {
		return "this schema declares no parameters"
	}
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	sort.Strings(names)
	return "declared parameters: " + strings.Join(names, ", ")
}

// childPath appends a dotted unknown-field path to path.
func childPath(path *field.Path, dotted string) *field.Path {
	for _, part := range strings.Split(dotted, ".") {
		path = path.Child(part)
	}
	return path
}
