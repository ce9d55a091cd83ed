package dashboard

import (
	"context"
	"fmt"
	"strings"
	"sync"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// watched is one kind the dashboard watches: one list and one watch
// against the API server, whatever the number of pages open.
type watched struct {
	kind     string
	informer cache.SharedIndexInformer

	mu  sync.Mutex
	err error
}

// problem says why the kind cannot be read, once the watch has failed
// and not yet recovered.
func (w *watched) problem() string {
	if w.informer.HasSynced() {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		return ""
	}
	if apierrors.IsForbidden(w.err) {
		return fmt.Sprintf("cannot read %s: %v", w.kind, w.err)
	}
	return fmt.Sprintf("cannot read %s yet: %v", w.kind, w.err)
}

// newWatched builds the informer of one kind, in namespace ("" for all,
// and for cluster-scoped kinds). changed is called on every change that
// matters to the page.
func newWatched(c client.WithWatch, kind string, example client.Object, list client.ObjectList, namespace string, changed func()) *watched {
	opts := func(raw metav1.ListOptions) *client.ListOptions {
		return &client.ListOptions{Raw: &raw, Namespace: namespace}
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, raw metav1.ListOptions) (runtime.Object, error) {
			l := list.DeepCopyObject().(client.ObjectList)
			return l, c.List(ctx, l, opts(raw))
		},
		WatchFuncWithContext: func(ctx context.Context, raw metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, list.DeepCopyObject().(client.ObjectList), opts(raw))
		},
	}
	w := &watched{kind: kind, informer: cache.NewSharedIndexInformer(lw, example, 0, cache.Indexers{})}
	_ = w.informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
		changed()
		// The page says what the user may not read; other failures
		// are logged as client-go logs them.
		if !apierrors.IsForbidden(err) {
			cache.DefaultWatchErrorHandler(ctx, r, err)
		}
	})
	// What the page never shows is not kept.
	_ = w.informer.SetTransform(func(o any) (any, error) {
		if obj, ok := o.(client.Object); ok {
			obj.SetManagedFields(nil)
		}
		return o, nil
	})
	relevant := func(o any) bool {
		e, ok := o.(*eventsv1.Event)
		return !ok || strings.HasPrefix(e.Regarding.APIVersion, v1alpha1.GroupVersion.Group+"/")
	}
	_, _ = w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if relevant(o) {
				changed()
			}
		},
		UpdateFunc: func(_, o any) {
			if relevant(o) {
				changed()
			}
		},
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if relevant(o) {
				changed()
			}
		},
	})
	return w
}

// objects are a Kubist kind's objects as the watch last saw them.
func (w *watched) objects() []v1alpha1.Object {
	var out []v1alpha1.Object
	for _, o := range w.informer.GetStore().List() {
		if obj, ok := o.(v1alpha1.Object); ok {
			out = append(out, obj)
		}
	}
	return out
}

// items are the kind's objects as the watch last saw them.
func items[T any](w *watched) []T {
	var out []T
	for _, o := range w.informer.GetStore().List() {
		if t, ok := o.(*T); ok {
			out = append(out, *t)
		}
	}
	return out
}
