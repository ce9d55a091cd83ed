package reconciler

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/scheme"
)

func TestShardOwnership(t *testing.T) {
	ctx := context.Background()
	labelled := &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "eu", Labels: map[string]string{v1alpha1.LabelShard: "eu"}}}
	plain := &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}
	cluster := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "eu-1"}, Spec: v1alpha1.ClusterSpec{Project: "eu"}}
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.VirtualClusterSpec{Cluster: "eu-1"}}
	cr := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	orphan := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "nowhere"}}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(labelled, plain, cluster, vc).Build()

	for _, tc := range []struct {
		shard string
		obj   v1alpha1.Object
		want  bool
	}{
		{"", labelled, true}, {"", cr, true}, {"", orphan, true},
		{"eu", labelled, true}, {"eu", cluster, true}, {"eu", vc, true}, {"eu", cr, true},
		{"eu", plain, false}, {"eu", orphan, false},
		{DefaultShard, plain, true}, {DefaultShard, labelled, false}, {DefaultShard, cr, false},
		// A resource whose Project cannot be found yet is the default
		// shard's, which reports what is missing.
		{DefaultShard, orphan, true},
		{"us", cr, false}, {"us", labelled, false},
	} {
		rc := &Reconciler{Client: c, Shard: tc.shard}
		if got, _ := rc.owns(ctx, tc.obj); got != tc.want {
			t.Errorf("shard %q owns %T %s/%s: %v, want %v", tc.shard, tc.obj, tc.obj.GetNamespace(), tc.obj.GetName(), got, tc.want)
		}
	}

	// A Project a shard runs for the first time passes its run on to its
	// tree (it may have just moved there); not the second time.
	rc := &Reconciler{Client: c, Shard: "eu"}
	if _, joined := rc.owns(ctx, labelled); !joined {
		t.Error("a Project's first run in its shard is not marked as joining")
	}
	if _, joined := rc.owns(ctx, labelled); joined {
		t.Error("a Project's second run in its shard is marked as joining")
	}
}
