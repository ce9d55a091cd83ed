package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/go-logr/logr"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/config"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/test/testenv"
)

// benchObjects are one object per kind: the samples, a CanaryRelease with
// three policies, an Experiment and the example Policy.
func benchObjects(b *testing.B) map[string]map[string]any {
	b.Helper()
	samples, err := config.Samples()
	if err != nil {
		b.Fatal(err)
	}
	objects := map[string]map[string]any{}
	for _, s := range samples {
		if s.GetAPIVersion() == v1alpha1.GroupVersion.String() {
			objects[s.GetKind()] = s.Object
		}
	}
	canary := objects["CanaryRelease"]
	_ = unstructured.SetNestedSlice(canary, []any{
		map[string]any{"name": "HealthBasedCanaryRelease", "parameters": map[string]any{"step": int64(10), "maxErrorRate": 0.05}},
		map[string]any{"name": "BusinessHoursGate", "parameters": map[string]any{"timezone": "Europe/Amsterdam"}},
		map[string]any{"name": "ManualGate"},
	}, "spec", "policies")
	objects["Experiment"] = map[string]any{
		"apiVersion": "kubist.io/v1alpha1", "kind": "Experiment",
		"metadata": map[string]any{"name": "reviews-ab", "namespace": "bookinfo"},
		"spec": map[string]any{"route": "reviews", "destination": "reviews", "subsets": []any{"v1", "v2"},
			"goal": map[string]any{"metric": "latency"}, "policies": []any{map[string]any{"name": "WelchExperiment"}}},
	}
	module, err := os.ReadFile(filepath.Join("..", "rego", "examples", "max_weight", "max_weight.rego"))
	if err != nil {
		b.Fatal(err)
	}
	objects["Policy"] = map[string]any{
		"apiVersion": "kubist.io/v1alpha1", "kind": "Policy",
		"metadata": map[string]any{"name": "max-weight"},
		"spec":     map[string]any{"rego": string(module)},
	}
	return objects
}

func review(b *testing.B, kind string, obj map[string]any) []byte {
	b.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		b.Fatal(err)
	}
	u := unstructured.Unstructured{Object: obj}
	data, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("bench"),
			Kind:      metav1.GroupVersionKind{Group: "kubist.io", Version: "v1alpha1", Kind: kind},
			Resource:  metav1.GroupVersionResource{Group: "kubist.io", Version: "v1alpha1"},
			Name:      u.GetName(),
			Namespace: u.GetNamespace(),
			Operation: admissionv1.Create,
			Object:    runtimeRaw(raw),
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// serve is one admission round as the webhook server runs it: decode the
// AdmissionReview, handle it, encode the response.
func serve(ctx context.Context, b *testing.B, h *admission.Webhook, body []byte) admission.Response {
	var in admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &in); err != nil {
		b.Fatal(err)
	}
	resp := h.Handle(ctx, admission.Request{AdmissionRequest: *in.Request})
	if err := resp.Complete(admission.Request{AdmissionRequest: *in.Request}); err != nil {
		b.Fatal(err)
	}
	if _, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: in.TypeMeta, Response: &resp.AdmissionResponse}); err != nil {
		b.Fatal(err)
	}
	return resp
}

// BenchmarkAdmission measures, per kind, the in-process path of one object
// through both webhooks: the mutating review (decode, default, patch,
// encode) and the validating review of the defaulted object (decode,
// validate with parents looked up, encode). p50-ns and p99-ns are per pair.
func BenchmarkAdmission(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newAdmission(b)
	s := scheme.New()
	objects := benchObjects(b)
	// The parents and siblings the objects name exist: the samples.
	existing := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bookinfo"}}}
	for _, obj := range objects {
		existing = append(existing, &unstructured.Unstructured{Object: runtime.DeepCopyJSON(obj)})
	}
	a.Reader = cachedReader(ctx, b, s, existing...)
	kinds := make([]string, 0, len(objects))
	for k := range objects {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		mutating, validating, err := Handlers(a, kind)
		if err != nil {
			b.Fatal(err)
		}
		mutateReview := review(b, kind, objects[kind])

		// The API server applies the patch before the validating webhooks.
		resp := serve(ctx, b, mutating, mutateReview)
		if !resp.Allowed {
			b.Fatalf("%s: defaulting refused: %v", kind, resp.Result)
		}
		patched, err := applyPatch(objects[kind], resp.Patch)
		if err != nil {
			b.Fatal(err)
		}
		validateReview := review(b, kind, patched)
		if resp := serve(ctx, b, validating, validateReview); !resp.Allowed {
			b.Fatalf("%s: refused: %v", kind, resp.Result)
		}

		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			var durations []time.Duration
			for b.Loop() {
				start := time.Now()
				serve(ctx, b, mutating, mutateReview)
				serve(ctx, b, validating, validateReview)
				durations = append(durations, time.Since(start))
			}
			reportPercentiles(b, durations)
		})
	}

	// A Policy admitted again (re-applied, or checked by both webhooks and
	// the Policy controller) reuses its compiled module; the first
	// admission of a module compiles it in the sandbox.
	b.Run("Policy-first-admission", func(b *testing.B) {
		b.ReportAllocs()
		mutating, validating, err := Handlers(a, "Policy")
		if err != nil {
			b.Fatal(err)
		}
		var durations []time.Duration
		for b.Loop() {
			policy := runtime.DeepCopyJSON(objects["Policy"])
			rego := policy["spec"].(map[string]any)["rego"].(string)
			policy["spec"].(map[string]any)["rego"] = rego + fmt.Sprintf("\n# revision %d\n", len(durations))
			body := review(b, "Policy", policy)
			start := time.Now()
			serve(ctx, b, mutating, body)
			if resp := serve(ctx, b, validating, body); !resp.Allowed {
				b.Fatalf("refused: %v", resp.Result)
			}
			durations = append(durations, time.Since(start))
		}
		reportPercentiles(b, durations)
	})
}

// cachedReader is the reader the manager gives the webhooks: a client that
// reads from an informer cache, here on a real control plane holding objs.
func cachedReader(ctx context.Context, b *testing.B, s *runtime.Scheme, objs ...client.Object) client.Reader {
	b.Helper()
	ctrllog.SetLogger(logr.Discard())
	env, err := testenv.Start(controlplane.Options{WithoutIstioCRDs: true}, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := env.Stop(); err != nil {
			b.Error(err)
		}
	})
	for _, obj := range objs {
		if err := env.Client.Create(ctx, obj); err != nil {
			b.Fatal(err)
		}
	}
	c, err := cache.New(env.Config, cache.Options{Scheme: s})
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		if err := c.Start(ctx); err != nil {
			b.Error(err)
		}
	}()
	reader, err := client.New(env.Config, client.Options{Scheme: s, Cache: &client.CacheOptions{Reader: c}})
	if err != nil {
		b.Fatal(err)
	}
	return reader
}

// reportPercentiles reports the median and 99th percentile of durations.
func reportPercentiles(b *testing.B, durations []time.Duration) {
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durations[len(durations)*99/100].Nanoseconds()), "p99-ns")
}

func applyPatch(obj map[string]any, patch []byte) (map[string]any, error) {
	doc, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	if len(patch) > 0 {
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, err
		}
		if doc, err = p.Apply(doc); err != nil {
			return nil, err
		}
	}
	out := map[string]any{}
	return out, json.Unmarshal(doc, &out)
}

func runtimeRaw(raw []byte) runtime.RawExtension { return runtime.RawExtension{Raw: raw} }
