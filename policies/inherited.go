package policies

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Level is a Project, Cluster or VirtualCluster above a release, with the
// policies it adds to the release's chain (releasePolicies).
type Level struct {
	Kind, Name string
	Refs       []v1alpha1.PolicyRef
}

// from is how a release's status and errors name the level.
func (l Level) from() string { return l.Kind + " " + l.Name }

// EffectiveChain is a release's chain with the policies the levels above
// it add: its own step policies (those before its first gate), then each
// level's step policies from the top, then the rest of its own, then each
// level's gates. A level's policy that does not apply to the kind is
// left out; one that is unknown or whose parameters are wrong is an error
// at Project[NAME].spec.releasePolicies[i] (or Cluster, VirtualCluster).
// It also returns the chain's policies with where each comes from, nil
// when no level adds one.
func (r *Registry) EffectiveChain(kind string, own Chain, levels []Level) (Chain, []v1alpha1.EffectivePolicy, field.ErrorList) {
	var steps, gates Chain
	var stepsFrom, gatesFrom []string
	var errs field.ErrorList
	for _, l := range levels {
		path := field.NewPath(l.Kind).Key(l.Name).Child("spec", "releasePolicies")
		for i, ref := range l.Refs {
			if p, ok := r.Policy(ref.Name); ok && !p.AppliesTo(kind) {
				continue
			}
			step, serrs := r.Step(kind, ref, path.Index(i))
			switch {
			case len(serrs) > 0:
				errs = append(errs, serrs...)
			case step.Policy.Gate:
				gates, gatesFrom = append(gates, step), append(gatesFrom, l.from())
			default:
				steps, stepsFrom = append(steps, step), append(stepsFrom, l.from())
			}
		}
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	if len(steps)+len(gates) == 0 {
		return own, nil, nil
	}
	split := len(own)
	for i, step := range own {
		if step.Policy.Gate {
			split = i
			break
		}
	}
	chain := make(Chain, 0, len(own)+len(steps)+len(gates))
	chain = append(append(append(append(chain, own[:split]...), steps...), own[split:]...), gates...)
	from := make([]string, 0, len(chain))
	from = append(append(append(append(from, make([]string, split)...), stepsFrom...), make([]string, len(own)-split)...), gatesFrom...)
	effective := make([]v1alpha1.EffectivePolicy, len(chain))
	for i, step := range chain {
		effective[i] = v1alpha1.EffectivePolicy{Name: step.Policy.Name, From: from[i]}
	}
	return chain, effective, nil
}
