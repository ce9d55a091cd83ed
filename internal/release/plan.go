package release

import (
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Where a ReleasePlan releases: its executor places the VirtualClusters in
// its waves, and admission refuses a plan that would release a Route that
// another plan releases, with the same code.

// PlanTarget is a VirtualCluster a plan reaches, in its Cluster.
type PlanTarget struct {
	VirtualCluster, Cluster, Namespace string
}

// Placement is a plan's waves, each with its VirtualClusters (by name),
// and how many it reaches that no wave selects.
type Placement struct {
	Waves    [][]PlanTarget
	Unplaced int
}

// selector converts a label selector, nil selecting everything.
func selector(s *metav1.LabelSelector, path *field.Path) (labels.Selector, *field.Error) {
	if s == nil {
		return labels.Everything(), nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil, field.Invalid(path, s, err.Error())
	}
	return sel, nil
}

// Selectors checks a plan's label selectors.
func Selectors(spec *v1alpha1.ReleasePlanSpec) field.ErrorList {
	var errs field.ErrorList
	path := field.NewPath("spec")
	if _, err := selector(spec.Clusters, path.Child("clusters")); err != nil {
		errs = append(errs, err)
	}
	if _, err := selector(spec.VirtualClusters, path.Child("virtualClusters")); err != nil {
		errs = append(errs, err)
	}
	for i, w := range spec.Waves {
		if _, err := selector(w.Clusters, path.Child("waves").Index(i).Child("clusters")); err != nil {
			errs = append(errs, err)
		}
		if _, err := selector(w.VirtualClusters, path.Child("waves").Index(i).Child("virtualClusters")); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Place puts each VirtualCluster of the plan's Project that its selectors
// reach in the first wave that selects it and its Cluster. A wave that has
// started keeps the VirtualClusters its status records, and they are in
// no other wave. A VirtualCluster's management namespace is named after it.
func Place(p *v1alpha1.ReleasePlan, clusters []v1alpha1.Cluster, vcs []v1alpha1.VirtualCluster) (Placement, error) {
	if errs := Selectors(&p.Spec); len(errs) > 0 {
		return Placement{}, errs.ToAggregate()
	}
	sel := func(s *metav1.LabelSelector) labels.Selector { l, _ := selector(s, nil); return l }
	byName := map[string]*v1alpha1.Cluster{}
	for i := range clusters {
		if c := &clusters[i]; c.Spec.Project == p.Spec.Project && sel(p.Spec.Clusters).Matches(labels.Set(c.Labels)) {
			byName[c.Name] = c
		}
	}
	out := Placement{Waves: make([][]PlanTarget, len(p.Spec.Waves))}
	placed := map[string]bool{}
	for i := range p.Spec.Waves {
		if i < len(p.Status.Waves) && p.Status.Waves[i].Started != nil {
			for _, m := range p.Status.Waves[i].Members {
				out.Waves[i] = append(out.Waves[i], PlanTarget{VirtualCluster: m.VirtualCluster, Cluster: m.Cluster, Namespace: m.Namespace})
				placed[m.VirtualCluster] = true
			}
		}
	}
	sorted := slices.Clone(vcs)
	slices.SortFunc(sorted, func(a, b v1alpha1.VirtualCluster) int { return strings.Compare(a.Name, b.Name) })
	for _, vc := range sorted {
		c, ok := byName[vc.Spec.Cluster]
		if !ok || placed[vc.Name] || !sel(p.Spec.VirtualClusters).Matches(labels.Set(vc.Labels)) {
			continue
		}
		wave := slices.IndexFunc(p.Spec.Waves, func(w v1alpha1.ReleaseWave) bool {
			return sel(w.Clusters).Matches(labels.Set(c.Labels)) && sel(w.VirtualClusters).Matches(labels.Set(vc.Labels))
		})
		if wave < 0 {
			out.Unplaced++
			continue
		}
		if len(p.Status.Waves) > wave && p.Status.Waves[wave].Started != nil {
			// The wave started without it: it is released by no wave.
			out.Unplaced++
			continue
		}
		out.Waves[wave] = append(out.Waves[wave], PlanTarget{VirtualCluster: vc.Name, Cluster: c.Name, Namespace: vc.Name})
	}
	return out, nil
}

// Namespaces are the management namespaces a placement reaches, each with
// its wave's name.
func (pl Placement) Namespaces(p *v1alpha1.ReleasePlan) map[string]string {
	out := map[string]string{}
	for i, w := range pl.Waves {
		for _, t := range w {
			out[t.Namespace] = p.Spec.Waves[i].Name
		}
	}
	return out
}

// Covering is the wave of an unfinished plan that releases a Route in a
// namespace, as its status says; ok is false when the plan does not.
func Covering(p *v1alpha1.ReleasePlan, namespace, route string) (wave string, ok bool) {
	if p.Status.Phase.Ended() || !slices.Contains(p.Spec.Routes, route) {
		return "", false
	}
	for _, w := range p.Status.Waves {
		for _, m := range w.Members {
			if m.Namespace == namespace {
				return w.Name, true
			}
		}
	}
	return "", false
}
