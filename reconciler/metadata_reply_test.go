package reconciler

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	istioapi "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/test/testenv"
)

// countingTransport counts the bytes of the API server's replies to PUTs.
type countingTransport struct {
	http.RoundTripper
	replies []*countingBody
}

type countingBody struct {
	io.ReadCloser
	n int
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += n
	return n, err
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.RoundTripper.RoundTrip(req)
	if err == nil && req.Method == http.MethodPut {
		body := &countingBody{ReadCloser: res.Body}
		res.Body = body
		t.replies = append(t.replies, body)
	}
	return res, err
}

// On a real API server: a write given metadataReply stores the whole
// object (a release's status, a VirtualService's spec), is answered with
// the metadata only, and leaves on the object the new resourceVersion and
// generation; a stale write is a conflict and a missing object is not
// found, as with controller-runtime's client; without the option the
// client is controller-runtime's.
func TestMetadataReplies(t *testing.T) {
	env, err := testenv.Start(controlplane.Options{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	ctx := context.Background()
	counting := &countingTransport{}
	config := rest.CopyConfig(env.Config)
	config.Wrap(func(rt http.RoundTripper) http.RoundTripper { counting.RoundTripper = rt; return counting })
	httpClient, err := rest.HTTPClientFor(config)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := client.New(config, client.Options{Scheme: env.Client.Scheme(), HTTPClient: httpClient})
	if err != nil {
		t.Fatal(err)
	}
	c := withMetadataReplies(inner, config, httpClient)

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	cr := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: v1alpha1.CanaryReleaseSpec{Route: "web", Destination: "web", Subset: "v2"}}
	if err := c.Create(ctx, cr); err != nil {
		t.Fatal(err)
	}
	stale := cr.DeepCopy()
	created := cr.ResourceVersion
	cr.Status.Weights = map[string]int32{"v1": 90, "v2": 10}
	cr.Status.Phase = v1alpha1.CanaryProgressing
	if err := c.Status().Update(ctx, cr, metadataReply); err != nil {
		t.Fatal(err)
	}
	if cr.ResourceVersion == created || cr.ResourceVersion == "" {
		t.Fatalf("resourceVersion after the write: %q (was %q)", cr.ResourceVersion, created)
	}
	var stored v1alpha1.CanaryRelease
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cr), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.ResourceVersion != cr.ResourceVersion || stored.Status.Weights["v2"] != 10 || stored.Status.Phase != v1alpha1.CanaryProgressing {
		t.Fatalf("stored %s %v %s, want %s and the status written", stored.ResourceVersion, stored.Status.Weights, stored.Status.Phase, cr.ResourceVersion)
	}
	// The next write from the object as the reply left it succeeds.
	cr.Status.Weights = map[string]int32{"v1": 80, "v2": 20}
	if err := c.Status().Update(ctx, cr, metadataReply); err != nil {
		t.Fatalf("a write after a metadata reply: %v", err)
	}
	stale.Status.Weights = map[string]int32{"v1": 0, "v2": 100}
	if err := c.Status().Update(ctx, stale, metadataReply); !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "the object has been modified") {
		t.Fatalf("a stale write: %v, want a conflict", err)
	}
	// A refusal keeps the API server's reason and message.
	invalid := cr.DeepCopy()
	invalid.Status.Phase = "Sideways"
	err = c.Status().Update(ctx, invalid, metadataReply)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `status.phase: Unsupported value: "Sideways"`) {
		t.Fatalf("a write the API server refuses: %v, want its message", err)
	}
	gone := cr.DeepCopy()
	gone.Name = "gone"
	if err := c.Status().Update(ctx, gone, metadataReply); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), `"gone" not found`) {
		t.Fatalf("a write of a missing object: %v, want not found", err)
	}

	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: istioapi.VirtualService{Hosts: []string{"web"}, Http: []*istioapi.HTTPRoute{{Route: []*istioapi.HTTPRouteDestination{
			{Destination: &istioapi.Destination{Host: "web", Subset: "v1"}, Weight: 100}}}}}}
	if err := c.Create(ctx, vs); err != nil {
		t.Fatal(err)
	}
	counting.replies = nil
	generation := vs.Generation
	vs.Spec.Http[0].Route[0].Weight = 90
	vs.Spec.Http[0].Route = append(vs.Spec.Http[0].Route, &istioapi.HTTPRouteDestination{Destination: &istioapi.Destination{Host: "web", Subset: "v2"}, Weight: 10})
	if err := c.Update(ctx, vs, metadataReply); err != nil {
		t.Fatal(err)
	}
	if vs.Generation != generation+1 {
		t.Fatalf("generation after a spec write: %d, want %d", vs.Generation, generation+1)
	}
	var storedVS networkingv1.VirtualService
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(vs), &storedVS); err != nil {
		t.Fatal(err)
	}
	if r := storedVS.Spec.Http[0].Route; len(r) != 2 || r[1].Weight != 10 || r[1].Destination.Subset != "v2" {
		t.Fatalf("stored routes %v", r)
	}
	// Without the option: controller-runtime's write, the whole object back.
	vs.Spec.Http[0].Route[1].Weight, vs.Spec.Http[0].Route[0].Weight = 20, 80
	if err := c.Update(ctx, vs); err != nil {
		t.Fatal(err)
	}
	if len(counting.replies) != 2 || counting.replies[0].n == 0 || counting.replies[0].n >= counting.replies[1].n {
		var sizes []int
		for _, r := range counting.replies {
			sizes = append(sizes, r.n)
		}
		t.Fatalf("reply sizes (metadata only, then whole): %v", sizes)
	}
	t.Logf("the API server's replies to a VirtualService's update: %d bytes of metadata, %d of the whole object", counting.replies[0].n, counting.replies[1].n)
	if vs.Spec.Http[0].Route[1].Weight != 20 {
		t.Fatalf("the whole reply decoded: routes %v", vs.Spec.Http[0].Route)
	}
}
