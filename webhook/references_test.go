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
		err := a.ValidateDelete(ctx, tc.obj)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("deleting %s %s is refused: %v", KindOf(tc.obj), tc.obj.GetName(), err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("deleting %s %s: %v, want %q", KindOf(tc.obj), tc.obj.GetName(), err, tc.want)
		}
	}
	annotated := objs[0].DeepCopyObject().(v1alpha1.Object)
	annotated.SetAnnotations(map[string]string{v1alpha1.AnnotationDeleteChildren: "true"})
	if err := a.ValidateDelete(ctx, annotated); err != nil {
		t.Errorf("an annotated Project is refused: %v", err)
	}
}
