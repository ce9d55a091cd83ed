package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// The webhook configurations, generated into config/webhook by
// `make manifests`: every kubist.io kind, and nothing else, is defaulted
// and validated. failurePolicy Fail is safe because no other group is
// matched; sideEffects None lets `kubectl apply --dry-run=server` work.
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-project,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=projects,verbs=create;update,versions=v1alpha1,name=mproject.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-project,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=projects,verbs=create;update;delete,versions=v1alpha1,name=vproject.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-cluster,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=clusters,verbs=create;update,versions=v1alpha1,name=mcluster.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-cluster,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=clusters,verbs=create;update;delete,versions=v1alpha1,name=vcluster.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-virtualcluster,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=virtualclusters,verbs=create;update,versions=v1alpha1,name=mvirtualcluster.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-virtualcluster,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=virtualclusters,verbs=create;update;delete,versions=v1alpha1,name=vvirtualcluster.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-application,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=applications,verbs=create;update,versions=v1alpha1,name=mapplication.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-application,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=applications,verbs=create;update,versions=v1alpha1,name=vapplication.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-destination,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=destinations,verbs=create;update,versions=v1alpha1,name=mdestination.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-destination,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=destinations,verbs=create;update,versions=v1alpha1,name=vdestination.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-route,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=routes,verbs=create;update,versions=v1alpha1,name=mroute.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-route,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=routes,verbs=create;update,versions=v1alpha1,name=vroute.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-canaryrelease,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=canaryreleases,verbs=create;update,versions=v1alpha1,name=mcanaryrelease.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-canaryrelease,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=canaryreleases,verbs=create;update;delete,versions=v1alpha1,name=vcanaryrelease.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-experiment,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=experiments,verbs=create;update,versions=v1alpha1,name=mexperiment.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-experiment,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=experiments,verbs=create;update,versions=v1alpha1,name=vexperiment.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-releaseplan,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=releaseplans,verbs=create;update,versions=v1alpha1,name=mreleaseplan.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-releaseplan,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=releaseplans,verbs=create;update,versions=v1alpha1,name=vreleaseplan.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-policy,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=policies,verbs=create;update,versions=v1alpha1,name=mpolicy.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-policy,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=policies,verbs=create;update,versions=v1alpha1,name=vpolicy.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5

// Setup registers the mutating and validating webhooks of every Kubist
// kind with the manager's webhook server.
func Setup(mgr manager.Manager, a *Admission) error {
	server := mgr.GetWebhookServer()
	for _, kind := range v1alpha1.Kinds {
		mutating, validating, err := Handlers(a, kind)
		if err != nil {
			return err
		}
		server.Register(webhookPath("mutate", kind), mutating)
		server.Register(webhookPath("validate", kind), validating)
	}
	mutating, validating := actionHandlers(a)
	server.Register(webhookPath("mutate", actionKind), mutating)
	server.Register(webhookPath("validate", actionKind), validating)
	return nil
}

// Handlers returns the mutating and validating webhooks of a kind: one of
// the tree's (v1alpha1.Tree) or Policy.
func Handlers(a *Admission, kind string) (mutating, validating *admission.Webhook, err error) {
	newObject := func() v1alpha1.Object { return &v1alpha1.Policy{} }
	if k, ok := v1alpha1.TreeKind(kind); ok {
		newObject = k.New
	} else if kind != "Policy" {
		return nil, nil, fmt.Errorf("no webhooks for kind %q", kind)
	}
	mutating = &admission.Webhook{Handler: &mutator{admission: a, newObject: newObject}}
	validating = &admission.Webhook{Handler: &validator{admission: a, newObject: newObject}}
	return mutating, validating, nil
}

// webhookPath is the path the generated configurations call for a kind,
// e.g. /mutate-kubist-io-v1alpha1-route.
func webhookPath(verb, kind string) string {
	gv := v1alpha1.GroupVersion
	return "/" + verb + "-" + strings.ReplaceAll(gv.Group, ".", "-") + "-" + gv.Version + "-" + strings.ToLower(kind)
}

// decode reads an object sent for admission as the API server encoded it:
// one pass, case-sensitive field names, integers kept as integers.
func decode(raw runtime.RawExtension, into v1alpha1.Object) error {
	if len(raw.Raw) == 0 {
		return errors.New("there is no object to decode")
	}
	return sigsjson.UnmarshalCaseSensitivePreserveInts(raw.Raw, into)
}

// mutator defaults objects. An object that does not decode (a wrongly typed
// field) is let through unchanged: the API server's schema validation, which
// runs next, then refuses it with its own precise message.
type mutator struct {
	admission *Admission
	newObject func() v1alpha1.Object
}

func (m *mutator) Handle(_ context.Context, req admission.Request) admission.Response {
	obj := m.newObject()
	if err := decode(req.Object, obj); err != nil {
		return admission.Allowed("not defaulted: the object does not match its schema")
	}
	hasSpec, err := hasSpec(obj, req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	changes := m.admission.Default(obj)
	patch, err := encodePatch(defaultingPatch(obj, changes, hasSpec))
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	resp := admission.Allowed("defaulted")
	if len(patch) > 0 {
		resp.Patch, resp.PatchType = patch, new(admissionv1.PatchTypeJSONPatch)
	}
	return resp
}

// encodePatch writes a JSON patch, each value encoded once (a patch left
// to the response would encode every value twice, and compact it). The
// operations and paths are defaultingPatch's ASCII constants, which Go's
// quoting writes exactly as JSON does.
func encodePatch(ops []jsonpatch.JsonPatchOperation) ([]byte, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	buf := make([]byte, 0, 512)
	buf = append(buf, '[')
	for i, op := range ops {
		value, err := json.Marshal(op.Value)
		if err != nil {
			return nil, fmt.Errorf("encode the patch of %s: %w", op.Path, err)
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"op":`...)
		buf = strconv.AppendQuote(buf, op.Operation)
		buf = append(buf, `,"path":`...)
		buf = strconv.AppendQuote(buf, op.Path)
		buf = append(buf, `,"value":`...)
		buf = append(buf, value...)
		buf = append(buf, '}')
	}
	return append(buf, ']'), nil
}

// hasSpec says whether the object as sent has a spec. A spec with any field
// set decoded into a non-zero one; only an empty or absent spec needs a look
// at the JSON.
func hasSpec(obj v1alpha1.Object, raw []byte) (bool, error) {
	if !reflect.ValueOf(obj).Elem().FieldByName("Spec").IsZero() {
		return true, nil
	}
	var probe struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return false, err
	}
	return len(probe.Spec) > 0, nil
}

// defaultingPatch is a JSON patch of what Default changed — the stanzas and
// the labels — and nothing else, so fields the user left out stay out and
// the API server's own validation still speaks of them.
func defaultingPatch(obj v1alpha1.Object, changes Changes, hasSpec bool) []jsonpatch.JsonPatchOperation {
	var ops []jsonpatch.JsonPatchOperation
	st := obj.GetStanzas()
	switch {
	case (changes.Executor || changes.Policies) && !hasSpec:
		stanzas := map[string]any{}
		if changes.Executor {
			stanzas["executor"] = st.Executor
		}
		if changes.Policies {
			stanzas["policies"] = st.Policies
		}
		ops = append(ops, jsonpatch.NewOperation("add", "/spec", stanzas))
	default:
		if changes.Executor {
			ops = append(ops, jsonpatch.NewOperation("add", "/spec/executor", st.Executor))
		}
		if changes.Policies {
			ops = append(ops, jsonpatch.NewOperation("add", "/spec/policies", st.Policies))
		}
	}
	if changes.Labels {
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata/labels", obj.GetLabels()))
	}
	return ops
}

// validator validates objects of one kind, and their deletion.
type validator struct {
	admission *Admission
	newObject func() v1alpha1.Object
}

var (
	_ admission.Handler = &validator{}
	_ admission.Handler = &mutator{}
)

func (v *validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	obj := v.newObject()
	var old v1alpha1.Object
	switch req.Operation {
	case admissionv1.Create:
		if err := decode(req.Object, obj); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
	case admissionv1.Update:
		old = v.newObject()
		if err := decode(req.Object, obj); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if err := decode(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
	case admissionv1.Delete:
		// The object being deleted comes as the old object.
		if err := decode(req.OldObject, obj); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		warnings, err := v.admission.ValidateDelete(ctx, obj)
		if err != nil {
			return admission.Denied(err.Error())
		}
		return admission.Allowed("").WithWarnings(warnings...)
	default:
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("operation %s is not validated", req.Operation))
	}
	var errs field.ErrorList
	var warnings []string
	if req.Operation == admissionv1.Update {
		errs, warnings = v.admission.Validate(ctx, old, obj)
	} else {
		errs, warnings = v.admission.Validate(ctx, nil, obj)
	}
	if len(errs) > 0 {
		gk := schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: KindOf(obj)}
		status := apierrors.NewInvalid(gk, obj.GetName(), errs).Status()
		return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Result: &status}}.WithWarnings(warnings...)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}
