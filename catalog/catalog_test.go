package catalog

import (
	"strings"
	"testing"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Read-only is a property of the registered executor, which the run reads:
// every kind has one default executor that writes, and every executor that
// writes has a ReadOnly twin that does not.
func TestExecutorsDeclareReadOnly(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range v1alpha1.TreeKindNames() {
		names := r.NamesFor(kind)
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
		if writers == 0 || writers != readers {
			t.Errorf("%s: %d writing and %d read-only executors (%v), want a twin for each", kind, writers, readers, names)
		}
		for _, name := range names {
			if e, _ := r.Executor(name); !e.ReadOnly {
				if twin, ok := r.Executor("ReadOnly" + name); !ok || !twin.ReadOnly {
					t.Errorf("%s: %s has no ReadOnly twin", kind, name)
				}
			}
		}
		if def := r.DefaultFor(kind); def != kind+"Executor" {
			t.Errorf("%s: default executor %q", kind, def)
		}
	}
}
