// Package reconciler runs Kubist's executor tree on the controller-runtime
// manager: one controller per kind, each observing its resource, running
// its policies and applying the result, and the Policy controller that keeps
// the policy engine's registry in step with Policy objects.
package reconciler
