package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"
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
`, name, DeploymentManifest(name, "v1"), DeploymentManifest(name, "v2"))
}

// DeploymentManifest is the Deployment of a version of TreeManifest's app.
func DeploymentManifest(namespace, version string) string {
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

// FleetManifest is a Project with one Cluster per entry of clusters
// (name → its labels, as YAML flow), each with a VirtualCluster of the
// same name; in each VirtualCluster's namespace, two Routes (web and api,
// a group) over their Destinations, each with a release template.
func FleetManifest(project string, clusters map[string]string, policies map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: kubist.io/v1alpha1\nkind: Project\nmetadata: {name: %s}\n", project)
	for _, name := range slices.Sorted(maps.Keys(clusters)) {
		fmt.Fprintf(&b, `---
apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: %[1]s, labels: %[2]s}
spec: {project: %[3]s}
---
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: kubist.io/v1alpha1
kind: VirtualCluster
metadata: {name: %[1]s}
spec: {cluster: %[1]s}
`, name, clusters[name], project)
		for _, app := range []string{"web", "api"} {
			b.WriteString(RoutedAppManifest(name, app, "    policies:\n"+policies[app]))
		}
	}
	return b.String()
}

// RoutedAppManifest is an app of a namespace: its Application (selecting
// app: APP), its Destination with subsets v1 and v2, and its Route sending
// everything to v1, with a release template of that Destination whose
// stanzas (policies, executor; indented by four) are release.
func RoutedAppManifest(namespace, app, release string) string {
	return fmt.Sprintf(`---
apiVersion: kubist.io/v1alpha1
kind: Application
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  selector: {app: %[2]s}
---
apiVersion: kubist.io/v1alpha1
kind: Destination
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  application: %[2]s
  ports: [{name: http, port: 8080}]
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
---
apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  hosts: [%[2]s]
  http:
    - name: default
      route:
        - {destination: %[2]s, subset: v1, weight: 100}
  release:
    destination: %[2]s
%[3]s
`, namespace, app, release)
}
