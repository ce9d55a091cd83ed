// Cascade and pacing: how a run triggers its children, and how the root
// run's pass is paced.

package reconciler

import (
	"cmp"
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// rootPassDepth is how many resources the root run's pass keeps in
// flight (queued or running) at a time.
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
// next step, a retry) to that run, and hands the others to the pass's
// feeder (feedPass), which keeps at most rootPassDepth of them in flight.
// A pass over the tree then neither floods the work queues nor takes every
// worker and core from the canary steps that fall due meanwhile. A run
// that triggers its children returns at once: a worker that waited for
// their turn would hold up the runs of its kind that are due (a Route
// carrying a step behind Routes waiting for their canaries' turn).
func (r *Reconciler) trigger(children []child, fromRoot bool) {
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
		if r.pass != nil {
			r.pass.add(c)
			continue
		}
		ch <- event.GenericEvent{Object: triggered(c.key)}
	}
}

// rootPass holds the resources a root run's pass reached and has not
// queued yet, and a slot for each one in flight.
type rootPass struct {
	slots   chan struct{}
	wake    chan struct{}
	mu      sync.Mutex
	pending []child
}

func newRootPass(depth int) *rootPass {
	return &rootPass{slots: make(chan struct{}, depth), wake: make(chan struct{}, 1)}
}

func (p *rootPass) add(c child) {
	p.mu.Lock()
	p.pending = append(p.pending, c)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *rootPass) next() (child, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 {
		p.pending = nil // the backing array of a whole pass goes
		return child{}, false
	}
	c := p.pending[0]
	p.pending = p.pending[1:]
	return c, true
}

// done gives back the slot of a resource's run.
func (p *rootPass) done() { <-p.slots }

// feedPass queues the root pass's resources as slots free, in the order
// the pass reached them (the tree breadth first), until ctx ends; then it
// drops the rest and their marks (a new leader's pass reaches them again).
func (r *Reconciler) feedPass(ctx context.Context) error {
	p := r.pass
	for {
		c, ok := p.next()
		if !ok {
			select {
			case <-p.wake:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		key := cascadeKey(c.kind, c.key)
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			r.cascade.Delete(key)
			for c, ok := p.next(); ok; c, ok = p.next() {
				r.cascade.Delete(cascadeKey(c.kind, c.key))
			}
			return nil
		}
		r.inPass.Store(key, struct{}{})
		r.triggers[c.kind] <- event.GenericEvent{Object: triggered(c.key)}
	}
}

// triggered is the event that queues a resource.
func triggered(key types.NamespacedName) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
}
