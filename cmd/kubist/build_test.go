package main

import (
	"os/exec"
	"strings"
	"testing"
)

// deps are the packages a package links, as go list -deps lists them.
func deps(t *testing.T, pkg string, tags ...string) []string {
	t.Helper()
	args := []string{"list", "-deps"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	out, err := exec.Command("go", append(args, pkg)...).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// refuse fails for every dependency under one of the banned prefixes.
func refuse(t *testing.T, what string, deps []string, banned ...string) {
	t.Helper()
	if len(deps) < 50 {
		t.Fatalf("go list found %d packages for %s, too few", len(deps), what)
	}
	for _, dep := range deps {
		for _, b := range banned {
			if dep == b || strings.HasPrefix(dep, b+"/") {
				t.Errorf("%s links %s", what, dep)
			}
		}
	}
}

// TestManagerOnlyLinksNoDevelopmentTools keeps the image's manager lean:
// built with the tag manager_only (as the Dockerfile builds it), the
// binary links nothing of the local environment of make run and the tests
// (internal/localenv) nor of the command-line tool (internal/cli): their
// code and their package initialisation would sit in the manager's memory.
func TestManagerOnlyLinksNoDevelopmentTools(t *testing.T) {
	refuse(t, "the manager-only build", deps(t, ".", "manager_only"),
		"github.com/kubist-io/kubist/internal/localenv",
		"github.com/kubist-io/kubist/internal/cli",
		"sigs.k8s.io/controller-runtime/pkg/envtest",
		"google.golang.org/grpc/xds",
		"github.com/envoyproxy/go-control-plane",
	)
}

// TestOfflineCommandsLinkNoReconciler: kubist policy, kubist executor and
// kubist validate check policies and manifests with the catalog, the
// policy engine and the webhook's own code, without the reconciler,
// Istio's clients or Helm.
func TestOfflineCommandsLinkNoReconciler(t *testing.T) {
	for _, pkg := range []string{"../../internal/cli/offline", "../../catalog"} {
		refuse(t, pkg, deps(t, pkg),
			"github.com/kubist-io/kubist/reconciler",
			"github.com/kubist-io/kubist/internal/manager",
			"github.com/kubist-io/kubist/internal/localenv",
			"istio.io",
			"helm.sh",
		)
	}
	// The catalog imports no Kubernetes client either.
	refuse(t, "../../catalog", deps(t, "../../catalog"), "k8s.io/client-go", "sigs.k8s.io/controller-runtime")
}
