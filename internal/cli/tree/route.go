package tree

import (
	"cmp"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Table is rows of text under a head: what `kubist get route` prints and
// the dashboard draws of a Route.
type Table struct {
	Head []string   `json:"head"`
	Rows [][]string `json:"rows"`
}

// StableTable is a Route's stable subset per rule and Destination: what
// its spec names, since when the stable one is stable, and who made it so.
func StableTable(r *v1alpha1.Route) Table {
	t := Table{Head: []string{"RULE", "DESTINATION", "STABLE", "SPEC", "SINCE", "BY"}}
	for _, e := range r.Status.Stable {
		by := "the spec"
		if e.Release != "" {
			by = e.Release + " " + e.Outcome
		}
		t.Rows = append(t.Rows, []string{e.Rule, e.Destination, e.Subset, e.SpecSubset, when(e.Since), by})
	}
	return t
}

// ReleasesTable is the releases that ended on a Route, oldest first.
func ReleasesTable(r *v1alpha1.Route) Table {
	t := Table{Head: []string{"RELEASE", "FROM", "TO", "STARTED", "ENDED", "OUTCOME", "BY", "MESSAGE"}}
	for _, h := range r.Status.Releases {
		t.Rows = append(t.Rows, []string{h.Release, cmp.Or(h.Baseline, "-"), h.Subset,
			when(h.Started), when(&h.Ended), h.Outcome, cmp.Or(h.DecidedBy, "-"), h.Message})
	}
	return t
}

// when is a time of a Route's status, in UTC to the second.
func when(t *metav1.MicroTime) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.DateTime)
}
