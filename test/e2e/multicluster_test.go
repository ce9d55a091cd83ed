package e2e

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/controlplane"
	"github.com/kubist-io/kubist/test/testenv"
)

var _ = Describe("A workload cluster reached through a kubeconfig Secret", Ordered, func() {
	var workload *testenv.Env

	BeforeAll(func() {
		var err error
		workload, err = testenv.Start(controlplane.Options{WithoutIstioCRDs: true, WithoutKubistCRDs: true}, GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(workload.Stop()).To(Succeed()) })
		DeferCleanup(func() {
			// Its Cluster goes before the workload cluster stops.
			kubectl(nil, "annotate", "--overwrite", "project/workload", "cluster/workload", v1alpha1.AnnotationDeleteChildren+"=true")
			kubectl(nil, "delete", "cluster", "workload")
			kubectl(nil, "delete", "project", "workload")
		})

		kubeconfig, err := os.ReadFile(workload.Kubectl.Kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		ensureNamespace(ctx(), "kubist-system")
		Expect(env.Client.Create(ctx(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kubist-system", Name: "workload-kubeconfig"},
			Data:       map[string][]byte{"kubeconfig": kubeconfig},
		})).To(Succeed())
	})

	clusterCondition := func(g Gomega, conditionType string) *metav1.Condition {
		var c v1alpha1.Cluster
		g.Expect(env.Client.Get(ctx(), types.NamespacedName{Name: "workload"}, &c)).To(Succeed())
		cond := meta.FindStatusCondition(c.Status.Conditions, conditionType)
		g.Expect(cond).NotTo(BeNil())
		return cond
	}

	It("reports that Istio's CRDs are missing there", func() {
		kubectl([]byte(`
apiVersion: kubist.io/v1alpha1
kind: Project
metadata: {name: workload}
---
apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: workload}
spec:
  project: workload
  kubeconfigSecretRef: {name: workload-kubeconfig}
`), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			istio := clusterCondition(g, v1alpha1.ConditionIstioReady)
			g.Expect(istio.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(istio.Reason).To(Equal("CRDsMissing"))
			g.Expect(istio.Message).To(ContainSubstring("virtualservices.networking.istio.io"))
			ready := clusterCondition(g, v1alpha1.ConditionReady)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		}).Should(Succeed())
	})

	It("installs Istio with Helm from a chart repository when installIstio is set", func() {
		charts := filepath.Join(repoRoot, "test", "testdata", "charts")
		istioCRDs, err := os.ReadFile(filepath.Join(repoRoot, "config", "istio", "crds.yaml"))
		Expect(err).NotTo(HaveOccurred())
		repo, err := testenv.ChartRepository(GinkgoT().TempDir(),
			[]string{filepath.Join(charts, "base"), filepath.Join(charts, "istiod")},
			map[string]map[string][]byte{"base": {"crds/crds.yaml": istioCRDs}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(repo.Close)

		kubectl([]byte(`
apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: workload}
spec:
  project: workload
  kubeconfigSecretRef: {name: workload-kubeconfig}
  executor:
    name: ClusterExecutor
    parameters: {installIstio: true, istioVersion: 1.27.3, chartRepository: "`+repo.URL+`"}
`), "apply", "-f", "-")

		By("the releases, the CRDs of base and the Deployment of istiod are on the workload cluster")
		Eventually(func(g Gomega) {
			var secrets corev1.SecretList
			g.Expect(workload.Client.List(ctx(), &secrets, client.InNamespace("istio-system"), client.MatchingLabels{"owner": "helm"})).To(Succeed())
			names := []string{}
			for _, s := range secrets.Items {
				names = append(names, s.Labels["name"])
			}
			g.Expect(names).To(ConsistOf("istio-base", "istiod"))
			var crd apiextensionsv1.CustomResourceDefinition
			g.Expect(workload.Client.Get(ctx(), types.NamespacedName{Name: "virtualservices.networking.istio.io"}, &crd)).To(Succeed())
			var istiod appsv1.Deployment
			g.Expect(workload.Client.Get(ctx(), types.NamespacedName{Namespace: "istio-system", Name: "istiod"}, &istiod)).To(Succeed())
			g.Expect(istiod.Spec.Template.Spec.Containers[0].Image).To(Equal("docker.io/istio/pilot:1.27.3"))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			istio := clusterCondition(g, v1alpha1.ConditionIstioReady)
			g.Expect(istio.Reason).To(Equal("IstiodUnavailable"))
			var c v1alpha1.Cluster
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Name: "workload"}, &c)).To(Succeed())
			g.Expect(c.Status.Istio).NotTo(BeNil())
			g.Expect(c.Status.Istio.Release).To(Equal("istio-base 1.27.3, istiod 1.27.3"))
		}).Should(Succeed())

		By("once istiod is Available (no kubelet runs here: the test reports it), IstioReady is True with its version")
		var istiod appsv1.Deployment
		Expect(workload.Client.Get(ctx(), types.NamespacedName{Namespace: "istio-system", Name: "istiod"}, &istiod)).To(Succeed())
		istiod.Status = appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
		}}
		Expect(workload.Client.Status().Update(ctx(), &istiod)).To(Succeed())
		Eventually(func(g Gomega) {
			istio := clusterCondition(g, v1alpha1.ConditionIstioReady)
			g.Expect(istio.Status).To(Equal(metav1.ConditionTrue), istio.Message)
			g.Expect(istio.Message).To(ContainSubstring("Istio 1.27.3 is ready"))
			g.Expect(clusterCondition(g, v1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		}).WithTimeout(45 * time.Second).Should(Succeed())
	})

	It("puts the Istio objects on the workload cluster, none on the management cluster, and removes them with the VirtualCluster", func() {
		kubectl([]byte(`
apiVersion: kubist.io/v1alpha1
kind: VirtualCluster
metadata: {name: shop}
spec: {cluster: workload, namespace: shop-prod}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: kubist.io/v1alpha1
kind: Application
metadata: {name: web, namespace: shop}
---
apiVersion: kubist.io/v1alpha1
kind: Destination
metadata: {name: web, namespace: shop}
spec:
  application: web
  ports: [{name: http, port: 8080}]
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: kubist.io/v1alpha1
kind: Route
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http: [{name: default, route: [{destination: web, subset: v1}]}]
`), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			var ns corev1.Namespace
			g.Expect(workload.Client.Get(ctx(), types.NamespacedName{Name: "shop-prod"}, &ns)).To(Succeed())
			g.Expect(ns.Labels).To(HaveKeyWithValue("istio-injection", "enabled"))
			var svc corev1.Service
			g.Expect(workload.Client.Get(ctx(), types.NamespacedName{Namespace: "shop-prod", Name: "web"}, &svc)).To(Succeed())
			var dr networkingv1.DestinationRule
			g.Expect(workload.Client.Get(ctx(), types.NamespacedName{Namespace: "shop-prod", Name: "web"}, &dr)).To(Succeed())
			g.Expect(dr.Spec.Host).To(Equal("web.shop-prod.svc.cluster.local"))
			var vs networkingv1.VirtualService
			g.Expect(workload.Client.Get(ctx(), types.NamespacedName{Namespace: "shop-prod", Name: "web"}, &vs)).To(Succeed())
			g.Expect(vs.Spec.Http[0].Route[0].Destination.Host).To(Equal("web.shop-prod.svc.cluster.local"))
		}).Should(Succeed())
		for _, obj := range []client.Object{&networkingv1.VirtualService{}, &networkingv1.DestinationRule{}, &corev1.Service{}} {
			for _, ns := range []string{"shop", "shop-prod"} {
				err := env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, obj)
				Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T %s/web must not be on the management cluster: %v", obj, ns, err)
			}
		}

		By("deleting the VirtualCluster removes the Istio objects it created on the workload cluster")
		kubectl(nil, "annotate", "virtualcluster", "shop", v1alpha1.AnnotationDeleteChildren+"=true")
		kubectl(nil, "delete", "virtualcluster", "shop", "--wait=true", "--timeout=30s")
		for _, obj := range []client.Object{&networkingv1.VirtualService{}, &networkingv1.DestinationRule{}, &corev1.Service{}} {
			err := workload.Client.Get(ctx(), types.NamespacedName{Namespace: "shop-prod", Name: "web"}, obj)
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T shop-prod/web must be gone: %v", obj, err)
		}
	})
})
