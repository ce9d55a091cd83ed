package e2e

import (
	"context"
	"fmt"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// operations records what the manager's executors read and write through
// their client: a full pass at steady state must write nothing.
type operations struct {
	mu     sync.Mutex
	reads  map[string]time.Time
	writes []string
}

func newOperations() *operations { return &operations{reads: map[string]time.Time{}} }

func objectKey(obj client.Object) string {
	return fmt.Sprintf("%T %s/%s", obj, obj.GetNamespace(), obj.GetName())
}

func (o *operations) read(obj client.Object, key client.ObjectKey) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reads[fmt.Sprintf("%T %s/%s", obj, key.Namespace, key.Name)] = time.Now()
}

func (o *operations) write(verb string, obj client.Object) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes = append(o.writes, verb+" "+objectKey(obj))
}

// readSince tells whether the object was read after t.
func (o *operations) readSince(obj client.Object, key client.ObjectKey, t time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reads[fmt.Sprintf("%T %s/%s", obj, key.Namespace, key.Name)].After(t)
}

// writesSince returns the writes recorded after the n-th.
func (o *operations) writesFrom(n int) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.writes[n:]...)
}

func (o *operations) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.writes)
}

// wrap is the manager's WrapClient.
func (o *operations) wrap(c client.Client) client.Client { return &recordingClient{Client: c, ops: o} }

type recordingClient struct {
	client.Client
	ops *operations
}

func (c *recordingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.ops.read(obj, key)
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c *recordingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.ops.write("create", obj)
	return c.Client.Create(ctx, obj, opts...)
}

func (c *recordingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.ops.write("update", obj)
	return c.Client.Update(ctx, obj, opts...)
}

func (c *recordingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.ops.write("patch", obj)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *recordingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.ops.write("delete", obj)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *recordingClient) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	c.ops.write("deletecollection", obj)
	return c.Client.DeleteAllOf(ctx, obj, opts...)
}

func (c *recordingClient) Status() client.SubResourceWriter {
	return &recordingStatus{SubResourceWriter: c.Client.Status(), ops: c.ops}
}

type recordingStatus struct {
	client.SubResourceWriter
	ops *operations
}

func (s *recordingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.ops.write("update status", obj)
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s *recordingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.ops.write("patch status", obj)
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}
