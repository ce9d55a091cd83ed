package localmesh

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kubist-io/kubist/internal/localenv/controlplane"
)

// Prometheus is a real Prometheus server on loopback, started by a test.
type Prometheus struct {
	// URL of its HTTP API, e.g. http://127.0.0.1:34567.
	URL string

	bin, logPath string
	args         []string
	cmd          *exec.Cmd
}

// PrometheusBinary finds the prometheus that `make envtest` builds:
// $KUBIST_PROMETHEUS, else the newest bin/prometheus/<version>/prometheus
// here or above, else one on the PATH. The error says how to build it.
func PrometheusBinary() (string, error) {
	if p := os.Getenv("KUBIST_PROMETHEUS"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("KUBIST_PROMETHEUS: %w; run `make envtest` to build Prometheus", err)
		}
		return p, nil
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			found, _ := filepath.Glob(filepath.Join(d, "bin", "prometheus", "*", "prometheus"))
			if len(found) > 0 {
				sort.Strings(found)
				return found[len(found)-1], nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if path, err := exec.LookPath("prometheus"); err == nil {
		return path, nil
	}
	return "", errors.New("no bin/prometheus/<version>/prometheus here or above: run `make envtest` to build Prometheus, or set KUBIST_PROMETHEUS")
}

// StartPrometheus starts Prometheus scraping targets (host:port) every
// scrapeInterval, with its data in dir, and waits until it is ready.
func StartPrometheus(dir string, scrapeInterval time.Duration, targets ...string) (*Prometheus, error) {
	bin, err := PrometheusBinary()
	if err != nil {
		return nil, err
	}
	port, err := controlplane.FreePort()
	if err != nil {
		return nil, err
	}
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = fmt.Sprintf("%q", t)
	}
	config := fmt.Sprintf("global:\n  scrape_interval: %s\n  evaluation_interval: %s\nscrape_configs:\n  - job_name: istio\n    static_configs:\n      - targets: [%s]\n",
		scrapeInterval, scrapeInterval, strings.Join(quoted, ", "))
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		return nil, err
	}
	p := &Prometheus{URL: fmt.Sprintf("http://127.0.0.1:%d", port), args: []string{
		"--config.file=" + configFile,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
	}, bin: bin, logPath: filepath.Join(dir, "prometheus.log")}
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, nil
}

// start runs the server and waits until it is ready.
func (p *Prometheus) start() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	dieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start prometheus: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if Probe(p.URL+"/-/ready") == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(p.logPath)
	p.Stop()
	return errors.New("prometheus did not become ready in 30s: " + string(log))
}

// Restart starts a stopped Prometheus again, at the same address and with
// the data it had.
func (p *Prometheus) Restart() error { return p.start() }

// Stop stops Prometheus (interrupt, then kill after 10s) and waits for it.
func (p *Prometheus) Stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	exited := make(chan struct{})
	go func() {
		_ = p.cmd.Wait() // the exit status of an interrupted server says nothing
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-exited
	}
}
