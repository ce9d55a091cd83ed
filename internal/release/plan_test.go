package release

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Place puts each VirtualCluster in the first wave that selects it and
// its Cluster, the rest in a wave without selectors; a wave that started
// keeps the VirtualClusters it had; another Project's are not reached.
func TestPlace(t *testing.T) {
	cluster := func(name, project string, labels map[string]string) v1alpha1.Cluster {
		return v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: v1alpha1.ClusterSpec{Project: project}}
	}
	vc := func(name, cluster string, labels map[string]string) v1alpha1.VirtualCluster {
		return v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: v1alpha1.VirtualClusterSpec{Cluster: cluster}}
	}
	clusters := []v1alpha1.Cluster{
		cluster("canary", "shop", map[string]string{"ring": "canary"}),
		cluster("eu-1", "shop", map[string]string{"region": "eu"}),
		cluster("us-1", "shop", map[string]string{"region": "us"}),
		cluster("other", "elsewhere", map[string]string{"region": "eu"}),
	}
	vcs := []v1alpha1.VirtualCluster{
		vc("shop-canary", "canary", nil), vc("shop-eu", "eu-1", nil), vc("shop-eu-staging", "eu-1", map[string]string{"stage": "test"}),
		vc("shop-us", "us-1", nil), vc("other", "other", nil),
	}
	p := &v1alpha1.ReleasePlan{Spec: v1alpha1.ReleasePlanSpec{Project: "shop",
		VirtualClusters: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "stage", Operator: metav1.LabelSelectorOpDoesNotExist}}},
		Waves: []v1alpha1.ReleaseWave{
			{Name: "canary", Clusters: &metav1.LabelSelector{MatchLabels: map[string]string{"ring": "canary"}}},
			{Name: "eu", Clusters: &metav1.LabelSelector{MatchLabels: map[string]string{"region": "eu"}}},
		}}}
	names := func(pl Placement) [][]string {
		out := make([][]string, len(pl.Waves))
		for i, w := range pl.Waves {
			out[i] = []string{}
			for _, t := range w {
				out[i] = append(out[i], t.VirtualCluster)
			}
		}
		return out
	}
	pl, err := Place(p, clusters, vcs)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(pl); len(got) != 2 || len(got[0]) != 1 || got[0][0] != "shop-canary" || len(got[1]) != 1 || got[1][0] != "shop-eu" || pl.Unplaced != 1 {
		t.Fatalf("placed %v, %d unplaced; want [[shop-canary] [shop-eu]] and shop-us unplaced", got, pl.Unplaced)
	}

	// A wave of the rest takes shop-us; once the eu wave started, a new
	// VirtualCluster selected by it is in no wave.
	p.Spec.Waves = append(p.Spec.Waves, v1alpha1.ReleaseWave{Name: "rest"})
	p.Status.Waves = []v1alpha1.WaveStatus{{Name: "canary"}, {Name: "eu", Started: &metav1.MicroTime{},
		Members: []v1alpha1.PlanMember{{VirtualCluster: "shop-eu", Cluster: "eu-1", Namespace: "shop-eu"}}}}
	pl, err = Place(p, clusters, append(vcs, vc("shop-eu-2", "eu-1", nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(pl); len(got[2]) != 1 || got[2][0] != "shop-us" || len(got[1]) != 1 || pl.Unplaced != 1 {
		t.Fatalf("placed %v, %d unplaced; want the started wave eu kept as it was, shop-us in rest, shop-eu-2 unplaced", got, pl.Unplaced)
	}
	if ns := pl.Namespaces(p); ns["shop-eu"] != "eu" || ns["shop-us"] != "rest" {
		t.Fatalf("namespaces %v", ns)
	}

	// A selector that does not parse is an error at its field.
	p.Spec.Waves[0].Clusters = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "ring", Operator: "Near"}}}
	if errs := Selectors(&p.Spec); len(errs) != 1 || errs[0].Field != "spec.waves[0].clusters" {
		t.Fatalf("errors %v, want one at spec.waves[0].clusters", errs)
	}
}
