// Package testenv is what Kubist's test suites share: the repository root,
// a real control plane with a kubeconfig on disk, and the real kubectl.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/scheme"
)

// RepoRoot returns the directory holding Kubist's go.mod, found from the
// working directory upwards.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.HasPrefix(data, []byte("module github.com/kubist-io/kubist\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("kubist's go.mod not found above " + wd)
		}
	}
}

// Env is a running control plane with an admin client and kubectl.
type Env struct {
	*controlplane.ControlPlane
	// Client is an admin controller-runtime client with Kubist's scheme.
	Client client.Client
	// Kubectl runs the real kubectl against the control plane.
	Kubectl Kubectl
}

// Start starts a control plane and writes its kubeconfig into dir.
func Start(opts controlplane.Options, dir string) (*Env, error) {
	cp, err := controlplane.Start(opts)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	return &Env{ControlPlane: cp, Client: c, Kubectl: Kubectl{Path: cp.Kubectl(), Kubeconfig: kubeconfig}}, nil
}

// Kubectl runs the real kubectl binary with a kubeconfig.
type Kubectl struct {
	Path       string
	Kubeconfig string
}

// Result is what one kubectl run printed and how it exited.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

// Run runs kubectl with args, feeding stdin when it is not nil. A kubectl
// that cannot start, or runs past a minute, is an error; a non-zero exit is
// reported in the Result, not as an error.
func (k Kubectl) Run(stdin []byte, args ...string) (Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.Path, append([]string{"--kubeconfig", k.Kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && ctx.Err() == nil:
		res.ExitCode = exitErr.ExitCode()
	default:
		return res, fmt.Errorf("kubectl %v: %w (stderr: %s)", args, err, res.Stderr)
	}
	return res, nil
}

// Parameters decodes a stanza's parameters from JSON, for tests.
func Parameters(t testing.TB, s string) v1alpha1.Parameters {
	t.Helper()
	var p v1alpha1.Parameters
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// BuildKubist builds the kubist binary into dir and returns its path: the
// manager as it runs in production, its own process, built as the image
// builds it (the manager alone: the tag manager_only).
func BuildKubist(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	binary := filepath.Join(dir, "kubist")
	// The released binary's flags, as `make build` uses them, so that each
	// shares the other's build cache (the tag changes only cmd/kubist).
	cmd := exec.Command("go", "build", "-tags", "manager_only", "-trimpath", "-ldflags", "-s -w", "-o", binary, "./cmd/kubist")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build kubist: %w\n%s", err, out)
	}
	return binary, nil
}

// Eventually calls check every 200ms until it returns nil, and fails the
// test with what and the last error once timeout passes or the test ends.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %s for %s: %v", timeout, what, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v (last: %v)", what, t.Context().Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
