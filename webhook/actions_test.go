package webhook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/scheme"
)

// actionAdmission reads one paused canary with a ManualGate, and one
// experiment, from a fake cache.
func actionAdmission(t *testing.T) *Admission {
	a := newAdmission(t)
	canary := &v1alpha1.CanaryRelease{
		ObjectMeta: metav1.ObjectMeta{Name: "web-v2", Namespace: "ops", UID: "uid-web-v2"},
		Spec: v1alpha1.CanaryReleaseSpec{Route: "web", Destination: "web", Subset: "v2",
			Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{{Name: "TimedCanaryRelease"}, {Name: "ManualGate"}}}},
		Status: v1alpha1.CanaryReleaseStatus{Phase: v1alpha1.CanaryPaused, PausedPhase: v1alpha1.CanaryProgressing, Baseline: "v1",
			Weights: map[string]int32{"v1": 70, "v2": 30}},
	}
	a.Reader = fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(canary).Build()
	return a
}

func actionRequest(user, spec string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create,
		UserInfo:  authenticationv1.UserInfo{Username: user},
		Object: runtime.RawExtension{Raw: []byte(`{"apiVersion":"kubist.io/v1alpha1","kind":"ReleaseAction",` +
			`"metadata":{"generateName":"web-v2-","namespace":"ops"},"spec":` + spec + `}`)},
	}}
}

// The mutating webhook writes the user the API server authenticated over
// whatever the request claimed, and makes the release the owner.
func TestActionMutatorStampsTheAuthenticatedUser(t *testing.T) {
	mutating, _ := actionHandlers(actionAdmission(t))
	resp := mutating.Handle(context.Background(), actionRequest("alice",
		`{"target":{"kind":"CanaryRelease","name":"web-v2"},"action":"Resume","requestedBy":"mallory"}`))
	if !resp.Allowed {
		t.Fatalf("refused: %v", resp.Result)
	}
	var ops []struct {
		Op, Path string
		Value    json.RawMessage
	}
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, op := range ops {
		got[op.Path] = string(op.Value)
	}
	if got["/spec/requestedBy"] != `"alice"` {
		t.Errorf("requestedBy %s, want alice", got["/spec/requestedBy"])
	}
	if got["/spec/requestedAt"] == "" {
		t.Error("no requestedAt")
	}
	if !strings.Contains(got["/metadata/ownerReferences"], `"uid":"uid-web-v2"`) {
		t.Errorf("ownerReferences %s", got["/metadata/ownerReferences"])
	}
}

func TestActionValidatorRefusesWhatCannotApply(t *testing.T) {
	_, validating := actionHandlers(actionAdmission(t))
	for spec, want := range map[string]string{
		`{"target":{"kind":"CanaryRelease","name":"web-v2"},"action":"Resume"}`:              "",
		`{"target":{"kind":"CanaryRelease","name":"web-v2"},"action":"Approve","weight":50}`: "",
		`{"target":{"kind":"CanaryRelease","name":"web-v2"},"action":"Promote","full":true}`: "",
		`{"target":{"kind":"CanaryRelease","name":"web-v2"},"action":"Promote"}`:             `spec.action: Invalid value: "Promote": CanaryRelease web-v2: the release is Paused: resume it first, or promote --full`,
		`{"target":{"kind":"CanaryRelease","name":"web-v2"},"action":"Retry"}`:               "only a RolledBack or Aborted release can be retried",
		`{"target":{"kind":"CanaryRelease","name":"web-v3"},"action":"Abort"}`:               `spec.target.name: Invalid value: "web-v3": no CanaryRelease named web-v3 in namespace ops; it has web-v2 (did you mean web-v2?)`,
		`{"target":{"kind":"Experiment","name":"ab"},"action":"Conclude","winner":"v2"}`:     "no Experiment named ab in namespace ops; it has none",
	} {
		resp := validating.Handle(context.Background(), actionRequest("alice", spec))
		switch {
		case want == "" && !resp.Allowed:
			t.Errorf("%s: refused: %s", spec, resp.Result.Message)
		case want != "" && resp.Allowed:
			t.Errorf("%s: allowed, want %q", spec, want)
		case want != "" && !strings.Contains(resp.Result.Message, want):
			t.Errorf("%s:\n got %s\nwant %s", spec, resp.Result.Message, want)
		}
	}
}
