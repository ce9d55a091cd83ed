package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/config"
	"github.com/kubist-io/kubist/internal/manifest"
)

// Finding is one problem (or warning) about one object.
type Finding struct {
	Source, Kind, Name string
	Message            string
	Warning            bool
}

// String renders a finding as `kubist validate` prints it.
func (f Finding) String() string {
	if f.Warning {
		return fmt.Sprintf("%s: %s/%s: Warning: %s", f.Source, f.Kind, f.Name, f.Message)
	}
	return fmt.Sprintf("%s: %s/%s: %s", f.Source, f.Kind, f.Name, f.Message)
}

// kindSchema is what the API server checks a kind against: its CRD's
// structural schema, the OpenAPI validator and the CEL rules.
type kindSchema struct {
	structural *structuralschema.Structural
	validator  validation.SchemaValidator
	cel        *cel.Validator
}

// Offline checks manifests the way the API server with Kubist's webhooks
// would on creation: unknown fields, schema defaults, Kubist's defaulting,
// the CRD schema and CEL rules, then Kubist's validation.
type Offline struct {
	admission *Admission
	kinds     map[string]*kindSchema
	scheme    *runtime.Scheme
}

// NewOffline prepares the schemas of the embedded CRDs.
func NewOffline(a *Admission) (*Offline, error) {
	crds, err := config.KubistCRDs()
	if err != nil {
		return nil, err
	}
	o := &Offline{admission: a, kinds: map[string]*kindSchema{}, scheme: v1alpha1.NewScheme()}
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			if v.Name != v1alpha1.GroupVersion.Version || v.Schema == nil {
				continue
			}
			ks, err := newKindSchema(v.Schema.OpenAPIV3Schema)
			if err != nil {
				return nil, fmt.Errorf("CRD %s: %w", crd.Name, err)
			}
			o.kinds[crd.Spec.Names.Kind] = ks
		}
	}
	return o, nil
}

func newKindSchema(props *apiextensionsv1.JSONSchemaProps) (*kindSchema, error) {
	internal := &apiextensions.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(props, internal, nil); err != nil {
		return nil, err
	}
	structural, err := structuralschema.NewStructural(internal)
	if err != nil {
		return nil, err
	}
	validator, _, err := validation.NewSchemaValidator(internal)
	if err != nil {
		return nil, err
	}
	return &kindSchema{structural: structural, validator: validator, cel: cel.NewValidator(structural, true, celconfig.PerCallLimit)}, nil
}

// Check validates every Kubist object among objects; others are skipped.
// Policy objects are compiled and registered first, so the stanzas that
// name them are checked against them, as in a cluster.
func (o *Offline) Check(ctx context.Context, objects []manifest.Object) []Finding {
	var findings []Finding
	for _, obj := range objects {
		if obj.GetAPIVersion() != v1alpha1.GroupVersion.String() || obj.GetKind() != "Policy" {
			continue
		}
		p := &v1alpha1.Policy{}
		if runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, p) != nil {
			continue
		}
		if compiled, err := o.admission.Compiler.CompilePolicyObject(ctx, p); err == nil {
			_ = o.admission.Registry.SetPolicy(compiled)
		}
	}
	for _, obj := range objects {
		if obj.GetAPIVersion() != v1alpha1.GroupVersion.String() {
			continue
		}
		findings = append(findings, o.checkOne(ctx, obj)...)
	}
	return findings
}

func (o *Offline) checkOne(ctx context.Context, obj manifest.Object) []Finding {
	kind, name := obj.GetKind(), obj.GetName()
	finding := func(msg string, warning bool) Finding {
		return Finding{Source: obj.Source, Kind: kind, Name: name, Message: msg, Warning: warning}
	}
	ks, ok := o.kinds[kind]
	if !ok {
		return []Finding{finding(fmt.Sprintf("kind %s is not served by %s", kind, v1alpha1.GroupVersion), false)}
	}
	u := obj.DeepCopy().Object
	var findings []Finding

	// What the API server does before admission: drop and report unknown
	// fields, fill the schema's defaults.
	unknown := pruning.PruneWithOptions(u, ks.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, path := range unknown {
		findings = append(findings, finding(fmt.Sprintf("unknown field %q", path), true))
	}
	defaulting.Default(u, ks.structural)

	// Kubist's defaulting, when the object decodes (otherwise the schema
	// validation below says why).
	if typed, err := o.decode(kind, u); err == nil {
		changes := o.admission.Default(typed)
		_, hasSpec := u["spec"]
		if err := applyAddPatch(u, defaultingPatch(typed, changes, hasSpec)); err != nil {
			return append(findings, finding(err.Error(), false))
		}
	}

	// The schema and its CEL rules, as the API server checks them.
	errs := validation.ValidateCustomResource(nil, u, ks.validator)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, ks.structural, u)...)
	celErrs, _ := ks.cel.Validate(ctx, nil, ks.structural, u, nil, celconfig.RuntimeCELCostBudget)
	errs = append(errs, celErrs...)
	if len(errs) == 0 && kind == actionKind {
		// A ReleaseAction is no part of the tree: it is checked against
		// the release it names, when there is a cluster to read it from.
		a := &v1alpha1.ReleaseAction{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, a); err != nil {
			return append(findings, finding(err.Error(), false))
		}
		errs = o.admission.ValidateAction(ctx, a)
	} else if len(errs) == 0 {
		typed, err := o.decode(kind, u)
		if err != nil {
			return append(findings, finding(err.Error(), false))
		}
		var warnings []string
		errs, warnings = o.admission.Validate(ctx, nil, typed)
		for _, w := range warnings {
			findings = append(findings, finding(w, true))
		}
	}
	for _, e := range errs {
		findings = append(findings, finding(e.Error(), false))
	}
	return findings
}

func (o *Offline) decode(kind string, u map[string]any) (v1alpha1.Object, error) {
	typed, err := o.scheme.New(v1alpha1.GroupVersion.WithKind(kind))
	if err != nil {
		return nil, err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, typed); err != nil {
		return nil, err
	}
	obj, ok := typed.(v1alpha1.Object)
	if !ok {
		return nil, fmt.Errorf("kind %s has no executor or policies", kind)
	}
	return obj, nil
}

// applyAddPatch applies the "add" operations of a defaulting patch to an
// unstructured object.
func applyAddPatch(u map[string]any, ops []jsonpatch.JsonPatchOperation) error {
	for _, op := range ops {
		data, err := json.Marshal(op.Value)
		if err != nil {
			return err
		}
		var value any
		if err := utiljson.Unmarshal(data, &value); err != nil {
			return err
		}
		path := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		if err := unstructured.SetNestedField(u, value, path...); err != nil {
			return err
		}
	}
	return nil
}
