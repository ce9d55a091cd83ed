package webhook

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/release"
	"github.com/kubist-io/kubist/policies"
)

// ReleaseActions are stamped with who asked and when, made children of
// their release, and refused up front when they cannot apply to it now.
// +kubebuilder:webhook:path=/mutate-kubist-io-v1alpha1-releaseaction,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=releaseactions,verbs=create,versions=v1alpha1,name=mreleaseaction.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-kubist-io-v1alpha1-releaseaction,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubist.io,resources=releaseactions,verbs=create,versions=v1alpha1,name=vreleaseaction.kubist.io,admissionReviewVersions=v1,timeoutSeconds=5

// actionKind is the kind of ReleaseAction objects; it is not part of the
// tree (v1alpha1.Kinds), and has webhooks of its own.
const actionKind = "ReleaseAction"

// actionHandlers returns the webhooks of ReleaseActions.
func actionHandlers(a *Admission) (mutating, validating *admission.Webhook) {
	return &admission.Webhook{Handler: &actionMutator{admission: a}},
		&admission.Webhook{Handler: &actionValidator{admission: a}}
}

func decodeAction(raw []byte) (*v1alpha1.ReleaseAction, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("there is no object to decode")
	}
	a := &v1alpha1.ReleaseAction{}
	return a, sigsjson.UnmarshalCaseSensitivePreserveInts(raw, a)
}

// actionMutator records who asked for an action, as the API server
// authenticated them (whatever the request said), and when, and makes the
// release the action's owner, so that the action goes with the release.
type actionMutator struct{ admission *Admission }

func (m *actionMutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	a, err := decodeAction(req.Object.Raw)
	if err != nil {
		return admission.Allowed("not stamped: the object does not match its schema")
	}
	now := metav1.NewMicroTime(time.Now().UTC().Truncate(time.Microsecond))
	ops := []jsonpatch.JsonPatchOperation{
		jsonpatch.NewOperation("add", "/spec/requestedBy", req.UserInfo.Username),
		jsonpatch.NewOperation("add", "/spec/requestedAt", now),
	}
	if target, err := m.admission.actionTarget(ctx, a); err == nil {
		refs := append(slices.Clone(a.OwnerReferences), metav1.OwnerReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: a.Spec.Target.Kind, Name: target.GetName(), UID: target.GetUID(),
		})
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata/ownerReferences", refs))
	}
	patch, err := encodePatch(ops)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	resp := admission.Allowed("stamped")
	resp.Patch, resp.PatchType = patch, new(admissionv1.PatchTypeJSONPatch)
	return resp
}

// actionValidator refuses, on creation, an action that cannot apply to its
// release as the release stands: an unknown release (with the closest
// name), promoting a finished release, approving without a ManualGate, …
type actionValidator struct{ admission *Admission }

func (v *actionValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create {
		// The spec is immutable (a CEL rule); the status is the executor's.
		return admission.Allowed("")
	}
	a, err := decodeAction(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if errs := v.admission.ValidateAction(ctx, a); len(errs) > 0 {
		gk := schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: actionKind}
		status := apierrors.NewInvalid(gk, a.Name, errs).Status()
		return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Result: &status}}
	}
	return admission.Allowed("")
}

// actionTarget reads the release an action names from the cache.
func (a *Admission) actionTarget(ctx context.Context, act *v1alpha1.ReleaseAction) (v1alpha1.Object, error) {
	if a.Reader == nil {
		return nil, fmt.Errorf("no cluster to read")
	}
	var target v1alpha1.Object
	switch act.Spec.Target.Kind {
	case "CanaryRelease":
		target = &v1alpha1.CanaryRelease{}
	case "Experiment":
		target = &v1alpha1.Experiment{}
	case "ReleasePlan":
		target = &v1alpha1.ReleasePlan{}
		return target, a.Reader.Get(ctx, types.NamespacedName{Name: act.Spec.Target.Name}, target)
	default:
		return nil, fmt.Errorf("kind %q cannot be acted on", act.Spec.Target.Kind)
	}
	key := types.NamespacedName{Namespace: act.Namespace, Name: act.Spec.Target.Name}
	return target, a.Reader.Get(ctx, key, target)
}

// ValidateAction checks that an action can apply to its release now. It
// asks the release package, as the release's executor does when it
// applies the action: what is refused here would be refused there.
func (a *Admission) ValidateAction(ctx context.Context, act *v1alpha1.ReleaseAction) field.ErrorList {
	spec := field.NewPath("spec")
	// What no release's state changes is checked without a cluster too.
	if name, refused := release.Applicable(act.Spec.Target.Kind, act.Spec); refused != "" {
		return field.ErrorList{field.Invalid(fieldPath(spec, name), specValue(act.Spec, name), refused)}
	}
	if act.Spec.Target.Kind == "ReleasePlan" && a.Namespace != "" && act.Namespace != a.Namespace {
		return field.ErrorList{field.Invalid(field.NewPath("metadata", "namespace"), act.Namespace, fmt.Sprintf(
			"the actions of a ReleasePlan are created in the manager's namespace, %s (kubist plan does so)", a.Namespace))}
	}
	if a.Reader == nil {
		return nil
	}
	target, err := a.actionTarget(ctx, act)
	if apierrors.IsNotFound(err) {
		return field.ErrorList{field.Invalid(spec.Child("target", "name"), act.Spec.Target.Name, a.unknownRelease(ctx, act))}
	}
	if err != nil {
		return field.ErrorList{field.InternalError(spec.Child("target"), err)}
	}
	res := release.Decide(act, target, time.Now())
	if res.Refused != "" {
		return field.ErrorList{field.Invalid(spec.Child("action"), string(act.Spec.Action),
			fmt.Sprintf("%s %s: %s", act.Spec.Target.Kind, act.Spec.Target.Name, res.Refused))}
	}
	return nil
}

// specValue is the value of one of an action's fields, for an error.
func specValue(spec v1alpha1.ReleaseActionSpec, name string) any {
	switch name {
	case "target.kind":
		return spec.Target.Kind
	case "full":
		return spec.Full
	case "weight":
		return *spec.Weight
	case "winner":
		return spec.Winner
	}
	return string(spec.Action)
}

// unknownRelease says that a release does not exist, with the closest of
// the namespace's releases of that kind.
func (a *Admission) unknownRelease(ctx context.Context, act *v1alpha1.ReleaseAction) string {
	var list client.ObjectList = &v1alpha1.CanaryReleaseList{}
	if act.Spec.Target.Kind == "Experiment" {
		list = &v1alpha1.ExperimentList{}
	}
	if act.Spec.Target.Kind == "ReleasePlan" {
		list = &v1alpha1.ReleasePlanList{}
	}
	msg := fmt.Sprintf("no %s named %s in namespace %s", act.Spec.Target.Kind, act.Spec.Target.Name, act.Namespace)
	if act.Spec.Target.Kind == "ReleasePlan" {
		msg = "no ReleasePlan named " + act.Spec.Target.Name
	}
	opts := []client.ListOption{client.UnsafeDisableDeepCopy}
	if act.Spec.Target.Kind != "ReleasePlan" {
		opts = append(opts, client.InNamespace(act.Namespace))
	}
	if err := a.Reader.List(ctx, list, opts...); err != nil {
		return msg
	}
	var names []string
	switch l := list.(type) {
	case *v1alpha1.CanaryReleaseList:
		for _, c := range l.Items {
			names = append(names, c.Name)
		}
	case *v1alpha1.ExperimentList:
		for _, e := range l.Items {
			names = append(names, e.Name)
		}
	case *v1alpha1.ReleasePlanList:
		for _, e := range l.Items {
			names = append(names, e.Name)
		}
	}
	if len(names) == 0 {
		return msg + "; it has none"
	}
	slices.Sort(names)
	msg += "; it has " + strings.Join(names, ", ")
	if closest := policies.Closest(act.Spec.Target.Name, names); closest != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", closest)
	}
	return msg
}
