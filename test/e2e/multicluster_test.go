package e2e

import (
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/action"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/internal/manifest"
	"github.com/kubist-io/kubist/test/testenv"
)

var _ = Describe("A workload cluster reached through a kubeconfig Secret", Ordered, func() {
	var workload *testenv.Env
	// workloadIstiod runs for the workload cluster's istiod Deployment once
	// its chart is installed; it stops just before that cluster.
	var workloadIstiod *localmesh.Istiod

	var workDir string

	BeforeAll(func() {
		workDir = GinkgoT().TempDir()
		var err error
		workload, err = testenv.Start(controlplane.Options{WithoutIstioCRDs: true, WithoutKubistCRDs: true}, GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(workload.Stop()).To(Succeed()) })
		DeferCleanup(func() {
			if workloadIstiod != nil {
				Expect(workloadIstiod.Stop()).To(Succeed())
			}
		})
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

	It("installs Istio's charts with Helm when installIstio is set, and reports IstioReady once istiod runs", func() {
		kubectl([]byte(`
apiVersion: kubist.io/v1alpha1
kind: Cluster
metadata: {name: workload}
spec:
  project: workload
  kubeconfigSecretRef: {name: workload-kubeconfig}
  executor:
    name: ClusterExecutor
    parameters: {installIstio: true, istioVersion: "`+istio.Version+`", chartRepository: "`+istioCharts.URL+`"}
`), "apply", "-f", "-")

		By("the releases istio-base and istiod of Istio's charts are on the workload cluster, with every object they render")
		var releases map[string]*releasev1.Release
		Eventually(func(g Gomega) {
			releases = helmReleases(g, workload, "istio-system")
			g.Expect(releases).To(HaveKey("istio-base"))
			g.Expect(releases).To(HaveKey("istiod"))
		}).WithTimeout(2 * time.Minute).Should(Succeed())
		kinds := map[string]int{}
		for name, rel := range releases {
			Expect(rel.Chart.Metadata.Version).To(Equal(istio.Version), "release %s", name)
			objects, err := manifest.Decode(strings.NewReader(rel.Manifest), name)
			Expect(err).NotTo(HaveOccurred())
			Expect(objects).NotTo(BeEmpty())
			for _, o := range objects {
				u := o.DeepCopy()
				namespaced, err := workload.Client.IsObjectNamespaced(u)
				Expect(err).NotTo(HaveOccurred(), "%s %s of release %s", o.GetKind(), o.GetName(), name)
				if u.GetNamespace() == "" && namespaced {
					u.SetNamespace("istio-system")
				}
				Expect(workload.Client.Get(ctx(), client.ObjectKeyFromObject(u), u)).To(Succeed(), "%s %s of release %s", o.GetKind(), o.GetName(), name)
				kinds[o.GetKind()]++
			}
		}
		GinkgoWriter.Printf("Istio's charts rendered: %v\n", kinds)
		Expect(kinds["CustomResourceDefinition"]).To(BeNumerically(">=", 10), "base holds Istio's CRDs")
		var vsCRD apiextensionsv1.CustomResourceDefinition
		Expect(workload.Client.Get(ctx(), types.NamespacedName{Name: "virtualservices.networking.istio.io"}, &vsCRD)).To(Succeed())
		Expect(vsCRD.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"))
		var istiodDeployment appsv1.Deployment
		Expect(workload.Client.Get(ctx(), types.NamespacedName{Namespace: "istio-system", Name: "istiod"}, &istiodDeployment)).To(Succeed())
		Expect(istiodDeployment.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix("/pilot:" + istio.Version))
		Eventually(func(g Gomega) {
			cond := clusterCondition(g, v1alpha1.ConditionIstioReady)
			g.Expect(cond.Reason).To(Equal("IstiodUnavailable"))
			var c v1alpha1.Cluster
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Name: "workload"}, &c)).To(Succeed())
			g.Expect(c.Status.Istio).NotTo(BeNil())
			g.Expect(c.Status.Istio.Release).To(Equal("istio-base " + istio.Version + ", istiod " + istio.Version))
		}).Should(Succeed())

		By("istiod runs as the Deployment's pod (no kubelet here: the process stands in for it and reports it Available); IstioReady is True with its version")
		var err error
		workloadIstiod, err = localmesh.StartIstiod(ctx(), istio, workload.Client, localmesh.IstiodOptions{
			Kubeconfig: workload.Kubeconfig, WorkDir: workDir,
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(workloadIstiod.WaitForValidation(ctx())).To(Succeed())
		Eventually(func(g Gomega) {
			cond := clusterCondition(g, v1alpha1.ConditionIstioReady)
			g.Expect(cond.Status).To(Equal(metav1.ConditionTrue), cond.Message)
			g.Expect(cond.Message).To(ContainSubstring("Istio " + istio.Version + " is ready"))
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

// helmReleases reads the deployed Helm releases of a namespace with the
// Helm SDK, as `helm list` does.
func helmReleases(g Gomega, e *testenv.Env, namespace string) map[string]*releasev1.Release {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = ptr.To(e.Kubectl.Kubeconfig), ptr.To(namespace)
	cfg := action.NewConfiguration()
	g.Expect(cfg.Init(flags, namespace, "secret")).To(Succeed())
	list, err := action.NewList(cfg).Run()
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]*releasev1.Release{}
	for _, r := range list {
		rel, ok := r.(*releasev1.Release)
		g.Expect(ok).To(BeTrue(), "release of type %T", r)
		out[rel.Name] = rel
	}
	return out
}
