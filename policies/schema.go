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
	var errs field.ErrorList
	unknown := pruning.PruneWithOptions(params, s.structural, false, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, p := range unknown {
		errs = append(errs, field.Invalid(childPath(path, p), "(unknown)",
			"unknown parameter; "+s.declaredNames(p)))
	}
	defaulting.Default(params, s.structural)
	for _, e := range validation.ValidateCustomResource(path, params, s.validator) {
		// The validator repeats the field's name ("step in body should be
		// ..."); the path already says it.
		e.Detail = strings.TrimPrefix(e.Detail, lastSegment(e.Field)+" in body ")
		errs = append(errs, e)
	}
	return errs
}

// lastSegment is the last name of a field path such as a.b[0].c.
func lastSegment(path string) string {
	return path[strings.LastIndexAny(path, ".]")+1:]
}

// declaredNames says which parameters exist beside an unknown one.
func (s *Schema) declaredNames(unknownPath string) string {
	props := s.structural.Properties
	if i := strings.LastIndex(unknownPath, "."); i >= 0 {
		// Nested: name the parent's fields only when it is a plain object.
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
