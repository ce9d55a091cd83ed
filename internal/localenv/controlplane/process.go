package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Environment of a wrapped control-plane process (see ExecWrapped).
const (
	wrappedAssetsEnv = "KUBIST_CONTROL_PLANE_ASSETS"
	wrappedParentEnv = "KUBIST_CONTROL_PLANE_PARENT"
)

// wrapped are the binaries DieWithParent starts through the executable.
var wrapped = []string{"etcd", "kube-apiserver"}

// prepareProcesses points etcd's and kube-apiserver's output at LogDir and,
// for DieWithParent, their paths at links to this executable named after
// them, which ExecWrapped turns into the real binaries.
func (cp *ControlPlane) prepareProcesses(opts Options) error {
	if cp.env.ControlPlane.Etcd == nil {
		cp.env.ControlPlane.Etcd = &envtest.Etcd{}
	}
	etcd, apiServer := cp.env.ControlPlane.Etcd, cp.env.ControlPlane.GetAPIServer()
	if opts.LogDir != "" {
		if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
			return err
		}
		etcdLog, err := cp.logFile(opts.LogDir, "etcd.log")
		if err != nil {
			return err
		}
		apiLog, err := cp.logFile(opts.LogDir, "kube-apiserver.log")
		if err != nil {
			return err
		}
		etcd.Out, etcd.Err = etcdLog, etcdLog
		apiServer.Out, apiServer.Err = apiLog, apiLog
	}
	if !opts.DieWithParent {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if cp.wrapperDir, err = os.MkdirTemp("", "kubist-control-plane-"); err != nil {
		return err
	}
	for _, name := range wrapped {
		if err := os.Symlink(self, filepath.Join(cp.wrapperDir, name)); err != nil {
			return err
		}
	}
	etcd.Path = filepath.Join(cp.wrapperDir, "etcd")
	apiServer.Path = filepath.Join(cp.wrapperDir, "kube-apiserver")
	// Inherited by the processes envtest starts, read by ExecWrapped.
	if err := os.Setenv(wrappedAssetsEnv, cp.AssetsDir); err != nil {
		return err
	}
	return os.Setenv(wrappedParentEnv, strconv.Itoa(os.Getpid()))
}

// logFile creates dir/name, closed by Stop.
func (cp *ControlPlane) logFile(dir, name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(dir, name))
	if err == nil {
		cp.logs = append(cp.logs, f)
	}
	return f, err
}

// ExecWrapped is called first thing in main; it does nothing unless this
// process was started as etcd or kube-apiserver by a control plane with
// DieWithParent: then it asks the kernel to kill it when its parent ends
// and replaces itself with the real binary. It returns only on error.
func ExecWrapped() error {
	assets, parent := os.Getenv(wrappedAssetsEnv), os.Getenv(wrappedParentEnv)
	name := filepath.Base(os.Args[0])
	if assets == "" || parent == "" || !slices.Contains(wrapped, name) {
		return nil
	}
	if err := os.Unsetenv(wrappedAssetsEnv); err != nil {
		return err
	}
	if err := os.Unsetenv(wrappedParentEnv); err != nil {
		return err
	}
	real := filepath.Join(assets, name)
	if err := execWithParentDeathSignal(real, parent); err != nil {
		return fmt.Errorf("start %s: %w", real, err)
	}
	return nil
}
