package reconciler

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// errObserveWrote is what a write through readOnlyClient returns.
var errObserveWrote = errors.New("Observe wrote")

// readOnlyClient fails every write, to the management cluster and to the
// target cluster alike, and counts the attempts.
func readOnlyClient(c client.WithWatch, writes *int) client.WithWatch {
	fail := func() error { *writes++; return errObserveWrote }
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error { return fail() },
		Update: func(context.Context, client.WithWatch, client.Object, ...client.UpdateOption) error { return fail() },
		Patch: func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
			return fail()
		},
		Apply: func(context.Context, client.WithWatch, runtime.ApplyConfiguration, ...client.ApplyOption) error {
			return fail()
		},
		Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error { return fail() },
		DeleteAllOf: func(context.Context, client.WithWatch, client.Object, ...client.DeleteAllOfOption) error {
			return fail()
		},
		SubResourceCreate: func(context.Context, client.Client, string, client.Object, client.Object, ...client.SubResourceCreateOption) error {
			return fail()
		},
		SubResourceUpdate: func(context.Context, client.Client, string, client.Object, ...client.SubResourceUpdateOption) error {
			return fail()
		},
		SubResourcePatch: func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
			return fail()
		},
	})
}

// observeOnly runs an executor's Observe alone.
func observeOnly[T v1alpha1.Object, P any](t *testing.T, r *Reconciler, x Executor[T, P], kind, executor string, obj T) (P, error) {
	t.Helper()
	return x.Observe(context.Background(), phaseRun(t, r, kind, executor, obj), obj)
}

// Observe only reads, for every executor: a client that fails any write
// stands for the manager's and the target cluster's. The canary and the
// experiment have ReleaseActions waiting — one their history records
// already, one asked of an earlier release of the same name, one they
// refuse — which the old Observe answered itself; now it decides the
// answers and the pipeline writes them (TestPipelineAnswersActions).
func TestObserveWritesNothing(t *testing.T) {
	last := metav1.NewMicroTime(phaseNow.Add(-time.Minute))
	canary := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web-v2", Namespace: "shop", UID: "canary", Generation: 1},
		Spec:   v1alpha1.CanaryReleaseSpec{Route: "web", Destination: "web", Subset: "v2"},
		Status: v1alpha1.CanaryReleaseStatus{Baseline: "v1", Weights: map[string]int32{"v1": 80, "v2": 20}, Phase: v1alpha1.CanaryProgressing, LastStepTime: &last}}
	experiment := &v1alpha1.Experiment{ObjectMeta: metav1.ObjectMeta{Name: "web-ab", Namespace: "shop", UID: "experiment"},
		Spec: v1alpha1.ExperimentSpec{Route: "web", Destination: "web", Subsets: []string{"v1", "v2"}, Goal: v1alpha1.ExperimentGoal{Metric: "errorRate"}}}
	plan := &v1alpha1.ReleasePlan{ObjectMeta: metav1.ObjectMeta{Name: "shop-wide", UID: "plan"},
		Spec: v1alpha1.ReleasePlanSpec{Project: "shop", Routes: []string{"web"}, Subset: "v2", Waves: []v1alpha1.ReleaseWave{{Name: "all"}}}}
	objs := append(phaseTree(), canary, experiment, plan)
	objs = append(objs, waitingActions("CanaryRelease", canary, v1alpha1.ActionRetry)...)
	objs = append(objs, waitingActions("Experiment", experiment, v1alpha1.ActionResume)...)
	canary.Status.History = []v1alpha1.ReleaseStep{{ActionName: "canaryrelease-recorded", Message: "rolled back"}}
	experiment.Status.History = []v1alpha1.ReleaseStep{{ActionName: "experiment-recorded", Message: "paused"}}

	rc := phaseReconciler(t, objs...)
	var writes int
	rc.Client = readOnlyClient(rc.Client.(client.WithWatch), &writes)
	// The target cluster's discovery endpoint: the Cluster executor asks
	// for the server's version.
	version := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"major": "1", "minor": "37", "gitVersion": "v1.37.2"}`))
	}))
	t.Cleanup(version.Close)
	rc.Clusters = &Clusters{Local: rc.Client, LocalConfig: &rest.Config{Host: version.URL}}
	get := func(name string, obj v1alpha1.Object) v1alpha1.Object {
		t.Helper()
		if err := rc.Client.Get(context.Background(), types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}, obj); err != nil {
			t.Fatal(err)
		}
		return obj
	}
	shop := func(obj v1alpha1.Object) v1alpha1.Object { obj.SetNamespace("shop"); return obj }
	c := get("web-v2", shop(&v1alpha1.CanaryRelease{})).(*v1alpha1.CanaryRelease)
	e := get("web-ab", shop(&v1alpha1.Experiment{})).(*v1alpha1.Experiment)
	cases := map[string]func() error{
		"ProjectExecutor": func() error {
			_, err := observeOnly(t, rc, projectExecutor{rc}, "Project", "ProjectExecutor", get("shop", &v1alpha1.Project{}).(*v1alpha1.Project))
			return err
		},
		"ClusterExecutor": func() error {
			_, err := observeOnly(t, rc, clusterExecutor{rc}, "Cluster", "ClusterExecutor", get("shop", &v1alpha1.Cluster{}).(*v1alpha1.Cluster))
			return err
		},
		"VirtualClusterExecutor": func() error {
			_, err := observeOnly(t, rc, virtualClusterExecutor{rc}, "VirtualCluster", "VirtualClusterExecutor", get("shop", &v1alpha1.VirtualCluster{}).(*v1alpha1.VirtualCluster))
			return err
		},
		"ApplicationExecutor": func() error {
			_, err := observeOnly(t, rc, applicationExecutor{rc}, "Application", "ApplicationExecutor", get("web", shop(&v1alpha1.Application{})).(*v1alpha1.Application))
			return err
		},
		"DestinationExecutor": func() error {
			_, err := observeOnly(t, rc, destinationExecutor{r: rc}, "Destination", "DestinationExecutor", get("web", shop(&v1alpha1.Destination{})).(*v1alpha1.Destination))
			return err
		},
		"RouteExecutor": func() error {
			_, err := observeOnly(t, rc, newRouteExecutor(rc, "RouteExecutor"), "Route", "RouteExecutor", get("web", shop(&v1alpha1.Route{})).(*v1alpha1.Route))
			return err
		},
		"GatewayAPIRouteExecutor": func() error {
			_, err := observeOnly(t, rc, newRouteExecutor(rc, "GatewayAPIRouteExecutor"), "Route", "GatewayAPIRouteExecutor", get("web", shop(&v1alpha1.Route{})).(*v1alpha1.Route))
			return err
		},
		"CanaryReleaseExecutor": func() error {
			plan, err := observeOnly(t, rc, canaryExecutor{r: rc}, "CanaryRelease", "CanaryReleaseExecutor", c)
			if err == nil && (len(plan.answers) != 3 || plan.action != nil) {
				t.Errorf("canary: answers %+v, action %v; want the three waiting actions answered and none applied", plan.answers, plan.action)
			}
			return err
		},
		"ExperimentExecutor": func() error {
			plan, err := observeOnly(t, rc, experimentExecutor{r: rc}, "Experiment", "ExperimentExecutor", e)
			if err == nil && (len(plan.answers) != 3 || plan.action != nil) {
				t.Errorf("experiment: answers %+v, action %v; want the three waiting actions answered and none applied", plan.answers, plan.action)
			}
			return err
		},
		"ReleasePlanExecutor": func() error {
			run, err := observeOnly(t, rc, planExecutor{rc}, "ReleasePlan", "ReleasePlanExecutor", get("shop-wide", &v1alpha1.ReleasePlan{}).(*v1alpha1.ReleasePlan))
			if err == nil && (len(run.waves) != 1 || len(run.waves[0]) != 1 || run.waves[0][0].target.VirtualCluster != "shop") {
				t.Errorf("plan: waves %+v; want VirtualCluster shop in its one wave", run.waves)
			}
			return err
		},
	}
	for _, e := range v1alpha1.TreeKindNames() {
		if _, ok := cases[e+"Executor"]; !ok {
			t.Errorf("no case for %sExecutor", e)
		}
	}
	for name, observe := range cases {
		writes = 0
		err := observe()
		if writes > 0 || errors.Is(err, errObserveWrote) {
			t.Errorf("%s: Observe wrote %d times (%v)", name, writes, err)
		}
	}
}

// The pipeline answers the actions Observe decided: the recorded one
// Applied, the stale one and the refused one Refused, an Event for each
// refusal, and a run soon for the action after the refused one.
func TestPipelineAnswersActions(t *testing.T) {
	last := metav1.NewMicroTime(phaseNow.Add(-time.Minute))
	canary := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web-v2", Namespace: "shop", UID: "canary", Generation: 1},
		Spec: v1alpha1.CanaryReleaseSpec{Route: "web", Destination: "web", Subset: "v2"},
		Status: v1alpha1.CanaryReleaseStatus{Baseline: "v1", Weights: map[string]int32{"v1": 80, "v2": 20}, Phase: v1alpha1.CanaryProgressing, LastStepTime: &last,
			Steps: v1alpha1.Steps{History: []v1alpha1.ReleaseStep{{ActionName: "canaryrelease-recorded", Message: "rolled back"}}}}}
	objs := append(append(phaseTree(), canary), waitingActions("CanaryRelease", canary, v1alpha1.ActionRetry)...)
	rc := phaseReconciler(t, objs...)
	c := get(t, rc, "web-v2", &v1alpha1.CanaryRelease{})
	r := phaseRun(t, rc, "CanaryRelease", "CanaryReleaseExecutor", c)
	if err := phases(canaryExecutor{r: rc}).execute(context.Background(), r, c); err != nil {
		t.Fatal(err)
	}
	want := map[string]v1alpha1.ActionPhase{
		"canaryrelease-recorded": v1alpha1.ActionApplied, "canaryrelease-stale": v1alpha1.ActionRefused, "canaryrelease-refused": v1alpha1.ActionRefused,
	}
	for name, phase := range want {
		a := get(t, rc, name, &v1alpha1.ReleaseAction{})
		if a.Status.Phase != phase || a.Status.Message == "" {
			t.Errorf("%s: %s %q, want %s with a message", name, a.Status.Phase, a.Status.Message, phase)
		}
	}
	if r.requeue != time.Millisecond {
		t.Errorf("requeue %v after a refusal, want 1ms (the next action's run)", r.requeue)
	}

	// ReadOnly: nothing is answered.
	rc = phaseReconciler(t, objs...)
	c = get(t, rc, "web-v2", &v1alpha1.CanaryRelease{})
	r = phaseRun(t, rc, "CanaryRelease", "ReadOnlyCanaryReleaseExecutor", c)
	if err := phases(canaryExecutor{r: rc}).execute(context.Background(), r, c); err != nil {
		t.Fatal(err)
	}
	for name := range want {
		if a := get(t, rc, name, &v1alpha1.ReleaseAction{}); a.Status.Phase != "" {
			t.Errorf("read-only answered %s: %s", name, a.Status.Phase)
		}
	}
}

// waitingActions are three Pending ReleaseActions of a release, oldest
// first: "<kind>-recorded" (its history names it), "<kind>-stale" (owned
// by an earlier release of the same name) and "<kind>-refused" (an action
// the release refuses in its state).
func waitingActions(kind string, release v1alpha1.Object, refused v1alpha1.ActionName) []client.Object {
	prefix := map[string]string{"CanaryRelease": "canaryrelease", "Experiment": "experiment"}[kind]
	action := func(name string, at int, a v1alpha1.ActionName, owner types.UID) *v1alpha1.ReleaseAction {
		return &v1alpha1.ReleaseAction{
			ObjectMeta: metav1.ObjectMeta{Name: prefix + "-" + name, Namespace: "shop",
				OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: kind, Name: release.GetName(), UID: owner}}},
			Spec: v1alpha1.ReleaseActionSpec{Target: v1alpha1.ActionTarget{Kind: kind, Name: release.GetName()}, Action: a,
				RequestedAt: ptr.To(metav1.NewMicroTime(phaseNow.Add(time.Duration(at-10) * time.Second)))},
		}
	}
	return []client.Object{
		action("recorded", 1, v1alpha1.ActionPause, release.GetUID()),
		action("stale", 2, v1alpha1.ActionPause, "earlier"),
		action("refused", 3, refused, release.GetUID()),
	}
}
