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

// Setup adds every Kubist controller to the manager, and the readiness
// check that waits for every Policy object to be loaded.
func Setup(mgr ctrl.Manager, engine Engine) error {
	policyReconciler := &PolicyReconciler{
		Client:   mgr.GetClient(),
		Compiler: engine.Compiler,
		Registry: engine.Registry,
		Recorder: mgr.GetEventRecorder("kubist-policy"),
		Elected:  mgr.Elected(),
	}
	if err := policyReconciler.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("policy controller: %w", err)
	}
	if err := mgr.AddReadyzCheck("policies-loaded", policyReconciler.LoadedChecker()); err != nil {
		return fmt.Errorf("policy readiness check: %w", err)
	}
	return nil
}
