package e2e

import (
	"context"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/policies"
	"github.com/kubist-io/kubist/reconciler"
	"github.com/kubist-io/kubist/test/testenv"
	"github.com/kubist-io/kubist/webhook"
)

// Manager is Kubist's manager running in the test process against an Env,
// with every controller and, when the Env registered them, the webhooks.
type Manager struct {
	Engine reconciler.Engine
	stop   context.CancelFunc
	done   chan error
}

// StartManager starts the manager as `kubist manager` runs it, without
// leader election, metrics or probes, and waits for its webhook server.
func StartManager(env *testenv.Env, webhooks bool) (*Manager, error) {
	compiler, err := policies.NewCompiler(policies.DefaultLimits)
	if err != nil {
		return nil, err
	}
	registry, err := policies.NewPredefinedRegistry(context.Background(), compiler)
	if err != nil {
		return nil, err
	}
	if err := reconciler.RegisterExecutors(registry); err != nil {
		return nil, err
	}
	engine := reconciler.Engine{Compiler: compiler, Registry: registry}
	opts := ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	}
	if webhooks {
		host, port, certDir := env.WebhookServing()
		opts.WebhookServer = ctrlwebhook.NewServer(ctrlwebhook.Options{Host: host, Port: port, CertDir: certDir})
	}
	mgr, err := ctrl.NewManager(env.Config, opts)
	if err != nil {
		return nil, err
	}
	if err := reconciler.Setup(mgr, engine); err != nil {
		return nil, err
	}
	if webhooks {
		if err := webhook.Setup(mgr, &webhook.Admission{Registry: registry, Compiler: compiler, Reader: mgr.GetClient()}); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{Engine: engine, stop: cancel, done: make(chan error, 1)}
	go func() { m.done <- mgr.Start(ctx) }()
	if webhooks {
		started := mgr.GetWebhookServer().StartedChecker()
		deadline := time.Now().Add(time.Minute)
		for started(nil) != nil {
			if time.Now().After(deadline) {
				cancel()
				return nil, fmt.Errorf("webhook server did not start: %w", <-m.done)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return m, nil
}

// Stop stops the manager and returns how it ended.
func (m *Manager) Stop() error {
	m.stop()
	return <-m.done
}
