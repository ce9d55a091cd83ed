package release

import (
	"cmp"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// SubsetVersions are a Destination's subsets (as last applied, or else
// as declared) and, for each whose version its Application reports, that
// version: a declared subset runs the version its labels name (the
// Application's version label), a found one the version of its name.
func SubsetVersions(d *v1alpha1.Destination, app *v1alpha1.Application) ([]string, map[string]v1alpha1.ApplicationVersion) {
	label := cmp.Or(app.Spec.VersionLabel, "version")
	byName := map[string]v1alpha1.ApplicationVersion{}
	for _, v := range app.Status.Versions {
		byName[v.Name] = v
	}
	subsets := slices.Clone(d.Status.Subsets)
	versionOf := map[string]string{}
	for _, s := range d.Spec.Subsets {
		versionOf[s.Name] = s.Labels[label]
		if len(d.Status.Subsets) == 0 {
			subsets = append(subsets, s.Name)
		}
	}
	versions := map[string]v1alpha1.ApplicationVersion{}
	for _, s := range subsets {
		if v, ok := byName[cmp.Or(versionOf[s], s)]; ok {
			versions[s] = v
		}
	}
	return subsets, versions
}

// Ready says whether every replica of a version is ready (and it has
// some).
func Ready(v v1alpha1.ApplicationVersion) bool {
	return v.Replicas > 0 && v.ReadyReplicas >= v.Replicas
}

// Newest is the ready subset whose version was created last, among those
// ok admits; "" without one.
func Newest(subsets []string, versions map[string]v1alpha1.ApplicationVersion, ok func(subset string, v v1alpha1.ApplicationVersion) bool) string {
	newest := ""
	var at metav1.Time
	for _, s := range subsets {
		v, found := versions[s]
		if !found || v.Created == nil || !Ready(v) || !ok(s, v) {
			continue
		}
		if newest == "" || at.Before(v.Created) {
			newest, at = s, *v.Created
		}
	}
	return newest
}
