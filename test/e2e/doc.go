// Package e2e holds the end-to-end suites that run Kubist against a real
// kube-apiserver and etcd, with the real kubectl and the real kubist binary.
package e2e
