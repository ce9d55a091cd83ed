package reconciler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/release"
)

// Condition and reasons of a Route's stable subsets.
const (
	ConditionStableInSpec = "StableInSpec"
	ReasonSpecAgrees      = "SpecAgrees"
	ReasonSpecBehind      = "SpecBehind"
)

// ruleKey names a rule in the Route's status: its name, or http[i].
func ruleKey(route *v1alpha1.RouteSpec, i int) string {
	return cmp.Or(route.HTTP[i].Name, fmt.Sprintf("http[%d]", i))
}

// specSubsets are, for each Destination a rule routes to, the one subset
// it names for it; a Destination it splits between subsets (or sends to
// all of its pods) has none.
func specSubsets(rule *v1alpha1.HTTPRoute) map[string]string {
	out := map[string]string{}
	several := map[string]bool{}
	for _, d := range rule.Route {
		if prev, ok := out[d.Destination]; (ok && prev != d.Subset) || d.Subset == "" {
			several[d.Destination] = true
		}
		out[d.Destination] = d.Subset
	}
	for d := range several {
		delete(out, d)
	}
	return out
}

// ended is when a release's split ended, and on which subset: nil for a
// release still shifting traffic (or a Paused one, which a person may
// resume).
func (l liveWeights) ended() (*metav1.MicroTime, string) {
	if l.end == nil {
		return nil, ""
	}
	for subset, w := range l.weights {
		if w == 100 {
			return l.end, subset
		}
	}
	return nil, ""
}

// stableSubsets works out a Route's stable subsets: for each rule and
// Destination it sends one subset, what the status recorded (or the spec's
// subset, the first time and whenever a person changed the spec since),
// moved to where a release ended since (releases taken in the order they
// ended). It is a function of the spec, the status and the releases: run
// again, it records nothing new.
func stableSubsets(route *v1alpha1.Route, live []liveWeights, now metav1.MicroTime) []v1alpha1.StableSubset {
	type key struct{ rule, destination string }
	recorded := map[key]v1alpha1.StableSubset{}
	for _, e := range route.Status.Stable {
		recorded[key{e.Rule, e.Destination}] = e
	}
	var ended []liveWeights
	for _, l := range live {
		if at, _ := l.ended(); at != nil {
			ended = append(ended, l)
		}
	}
	slices.SortStableFunc(ended, func(a, b liveWeights) int { return a.end.Compare(b.end.Time) })
	created := metav1.NewMicroTime(route.CreationTimestamp.Time)
	var out []v1alpha1.StableSubset
	for i := range route.Spec.HTTP {
		rule := &route.Spec.HTTP[i]
		named := specSubsets(rule)
		for _, destination := range sortedKeys(named) {
			subset := named[destination]
			k := key{ruleKey(&route.Spec, i), destination}
			e, ok := recorded[k]
			switch {
			case !ok:
				// Releases that ended before the first record still count:
				// since the Route was created.
				e = v1alpha1.StableSubset{Rule: k.rule, Destination: destination, Subset: subset, SpecSubset: subset, Since: &created}
			case e.SpecSubset != subset:
				// A person changed the spec: it wins over what ended before.
				e = v1alpha1.StableSubset{Rule: k.rule, Destination: destination, Subset: subset, SpecSubset: subset, Since: &now}
			}
			for _, l := range ended {
				at, winner := l.ended()
				if l.destination != destination || !appliesToStable(rule, l, e.Subset) || (e.Since != nil && !at.After(e.Since.Time)) {
					continue
				}
				if winner != e.Subset {
					e.Subset, e.Release, e.Outcome, e.Since = winner, l.source, l.phase, at.DeepCopy()
				}
			}
			out = append(out, e)
		}
	}
	return out
}

// appliesToStable says whether a release applies to a rule whose
// Destination's stable subset is stable: the rule it names, or else a rule
// whose stable subset is its baseline.
func appliesToStable(rule *v1alpha1.HTTPRoute, l liveWeights, stable string) bool {
	if l.httpRoute != "" {
		return rule.Name == l.httpRoute
	}
	return l.baseline == stable
}

// withStable sends each rule's traffic for a Destination to its stable
// subset where that is not the subset the spec names.
func withStable(spec *v1alpha1.RouteSpec, stable []v1alpha1.StableSubset) {
	for i := range spec.HTTP {
		rule := &spec.HTTP[i]
		for _, e := range stable {
			if e.Rule != ruleKey(spec, i) || e.Subset == e.SpecSubset {
				continue
			}
			for j := range rule.Route {
				if rule.Route[j].Destination == e.Destination {
					rule.Route[j].Subset = e.Subset
				}
			}
		}
	}
}

// stableCondition says on the Route whether its spec names its stable
// subsets and, where it does not, the change that would make it.
func stableCondition(s *scope, route *v1alpha1.Route, stable []v1alpha1.StableSubset) {
	var behind []string
	for _, e := range stable {
		if e.Subset == e.SpecSubset {
			continue
		}
		field := ""
		for i := range route.Spec.HTTP {
			if ruleKey(&route.Spec, i) != e.Rule {
				continue
			}
			for j, d := range route.Spec.HTTP[i].Route {
				if d.Destination == e.Destination && field == "" {
					field = fmt.Sprintf("spec.http[%d].route[%d].subset", i, j)
				}
			}
		}
		how := "was made stable"
		if e.Release != "" {
			how = fmt.Sprintf("is stable since %s %s", e.Release, e.Outcome)
		}
		behind = append(behind, fmt.Sprintf("rule %s sends %s to %s, which %s; the spec names %s: set %s to %s to commit it",
			e.Rule, e.Destination, e.Subset, how, e.SpecSubset, field, e.Subset))
	}
	if len(behind) == 0 {
		s.condition(ConditionStableInSpec, true, ReasonSpecAgrees, "the spec names every stable subset")
		return
	}
	s.condition(ConditionStableInSpec, false, ReasonSpecBehind, strings.Join(behind, "; "))
}

// endOf is what a Route's history keeps of a release that ended at end.
func endOf(c *v1alpha1.CanaryRelease, end metav1.MicroTime) v1alpha1.RouteRelease {
	r := v1alpha1.RouteRelease{Release: "CanaryRelease/" + c.Name, Destination: c.Spec.Destination, Baseline: c.Status.Baseline,
		Subset: c.Spec.Subset, Started: ptr.To(metav1.NewMicroTime(c.CreationTimestamp.Time)), Ended: end, Outcome: string(c.Status.Phase)}
	if h := c.Status.History; len(h) > 0 {
		step := h[len(h)-1]
		r.DecidedBy, r.Message = release.DecidedBy(step), step.Message
		if len(r.Message) > 1024 {
			r.Message = r.Message[:1021] + "..."
		}
	}
	return r
}

// releaseHistory adds the releases that ended and are not in a Route's
// history yet, in the order they ended, and keeps the last
// RouteHistoryLimit. Run again, it adds nothing.
func releaseHistory(kept []v1alpha1.RouteRelease, live []liveWeights) []v1alpha1.RouteRelease {
	out := slices.Clone(kept)
	for _, l := range live {
		if l.end == nil || recorded(kept, l.last) {
			continue
		}
		out = append(out, l.last)
	}
	if len(out) == len(kept) {
		return kept
	}
	slices.SortStableFunc(out, func(a, b v1alpha1.RouteRelease) int { return a.Ended.Compare(b.Ended.Time) })
	return out[max(0, len(out)-v1alpha1.RouteHistoryLimit):]
}

// recorded says whether a Route's history holds a release's end, or has
// already let older ends go.
func recorded(history []v1alpha1.RouteRelease, r v1alpha1.RouteRelease) bool {
	if len(history) == v1alpha1.RouteHistoryLimit && r.Ended.Before(&history[0].Ended) {
		return true
	}
	return slices.ContainsFunc(history, func(h v1alpha1.RouteRelease) bool { return h.Release == r.Release && h.Ended.Equal(&r.Ended) })
}

// stableSummary renders stable subsets for kubectl get: "testers: v2,
// default: v4", each Destination's subset after the rule's name (and the
// Destination's where a rule has several: "default: reviews v4").
func stableSummary(stable []v1alpha1.StableSubset) string {
	perRule := map[string]int{}
	for _, e := range stable {
		perRule[e.Rule]++
	}
	parts := make([]string, 0, len(stable))
	for _, e := range stable {
		if perRule[e.Rule] > 1 {
			parts = append(parts, fmt.Sprintf("%s: %s %s", e.Rule, e.Destination, e.Subset))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s", e.Rule, e.Subset))
	}
	return strings.Join(parts, ", ")
}
