package reconciler

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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

// kubist_canary_weight and kubist_canary_served_percent come from the
// releases' statuses, on the leader only, and for a shard only its own
// releases.
func TestWeightsCollector(t *testing.T) {
	project := &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "eu", Labels: map[string]string{v1alpha1.LabelShard: "eu"}}}
	cluster := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "eu-1"}, Spec: v1alpha1.ClusterSpec{Project: "eu"}}
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.VirtualClusterSpec{Cluster: "eu-1"}}
	cr := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	cr.Status.Weights = map[string]int32{"v1": 70, "v2": 30}
	cr.Status.Served = &v1alpha1.ServedSplit{Percent: map[string]int32{"v1": 69, "v2": 31}}
	other := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "elsewhere"}}
	other.Status.Weights = map[string]int32{"v1": 100}
	ex := &v1alpha1.Experiment{ObjectMeta: metav1.ObjectMeta{Name: "ab", Namespace: "shop"}}
	ex.Status.Weights = map[string]int32{"a": 50, "b": 50}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(project, cluster, vc, cr, other, ex).Build()

	collect := func(shard string, elected bool) map[string]float64 {
		ch := make(chan struct{})
		if elected {
			close(ch)
		}
		w := &releaseCollector{}
		w.export(&Reconciler{Client: c, Shard: shard}, ch)
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(w)
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				l := map[string]string{}
				for _, p := range m.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				name := strings.TrimPrefix(f.GetName(), "kubist_canary_")
				got[name+" "+l["namespace"]+"/"+l["name"]+"/"+l["subset"]] = m.GetGauge().GetValue()
			}
		}
		return got
	}
	all := map[string]float64{"weight shop/web/v1": 70, "weight shop/web/v2": 30, "served_percent shop/web/v1": 69, "served_percent shop/web/v2": 31,
		"weight elsewhere/api/v1": 100, "weight shop/ab/a": 50, "weight shop/ab/b": 50}
	if got := collect("", true); !maps.Equal(got, all) {
		t.Errorf("unsharded leader exports %v, want %v", got, all)
	}
	if got := collect("", false); len(got) != 0 {
		t.Errorf("a replica not elected exports %v", got)
	}
	eu := map[string]float64{"weight shop/web/v1": 70, "weight shop/web/v2": 30, "served_percent shop/web/v1": 69, "served_percent shop/web/v2": 31,
		"weight shop/ab/a": 50, "weight shop/ab/b": 50}
	if got := collect("eu", true); !maps.Equal(got, eu) {
		t.Errorf("shard eu exports %v, want %v", got, eu)
	}
	// The Project of "elsewhere" cannot be found: the default shard's.
	if got := collect(DefaultShard, true); !maps.Equal(got, map[string]float64{"weight elsewhere/api/v1": 100}) {
		t.Errorf("the default shard exports %v", got)
	}
}
