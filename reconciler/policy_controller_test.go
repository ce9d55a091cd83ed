package reconciler

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/policies"
)

// TestPolicyCompileError covers a Policy that reaches the cluster without
// compiling (admitted while the webhook was down, or by an older Kubist
// with a wider sandbox): the controller reports it and keeps it out of the
// registry, without an error that would retry in a loop. The envtest suite
// covers the paths the webhook leaves open.
func TestPolicyCompileError(t *testing.T) {
	ctx := context.Background()
	compiler, err := policies.NewCompiler(policies.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	registry := policies.NewRegistry()
	broken := &v1alpha1.Policy{
		ObjectMeta: metav1.ObjectMeta{Name: "fetch", Generation: 3},
		Spec:       v1alpha1.PolicySpec{Rego: "# METADATA\n# title: Fetch\n# custom:\n#   kinds: [Route]\npackage policies.fetch\n\ndecision := {\"state\": http.send({}).body}\n"},
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(broken).WithStatusSubresource(broken).Build()
	recorder := events.NewFakeRecorder(10)
	r := &PolicyReconciler{Client: c, Compiler: compiler, Registry: registry, Recorder: recorder}

	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: "fetch"}})
	if err != nil || res.RequeueAfter != 0 {
		t.Fatalf("Reconcile = %+v, %v; a compile error is the user's to fix, not a retry", res, err)
	}
	got := &v1alpha1.Policy{}
	if err := c.Get(ctx, types.NamespacedName{Name: "fetch"}, got); err != nil {
		t.Fatal(err)
	}
	cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionCompiled)
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != ReasonCompileError ||
		!strings.Contains(cond.Message, "policy/fetch.rego:7:23: undefined function http.send") || cond.ObservedGeneration != 3 {
		t.Fatalf("Compiled condition = %+v", cond)
	}
	if _, ok := registry.Policy("fetch"); ok {
		t.Fatal("a Policy that does not compile is in the registry")
	}
	select {
	case e := <-recorder.Events:
		if !strings.HasPrefix(e, "Warning CompileError ") || !strings.Contains(e, "undefined function http.send") {
			t.Fatalf("event = %q, want a Warning CompileError", e)
		}
	default:
		t.Fatal("no Event for the compile error")
	}
	rv := got.ResourceVersion
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: "fetch"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, types.NamespacedName{Name: "fetch"}, got); err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != rv {
		t.Fatal("a second reconcile with nothing new wrote the status again")
	}
	if len(recorder.Events) != 0 {
		t.Fatalf("an Event was emitted again with nothing changed: %q", <-recorder.Events)
	}
}

// TestPolicyReadiness: not ready until every Policy in the cluster has been
// compiled at its current generation.
func TestPolicyReadiness(t *testing.T) {
	ctx := context.Background()
	compiler, err := policies.NewCompiler(policies.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	p := &v1alpha1.Policy{
		ObjectMeta: metav1.ObjectMeta{Name: "pass", Generation: 1},
		Spec:       v1alpha1.PolicySpec{Rego: "# METADATA\n# title: Pass\n# custom:\n#   kinds: [Route]\npackage policies.pass\n\ndecision := {\"state\": input.state}\n"},
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(p).WithStatusSubresource(p).Build()
	elected := make(chan struct{}) // a replica that does not lead
	r := &PolicyReconciler{Client: c, Compiler: compiler, Registry: policies.NewRegistry(), Elected: elected}
	ready := r.LoadedChecker()
	if err := ready(nil); err == nil || !strings.Contains(err.Error(), "policy pass is not loaded yet") {
		t.Fatalf("ready before loading: %v", err)
	}
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: "pass"}}); err != nil {
		t.Fatal(err)
	}
	if err := ready(nil); err != nil {
		t.Fatalf("not ready after loading: %v", err)
	}
	if _, ok := r.Registry.Policy("pass"); !ok {
		t.Fatal("a replica that does not lead must still load the registry")
	}
	got := &v1alpha1.Policy{}
	if err := c.Get(ctx, types.NamespacedName{Name: "pass"}, got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 0 {
		t.Fatal("a replica that does not lead wrote status")
	}
}
