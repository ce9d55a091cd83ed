package scale

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	istioapi "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/test/testenv"
)

// BenchmarkAPIWrite measures what one API write of each kind a canary
// release makes costs the API server and etcd in CPU, one write at a time
// on an otherwise idle control plane: the unit of the capacity model in
// docs/scale.md. A step is a CanaryRelease status write and a
// VirtualService write; a release adds a few Route status writes and
// Events. The status write's cost grows with the status, so it is timed
// with an empty history, with the fewest (HistoryKept) and the most
// (HistoryInStatus-1) steps a status holds, and with the fifty a status
// held when it kept the whole history; and the page the older steps move
// to, every HistoryInStatus-HistoryKept steps, is timed as it is written
// (ReleaseHistory-page), so that a step's cost in a release of any age is
// a status write of HistoryKept to HistoryInStatus-1 steps plus a fifth of
// that.
func BenchmarkAPIWrite(b *testing.B) {
	if os.Getenv("KUBIST_BENCH_SCALE") != "1" {
		b.Skip("starts a control plane: make bench-scale runs it (KUBIST_BENCH_SCALE=1)")
	}
	env, err := testenv.Start(controlplane.Options{}, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx := context.Background()
	c := env.Client

	// The status writes and the page, in rounds: this machine's speed
	// drifts within minutes, and the ratios between them are what the
	// figures are for.
	sizes := []int{0, v1alpha1.HistoryKept, v1alpha1.HistoryInStatus - 1, 50}
	releases := map[int]*v1alpha1.CanaryRelease{}
	for _, history := range sizes {
		releases[history] = releaseAt(ctx, b, c, fmt.Sprintf("history-%d", history), history)
	}
	paged := releaseAt(ctx, b, c, "page", v1alpha1.HistoryInStatus-v1alpha1.HistoryKept)
	moved := paged.Status.History
	owner := []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CanaryRelease", Name: "page", UID: paged.UID, Controller: ptr.To(true)}}
	// Objects created are named by a count kept across the benchmark's
	// runs (-count).
	created := 0
	for range 3 {
		for _, history := range sizes {
			cr := releases[history]
			timeWrites(b, fmt.Sprintf("CanaryRelease-status/history-%d", history), func(i int) error {
				w := int32(i % 100)
				cr.Status.Weights = map[string]int32{"v1": 100 - w, "v2": w}
				cr.Status.CanaryWeight = w
				return c.Status().Update(ctx, cr)
			})
		}
		timeWrites(b, "ReleaseHistory-page", func(int) error {
			created++
			first := int32(created * len(moved))
			return c.Create(ctx, &v1alpha1.ReleaseHistory{
				ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.HistoryPageName("CanaryRelease", "page", first), Namespace: "default", OwnerReferences: owner},
				Release:    v1alpha1.ActionTarget{Kind: "CanaryRelease", Name: "page"}, First: first, Steps: moved,
			})
		})
	}

	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}
	vs.Spec.Hosts = []string{"web"}
	vs.Spec.Http = []*istioapi.HTTPRoute{{Name: "default", Route: []*istioapi.HTTPRouteDestination{
		{Destination: &istioapi.Destination{Host: "web", Subset: "v1"}, Weight: 50},
		{Destination: &istioapi.Destination{Host: "web", Subset: "v2"}, Weight: 50},
	}}}
	if err := c.Create(ctx, vs); err != nil {
		b.Fatal(err)
	}
	timeWrites(b, "VirtualService", func(i int) error {
		w := int32(i % 100)
		vs.Spec.Http[0].Route[0].Weight, vs.Spec.Http[0].Route[1].Weight = 100-w, w
		return c.Update(ctx, vs)
	})

	rt := route("web", "default", "web")
	if err := c.Create(ctx, rt); err != nil {
		b.Fatal(err)
	}
	rt.Status.VirtualService = "default/web"
	rt.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "VirtualService default/web", LastTransitionTime: metav1.Now()}}
	timeWrites(b, "Route-status", func(i int) error {
		rt.Status.ComposedFrom = []string{fmt.Sprintf("canary-%d", i%2)}
		return c.Status().Update(ctx, rt)
	})

	timeWrites(b, "Event", func(int) error {
		created++
		now := metav1.NewTime(time.Now())
		return c.Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("history-0.%d", created), Namespace: "default"},
			InvolvedObject: corev1.ObjectReference{Kind: "CanaryRelease", APIVersion: v1alpha1.GroupVersion.String(), Name: "history-0", Namespace: "default"},
			Reason:         "Step", Message: "canary v2 at 30%", Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: "kubist"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
		})
	})
}

// releaseAt creates a CanaryRelease with the status of a release history
// steps in: the conditions, the decision and the history a run writes.
func releaseAt(ctx context.Context, b *testing.B, c client.Client, name string, history int) *v1alpha1.CanaryRelease {
	cr := canary(name, "default", "web", "web", 10, 30*time.Second)
	if err := c.Create(ctx, cr); err != nil {
		b.Fatal(err)
	}
	now := metav1.NowMicro()
	cr.Status = v1alpha1.CanaryReleaseStatus{
		Phase: v1alpha1.CanaryProgressing, Baseline: "v1", CanaryWeight: 50,
		Weights: map[string]int32{"v1": 50, "v2": 50}, LastStepTime: &now,
	}
	cr.Status.ObservedGeneration = 1
	for i := range history {
		w := int32(min(100, 10*(i+1)))
		cr.Status.History = append(cr.Status.History, v1alpha1.ReleaseStep{Time: now, Policy: "TimedCanaryRelease",
			Weights: map[string]int32{"v1": 100 - w, "v2": w}, Phase: "Progressing", Message: fmt.Sprintf("canary v2 at %d%%", w)})
	}
	for _, ty := range []string{v1alpha1.ConditionReady, v1alpha1.ConditionPoliciesApplied, v1alpha1.ConditionTrafficShifted} {
		cr.Status.Conditions = append(cr.Status.Conditions, metav1.Condition{Type: ty, Status: metav1.ConditionTrue, Reason: "Ready",
			Message: "Progressing: v2 at 50%, v1 at 50%", LastTransitionTime: metav1.Now(), ObservedGeneration: 1})
	}
	cr.Status.Decisions = []v1alpha1.PolicyDecision{{Policy: "TimedCanaryRelease", Outcome: "Step", Message: "canary v2 at 50%", Time: ptr.To(metav1.Now())}}
	if err := c.Status().Update(ctx, cr); err != nil {
		b.Fatal(err)
	}
	return cr
}

// timeWrites runs write b.N times, one after the other, and reports the
// API server's and etcd's CPU per write.
func timeWrites(b *testing.B, name string, write func(i int) error) {
	b.Run(name, func(b *testing.B) {
		cpu := processCPU(b, map[string]int{})
		i := 0
		for b.Loop() {
			if err := write(i); err != nil {
				b.Fatal(err)
			}
			i++
		}
		use := cpu()
		b.ReportMetric(use.seconds["kube-apiserver"]*1000/float64(i), "apiserver-cpu-ms/op")
		b.ReportMetric(use.seconds["etcd"]*1000/float64(i), "etcd-cpu-ms/op")
	})
}
