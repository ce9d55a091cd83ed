package reconciler

import (
	"strings"
	"testing"

	"github.com/kubist-io/kubist/policies"
)

// Read-only is a property of the registered executor, which the run reads:
// every kind has one default executor that writes and one that does not.
func TestExecutorsDeclareReadOnly(t *testing.T) {
	r := policies.NewRegistry()
	if err := RegisterExecutors(r); err != nil {
		t.Fatal(err)
	}
	for _, kind := range executorKinds {
		names := r.ExecutorNamesFor(kind)
		var writers, readers int
		for _, name := range names {
			e, ok := r.Executor(name)
			if !ok {
				t.Fatalf("%s: %s is listed but not registered", kind, name)
			}
			if e.ReadOnly {
				readers++
				if e.Default {
					t.Errorf("%s: the read-only %s is the default", kind, name)
				}
				if !strings.Contains(e.Description, "without writing") {
					t.Errorf("%s: %s does not say it writes nothing: %q", kind, name, e.Description)
				}
			} else {
				writers++
			}
		}
		if writers != 1 || readers != 1 {
			t.Errorf("%s: %d writing and %d read-only executors (%v), want one each", kind, writers, readers, names)
		}
		if def := r.DefaultExecutorFor(kind); def != kind+"Executor" {
			t.Errorf("%s: default executor %q", kind, def)
		}
	}
}
