package webhook

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/catalog"
	"github.com/kubist-io/kubist/internal/ancestry"
	"github.com/kubist-io/kubist/internal/release"
	"github.com/kubist-io/kubist/policies"
)

// Admission defaults and validates Kubist objects against the shared
// registry of executors and policies.
type Admission struct {
	Registry  *policies.Registry
	Compiler  *policies.Compiler
	Executors *catalog.Catalog
	// Reader looks up parents, siblings and children (the manager's cache);
	// nil skips those checks, as offline validation without a cluster does.
	Reader client.Reader
	// Target has the cluster of a Route or a Destination judge what it
	// would make there (a server-side dry run), within TargetTimeout
	// (DefaultTargetTimeout when zero); nil skips it, as offline.
	Target        TargetChecker
	TargetTimeout time.Duration
	// Namespace is the manager's, where the ReleaseActions of a
	// ReleasePlan (cluster-scoped) are created.
	Namespace string
}

// KindOf names the kind of a Kubist object from its Go type, which is
// reliable even when TypeMeta is empty.
func KindOf(obj v1alpha1.Object) string { return v1alpha1.KindOf(obj) }

// Changes says which parts of an object Default changed.
type Changes struct {
	Executor, Policies, Labels bool
}

// Default fills what a user may leave out: the kind's default executor,
// the default chain of a CanaryRelease, parameter defaults from the
// schemas, and the parent labels used for selection. Stanzas that do not
// validate are left as they are, so validation reports the user's input.
func (a *Admission) Default(obj v1alpha1.Object) Changes {
	var changes Changes
	kind := KindOf(obj)
	st := obj.GetStanzas()
	if st.Executor == nil {
		if name := a.Executors.DefaultFor(kind); name != "" {
			st.Executor = &v1alpha1.ExecutorRef{Name: name}
			changes.Executor = true
		}
	}
	if st.Executor != nil {
		if e, ok := a.Executors.Executor(st.Executor.Name); ok && e.AppliesTo(kind) {
			if params, changed := defaulted(e.Schema, st.Executor.Parameters); changed {
				st.Executor.Parameters = params
				changes.Executor = true
			}
		}
	}
	if name, ok := policies.DefaultPolicies[kind]; ok && len(st.Policies) == 0 {
		st.Policies = []v1alpha1.PolicyRef{{Name: name}}
		changes.Policies = true
	}
	for i := range st.Policies {
		if p, ok := a.Registry.Policy(st.Policies[i].Name); ok && p.AppliesTo(kind) {
			if params, changed := defaulted(p.Schema, st.Policies[i].Parameters); changed {
				st.Policies[i].Parameters = params
				changes.Policies = true
			}
		}
	}
	switch o := obj.(type) {
	case *v1alpha1.Cluster:
		changes.Labels = setLabel(o, v1alpha1.LabelProject, o.Spec.Project)
	case *v1alpha1.VirtualCluster:
		changes.Labels = setLabel(o, v1alpha1.LabelCluster, o.Spec.Cluster)
	}
	return changes
}

// defaulted is a stanza's parameters with the schema's defaults filled in,
// and whether that changed them. Parameters that do not validate stay as
// they are, for validation to report the user's input. The defaulted set
// is the schema's shared one: admission only encodes and reads it.
func defaulted(s *policies.Schema, params v1alpha1.Parameters) (v1alpha1.Parameters, bool) {
	encoded, ok := s.Defaulted(params)
	if !ok || sameParameters(encoded, params) {
		return params, false
	}
	return nilIfEmpty(encoded), true
}

// sameParameters compares two parameter sets as written.
func sameParameters(a, b v1alpha1.Parameters) bool {
	return maps.EqualFunc(a, b, func(x, y apiextensionsv1.JSON) bool { return bytes.Equal(x.Raw, y.Raw) })
}

// Validate checks an object on creation (old is nil) or update. Every
// problem is reported at once, each with its field path; warnings are for
// things that are allowed but probably not meant.
func (a *Admission) Validate(ctx context.Context, old, obj v1alpha1.Object) (field.ErrorList, []string) {
	kind := KindOf(obj)
	spec := field.NewPath("spec")
	errs, warnings := a.validateStanzas(kind, obj.GetStanzas(), spec)

	switch o := obj.(type) {
	case *v1alpha1.Route:
		errs = append(errs, validateRouteForIstio(o, spec)...)
		if t := o.Spec.Release; t != nil {
			terrs, twarnings := a.validateTemplate(o, t, spec.Child("release"))
			errs, warnings = append(errs, terrs...), append(warnings, twarnings...)
		}
	case *v1alpha1.Policy:
		if _, err := a.Compiler.CompilePolicyObject(ctx, o); err != nil {
			errs = append(errs, field.Invalid(spec.Child("rego"), "(module)", err.Error()))
		}
	case *v1alpha1.Project:
		errs = append(errs, a.validateReleasePolicies(o.Spec.ReleasePolicies, spec.Child("releasePolicies"))...)
	case *v1alpha1.Cluster:
		errs = append(errs, a.validateReleasePolicies(o.Spec.ReleasePolicies, spec.Child("releasePolicies"))...)
	case *v1alpha1.VirtualCluster:
		errs = append(errs, a.validateReleasePolicies(o.Spec.ReleasePolicies, spec.Child("releasePolicies"))...)
	case *v1alpha1.ReleasePlan:
		errs = append(errs, release.Selectors(&o.Spec)...)
		if o.Spec.Release != nil {
			rerrs, rwarnings := a.validateStanzas("CanaryRelease", &v1alpha1.Stanzas{Executor: o.Spec.Release.Executor, Policies: o.Spec.Release.Policies}, spec.Child("release"))
			errs, warnings = append(errs, rerrs...), append(warnings, rwarnings...)
		}
		if len(errs) == 0 && a.Reader != nil {
			perrs, pwarnings := a.planOverlaps(ctx, o)
			errs, warnings = append(errs, perrs...), append(warnings, pwarnings...)
		}
	}
	switch obj.(type) {
	case *v1alpha1.CanaryRelease, *v1alpha1.Experiment, *v1alpha1.ReleasePlan:
		if a.Reader != nil {
			// What the levels above add must resolve too; each error
			// names the level (Project[NAME].spec.releasePolicies[i]).
			levels := ancestry.PolicyLevels(ancestry.For(ctx, a.Reader, obj))
			_, _, lerrs := a.Registry.EffectiveChain(kind, nil, levels)
			errs = append(errs, lerrs...)
		}
	}
	if c, ok := obj.(*v1alpha1.CanaryRelease); ok && old == nil && a.Reader != nil {
		errs = append(errs, a.plannedRoute(ctx, c)...)
	}
	warnings = append(warnings, a.referenceWarnings(ctx, obj)...)
	if len(errs) == 0 && a.Target != nil && specChanged(old, obj) {
		switch obj.(type) {
		case *v1alpha1.Route, *v1alpha1.Destination:
			terrs, twarnings := a.checkOnTarget(ctx, obj, spec)
			errs, warnings = append(errs, terrs...), append(warnings, twarnings...)
		}
	}
	return errs, warnings
}

// specChanged says whether an object is new or its spec changed: a
// write of its metadata alone (a finalizer, a label) is not checked on
// its cluster again.
func specChanged(old, obj v1alpha1.Object) bool {
	if old == nil {
		return true
	}
	return !equality.Semantic.DeepEqual(reflect.ValueOf(old).Elem().FieldByName("Spec").Interface(),
		reflect.ValueOf(obj).Elem().FieldByName("Spec").Interface())
}

// releaseKinds are the kinds a level's releasePolicies apply to.
var releaseKinds = []string{"CanaryRelease", "Experiment", "ReleasePlan"}

// validateReleasePolicies checks the policies a Project, Cluster or
// VirtualCluster adds to the releases below it: each must exist and
// apply to a kind of release, with parameters its schema takes.
func (a *Admission) validateReleasePolicies(refs []v1alpha1.PolicyRef, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ref := range refs {
		kind := releaseKinds[0]
		if p, ok := a.Registry.Policy(ref.Name); ok {
			if k := slices.IndexFunc(releaseKinds, p.AppliesTo); k >= 0 {
				kind = releaseKinds[k]
			} else {
				errs = append(errs, field.Invalid(path.Index(i).Child("name"), ref.Name, fmt.Sprintf(
					"policy %s applies to %s, not to releases; releasePolicies take the policies of CanaryReleases, Experiments and ReleasePlans", ref.Name, strings.Join(p.Kinds, ", "))))
				continue
			}
		}
		_, serrs := a.Registry.Step(kind, ref, path.Index(i))
		errs = append(errs, serrs...)
	}
	return errs
}

// validateStanzas checks a kind's executor parameters and policy chain,
// at path, and warns of deprecated forms and of policies out of order.
func (a *Admission) validateStanzas(kind string, st *v1alpha1.Stanzas, path *field.Path) (field.ErrorList, []string) {
	var errs field.ErrorList
	var warnings []string
	if st.Executor != nil {
		_, eerrs := a.Executors.Parameters(kind, st.Executor, path.Child("executor"))
		errs = append(errs, eerrs...)
		if e, ok := a.Executors.Executor(st.Executor.Name); ok && len(eerrs) == 0 {
			warnings = append(warnings, e.Schema.DeprecatedForms(st.Executor.Parameters, path.Child("executor", "parameters"))...)
		}
	}
	resolved, params, perrs := a.Registry.ResolvePolicies(kind, st.Policies, path.Child("policies"))
	errs = append(errs, perrs...)
	for i, p := range resolved {
		if p != nil {
			warnings = append(warnings, p.Schema.DeprecatedForms(st.Policies[i].Parameters, path.Child("policies").Index(i).Child("parameters"))...)
		}
	}
	return errs, append(warnings, orderWarnings(resolved, params, path.Child("policies"))...)
}

// validateTemplate checks a Route's release template as the CanaryRelease
// it makes will be checked (its executor and policies), and that it names
// a rule of the Route that sends its Destination one subset.
func (a *Admission) validateTemplate(route *v1alpha1.Route, t *v1alpha1.ReleaseTemplate, path *field.Path) (field.ErrorList, []string) {
	errs, warnings := a.validateStanzas("CanaryRelease", &v1alpha1.Stanzas{Executor: t.Executor, Policies: t.Policies}, path)
	found := false
	for _, rule := range route.Spec.HTTP {
		if t.HTTPRoute != "" && rule.Name != t.HTTPRoute {
			continue
		}
		for _, d := range rule.Route {
			found = found || d.Destination == t.Destination
		}
	}
	switch {
	case !found && t.HTTPRoute != "":
		errs = append(errs, field.Invalid(path.Child("httpRoute"), t.HTTPRoute,
			fmt.Sprintf("no rule of this name routes to Destination %s; name a rule of spec.http that does", t.Destination)))
	case !found:
		errs = append(errs, field.Invalid(path.Child("destination"), t.Destination,
			"no rule of spec.http routes to this Destination: the releases would shift nothing; name one the rules route to"))
	}
	return errs, warnings
}

// orderWarnings warns about policies placed where they cannot do what
// they are for: a gate, or a policy that acts on the steps before it
// (custom.afterSteps), with no step policy before it. A WebhookGate that
// rolls back (when: rollback) acts wherever it sits.
func orderWarnings(resolved []*policies.Policy, params []map[string]any, path *field.Path) []string {
	var warnings []string
	for i, p := range resolved {
		switch {
		case p == nil:
			continue
		case p.Steps():
			return warnings
		case p.Webhook && params[i]["when"] == "rollback":
		case p.Gate:
			warnings = append(warnings, fmt.Sprintf(
				"%s: the gate %s comes before any step policy: a gate holds only the steps of the policies before it, so here it holds nothing (the policies after it step without it); put it after the step policy",
				path.Index(i), p.Name))
		default:
			warnings = append(warnings, fmt.Sprintf("%s: %s comes before any step policy: %s; put it after the step policy",
				path.Index(i), p.Name, p.AfterSteps))
		}
	}
	return warnings
}

// setLabel sets a label and says whether that changed it.
func setLabel(obj v1alpha1.Object, key, value string) bool {
	labels := obj.GetLabels()
	if value == "" || labels[key] == value {
		return false
	}
	if labels == nil {
		labels = map[string]string{}
	}
	labels[key] = value
	obj.SetLabels(labels)
	return true
}

func nilIfEmpty(p v1alpha1.Parameters) v1alpha1.Parameters {
	if len(p) == 0 {
		return nil
	}
	return p
}
