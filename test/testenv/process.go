package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a program the test runs in its own process — the kubist
// manager, as it runs in production — with its output in a log file. It
// can be stopped with any signal, started again, and kept running as a
// kubelet keeps a container running.
type Process struct {
	// Env is added to the test's environment for the process.
	Env []string

	t       testing.TB
	name    string
	path    string
	args    []string
	logPath string

	mu       sync.Mutex
	log      *os.File
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd exits
	restart  bool          // start again after an exit nobody asked for
	restarts int
}

// NewProcess prepares path with args; Start runs it. When the test ends
// the process gets SIGTERM (SIGKILL after 30 s), and a failed test shows
// the end of its log.
func NewProcess(t testing.TB, name, path string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, name: name, path: path, args: args, logPath: filepath.Join(t.TempDir(), "process.log")}
	log, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.log = log
	t.Cleanup(func() {
		p.Stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("%s log (last 8 KiB):\n%s", name, tail(p.Log(), 8<<10))
		}
		_ = log.Close()
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Start runs the process.
func (p *Process) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.startLocked(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *Process) startLocked() error {
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() {
		_ = cmd.Wait()
		close(exited)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.cmd == cmd && p.restart {
			// As a kubelet restarts a container that exited.
			p.restarts++
			time.Sleep(time.Second)
			if err := p.startLocked(); err != nil {
				p.t.Error(err)
			}
		}
	}()
	return nil
}

// KeepRunning has the process started again whenever it exits by itself.
func (p *Process) KeepRunning() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.restart = true
}

// Restarts counts the starts KeepRunning made.
func (p *Process) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Stop signals the process and waits for it (SIGKILL after 30 s); SIGKILL
// leaves it no chance to release a Lease or finish a write.
func (p *Process) Stop(sig syscall.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Log is what the process wrote so far, over all its starts.
func (p *Process) Log() string {
	out, _ := os.ReadFile(p.logPath)
	return string(out)
}

// RSS is the running process's resident memory in bytes; 0 when it is
// not running.
func (p *Process) RSS() int64 {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return 0
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
