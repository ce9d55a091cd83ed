package e2e

import (
	"fmt"
	"strings"

	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

var _ = Describe("Admission", func() {
	BeforeEach(func(ctx SpecContext) {
		ensureNamespace(ctx, "admission")
	})

	It("defaults the samples as kubectl get -o yaml shows", func() {
		kubectl(nil, "apply", "-f", filepath.Join(repoRoot, "config", "samples"))

		var cluster v1alpha1.Cluster
		Expect(yaml.Unmarshal([]byte(kubectl(nil, "get", "cluster", "local", "-o", "yaml").Stdout), &cluster)).To(Succeed())
		Expect(cluster.Labels).To(HaveKeyWithValue(v1alpha1.LabelProject, "demo"))
		Expect(cluster.Spec.Executor.Name).To(Equal("ClusterExecutor"))
		Expect(string(cluster.Spec.Executor.Parameters["chartRepository"].Raw)).To(Equal(`"https://istio-release.storage.googleapis.com/charts"`))

		var vc v1alpha1.VirtualCluster
		Expect(yaml.Unmarshal([]byte(kubectl(nil, "get", "virtualcluster", "bookinfo", "-o", "yaml").Stdout), &vc)).To(Succeed())
		Expect(vc.Labels).To(HaveKeyWithValue(v1alpha1.LabelCluster, "local"))
		Expect(vc.Spec.Executor.Name).To(Equal("VirtualClusterExecutor"))

		var canary v1alpha1.CanaryRelease
		Expect(yaml.Unmarshal([]byte(kubectl(nil, "get", "canaryrelease", "reviews-v2", "-n", "bookinfo", "-o", "yaml").Stdout), &canary)).To(Succeed())
		Expect(canary.Spec.Executor.Name).To(Equal("CanaryReleaseExecutor"))
		Expect(string(canary.Spec.Executor.Parameters["metricsWindow"].Raw)).To(Equal(`"1m"`))
		Expect(canary.Spec.Policies).To(HaveLen(1))
		Expect(string(canary.Spec.Policies[0].Parameters["period"].Raw)).To(Equal(`"10s"`))

		for _, kind := range []string{"project/demo", "application/reviews", "destination/reviews", "route/reviews"} {
			out := kubectl(nil, "get", kind, "-n", "bookinfo", "-o", "jsonpath={.spec.executor.name}").Stdout
			Expect(out).To(HaveSuffix("Executor"), "%s has a default executor", kind)
		}
	})

	It("gives a CanaryRelease without policies the HealthBasedCanaryRelease chain", func() {
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: defaults, namespace: admission}
spec: {route: reviews, destination: reviews, subset: v2}
`), "apply", "-f", "-")
		canary := &v1alpha1.CanaryRelease{}
		Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "admission", Name: "defaults"}, canary)).To(Succeed())
		Expect(canary.Spec.Policies).To(HaveLen(1))
		Expect(canary.Spec.Policies[0].Name).To(Equal("HealthBasedCanaryRelease"))
		Expect(string(canary.Spec.Policies[0].Parameters["maxErrorRate"].Raw)).To(Equal("0.3"))
	})

	It("admits with a Warning line when a gate comes before any step policy", func() {
		res := kubectl(reviewsCanary("gate-first", "[{name: ManualGate}, {name: TimedCanaryRelease}]"), "apply", "-f", "-")
		Expect(res.Stdout).To(ContainSubstring("canaryrelease.kubist.io/gate-first created"))
		Expect(res.Stderr).To(ContainSubstring("Warning: spec.policies[0]: the gate ManualGate comes before any step policy"))
	})

	It("admits with a Warning line a parameter set to its default in a deprecated form", func() {
		res := kubectl(reviewsCanary("old-form", "[{name: TimedCanaryRelease, parameters: {period: 30000ms, step: 20}}]"), "apply", "-f", "-")
		Expect(res.Stdout).To(ContainSubstring("canaryrelease.kubist.io/old-form created"))
		Expect(res.Stderr).To(ContainSubstring(`Warning: spec.policies[0].parameters.period: "30000ms" is the default "30s" in a deprecated form; write "30s" or leave the parameter out`))
		Expect(strings.Count(res.Stderr, "deprecated form")).To(Equal(1), res.Stderr)
	})

	It("refuses a bare on: as YAML reads it, and reads a quoted one as when, with a Warning line", func() {
		stderr := kubectlFails(reviewsCanary("bare-on", "[{name: TimedCanaryRelease}, {name: WebhookGate, parameters: {secretRef: smoke, on: step}}]"), "apply", "-f", "-")
		Expect(stderr).To(ContainSubstring(`spec.policies[1].parameters.true: Invalid value: "step": YAML 1.1 reads the bare key on as true: this parameter is now called when; write when: instead of on:`))

		res := kubectl(reviewsCanary("quoted-on", `[{name: TimedCanaryRelease}, {name: WebhookGate, parameters: {secretRef: smoke, "on": promotion}}]`), "apply", "-f", "-")
		Expect(res.Stderr).To(ContainSubstring(`Warning: spec.policies[1].parameters.on: on is the old name of when, still read but deprecated: write when`))
		canary := &v1alpha1.CanaryRelease{}
		Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "admission", Name: "quoted-on"}, canary)).To(Succeed())
		// Defaulted under the name it was written with, so that Git and the
		// cluster agree.
		Expect(canary.Spec.Policies[1].Parameters).NotTo(HaveKey("when"))
		Expect(string(canary.Spec.Policies[1].Parameters["on"].Raw)).To(Equal(`"promotion"`))
		Expect(string(canary.Spec.Policies[1].Parameters["timeout"].Raw)).To(Equal(`"10s"`))
	})

	It("refuses an invalid object on a server-side dry run, and writes nothing for a valid one", func() {
		stderr := kubectlFails([]byte(`apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: dry-bad, namespace: admission}
spec:
  route: reviews
  destination: reviews
  subset: v2
  policies: [{name: TimedCanaryRelease, parameters: {step: 150}}]
`), "apply", "--dry-run=server", "-f", "-")
		Expect(stderr).To(ContainSubstring("spec.policies[0].parameters.step: Invalid value: 150: should be less than or equal to 100"))

		res := kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: dry-good, namespace: admission}
spec: {route: reviews, destination: reviews, subset: v2}
`), "apply", "--dry-run=server", "-o", "yaml", "-f", "-")
		Expect(res.Stdout).To(ContainSubstring("name: HealthBasedCanaryRelease"), "the dry run shows the defaulted object")
		err := env.Client.Get(ctx(), types.NamespacedName{Namespace: "admission", Name: "dry-good"}, &v1alpha1.CanaryRelease{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a dry run writes nothing: %v", err)
	})

	It("refuses to move a CanaryRelease to another route", func() {
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: pinned, namespace: admission}
spec: {route: reviews, destination: reviews, subset: v2}
`), "apply", "-f", "-")
		Expect(kubectlFails(nil, "patch", "canaryrelease", "pinned", "-n", "admission", "--type=merge", "-p", `{"spec":{"route":"ratings"}}`)).To(ContainSubstring(`spec.route: Invalid value: "ratings": route is immutable`))
		// The CRD's CEL rules refuse it: the API server runs them before
		// any webhook.
		Expect(kubectlFails(nil, "patch", "canaryrelease", "pinned", "-n", "admission", "--type=merge", "-p", `{"spec":{"destination":"ratings"}}`)).To(ContainSubstring(`spec.destination: Invalid value: "ratings": destination is immutable`))
	})

	It("refuses to delete a parent that still has children, naming them, unless annotated", func() {
		// The Namespace first: the VirtualCluster's executor creates it
		// too, and kubectl must not find it appearing between its read
		// and its create.
		kubectl([]byte(`apiVersion: v1
kind: Namespace
metadata: {name: shop-web}
---
apiVersion: kubist.io/v1alpha1
kind: Project
metadata: {name: shop}
---
apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: shop-eu}
spec: {project: shop}
---
apiVersion: kubist.io/v1alpha1
kind: VirtualCluster
metadata: {name: shop-web}
spec: {cluster: shop-eu}
---
apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: storefront, namespace: shop-web}
spec:
  hosts: [storefront]
  http: [{route: [{destination: storefront}]}]
`), "apply", "-f", "-")

		Expect(kubectlFails(nil, "delete", "project", "shop")).To(ContainSubstring(`Project "shop" still has 1 child: Cluster/shop-eu; delete them first, or annotate it with kubist.io/delete-children=true to delete it anyway`))

		Expect(kubectlFails(nil, "delete", "virtualcluster", "shop-web")).To(ContainSubstring(`VirtualCluster "shop-web" still has 1 child: Route/storefront`))

		kubectl(nil, "annotate", "project", "shop", "kubist.io/delete-children=true")
		kubectl(nil, "delete", "project", "shop")
		Expect(apierrors.IsNotFound(env.Client.Get(ctx(), types.NamespacedName{Name: "shop"}, &v1alpha1.Project{}))).To(BeTrue())
	})

	It("admits objects whose parents or siblings do not exist yet, with warnings", func() {
		res := kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: early, namespace: admission}
spec: {route: later, destination: later, subset: v2}
---
apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: orphan}
spec: {project: not-yet}
`), "apply", "-f", "-")
		Expect(res.Stdout).To(ContainSubstring("canaryrelease.kubist.io/early created"))
		Expect(res.Stderr).To(ContainSubstring(`Warning: spec.route: Route "later" does not exist yet; the CanaryRelease waits for it`))
		Expect(res.Stderr).To(ContainSubstring(`Warning: spec.destination: Destination "later" does not exist yet`))
		Expect(res.Stderr).To(ContainSubstring(`Warning: spec.project: Project "not-yet" does not exist yet; the Cluster waits for it`))
	})
})

// reviewsCanary is a CanaryRelease of the reviews Route in the admission
// namespace with the given policies stanza (flow-style YAML).
func reviewsCanary(name, policies string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: %s, namespace: admission}
spec: {route: reviews, destination: reviews, subset: v2, policies: %s}
`, name, policies))
}
