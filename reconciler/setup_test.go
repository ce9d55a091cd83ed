package reconciler

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// A resource a parent's run triggers waits behind one whose step is due:
// the queue hands out the due one first, though it was added last.
func TestCascadedWorkWaitsBehindDueWork(t *testing.T) {
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	for _, name := range []string{"a", "b", "c"} {
		obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		cascaded.Generic(context.Background(), event.GenericEvent{Object: obj}, q)
	}
	due := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "due"}}
	q.AddWithOpts(priorityqueue.AddOpts{Priority: new(0), After: time.Millisecond}, due)
	time.Sleep(20 * time.Millisecond)

	item, priority, _ := q.GetWithPriority()
	if item != due || priority != 0 {
		t.Fatalf("first out: %v at priority %d, want %v at 0", item, priority, due)
	}
	for range 3 {
		item, priority, _ := q.GetWithPriority()
		if priority != handler.LowPriority {
			t.Fatalf("%v at priority %d, want the cascade's %d", item, priority, handler.LowPriority)
		}
	}
}
