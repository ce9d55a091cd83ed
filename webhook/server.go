package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

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
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-canaryrelease,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=canaryreleases,verbs=create;update,versions=v1alpha1,name=vcanaryrelease.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-experiment,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=experiments,verbs=create;update,versions=v1alpha1,name=mexperiment.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-experiment,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=experiments,verbs=create;update,versions=v1alpha1,name=vexperiment.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-policy,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=policies,verbs=create;update,versions=v1alpha1,name=mpolicy.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-policy,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=policies,verbs=create;update,versions=v1alpha1,name=vpolicy.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5

// Setup registers the mutating and validating webhooks of every Kubist
// kind with the manager's webhook server.
func Setup(mgr manager.Manager, a *Admission) error {
	server := mgr.GetWebhookServer()
	for _, kind := range v1alpha1.Kinds {
		mutating, validating, err := Handlers(mgr.GetScheme(), a, kind)
		if err != nil {
			return err
		}
		server.Register(webhookPath("mutate", kind), mutating)
		server.Register(webhookPath("validate", kind), validating)
	}
	return nil
}

// Handlers returns the mutating and validating webhooks of a kind.
func Handlers(s *runtime.Scheme, a *Admission, kind string) (mutating, validating *admission.Webhook, err error) {
	switch kind {
	case "Project":
		mutating, validating = handlers[*v1alpha1.Project](s, a)
	case "Cluster":
		mutating, validating = handlers[*v1alpha1.Cluster](s, a)
	case "VirtualCluster":
		mutating, validating = handlers[*v1alpha1.VirtualCluster](s, a)
	case "Application":
		mutating, validating = handlers[*v1alpha1.Application](s, a)
	case "Destination":
		mutating, validating = handlers[*v1alpha1.Destination](s, a)
	case "Route":
		mutating, validating = handlers[*v1alpha1.Route](s, a)
	case "CanaryRelease":
		mutating, validating = handlers[*v1alpha1.CanaryRelease](s, a)
	case "Experiment":
		mutating, validating = handlers[*v1alpha1.Experiment](s, a)
	case "Policy":
		mutating, validating = handlers[*v1alpha1.Policy](s, a)
	default:
		return nil, nil, fmt.Errorf("no webhooks for kind %q", kind)
	}
	return mutating, validating, nil
}

// handlers builds a kind's webhooks; T must be the kind's pointer type.
func handlers[T v1alpha1.Object](s *runtime.Scheme, a *Admission) (mutating, validating *admission.Webhook) {
	newObject := func() T {
		var zero T
		return reflect.New(reflect.TypeOf(zero).Elem()).Interface().(T)
	}
	mutating = &admission.Webhook{Handler: &mutator[T]{admission: a, decoder: admission.NewDecoder(s), newObject: newObject}}
	validating = admission.WithValidator[T](s, &kindWebhook[T]{admission: a})
	return mutating, validating
}

// webhookPath is the path the generated configurations call for a kind,
// e.g. /mutate-kubist-io-v1alpha1-route.
func webhookPath(verb, kind string) string {
	gv := v1alpha1.GroupVersion
	return "/" + verb + "-" + strings.ReplaceAll(gv.Group, ".", "-") + "-" + gv.Version + "-" + strings.ToLower(kind)
}

// mutator defaults objects. An object that does not decode (a wrongly typed
// field) is let through unchanged: the API server's schema validation, which
// runs next, then refuses it with its own precise message.
type mutator[T v1alpha1.Object] struct {
	admission *Admission
	decoder   admission.Decoder
	newObject func() T
}

func (m *mutator[T]) Handle(_ context.Context, req admission.Request) admission.Response {
	obj := m.newObject()
	if err := m.decoder.Decode(req, obj); err != nil {
		return admission.Allowed("not defaulted: the object does not match its schema")
	}
	before := obj.DeepCopyObject().(T)
	if err := m.admission.Default(obj); err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	var probe struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(req.Object.Raw, &probe); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	return admission.Patched("defaulted", defaultingPatch(before, obj, len(probe.Spec) > 0)...)
}

// defaultingPatch is a JSON patch of what Default changed — the stanzas and
// the labels — and nothing else, so fields the user left out stay out and
// the API server's own validation still speaks of them.
func defaultingPatch(before, after v1alpha1.Object, hasSpec bool) []jsonpatch.JsonPatchOperation {
	var ops []jsonpatch.JsonPatchOperation
	b, a := before.GetStanzas(), after.GetStanzas()
	stanzas := map[string]any{}
	if !equality.Semantic.DeepEqual(b.Executor, a.Executor) {
		stanzas["executor"] = a.Executor
	}
	if !equality.Semantic.DeepEqual(b.Policies, a.Policies) {
		stanzas["policies"] = a.Policies
	}
	switch {
	case len(stanzas) > 0 && !hasSpec:
		ops = append(ops, jsonpatch.NewOperation("add", "/spec", stanzas))
	case len(stanzas) > 0:
		for _, key := range []string{"executor", "policies"} {
			if v, ok := stanzas[key]; ok {
				ops = append(ops, jsonpatch.NewOperation("add", "/spec/"+key, v))
			}
		}
	}
	if !equality.Semantic.DeepEqual(before.GetLabels(), after.GetLabels()) {
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata/labels", after.GetLabels()))
	}
	return ops
}

// kindWebhook adapts Admission to controller-runtime's typed validating webhook.
type kindWebhook[T v1alpha1.Object] struct {
	admission *Admission
}

var (
	_ admission.Validator[*v1alpha1.Route] = &kindWebhook[*v1alpha1.Route]{}
	_ admission.Handler                    = &mutator[*v1alpha1.Route]{}
)

// ValidateCreate validates a new object.
func (h *kindWebhook[T]) ValidateCreate(ctx context.Context, obj T) (admission.Warnings, error) {
	return h.validate(ctx, nil, obj)
}

// ValidateUpdate validates a changed object against its previous version.
func (h *kindWebhook[T]) ValidateUpdate(ctx context.Context, old, obj T) (admission.Warnings, error) {
	return h.validate(ctx, old, obj)
}

// ValidateDelete refuses to delete a parent that still has children.
func (h *kindWebhook[T]) ValidateDelete(ctx context.Context, obj T) (admission.Warnings, error) {
	return nil, h.admission.ValidateDelete(ctx, obj)
}

func (h *kindWebhook[T]) validate(ctx context.Context, old v1alpha1.Object, obj T) (admission.Warnings, error) {
	errs, warnings := h.admission.Validate(ctx, old, obj)
	if len(errs) == 0 {
		return warnings, nil
	}
	gk := schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: KindOf(obj)}
	return warnings, apierrors.NewInvalid(gk, obj.GetName(), errs)
}
