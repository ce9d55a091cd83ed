package e2e

import (
	"context"
	"errors"
	"time"

	"github.com/kubist-io/kubist/internal/manager/app"
	"github.com/kubist-io/kubist/test/testenv"
)

// Manager is Kubist's manager running in the test process against an Env,
// with every controller and, when the Env registered them, the webhooks.
type Manager struct {
	*app.Manager
	stop context.CancelFunc
	done <-chan error
}

// ManagerOptions adjust the manager a test runs.
type ManagerOptions func(*app.Options)

// StartManager starts the manager as `kubist manager` runs it, without
// leader election, metrics or probes, and waits for its webhook server.
func StartManager(env *testenv.Env, webhooks bool, adjust ...ManagerOptions) (*Manager, error) {
	opts := app.Defaults()
	opts.MetricsAddr, opts.ProbeAddr, opts.LeaderElect = "0", "0", false
	opts.Webhooks = webhooks
	if webhooks {
		opts.WebhookHost, opts.WebhookPort, opts.WebhookCertDir = env.WebhookServing()
		opts.WebhookCerts = env.WebhookCerts()
	}
	for _, a := range adjust {
		a(&opts)
	}
	mgr, err := app.New(context.Background(), env.Config, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{Manager: mgr, stop: cancel, done: mgr.StartInBackground(ctx)}
	if webhooks {
		waitCtx, cancelWait := context.WithTimeout(ctx, time.Minute)
		defer cancelWait()
		if err := mgr.WaitForWebhooks(waitCtx); err != nil {
			cancel()
			return nil, errors.Join(err, <-m.done)
		}
	}
	return m, nil
}

// Stop stops the manager and returns how it ended.
func (m *Manager) Stop() error {
	m.stop()
	return <-m.done
}
