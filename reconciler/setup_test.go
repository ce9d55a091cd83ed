package reconciler

import (
	"context"
	"slices"
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

// The root run's pass leaves a canary whose step falls due before the next
// pass to that run; it runs a parent with a due run at once, and a canary
// whose parent changed too.
func TestRootPassLeavesDueLeavesToTheirRun(t *testing.T) {
	rc := &Reconciler{
		triggers: map[string]chan event.GenericEvent{"Cluster": make(chan event.GenericEvent, 4), "CanaryRelease": make(chan event.GenericEvent, 4)},
		leaves:   map[string]bool{"Cluster": false, "CanaryRelease": true},
		resync:   time.Minute,
	}
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }
	due := func(kind, name string, in time.Duration) child {
		rc.due.Store(cascadeKey(kind, key(name)), time.Now().Add(in))
		return child{kind: kind, key: key(name)}
	}
	stepping := due("CanaryRelease", "stepping", 10*time.Second)
	gated := due("CanaryRelease", "gated", time.Hour) // after the next pass
	overdue := due("CanaryRelease", "overdue", -time.Second)
	idle := child{kind: "CanaryRelease", key: key("idle")}
	rechecking := due("Cluster", "rechecking", 10*time.Second)

	rc.trigger([]child{stepping, gated, overdue, idle, rechecking}, true)
	enqueued := func(kind string) []string {
		var names []string
		for {
			select {
			case e := <-rc.triggers[kind]:
				names = append(names, e.Object.GetName())
			default:
				return names
			}
		}
	}
	if got := enqueued("CanaryRelease"); !slices.Equal(got, []string{"gated", "overdue", "idle"}) {
		t.Errorf("the root pass enqueued canaries %v, want gated, overdue and idle", got)
	}
	if got := enqueued("Cluster"); !slices.Equal(got, []string{"rechecking"}) {
		t.Errorf("the root pass enqueued Clusters %v, want the parent with a due run", got)
	}
	if _, marked := rc.cascade.Load(cascadeKey("CanaryRelease", key("stepping"))); marked {
		t.Error("a canary left to its own run keeps no cascade mark")
	}
	mark, _ := rc.cascade.Load(cascadeKey("Cluster", key("rechecking")))
	if mark != (cascadeMark{fromRoot: true}) {
		t.Errorf("the Cluster's mark is %v, want the root pass's", mark)
	}

	// A parent that changed: its children run now, and a root pass that
	// follows keeps the change's mark.
	rc.trigger([]child{stepping}, false)
	rc.trigger([]child{stepping}, true)
	if got := enqueued("CanaryRelease"); !slices.Equal(got, []string{"stepping"}) {
		t.Errorf("a change and a root pass enqueued %v, want the stepping canary once (by the change)", got)
	}
	if mark, _ := rc.cascade.Load(cascadeKey("CanaryRelease", key("stepping"))); mark != (cascadeMark{}) {
		t.Errorf("the canary's mark is %v, want the change's", mark)
	}
}

// The root pass keeps at most its depth of runs in flight: the next waits
// until one finishes, in the order the pass reached them. The run that
// triggers them returns at once: no worker waits for a slot.
func TestRootPassKeepsRunsInFlightBounded(t *testing.T) {
	rc := &Reconciler{
		triggers: map[string]chan event.GenericEvent{"VirtualCluster": make(chan event.GenericEvent, 4), "Route": make(chan event.GenericEvent, 4)},
		leaves:   map[string]bool{"VirtualCluster": false, "Route": true},
		pass:     newRootPass(2),
	}
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }
	rc.trigger([]child{
		{kind: "VirtualCluster", key: key("a")}, {kind: "VirtualCluster", key: key("b")},
		{kind: "Route", key: key("r1")}, {kind: "Route", key: key("r2")},
	}, true)
	next := func(kind string) string {
		select {
		case e := <-rc.triggers[kind]:
			return e.Object.GetName()
		case <-time.After(100 * time.Millisecond):
			return ""
		}
	}
	if a := next("VirtualCluster"); a != "" {
		t.Fatalf("%s queued before the pass's feeder runs", a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fed := make(chan error, 1)
	go func() { fed <- rc.feedPass(ctx) }()
	if a, b := next("VirtualCluster"), next("VirtualCluster"); a != "a" || b != "b" {
		t.Fatalf("the feeder queued %q %q, want a and b", a, b)
	}
	if r := next("Route"); r != "" {
		t.Fatalf("%s queued while a and b are in flight", r)
	}
	// The pass reaches another while the slots are taken: the run that
	// triggers it returns at once.
	returned := make(chan struct{})
	go func() { rc.trigger([]child{{kind: "Route", key: key("r3")}}, true); close(returned) }()
	select {
	case <-returned:
	case <-time.After(time.Second):
		t.Fatal("a run triggering its children waited for a slot")
	}
	// a's run takes its slot (as reconcileKind does) and ends.
	finish := func(kind, name string) {
		t.Helper()
		if _, paced := rc.inPass.LoadAndDelete(cascadeKey(kind, key(name))); !paced {
			t.Fatalf("%s holds no slot", name)
		}
		rc.pass.done()
	}
	finish("VirtualCluster", "a")
	if r1 := next("Route"); r1 != "r1" {
		t.Fatalf("after a finished, queued %q, want r1", r1)
	}
	if r := next("Route"); r != "" {
		t.Fatalf("%s queued while b and r1 are in flight", r)
	}
	finish("Route", "r1")
	if r2 := next("Route"); r2 != "r2" {
		t.Fatalf("after r1 finished, queued %q, want r2", r2)
	}
	cancel()
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	if _, marked := rc.cascade.Load(cascadeKey("Route", key("r3"))); marked {
		t.Error("r3, never queued, kept its mark after the manager stopped")
	}
}

// A pass waiting for a slot gives up when the manager stops, and leaves no
// mark behind.
func TestRootPassStopsWithTheManager(t *testing.T) {
	rc := &Reconciler{
		triggers: map[string]chan event.GenericEvent{"Route": make(chan event.GenericEvent, 4)},
		leaves:   map[string]bool{"Route": true},
		pass:     newRootPass(1),
	}
	rc.pass.slots <- struct{}{}
	r := types.NamespacedName{Namespace: "ns", Name: "r"}
	rc.trigger([]child{{kind: "Route", key: r}}, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rc.feedPass(ctx); err != nil {
		t.Fatal(err)
	}
	if len(rc.triggers["Route"]) != 0 {
		t.Error("a Route was queued without a slot")
	}
	if _, marked := rc.cascade.Load(cascadeKey("Route", r)); marked {
		t.Error("the Route kept its mark")
	}
}
