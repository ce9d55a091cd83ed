// Cascade and pacing: how a run triggers its children, and how the root
// run's pass is paced.

package reconciler

import (
	"cmp"
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// rootPassDepth is how many resources without children the root run's
// pass keeps in flight (queued or running) at a time.
const rootPassDepth = 4

// cascadeMark tells a triggered run whether the root run's pass reached
// it (through parents that did not change) or a parent's change did.
type cascadeMark struct{ fromRoot bool }

func cascadeKey(kind string, key types.NamespacedName) string { return kind + "/" + key.String() }

// clock is the time a run starts. Policies see it to the microsecond (the
// precision of lastStepTime); requeues are measured from the exact time.
func (r *Reconciler) clock() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// trigger enqueues resources in their kinds' work queues.
//
// The root run's pass (fromRoot) is paced: it leaves a resource without
// children that runs anyway before the next pass (a canary waiting for its
// next step, a retry) to that run, and it keeps at most rootPassDepth of
// the others in flight, waiting for one to finish before it queues the
// next. A pass over the tree then neither floods the work queues nor takes
// every worker and core from the canary steps that fall due meanwhile; the
// parents run at once, so that the pass reaches the whole tree. Only
// resources without children wait for a slot: their runs never trigger
// anything, so a waiting parent always gets one.
func (r *Reconciler) trigger(ctx context.Context, children []child, fromRoot bool) {
	now := time.Now()
	horizon := now.Add(cmp.Or(r.resync, DefaultResyncPeriod))
	for _, c := range children {
		ch, ok := r.triggers[c.kind]
		if !ok {
			continue
		}
		key := cascadeKey(c.kind, c.key)
		if !fromRoot {
			r.cascade.Store(key, cascadeMark{})
			ch <- event.GenericEvent{Object: triggered(c.key)}
			continue
		}
		if r.leaves[c.kind] {
			if at, ok := r.due.Load(key); ok && at.(time.Time).After(now) && at.(time.Time).Before(horizon) {
				continue
			}
		}
		// A change's mark stays: the run passes the change on. A marked
		// resource is queued already.
		if _, marked := r.cascade.LoadOrStore(key, cascadeMark{fromRoot: true}); marked {
			continue
		}
		if r.leaves[c.kind] && r.passSlots != nil {
			select {
			case r.passSlots <- struct{}{}:
				r.inPass.Store(key, struct{}{})
			case <-ctx.Done():
				r.cascade.Delete(key)
				return
			}
		}
		ch <- event.GenericEvent{Object: triggered(c.key)}
	}
}

// triggered is the event that queues a resource.
func triggered(key types.NamespacedName) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
}
