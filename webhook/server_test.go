package webhook

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// The defaulting patch adds the stanzas under an existing spec, or the spec
// itself when the object has none: a patch into a missing spec would fail
// the API server's request.
func TestMutatorPatchesWhatTheObjectHas(t *testing.T) {
	mutating, _, err := Handlers(newAdmission(t), "Project")
	if err != nil {
		t.Fatal(err)
	}
	for object, want := range map[string]string{
		`{"apiVersion":"kubist.io/v1alpha1","kind":"Project","metadata":{"name":"p"}}`:                                                `[{"op":"add","path":"/spec","value":{"executor":{"name":"ProjectExecutor"}}}]`,
		`{"apiVersion":"kubist.io/v1alpha1","kind":"Project","metadata":{"name":"p"},"spec":{}}`:                                      `[{"op":"add","path":"/spec/executor","value":{"name":"ProjectExecutor"}}]`,
		`{"apiVersion":"kubist.io/v1alpha1","kind":"Project","metadata":{"name":"p"},"spec":{"executor":{"name":"ProjectExecutor"}}}`: `[]`,
	} {
		resp := mutating.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: []byte(object)},
		}})
		if !resp.Allowed {
			t.Fatalf("%s: refused: %v", object, resp.Result)
		}
		got := resp.Patch
		if len(got) == 0 {
			got = []byte("[]")
		} else if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Errorf("%s: patch type %v, want JSONPatch", object, resp.PatchType)
		}
		if !json.Valid(got) {
			t.Errorf("%s: the patch is not JSON: %s", object, got)
		}
		if string(got) != want {
			t.Errorf("%s:\n got %s\nwant %s", object, got, want)
		}
	}
}

// Every kind Setup serves has its webhooks registered with the API
// server: config/webhook/manifests.yaml (generated from this package's
// markers) names a mutating and a validating webhook for its resource.
func TestEveryKindHasItsWebhookConfiguration(t *testing.T) {
	data, err := os.ReadFile("../config/webhook/manifests.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range v1alpha1.Kinds {
		lower := strings.ToLower(kind)
		for _, prefix := range []string{"m", "v"} {
			if name := "name: " + prefix + lower + ".kubist.io"; !strings.Contains(string(data), name) {
				t.Errorf("%s: no webhook %s in config/webhook/manifests.yaml: add its +kubebuilder:webhook markers in server.go", kind, name)
			}
		}
	}
}
