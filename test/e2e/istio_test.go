package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/reconciler"
)

// badRetries is a Route policy that gives the first HTTP rule a retry
// condition Envoy does not know: admission cannot see it, istiod refuses
// the VirtualService it makes.
const badRetries = `# METADATA
# title: BadRetries
# description: Retries the first rule on a condition Envoy does not know.
# custom:
#   kinds: [Route]
package policies.bad_retries

decision := {"state": object.union(input.state, {"http": array.concat(
	[object.union(input.state.http[0], {"retries": {"attempts": 3, "retryOn": "sometimes"}})],
	array.slice(input.state.http, 1, count(input.state.http)),
)})}
`

var _ = Describe("Istio's validation of what Kubist writes", func() {
	It("refuses, through kubectl, a VirtualService istiod finds invalid, with Istio's own message", func() {
		stderr := kubectlFails([]byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: invalid-retry, namespace: default}
spec:
  hosts: [reviews]
  http:
    - route: [{destination: {host: reviews}}]
      retries: {attempts: 3, retryOn: sometimes}
`), "apply", "-f", "-")
		Expect(stderr).To(ContainSubstring(`admission webhook "validation.istio.io" denied the request: configuration is invalid: "sometimes" is not a valid retryOn policy`))
	})

	It("admits every VirtualService and DestinationRule Kubist writes for the samples and the e2e trees", func() {
		kubectl(nil, "apply", "-f", filepath.Join(repoRoot, "config", "samples"))
		kubectl([]byte(TreeManifest("admitted")), "apply", "-f", "-")
		kubectl([]byte(CanaryManifest("admitted", `    - name: TimedCanaryRelease
      parameters: {step: 30, period: 1s}`)), "apply", "-f", "-")
		for _, key := range []types.NamespacedName{{Namespace: "bookinfo", Name: "reviews"}, {Namespace: "admitted", Name: "web"}} {
			Eventually(func(g Gomega) {
				var vs networkingv1.VirtualService
				g.Expect(env.Client.Get(ctx(), key, &vs)).To(Succeed())
				var dr networkingv1.DestinationRule
				g.Expect(env.Client.Get(ctx(), key, &dr)).To(Succeed())
			}).Should(Succeed(), "%s", key)
		}
		Eventually(func(g Gomega) {
			g.Expect(canaryStatus(g, "admitted").Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
		}).Should(Succeed())

		By("Istio's webhooks fail closed, so each of these writes passed istiod's validation; istiod admits each of them again")
		Expect(istiod.WaitForValidation(ctx())).To(Succeed())
		var vss networkingv1.VirtualServiceList
		Expect(env.Client.List(ctx(), &vss, client.MatchingLabels{v1alpha1.LabelManaged: "true"})).To(Succeed())
		var drs networkingv1.DestinationRuleList
		Expect(env.Client.List(ctx(), &drs, client.MatchingLabels{v1alpha1.LabelManaged: "true"})).To(Succeed())
		Expect(len(vss.Items)).To(BeNumerically(">=", 2))
		Expect(len(drs.Items)).To(BeNumerically(">=", 2))
		for _, vs := range vss.Items {
			Expect(dryRunUpdate(vs)).To(Succeed(), "VirtualService %s/%s", vs.Namespace, vs.Name)
		}
		for _, dr := range drs.Items {
			Expect(dryRunUpdate(dr)).To(Succeed(), "DestinationRule %s/%s", dr.Namespace, dr.Name)
		}
	})

	It("reports Ready=False with Istio's message on a Route whose policies make a VirtualService Istio refuses", func() {
		kubectl(policyManifest("bad-retries", badRetries), "apply", "-f", "-")
		DeferCleanup(func() { kubectl(nil, "delete", "policy", "bad-retries", "--ignore-not-found") })
		Eventually(func() bool { _, ok := engine.Registry.Policy("bad-retries"); return ok }).Should(BeTrue())
		kubectl([]byte(TreeManifest("refused")), "apply", "-f", "-")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: web, namespace: refused}
spec:
  hosts: [web]
  policies: [{name: bad-retries}]
  http:
    - name: default
      route: [{destination: web, subset: v1}]
`), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			var r v1alpha1.Route
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "refused", Name: "web"}, &r)).To(Succeed())
			ready := readyCondition(&r)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(reconciler.ReasonRejected))
			g.Expect(ready.Message).To(ContainSubstring(`VirtualService refused/web`))
			g.Expect(ready.Message).To(ContainSubstring(`admission webhook "validation.istio.io" denied the request: configuration is invalid: "sometimes" is not a valid retryOn policy`))
		}).WithTimeout(time.Minute).Should(Succeed())
		By("the VirtualService keeps what Istio admitted before the policy")
		var vs networkingv1.VirtualService
		Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "refused", Name: "web"}, &vs)).To(Succeed())
		Expect(vs.Spec.Http[0].Retries).To(BeNil())
	})
})

var _ = Describe("Admission has the target cluster judge what a Route or a Destination makes", func() {
	BeforeEach(func() {
		kubectl([]byte(TreeManifest("judged")), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			var vc v1alpha1.VirtualCluster
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Name: "judged"}, &vc)).To(Succeed())
		}).Should(Succeed())
	})

	It("refuses a Route whose VirtualService istiod refuses, with Istio's message at the field it names, and stores nothing", func() {
		stderr := kubectlFails([]byte(`apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: underscore, namespace: judged}
spec:
  hosts: [web_app]
  http:
    - name: default
      route: [{destination: web, subset: v1}]
`), "apply", "-f", "-")
		Expect(stderr).To(ContainSubstring(`spec.hosts[0]: Invalid value: "web_app": its cluster refuses what this Route makes there: VirtualService judged/underscore on cluster judged (local): admission webhook "validation.istio.io" denied the request: configuration is invalid: domain name "web_app" invalid (label "web_app" invalid)`))
		Expect(kubectlFails(nil, "get", "route", "underscore", "-n", "judged")).To(ContainSubstring("NotFound"))

		stderr = kubectlFails([]byte(`apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: pseudo, namespace: judged}
spec:
  hosts: [web]
  http:
    - name: default
      route:
        - destination: web
          subset: v1
          headers: {request: {set: {":path": /v1}}}
`), "apply", "-f", "-")
		Expect(stderr).To(ContainSubstring(`spec.http[0].route[0].headers.request.set[:path]: Invalid value: ":path": its cluster refuses what this Route makes there`))
		Expect(stderr).To(ContainSubstring(`invalid header ":path": header cannot have ":" prefix`))

		By("an update is judged too: the Route that stands keeps its spec")
		stderr = kubectlFails([]byte(`apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: web, namespace: judged}
spec:
  hosts: [web, web_app]
  http:
    - name: default
      route: [{destination: web, subset: v1, weight: 100}]
      timeout: 5s
`), "apply", "-f", "-")
		Expect(stderr).To(ContainSubstring(`spec.hosts[1]: Invalid value: "web_app"`))
		var route v1alpha1.Route
		Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: "judged", Name: "web"}, &route)).To(Succeed())
		Expect(route.Spec.Hosts).To(Equal([]string{"web"}))
	})

	It("refuses a Destination whose DestinationRule istiod refuses, at the subset's label", func() {
		stderr := kubectlFails([]byte(`apiVersion: kubist.io/v1alpha1
kind: Destination
metadata: {name: spaced, namespace: judged}
spec:
  application: web
  ports: [{name: http, port: 8080}]
  subsets:
    - {name: v1, labels: {version: "v 1"}}
`), "apply", "-f", "-")
		Expect(stderr).To(ContainSubstring(`spec.subsets[0].labels[version]: Invalid value: "v 1": its cluster refuses what this Destination makes there: DestinationRule judged/spaced on cluster judged (local): admission webhook "validation.istio.io" denied the request: configuration is invalid: 1 error occurred: * invalid tag value: "v 1"`))
	})

	It("admits a Route whose cluster does not answer in time, with a warning that says it was not checked", func() {
		By("a cluster whose API server accepts connections and never answers")
		silent, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		var mu sync.Mutex
		var conns []net.Conn
		go func() {
			for {
				conn, err := silent.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
			}
		}()
		DeferCleanup(func() {
			silent.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
		kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: silent, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: silent, user: {token: none}}]
contexts: [{name: silent, context: {cluster: silent, user: silent}}]
current-context: silent
`, silent.Addr())
		Expect(env.Client.Create(ctx(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kubist-system", Name: "silent-kubeconfig"},
			Data:       map[string][]byte{"kubeconfig": []byte(kubeconfig)},
		})).To(Succeed())
		// Read-only executors: nothing waits for the silent cluster on delete.
		tree := `apiVersion: kubist.io/v1alpha1
kind: Project
metadata: {name: silent}
spec: {executor: {name: ReadOnlyProjectExecutor}}
---
apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: silent}
spec:
  project: silent
  kubeconfigSecretRef: {name: silent-kubeconfig}
  executor: {name: ReadOnlyClusterExecutor}
---
apiVersion: v1
kind: Namespace
metadata: {name: silent}
---
apiVersion: kubist.io/v1alpha1
kind: VirtualCluster
metadata: {name: silent}
spec: {cluster: silent, executor: {name: ReadOnlyVirtualClusterExecutor}}
`
		kubectl([]byte(tree), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			var vc v1alpha1.VirtualCluster
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Name: "silent"}, &vc)).To(Succeed())
		}).Should(Succeed())
		DeferCleanup(func() {
			kubectl(nil, "delete", "route", "web", "-n", "silent", "--ignore-not-found")
			kubectl(nil, "delete", "virtualcluster", "silent", "--ignore-not-found")
			kubectl(nil, "delete", "cluster", "silent", "--ignore-not-found")
			kubectl(nil, "delete", "project", "silent", "--ignore-not-found")
			kubectl(nil, "delete", "secret", "silent-kubeconfig", "-n", "kubist-system", "--ignore-not-found")
		})

		start := time.Now()
		res := kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: web, namespace: silent}
spec:
  hosts: [web]
  executor: {name: ReadOnlyRouteExecutor}
  http:
    - name: default
      route: [{destination: web, subset: v1}]
`), "apply", "-f", "-")
		took := time.Since(start)
		Expect(res.Stderr).To(ContainSubstring("Warning: what this Route makes was not checked on its cluster (its cluster did not answer within 2s): it is admitted, and its Ready condition will say if the cluster refuses it"))
		Expect(took).To(BeNumerically("<", 5*time.Second), "admission waits no longer than its bound, within the API server's webhook timeout")
		GinkgoWriter.Printf("kubectl apply of a Route on a silent cluster took %s\n", took)
	})
})

// dryRunUpdate submits an object as it stands again, without storing it,
// so that every admission webhook checks it; canaries of other specs may
// change it meanwhile, so a conflict reads it afresh and submits again.
func dryRunUpdate(obj client.Object) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		return env.Client.Update(ctx(), obj, client.DryRunAll)
	})
}
