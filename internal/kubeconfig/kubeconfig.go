// Package kubeconfig loads the client configuration every kubist command
// that talks to a cluster uses, the manager's included.
package kubeconfig

import (
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Load reads the client configuration as kubectl does: from a kubeconfig
// path, or when it is empty from $KUBECONFIG or ~/.kube/config, and in a
// pod from its service account. It logs nothing: what is missing is in
// the error, in one line.
func Load(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	switch {
	case clientcmd.IsEmptyConfig(err):
		return nil, errors.New("no configuration has been provided: pass --kubeconfig, set KUBECONFIG, or write ~/.kube/config")
	case err != nil && path != "":
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return cfg, err
}
