package reconciler

import (
	"strings"
	"testing"

	"github.com/kubist-io/kubist/policies"
)

// Read-only is a property of the registered executor, which the run reads:
// every kind has one default executor that writes, and every executor that
// writes has a ReadOnly twin that does not.
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
		if def := r.DefaultExecutorFor(kind); def != kind+"Executor" {
			t.Errorf("%s: default executor %q", kind, def)
		}
	}
}

// Every registered executor has its Go implementation in its kind, and
// every implementation is registered: the skeleton runs what the resource
// names.
func TestEveryExecutorIsImplemented(t *testing.T) {
	r := policies.NewRegistry()
	if err := RegisterExecutors(r); err != nil {
		t.Fatal(err)
	}
	rc := &Reconciler{Registry: r}
	for _, err := range []error{
		projectKind(rc).implementsRegistry(r), clusterKind(rc).implementsRegistry(r),
		virtualClusterKind(rc).implementsRegistry(r), applicationKind(rc).implementsRegistry(r),
		destinationKind(rc).implementsRegistry(r), routeKind(rc).implementsRegistry(r),
		canaryKind(rc).implementsRegistry(r), experimentKind(rc).implementsRegistry(r),
	} {
		if err != nil {
			t.Error(err)
		}
	}
	if e, ok := r.Executor("GatewayAPIRouteExecutor"); !ok || e.ReadOnly || e.Default {
		t.Errorf("GatewayAPIRouteExecutor: %+v", e)
	}
	// A leaf triggers nothing; the parents do.
	for name, leaf := range map[string]bool{
		"Project":       projectKind(rc).implementation("ProjectExecutor", r).leaf(),
		"Application":   applicationKind(rc).implementation("ApplicationExecutor", r).leaf(),
		"Route":         routeKind(rc).implementation("GatewayAPIRouteExecutor", r).leaf(),
		"CanaryRelease": canaryKind(rc).implementation("CanaryReleaseExecutor", r).leaf(),
	} {
		if want := name == "Route" || name == "CanaryRelease"; leaf != want {
			t.Errorf("%s: leaf %v, want %v", name, leaf, want)
		}
	}
}
