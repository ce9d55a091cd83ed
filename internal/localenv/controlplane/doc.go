// Package controlplane starts a real local Kubernetes control plane — etcd
// and kube-apiserver built into bin/k8s/<version>/ by `make envtest` —
// through controller-runtime's envtest, with Kubist's and Istio's CRDs
// installed. `kubist dev` and the test suites both use it.
package controlplane
