package e2e

import (
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// TreeManifest is a VirtualCluster's tree: a project, a cluster, the
// virtual cluster with its namespace, two versions of an app, and the
// Application, Destination and Route of it. The caller adds the canary.
func TreeManifest(name string) string {
	return fmt.Sprintf(`
apiVersion: kubist.io/v1alpha1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: %[1]s}
spec: {project: %[1]s}
---
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: kubist.io/v1alpha1
kind: VirtualCluster
metadata: {name: %[1]s}
spec: {cluster: %[1]s}
---
%[2]s
---
%[3]s
---
apiVersion: kubist.io/v1alpha1
kind: Application
metadata: {name: web, namespace: %[1]s}
spec:
  selector: {app: web}
---
apiVersion: kubist.io/v1alpha1
kind: Destination
metadata: {name: web, namespace: %[1]s}
spec:
  application: web
  ports: [{name: http, port: 8080}]
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
---
apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: web, namespace: %[1]s}
spec:
  hosts: [web]
  http:
    - name: default
      route:
        - {destination: web, subset: v1, weight: 100}
      timeout: 5s
`, name, workloadDeployment(name, "v1"), workloadDeployment(name, "v2"))
}

func workloadDeployment(namespace, version string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web-%[2]s, namespace: %[1]s, labels: {app: web, version: %[2]s}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web, version: %[2]s}}
  template:
    metadata: {labels: {app: web, version: %[2]s}}
    spec:
      containers: [{name: web, image: example.com/web:%[2]s}]`, namespace, version)
}

// CanaryManifest is the CanaryRelease web-v2 of a TreeManifest's namespace
// with the given policies stanza (indented list items).
func CanaryManifest(namespace, policies string) string {
	return fmt.Sprintf(`apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: web-v2, namespace: %s}
spec:
  route: web
  destination: web
  subset: v2
  policies:
%s`, namespace, policies)
}

// specWins brings the default rule of the Route web back to v1 after a
// release promoted v2, as a person does in Git: commit v2 to the spec,
// then revert it to v1; a change of the spec wins over the stable subset
// a release left.
func specWins(namespace string) {
	GinkgoHelper()
	var route v1alpha1.Route
	Expect(env.Client.Get(ctx(), client.ObjectKey{Namespace: namespace, Name: "web"}, &route)).To(Succeed())
	rule := slices.IndexFunc(route.Spec.HTTP, func(r v1alpha1.HTTPRoute) bool { return r.Name == "default" })
	Expect(rule).To(BeNumerically(">=", 0), "the Route web has a rule named default")
	for _, subset := range []string{"v2", "v1"} {
		kubectl(nil, "patch", "route", "web", "-n", namespace, "--type=json",
			"-p", fmt.Sprintf(`[{"op": "replace", "path": "/spec/http/%d/route/0/subset", "value": %q}]`, rule, subset))
		Eventually(func(g Gomega) {
			g.Expect(env.Client.Get(ctx(), client.ObjectKey{Namespace: namespace, Name: "web"}, &route)).To(Succeed())
			g.Expect(route.Status.Stable).To(ContainElement(And(
				HaveField("Rule", "default"), HaveField("Subset", subset), HaveField("SpecSubset", subset))))
		}).Should(Succeed())
	}
}
