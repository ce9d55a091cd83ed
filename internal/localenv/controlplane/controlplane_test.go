package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeAssets creates bin/k8s/<version>/ under root holding the named binaries.
func makeAssets(t *testing.T, root, version string, binaries ...string) string {
	t.Helper()
	dir := filepath.Join(root, "bin", "k8s", version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range binaries {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/true\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFindAssets(t *testing.T) {
	tests := map[string]struct {
		setup   func(t *testing.T, root string) (dir, env, want string)
		wantErr string
	}{
		"an explicit directory wins": {
			setup: func(t *testing.T, root string) (string, string, string) {
				d := makeAssets(t, root, "v1.30.0", Binaries...)
				makeAssets(t, root, "v1.37.2", Binaries...)
				return d, "", d
			},
		},
		"KUBEBUILDER_ASSETS is next": {
			setup: func(t *testing.T, root string) (string, string, string) {
				d := makeAssets(t, root, "v1.31.0", Binaries...)
				return "", d, d
			},
		},
		"the newest complete version is found from a subdirectory": {
			setup: func(t *testing.T, root string) (string, string, string) {
				makeAssets(t, root, "v1.9.0", Binaries...)
				want := makeAssets(t, root, "v1.37.2", Binaries...)
				makeAssets(t, root, "v1.38.0", "etcd", "kubectl") // no kube-apiserver: incomplete
				sub := filepath.Join(root, "test", "e2e")
				if err := os.MkdirAll(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				t.Chdir(sub)
				return "", "", want
			},
		},
		"a missing binary names itself and the fix": {
			setup: func(t *testing.T, root string) (string, string, string) {
				return makeAssets(t, root, "v1.37.2", "etcd", "kubectl"), "", ""
			},
			wantErr: "kube-apiserver is missing from",
		},
		"nothing built says how to build it": {
			setup: func(t *testing.T, root string) (string, string, string) {
				t.Chdir(root)
				return "", "", ""
			},
			wantErr: "run `make envtest`",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			dir, env, want := tc.setup(t, root)
			t.Setenv("KUBEBUILDER_ASSETS", env)
			got, err := FindAssets(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("FindAssets = %s, want %s", got, want)
			}
		})
	}
}
