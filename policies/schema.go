package policies

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
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
}

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
	return &Schema{Props: props, structural: structural, validator: validator}, nil
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
