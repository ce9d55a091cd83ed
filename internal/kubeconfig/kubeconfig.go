// Package kubeconfig loads the client configuration every kubist command
// that talks to a cluster uses, the manager's included.
package kubeconfig

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client/config"
)

// Load reads the client configuration from a kubeconfig path, or from the
// standard places (KUBECONFIG, in-cluster, ~/.kube/config) when it is
// empty.
func Load(path string) (*rest.Config, error) {
	if path == "" {
		return ctrl.GetConfig()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}
