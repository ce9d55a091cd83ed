package config

import (
	"os"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubist-io/kubist/internal/manifest"
)

// TestGeneratedRBACIsLeastPrivilege audits what controller-gen generates
// from the code's RBAC markers, which the chart binds to the manager: no
// wildcard anywhere, no Secret cluster-wide (the kubeconfigs of workload
// clusters are read in the manager's namespace only, through a Role), no
// write to a Secret at all, and nothing of RBAC, pods' exec or
// impersonation that would let the manager grant itself more.
func TestGeneratedRBACIsLeastPrivilege(t *testing.T) {
	f, err := os.Open("rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objects, err := manifest.Decode(f, "rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range objects {
		kinds[o.GetKind()]++
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		var role rbacv1.ClusterRole // a Role has the same rules
		if err := yaml.Unmarshal(data, &role); err != nil {
			t.Fatal(err)
		}
		for _, rule := range role.Rules {
			for _, list := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames, rule.NonResourceURLs} {
				if slices.Contains(list, "*") {
					t.Errorf("%s: a wildcard: %+v", o.GetKind(), rule)
				}
			}
			for _, res := range rule.Resources {
				switch {
				case res == "secrets" && o.GetKind() == "ClusterRole":
					t.Errorf("the ClusterRole grants Secrets: %+v", rule)
				case res == "secrets" && slices.ContainsFunc(rule.Verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" }):
					t.Errorf("the manager may write Secrets: %+v", rule)
				case slices.Contains([]string{"roles", "clusterroles", "rolebindings", "clusterrolebindings", "pods/exec", "serviceaccounts/token"}, res):
					t.Errorf("the manager may grant itself more: %+v", rule)
				}
			}
			for _, verb := range rule.Verbs {
				if verb == "impersonate" || verb == "escalate" || verb == "bind" {
					t.Errorf("verb %s: %+v", verb, rule)
				}
			}
		}
		if o.GetKind() == "Role" && o.GetNamespace() != "kubist-system" {
			t.Errorf("the Role is for namespace %q, which the chart rewrites from kubist-system", o.GetNamespace())
		}
	}
	if kinds["ClusterRole"] != 1 || kinds["Role"] != 1 {
		t.Errorf("generated %v, want one ClusterRole and one Role", kinds)
	}
}

// TestReleaseRoles: the viewer only reads; the operator reads the same and
// may create ReleaseActions, and nothing else: an action never needs a
// write to a release, whose manifest stays its author's.
func TestReleaseRoles(t *testing.T) {
	f, err := os.Open("rbac/release-roles.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objects, err := manifest.Decode(f, "rbac/release-roles.yaml")
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]rbacv1.ClusterRole{}
	for _, o := range objects {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		var role rbacv1.ClusterRole
		if err := yaml.Unmarshal(data, &role); err != nil {
			t.Fatal(err)
		}
		roles[role.Name] = role
	}
	read := []string{"get", "list", "watch"}
	for name, writes := range map[string][]string{
		"kubist-release-viewer":   nil,
		"kubist-release-operator": {"releaseactions"},
	} {
		role, ok := roles[name]
		if !ok {
			t.Fatalf("no ClusterRole %s in %v", name, roles)
		}
		var created []string
		for _, rule := range role.Rules {
			for _, verb := range rule.Verbs {
				switch {
				case slices.Contains(read, verb):
				case verb == "create":
					created = append(created, rule.Resources...)
				default:
					t.Errorf("%s may %s %v", name, verb, rule.Resources)
				}
			}
		}
		if !slices.Equal(created, writes) {
			t.Errorf("%s may create %v, want %v", name, created, writes)
		}
	}
}
