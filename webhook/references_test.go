package webhook

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/scheme"
)

// Delete protection reads the tree's description: a Project, a Cluster or
// a VirtualCluster with children is refused, naming them; kinds the tree
// does not protect are not.
func TestValidateDeleteNamesTheChildren(t *testing.T) {
	objs := []v1alpha1.Object{
		&v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod"}, Spec: v1alpha1.ClusterSpec{Project: "shop"}},
		&v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: v1alpha1.ClusterSpec{Project: "elsewhere"}},
		&v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1alpha1.VirtualClusterSpec{Cluster: "prod"}},
		&v1alpha1.Route{ObjectMeta: metav1.ObjectMeta{Name: "front", Namespace: "web"}},
		&v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "front-v2", Namespace: "web"}, Spec: v1alpha1.CanaryReleaseSpec{Route: "front"}},
	}
	b := fake.NewClientBuilder().WithScheme(scheme.New())
	for _, o := range objs {
		b = b.WithObjects(o)
	}
	a := newAdmission(t)
	a.Reader = b.Build()
	ctx := context.Background()
	for _, tc := range []struct {
		obj  v1alpha1.Object
		want string
	}{
		{objs[0], `Project "shop" still has 1 child: Cluster/prod;`},
		{objs[1], `Cluster "prod" still has 1 child: VirtualCluster/web;`},
		{objs[3], `VirtualCluster "web" still has 2 children: Route/front, CanaryRelease/front-v2;`},
		{objs[2], ""},
		{objs[4], ""},
	} {
		_, err := a.ValidateDelete(ctx, tc.obj)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("deleting %s %s is refused: %v", KindOf(tc.obj), tc.obj.GetName(), err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("deleting %s %s: %v, want %q", KindOf(tc.obj), tc.obj.GetName(), err, tc.want)
		}
	}
	annotated := objs[0].DeepCopyObject().(v1alpha1.Object)
	annotated.SetAnnotations(map[string]string{v1alpha1.AnnotationDeleteChildren: "true"})
	if _, err := a.ValidateDelete(ctx, annotated); err != nil {
		t.Errorf("an annotated Project is refused: %v", err)
	}
}

// Deleting a release is never refused; one still shifting traffic is
// warned of, with its split and where the traffic goes.
func TestValidateDeleteWarnsOfAShiftingRelease(t *testing.T) {
	a := newAdmission(t)
	release := func(phase v1alpha1.CanaryPhase, weights map[string]int32) *v1alpha1.CanaryRelease {
		return &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "reviews-v2", Namespace: "bookinfo"},
			Spec:   v1alpha1.CanaryReleaseSpec{Route: "reviews", Destination: "reviews", Subset: "v2"},
			Status: v1alpha1.CanaryReleaseStatus{Phase: phase, Baseline: "v1", Weights: weights}}
	}
	for _, tc := range []struct {
		obj  *v1alpha1.CanaryRelease
		want string
	}{
		{release(v1alpha1.CanaryProgressing, map[string]int32{"v1": 60, "v2": 40}),
			"CanaryRelease reviews-v2 is Progressing with v1 60% / v2 40%: deleting it sends all of that traffic to Route reviews's stable subset v1 at once"},
		{release(v1alpha1.CanaryPaused, map[string]int32{"v1": 80, "v2": 20}), "is Paused with v1 80% / v2 20%"},
		{release(v1alpha1.CanaryPromoted, map[string]int32{"v1": 0, "v2": 100}), ""},
		{release(v1alpha1.CanaryRolledBack, map[string]int32{"v1": 100, "v2": 0}), ""},
		{release(v1alpha1.CanaryPending, map[string]int32{"v1": 100, "v2": 0}), ""},
	} {
		warnings, err := a.ValidateDelete(context.Background(), tc.obj)
		if err != nil {
			t.Errorf("deleting a %s release is refused: %v", tc.obj.Status.Phase, err)
		}
		switch {
		case tc.want == "" && len(warnings) > 0:
			t.Errorf("deleting a %s release warns %q", tc.obj.Status.Phase, warnings)
		case tc.want != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.want)):
			t.Errorf("deleting a %s release warns %q, want %q", tc.obj.Status.Phase, warnings, tc.want)
		}
	}
}
