package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// metadataReply is an option of Update and Status().Update, given to the
// writes a run makes at every step (a release's status, the object a
// Route applies): the API server answers them with the object's metadata
// only, and the writer takes from it the new resourceVersion and
// generation. A run reads what it wrote from the cache afterwards, never
// from the reply, so decoding the whole object the server sends back (a
// release's status with its history, a VirtualService through Istio's
// protobuf JSON) was work for nothing, on both sides: it was a tenth of
// the manager's CPU per step (docs/scale.md).
//
// A client that is not one withMetadataReplies made ignores the option
// and decodes the whole reply, as controller-runtime's client does.
var metadataReply metadataReplyOption

type metadataReplyOption struct{}

func (metadataReplyOption) ApplyToUpdate(*client.UpdateOptions)                       {}
func (metadataReplyOption) ApplyToSubResourceUpdate(*client.SubResourceUpdateOptions) {}

// partialMetadataJSON asks the API server for an object's metadata only,
// or else for JSON, as client-go's metadata client does: a refusal is a
// Status, which the API server sends as plain JSON only, and the client
// then reads its reason and message.
const partialMetadataJSON = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"

// withMetadataReplies wraps a client so that the writes given the option
// metadataReply are answered with the metadata only; config and
// httpClient are the client's own.
func withMetadataReplies(c client.Client, config *rest.Config, httpClient *http.Client) client.Client {
	return &metadataReplies{Client: c, config: config, httpClient: httpClient,
		codecs: serializer.NewCodecFactory(c.Scheme()), kinds: map[schema.GroupVersionKind]replyKind{}}
}

type metadataReplies struct {
	client.Client
	config     *rest.Config
	httpClient *http.Client
	codecs     serializer.CodecFactory

	mu    sync.Mutex
	kinds map[schema.GroupVersionKind]replyKind
}

func (c *metadataReplies) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if !hasMetadataReply(opts) {
		return c.Client.Update(ctx, obj, opts...)
	}
	return c.put(ctx, obj, "")
}

func (c *metadataReplies) Status() client.SubResourceWriter {
	return metadataReplyStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type metadataReplyStatus struct {
	client.SubResourceWriter
	c *metadataReplies
}

func (s metadataReplyStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	if !hasMetadataReply(opts) {
		return s.SubResourceWriter.Update(ctx, obj, opts...)
	}
	return s.c.put(ctx, obj, "status")
}

func hasMetadataReply[O any](opts []O) bool {
	for _, o := range opts {
		if _, ok := any(o).(metadataReplyOption); ok {
			return true
		}
	}
	return false
}

// put replaces the object (or its subresource) and sets on it the
// resourceVersion and generation the API server answered with.
func (c *metadataReplies) put(ctx context.Context, obj client.Object, subresource string) error {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return err
	}
	k, err := c.kind(gvk)
	if err != nil {
		return err
	}
	req := k.client.Put().
		NamespaceIfScoped(obj.GetNamespace(), k.namespaced).
		Resource(k.resource).
		Name(obj.GetName()).
		Body(obj).
		SetHeader("Accept", partialMetadataJSON)
	if subresource != "" {
		req = req.SubResource(subresource)
	}
	result := req.Do(ctx)
	// Error, not Raw's error: it reads a refusal's Status (reason, message).
	if err := result.Error(); err != nil {
		return err
	}
	raw, _ := result.Raw()
	// Of the PartialObjectMetadata, only what the next write needs.
	var reply struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
			Generation      int64  `json:"generation"`
		} `json:"metadata"`
	}
	err = json.Unmarshal(raw, &reply)
	if err == nil && reply.Metadata.ResourceVersion == "" {
		err = errors.New("it holds no resourceVersion")
	}
	if err != nil {
		return fmt.Errorf("read the API server's reply to the update of %s %s: %w (%.200q)", gvk.Kind, obj.GetName(), err, raw)
	}
	obj.SetResourceVersion(reply.Metadata.ResourceVersion)
	obj.SetGeneration(reply.Metadata.Generation)
	return nil
}

// replyKind is how to write one kind: its REST client and resource.
type replyKind struct {
	client     rest.Interface
	resource   string
	namespaced bool
}

// kind is the REST client and mapping of one kind, looked up once (a
// RESTMapper's lookup is costly to make at every write).
func (c *metadataReplies) kind(gvk schema.GroupVersionKind) (replyKind, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.kinds[gvk]; ok {
		return k, nil
	}
	mapping, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return replyKind{}, err
	}
	rc, err := apiutil.RESTClientForGVK(gvk, false, false, c.config, c.codecs, c.httpClient)
	if err != nil {
		return replyKind{}, err
	}
	k := replyKind{client: rc, resource: mapping.Resource.Resource, namespaced: mapping.Scope.Name() == meta.RESTScopeNameNamespace}
	c.kinds[gvk] = k
	return k, nil
}
