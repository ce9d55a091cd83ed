package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch,namespace=kubist-system

// Reasons of the IstioReady condition.
const (
	ReasonIstioReady        = "Ready"
	ReasonCRDsMissing       = "CRDsMissing"
	ReasonIstiodMissing     = "IstiodMissing"
	ReasonIstiodUnavailable = "IstiodUnavailable"
	ReasonVersionMismatch   = "VersionMismatch"
	ReasonInstallFailed     = "InstallFailed"
	ReasonInstalled         = "Installed"
)

// istioRecheck is how soon a Cluster whose Istio is not ready is verified again.
const istioRecheck = 10 * time.Second

// istioNamespace is where istiod runs.
const istioNamespace = "istio-system"

// istioCRDs are the CRDs Kubist writes objects of.
var istioCRDs = []string{"virtualservices.networking.istio.io", "destinationrules.networking.istio.io"}

// clusterParameters are a ClusterExecutor's parameters.
type clusterParameters struct {
	InstallIstio    bool   `json:"installIstio"`
	IstioVersion    string `json:"istioVersion,omitempty"`
	ChartRepository string `json:"chartRepository,omitempty"`
	Revision        string `json:"revision,omitempty"`
}

// istioCheck is what verifying Istio on a cluster found.
type istioCheck struct {
	ready   bool
	reason  string
	message string
	// apiPresent: the networking CRDs exist, so Kubist can write its
	// objects even while istiod is not available.
	apiPresent bool
	version    string
}

// clusterExecutor (ClusterExecutor): a Cluster connects to its cluster,
// verifies Istio there (and installs it when asked), and triggers its
// VirtualClusters.
type clusterExecutor struct{ r *Reconciler }

// clusterPlan is what a Cluster's run found and applied.
type clusterPlan struct {
	params          clusterParameters
	virtualClusters int
	target          *Target
	version         string
	check           istioCheck
	// installed is the Helm release an install of this run made.
	installed string
}

func (x clusterExecutor) Observe(ctx context.Context, s *scope, c *v1alpha1.Cluster) (clusterPlan, error) {
	var plan clusterPlan
	if err := fromMap(s.params, &plan.params); err != nil {
		return plan, err
	}
	var vcs v1alpha1.VirtualClusterList
	if err := x.r.Client.List(ctx, &vcs, client.MatchingFields{indexCluster: c.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return plan, err
	}
	plan.virtualClusters = len(vcs.Items)
	c.Status.VirtualClusters = int32(plan.virtualClusters)
	target, err := x.r.Clusters.For(ctx, c)
	if err != nil {
		s.condition(v1alpha1.ConditionIstioReady, false, "Unknown", "the cluster is not reachable")
		return plan, err
	}
	version, err := target.ServerVersion()
	if err != nil {
		s.condition(v1alpha1.ConditionIstioReady, false, "Unknown", "the cluster is not reachable")
		return plan, err
	}
	plan.target, plan.version = target, version
	c.Status.KubernetesVersion = version
	return plan, nil
}

// Propose offers the parameters to the policies, which may change what is
// installed, e.g. pin a version or allow an install only in a maintenance
// window.
func (clusterExecutor) Propose(s *scope, _ *v1alpha1.Cluster, plan clusterPlan) (clusterPlan, *policies.Input) {
	return plan, &policies.Input{State: s.params}
}

func (x clusterExecutor) Apply(ctx context.Context, s *scope, _ *v1alpha1.Cluster, plan clusterPlan, decided *Decision) (clusterPlan, error) {
	if decided != nil {
		if err := fromMap(decided.State, &plan.params); err != nil {
			return plan, userError(ReasonPolicyError, "the policies' state is not a ClusterExecutor parameter set: %v", err)
		}
	}
	params, target := plan.params, plan.target
	check, err := verifyIstio(ctx, target, params)
	if err != nil {
		return plan, err
	}
	if params.InstallIstio && !check.ready && check.reason != ReasonIstiodUnavailable {
		if s.readOnly {
			s.drift = append(s.drift, fmt.Sprintf("install Istio %s on %s", cmp.Or(params.IstioVersion, "(chart's latest)"), target))
		} else {
			release, err := x.r.installIstio(ctx, s, target, params)
			if err != nil {
				s.condition(v1alpha1.ConditionIstioReady, false, ReasonInstallFailed, err.Error())
				return plan, transientError(ReasonInstallFailed, "%v", err)
			}
			plan.installed = release
			if check, err = verifyIstio(ctx, target, params); err != nil {
				return plan, err
			}
		}
	}
	plan.check = check
	return plan, nil
}

func (clusterExecutor) Status(s *scope, c *v1alpha1.Cluster, plan clusterPlan) (string, error) {
	check, params := plan.check, plan.params
	if plan.installed != "" {
		c.Status.Istio = &v1alpha1.IstioStatus{Version: params.IstioVersion, Revision: params.Revision, Release: plan.installed}
	}
	if check.version != "" {
		if c.Status.Istio == nil {
			c.Status.Istio = &v1alpha1.IstioStatus{}
		}
		c.Status.Istio.Version = check.version
		c.Status.Istio.Revision = params.Revision
	}
	s.condition(v1alpha1.ConditionIstioReady, check.ready, check.reason, check.message)
	if !check.ready {
		// Nothing watches istiod on the cluster: look again soon.
		s.requeueAfter(istioRecheck)
	}
	if !check.apiPresent {
		return "", userError(ReasonCRDsMissing, "%s", check.message)
	}
	return fmt.Sprintf("%s reachable, Kubernetes %s; %d virtual clusters", plan.target, plan.version, plan.virtualClusters), nil
}

func (x clusterExecutor) Children(ctx context.Context, c *v1alpha1.Cluster) ([]child, error) {
	return x.r.childrenOf(ctx, "VirtualCluster", &v1alpha1.VirtualClusterList{}, client.MatchingFields{indexCluster: c.Name})
}

func clusterKind(r *Reconciler) *kind[*v1alpha1.Cluster] {
	return &kind[*v1alpha1.Cluster]{
		name:      "Cluster",
		newObject: func() *v1alpha1.Cluster { return &v1alpha1.Cluster{} },
		// It may install Istio with Helm.
		timeout:   helmTimeout + runTimeout,
		gone:      func(key types.NamespacedName) { r.Clusters.Forget(key.Name) },
		executors: map[string]implementation[*v1alpha1.Cluster]{"ClusterExecutor": phases(clusterExecutor{r})},
	}
}

// verifyIstio checks Istio on a target: the networking CRDs, the istiod
// Deployment (istiod, or istiod-<revision>) Available, and its version
// against the expected one.
func verifyIstio(ctx context.Context, t *Target, params clusterParameters) (istioCheck, error) {
	var missing []string
	for _, name := range istioCRDs {
		// Metadata only: CRD schemas are large and nothing here reads them.
		crd := &metav1.PartialObjectMetadata{}
		crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
		if err := t.Client.Get(ctx, types.NamespacedName{Name: name}, crd); err != nil {
			if !apierrors.IsNotFound(err) {
				return istioCheck{}, transientError(ReasonUnreachable, "read CRD %s on %s: %v", name, t, err)
			}
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return istioCheck{reason: ReasonCRDsMissing, message: fmt.Sprintf(
			"Istio is not installed on %s: CRDs %s are missing; install Istio or set installIstio: true in the Cluster's executor parameters",
			t, strings.Join(missing, ", "))}, nil
	}
	name := "istiod"
	if params.Revision != "" {
		name += "-" + params.Revision
	}
	var istiod appsv1.Deployment
	if err := t.Client.Get(ctx, types.NamespacedName{Namespace: istioNamespace, Name: name}, &istiod); err != nil {
		if !apierrors.IsNotFound(err) {
			return istioCheck{}, transientError(ReasonUnreachable, "read Deployment %s/%s on %s: %v", istioNamespace, name, t, err)
		}
		return istioCheck{apiPresent: true, reason: ReasonIstiodMissing, message: fmt.Sprintf(
			"the Istio CRDs are installed on %s but the Deployment %s/%s is not; install istiod or set installIstio: true in the Cluster's executor parameters",
			t, istioNamespace, name)}, nil
	}
	version := imageTag(istiod.Spec.Template.Spec.Containers)
	check := istioCheck{apiPresent: true, version: version}
	available := false
	for _, cond := range istiod.Status.Conditions {
		if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue {
			available = true
		}
	}
	switch {
	case !available:
		check.reason, check.message = ReasonIstiodUnavailable, fmt.Sprintf("Deployment %s/%s on %s is not Available (%d of %d replicas ready)",
			istioNamespace, name, t, istiod.Status.ReadyReplicas, istiod.Status.Replicas)
	case params.IstioVersion != "" && version != params.IstioVersion:
		check.reason, check.message = ReasonVersionMismatch, fmt.Sprintf("istiod on %s runs Istio %s, the Cluster expects %s (istioVersion)%s",
			t, cmp.Or(version, "of unknown version"), params.IstioVersion, upgradeHint(params))
	default:
		check.ready, check.reason, check.message = true, ReasonIstioReady, fmt.Sprintf("Istio %s is ready on %s", cmp.Or(version, "(version unknown)"), t)
	}
	return check, nil
}

func upgradeHint(p clusterParameters) string {
	if p.InstallIstio {
		return "; upgrading"
	}
	return "; set installIstio: true to upgrade it"
}

// imageTag is the tag of istiod's discovery container image: its version.
func imageTag(containers []corev1.Container) string {
	for _, c := range containers {
		if c.Name != "discovery" && len(containers) > 1 {
			continue
		}
		image := c.Image
		if i := strings.Index(image, "@"); i >= 0 {
			image = image[:i]
		}
		if i := strings.LastIndex(image, ":"); i >= 0 && !strings.Contains(image[i:], "/") {
			return strings.TrimSuffix(image[i+1:], "-distroless")
		}
	}
	return ""
}
