package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/config"
	"github.com/kubist-io/kubist/internal/scheme"
)

// FuzzAdmissionReview sends arbitrary objects (and, for an update, old
// objects) of every kind through both webhooks as the API server does: an
// AdmissionReview over HTTP, the mutating webhook's patch applied, then the
// validating webhook. Whatever the bytes, each webhook answers 200 with a
// review for the same request, never a 5xx (a recovered panic is one), a
// refusal says why, and a patch applies.
//
// The seed corpus (testdata/fuzz/FuzzAdmissionReview) holds every sample
// and every manifest of test/testdata/admission/invalid; `go test` runs it,
// `make fuzz` explores from it.
func FuzzAdmissionReview(f *testing.F) {
	a := newAdmission(f)
	a.Reader = sampleReader(f)
	type pair struct{ mutating, validating http.Handler }
	webhooks := make([]pair, len(v1alpha1.Kinds))
	for i, kind := range v1alpha1.Kinds {
		m, v, err := Handlers(a, kind)
		if err != nil {
			f.Fatal(err)
		}
		webhooks[i] = pair{m, v}
	}
	f.Add(uint8(0), false, []byte(`{"apiVersion":"kubist.io/v1alpha1","kind":"Project","metadata":{"name":"p"}}`), []byte(nil))

	f.Fuzz(func(t *testing.T, kindIndex uint8, update bool, object, old []byte) {
		kind := v1alpha1.Kinds[int(kindIndex)%len(v1alpha1.Kinds)]
		hooks := webhooks[int(kindIndex)%len(v1alpha1.Kinds)]
		if !update {
			old = nil
		}
		resp := call(t, hooks.mutating, kind, object, old)
		if !resp.Allowed || len(resp.Patch) == 0 {
			// Refused, or nothing to default: validate what was sent.
			call(t, hooks.validating, kind, object, old)
			return
		}
		patch, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("%s: the defaulting patch does not decode: %v\n%s", kind, err, resp.Patch)
		}
		patched, err := patch.Apply(object)
		if err != nil {
			t.Fatalf("%s: the defaulting patch does not apply: %v\npatch %s\nobject %s", kind, err, resp.Patch, object)
		}
		call(t, hooks.validating, kind, patched, old)
	})
}

// call posts one AdmissionReview to a webhook and checks the answer.
func call(t *testing.T, h http.Handler, kind string, object, old []byte) admissionv1.AdmissionResponse {
	t.Helper()
	body := reviewBody(kind, object, old)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)).WithContext(t.Context())
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s: HTTP %d\nrequest %s\nresponse %s", kind, rec.Code, body, rec.Body)
	}
	if !json.Valid(body) {
		// The API server never sends this; the answer must be a client
		// error, whatever it is.
		if rec.Code == http.StatusOK {
			var review admissionv1.AdmissionReview
			if json.Unmarshal(rec.Body.Bytes(), &review) == nil && review.Response != nil && review.Response.Allowed {
				t.Fatalf("%s: a review that is not JSON was allowed", kind)
			}
		}
		return admissionv1.AdmissionResponse{}
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: HTTP %d for a well-formed review\nrequest %s\nresponse %s", kind, rec.Code, body, rec.Body)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil || review.Response == nil {
		t.Fatalf("%s: the answer is no AdmissionReview (%v): %s", kind, err, rec.Body)
	}
	resp := *review.Response
	if resp.UID != "fuzz" {
		t.Fatalf("%s: the answer is for request %q", kind, resp.UID)
	}
	if resp.Result != nil && resp.Result.Code >= 500 {
		t.Fatalf("%s: answered %d: %s\nrequest %s", kind, resp.Result.Code, resp.Result.Message, body)
	}
	if !resp.Allowed && (resp.Result == nil || strings.TrimSpace(resp.Result.Message) == "") {
		t.Fatalf("%s: refused without saying why\nrequest %s", kind, body)
	}
	return resp
}

// reviewBody is the AdmissionReview the API server would send; object and
// old go in verbatim, valid JSON or not.
func reviewBody(kind string, object, old []byte) []byte {
	op := admissionv1.Create
	if old != nil {
		op = admissionv1.Update
	}
	gv := v1alpha1.GroupVersion
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"fuzz",`+
		`"kind":{"group":%q,"version":%q,"kind":%q},"resource":{"group":%q,"version":%q,"resource":%q},"operation":%q,"object":%s`,
		gv.Group, gv.Version, kind, gv.Group, gv.Version, strings.ToLower(kind)+"s", op, rawOrNull(object))
	if old != nil {
		fmt.Fprintf(&b, `,"oldObject":%s`, rawOrNull(old))
	}
	b.WriteString("}}")
	return b.Bytes()
}

func rawOrNull(b []byte) []byte {
	if len(bytes.TrimSpace(b)) == 0 {
		return []byte("null")
	}
	return b
}

// sampleReader reads the samples' parents and siblings, as the manager's
// cache would hold them, so that reference checks run.
func sampleReader(t testing.TB) client.Reader {
	t.Helper()
	samples, err := config.Samples()
	if err != nil {
		t.Fatal(err)
	}
	objs := []client.Object{&corev1.Namespace{}}
	objs[0].SetName("bookinfo")
	for _, s := range samples {
		if s.GetAPIVersion() == v1alpha1.GroupVersion.String() {
			objs = append(objs, &unstructured.Unstructured{Object: s.Object})
		}
	}
	return fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).Build()
}
