package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/internal/controlplane"
	"github.com/kubist-io/kubist/test/testenv"
)

var (
	env      *testenv.Env
	repoRoot string
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Kubist end-to-end suite")
}

var _ = BeforeSuite(func() {
	var err error
	repoRoot, err = testenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())

	env, err = testenv.Start(controlplane.Options{}, GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred(), "the control plane must start; `make envtest` builds it")
	DeferCleanup(func() { Expect(env.Stop()).To(Succeed()) })
})

// ensureNamespace creates a namespace for a spec's objects unless it exists.
func ensureNamespace(ctx context.Context, name string) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	Expect(client.IgnoreAlreadyExists(env.Client.Create(ctx, ns))).To(Succeed())
}
