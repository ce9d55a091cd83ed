package policies_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/catalog"
	"github.com/kubist-io/kubist/policies"
	"github.com/kubist-io/kubist/test/testenv"
)

// TestEffectiveChain: the levels' step policies come after the release's
// own and before its gates, their gates last, the Project's first; a
// policy that does not apply to the kind is left out; a wrong one is an
// error that names its level.
func TestEffectiveChain(t *testing.T) {
	engine, err := catalog.NewEngine(context.Background(), policies.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	registry := engine.Registry
	ref := func(name, params string) v1alpha1.PolicyRef {
		r := v1alpha1.PolicyRef{Name: name}
		if params != "" {
			r.Parameters = testenv.Parameters(t, params)
		}
		return r
	}
	own, errs := registry.Chain("CanaryRelease", []v1alpha1.PolicyRef{ref("TimedCanaryRelease", ""), ref("ManualGate", "")}, field.NewPath("spec", "policies"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	project := policies.Level{Kind: "Project", Name: "shop", Refs: []v1alpha1.PolicyRef{ref("FreezeGate", ""), ref("MirrorThenShift", "")}}
	cluster := policies.Level{Kind: "Cluster", Name: "eu", Refs: []v1alpha1.PolicyRef{ref("BusinessHoursGate", "")}}
	vc := policies.Level{Kind: "VirtualCluster", Name: "web"}

	chain, effective, errs := registry.EffectiveChain("CanaryRelease", own, []policies.Level{project, cluster, vc})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var got []string
	for i, p := range effective {
		got = append(got, p.Name+"<"+p.From+">")
		if chain[i].Policy.Name != p.Name {
			t.Errorf("chain[%d] is %s, effective says %s", i, chain[i].Policy.Name, p.Name)
		}
	}
	want := "TimedCanaryRelease<> MirrorThenShift<Project shop> ManualGate<> FreezeGate<Project shop> BusinessHoursGate<Cluster eu>"
	if strings.Join(got, " ") != want {
		t.Errorf("effective chain %v, want %s", got, want)
	}

	// An Experiment gets the gates only: MirrorThenShift applies to
	// CanaryReleases.
	_, effective, errs = registry.EffectiveChain("Experiment", nil, []policies.Level{project, cluster})
	if len(errs) > 0 || len(effective) != 2 || effective[0].Name != "FreezeGate" || effective[1].Name != "BusinessHoursGate" {
		t.Errorf("an Experiment's effective chain %v (%v), want FreezeGate, BusinessHoursGate", effective, errs)
	}

	// Nothing added: the release's own chain, and no effective list.
	chain, effective, errs = registry.EffectiveChain("CanaryRelease", own, []policies.Level{vc})
	if len(errs) > 0 || effective != nil || len(chain) != 2 {
		t.Errorf("with nothing added: chain %d long, effective %v, errors %v", len(chain), effective, errs)
	}

	bad := policies.Level{Kind: "Cluster", Name: "eu", Refs: []v1alpha1.PolicyRef{ref("BusinessHoursGate", `{"from": "9am"}`), ref("FrezeGate", "")}}
	_, _, errs = registry.EffectiveChain("CanaryRelease", own, []policies.Level{project, bad})
	msg := errs.ToAggregate().Error()
	for _, want := range []string{`Cluster[eu].spec.releasePolicies[0].parameters.from: Invalid value: "9am"`, `Cluster[eu].spec.releasePolicies[1].name: Invalid value: "FrezeGate": no policy named FrezeGate`} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors %s, want %s", msg, want)
		}
	}
}
