package reconciler

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kubist-io/kubist/policies"
)

// Engine is the policy engine the controllers share with the webhook.
type Engine struct {
	Compiler *policies.Compiler
	Registry *policies.Registry
}

// Setup adds every Kubist controller to the manager.
func Setup(mgr ctrl.Manager, engine Engine) error {
	policyReconciler := &PolicyReconciler{
		Client:   mgr.GetClient(),
		Compiler: engine.Compiler,
		Registry: engine.Registry,
		Recorder: mgr.GetEventRecorder("kubist-policy"),
	}
	if err := policyReconciler.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("policy controller: %w", err)
	}
	return nil
}
