package reconciler

import (
	"testing"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Every kind the executors run has the Status field statusOf compares.
func TestStatusOf(t *testing.T) {
	for _, k := range v1alpha1.Tree {
		if statusOf(k.New()) == nil {
			t.Errorf("%s has no status", k.Kind)
		}
	}
	cr := &v1alpha1.CanaryRelease{}
	cr.Status.CanaryWeight = 20
	if got := statusOf(cr).(v1alpha1.CanaryReleaseStatus).CanaryWeight; got != 20 {
		t.Errorf("statusOf reads CanaryWeight %d, want 20", got)
	}
}
