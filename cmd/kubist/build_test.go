package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestManagerOnlyLinksNoDevelopmentTools keeps the image's manager lean:
// built with the tag manager_only, the binary links none of what only
// kubist dev and the offline tools use (their code and their package
// initialisation would sit in the manager's memory).
func TestManagerOnlyLinksNoDevelopmentTools(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "manager_only", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list found %d packages, too few to be the manager's", len(deps))
	}
	for _, dep := range deps {
		for _, banned := range []string{
			"github.com/kubist-io/kubist/internal/localmesh",
			"github.com/kubist-io/kubist/internal/controlplane",
			"github.com/kubist-io/kubist/internal/dashboard",
			"sigs.k8s.io/controller-runtime/pkg/envtest",
			"google.golang.org/grpc/xds",
			"github.com/envoyproxy/go-control-plane",
		} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("the manager-only build links %s", dep)
			}
		}
	}
}
