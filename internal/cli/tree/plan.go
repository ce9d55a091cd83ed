package tree

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// WavesTable is a ReleasePlan's waves, one row per VirtualCluster (the
// wave named on its first), with each release's phase and weight: what
// `kubist get plan` prints and the dashboard draws as lanes.
func WavesTable(p *v1alpha1.ReleasePlan) Table {
	t := Table{Head: []string{"WAVE", "PHASE", "STARTED", "PROMOTED", "VIRTUALCLUSTER", "CLUSTER", "MEMBER", "RELEASES"}}
	for _, w := range p.Status.Waves {
		wave := []string{w.Name, string(w.Phase), when(w.Started), when(w.Promoted)}
		if len(w.Members) == 0 {
			t.Rows = append(t.Rows, append(wave, "-", "-", "-", "-"))
		}
		for i, m := range w.Members {
			row := wave
			if i > 0 {
				row = []string{"", "", "", ""}
			}
			releases := make([]string, 0, len(m.Releases))
			for _, r := range m.Releases {
				releases = append(releases, memberRelease(r, p.Status.Subset))
			}
			t.Rows = append(t.Rows, append(row, m.VirtualCluster, m.Cluster, string(m.Phase), strings.Join(releases, ", ")))
		}
	}
	return t
}

// memberRelease is one release of a member, e.g. "web v2 40% Progressing".
func memberRelease(r v1alpha1.PlanMemberRelease, subset string) string {
	switch {
	case r.Problem != "":
		return fmt.Sprintf("%s: %s", r.Route, r.Problem)
	case r.Name == "":
		return r.Route + " -"
	}
	s := fmt.Sprintf("%s %s %d%% %s", r.Route, subset, r.CanaryWeight, r.Phase)
	if r.Reverted != "" {
		s += " (reverted by " + r.Reverted + ")"
	}
	return s
}

// WaveMetricsTable is each wave's figures per subset across its clusters.
func WaveMetricsTable(p *v1alpha1.ReleasePlan) Table {
	t := Table{Head: []string{"WAVE", "SUBSET", "REQUESTS", "ERROR RATE", "P99 MS"}}
	for _, w := range p.Status.Waves {
		for _, m := range w.Metrics {
			t.Rows = append(t.Rows, []string{w.Name, m.Subset, cmp.Or(m.Requests, "-"), cmp.Or(m.ErrorRate, "-"), cmp.Or(m.LatencyP99Ms, "-")})
		}
	}
	return t
}
