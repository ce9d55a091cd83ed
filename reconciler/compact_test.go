package reconciler

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// releaseJSON is a CanaryRelease as the API server sends it: managed
// fields, conditions, a decision and a history of steps steps.
func releaseJSON(t testing.TB, name string, steps int) []byte {
	t.Helper()
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	c := v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("u-" + name), ResourceVersion: "42",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubist", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status"}}}}
	c.Status.Weights = map[string]int32{"v1": 0, "v2": 100}
	c.Status.Conditions = []metav1.Condition{
		{Type: "Ready", Status: "True", Reason: "Reconciled", Message: "Promoted: v2 at 100%, v1 at 0%", LastTransitionTime: metav1.NewTime(at)},
		{Type: "PoliciesApplied", Status: "True", Reason: "Decided", Message: "TimedCanaryRelease: Done", LastTransitionTime: metav1.NewTime(at)},
	}
	c.Status.Decisions = []v1alpha1.PolicyDecision{{Policy: "TimedCanaryRelease", Outcome: "Done", Message: "release is Promoted"}}
	for i := range steps {
		w := int32(10 * (i + 1))
		c.Status.History = append(c.Status.History, v1alpha1.ReleaseStep{Time: metav1.NewMicroTime(at.Add(time.Duration(i) * 30 * time.Second)),
			Policy: "TimedCanaryRelease", Weights: map[string]int32{"v1": 100 - w, "v2": w}, Phase: "Progressing",
			Message: fmt.Sprintf("canary v2 at %d%%", w), Metrics: []v1alpha1.StepMetrics{{Subset: "v2", Requests: "120"}}})
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func decodeRelease(t testing.TB, raw []byte) *v1alpha1.CanaryRelease {
	t.Helper()
	var c v1alpha1.CanaryRelease
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func sameMap(a, b map[string]int32) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func sameString(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// The cached object keeps every value (but the managed fields); what
// repeats is held once, across objects; a copy owns its maps again.
func TestCompactCached(t *testing.T) {
	a, b := decodeRelease(t, releaseJSON(t, "a", 10)), decodeRelease(t, releaseJSON(t, "b", 10))
	want := a.DeepCopy()
	want.ManagedFields = nil
	if _, err := compactCached(a); err != nil {
		t.Fatal(err)
	}
	if _, err := compactCached(cache.DeletedFinalStateUnknown{Key: "shop/b", Obj: b}); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(a, want) {
		t.Fatalf("compacted object changed:\n%+v\nwant\n%+v", a.Status, want.Status)
	}
	if b.ManagedFields != nil {
		t.Error("a deleted object's managed fields are kept")
	}
	for i := range a.Status.History {
		sa, sb := a.Status.History[i], b.Status.History[i]
		if !sameMap(sa.Weights, sb.Weights) || !sameString(sa.Message, sb.Message) || !sameString(sa.Policy, sb.Policy) {
			t.Fatalf("step %d: weights or strings not shared between two releases", i)
		}
	}
	if !sameMap(a.Status.Weights, a.Status.History[9].Weights) {
		t.Error("the status's split and the last step's are not one")
	}
	if !sameString(a.Status.Conditions[0].Message, b.Status.Conditions[0].Message) {
		t.Error("condition messages not shared")
	}
	if cap(a.Status.History) != len(a.Status.History) || cap(a.Status.Conditions) != len(a.Status.Conditions) {
		t.Errorf("lists kept at the decoder's capacity: history %d/%d", len(a.Status.History), cap(a.Status.History))
	}
	c := a.DeepCopy()
	c.Status.History[0].Weights["v2"] = 55
	if a.Status.History[0].Weights["v2"] != 10 || b.Status.History[0].Weights["v2"] != 10 {
		t.Fatal("writing a copy's weights changed the cached objects")
	}
}

// The table of splits starts over past its limit; what was shared stays
// valid.
func TestSharedWeightsBounded(t *testing.T) {
	first := sharedWeights(map[string]int32{"v1": 1, "v2": 99})
	for i := range splitsLimit + 10 {
		sharedWeights(map[string]int32{fmt.Sprintf("s%d", i): 100})
	}
	splits.Lock()
	n := len(splits.m)
	splits.Unlock()
	if n > splitsLimit {
		t.Fatalf("%d splits held, limit %d", n, splitsLimit)
	}
	if first["v1"] != 1 || first["v2"] != 99 {
		t.Fatalf("a split handed out earlier changed: %v", first)
	}
}

// BenchmarkCachedRelease reports what the cache holds per release of 10
// steps, as decoded and once compacted (heap bytes per object).
func BenchmarkCachedRelease(b *testing.B) {
	const n = 2000
	raw := make([][]byte, n)
	for i := range raw {
		raw[i] = releaseJSON(b, fmt.Sprintf("r%d", i), 10)
	}
	for _, compacted := range []bool{false, true} {
		b.Run(map[bool]string{false: "decoded", true: "compacted"}[compacted], func(b *testing.B) {
			var perObject float64
			for b.Loop() {
				objs := make([]*v1alpha1.CanaryRelease, n)
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for i := range objs {
					objs[i] = decodeRelease(b, raw[i])
					if compacted {
						_, _ = compactCached(objs[i])
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perObject = float64(after.HeapAlloc-before.HeapAlloc) / n
				runtime.KeepAlive(objs)
			}
			b.ReportMetric(perObject, "heap-B/release")
		})
	}
}
