package reconciler

import (
	"testing"

	"github.com/kubist-io/kubist/catalog"
)

// Every declared executor has its Go implementation in its kind, and
// every implementation is declared: the skeleton runs what the resource
// names.
func TestEveryExecutorIsImplemented(t *testing.T) {
	r, err := catalog.New()
	if err != nil {
		t.Fatal(err)
	}
	rc := &Reconciler{Executors: r}
	for _, err := range []error{
		projectKind(rc).implementsCatalog(r), clusterKind(rc).implementsCatalog(r),
		virtualClusterKind(rc).implementsCatalog(r), applicationKind(rc).implementsCatalog(r),
		destinationKind(rc).implementsCatalog(r), routeKind(rc).implementsCatalog(r),
		canaryKind(rc).implementsCatalog(r), experimentKind(rc).implementsCatalog(r),
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
