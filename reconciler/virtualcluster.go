package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create;update;patch

// Labels that turn on Istio's sidecar injection in a namespace.
const (
	labelInjection = "istio-injection"
	labelRevision  = "istio.io/rev"
)

// appLabel groups Deployments into Applications when a VirtualCluster imports them.
const appLabel = "app"

// virtualClusterExecutor (VirtualClusterExecutor): a VirtualCluster
// ensures its namespace on its cluster, labelled for sidecar injection,
// imports the Deployments that share an app label as Applications, and
// triggers the namespaced kinds in the management namespace of its name.
type virtualClusterExecutor struct{ r *Reconciler }

// virtualClusterPlan is what a VirtualCluster's run found and applied.
type virtualClusterPlan struct {
	target    *Target
	namespace string
	labels    map[string]string
	// imported says what the run imported; applications counts them all.
	imported     string
	applications int
}

func (x virtualClusterExecutor) Observe(ctx context.Context, _ *scope, vc *v1alpha1.VirtualCluster) (virtualClusterPlan, error) {
	cluster, target, err := x.r.clusterOf(ctx, vc)
	if err != nil {
		return virtualClusterPlan{}, err
	}
	plan := virtualClusterPlan{target: target, namespace: targetNamespace(vc), labels: map[string]string{v1alpha1.LabelManaged: "true"}}
	if rev := x.r.clusterRevision(cluster); rev != "" {
		plan.labels[labelRevision] = rev
	} else {
		plan.labels[labelInjection] = "enabled"
	}
	return plan, nil
}

func (virtualClusterExecutor) Propose(_ *scope, _ *v1alpha1.VirtualCluster, plan virtualClusterPlan) (virtualClusterPlan, *policies.Input) {
	return plan, &policies.Input{State: map[string]any{"namespace": plan.namespace, "labels": plan.labels}}
}

func (x virtualClusterExecutor) Apply(ctx context.Context, s *scope, vc *v1alpha1.VirtualCluster, plan virtualClusterPlan, decided *Decision) (virtualClusterPlan, error) {
	if decided != nil {
		var state struct {
			Labels map[string]string `json:"labels"`
		}
		if err := fromMap(decided.State, &state); err != nil {
			return plan, userError(ReasonPolicyError, "the policies' state.labels is not a map of strings: %v", err)
		}
		plan.labels = state.Labels
	}
	if err := ensureNamespace(ctx, s, plan.target, plan.namespace, plan.labels); err != nil {
		return plan, err
	}
	imported, err := x.r.importApplications(ctx, s, plan.target, vc, plan.namespace)
	if err != nil {
		return plan, err
	}
	var apps v1alpha1.ApplicationList
	if err := x.r.Client.List(ctx, &apps, client.InNamespace(vc.Name), client.UnsafeDisableDeepCopy); err != nil {
		return plan, err
	}
	plan.imported, plan.applications = imported, len(apps.Items)
	return plan, nil
}

func (virtualClusterExecutor) Status(_ *scope, vc *v1alpha1.VirtualCluster, plan virtualClusterPlan) (string, error) {
	vc.Status.Namespace, vc.Status.Applications = plan.namespace, int32(plan.applications)
	return fmt.Sprintf("namespace %s on %s; %d applications%s", plan.namespace, plan.target, plan.applications, plan.imported), nil
}

func (x virtualClusterExecutor) Finalize(ctx context.Context, s *scope, vc *v1alpha1.VirtualCluster) error {
	_, target, err := x.r.clusterOf(ctx, vc)
	if err != nil {
		// Without its Cluster there is nowhere to clean up.
		return client.IgnoreNotFound(ignoreUserError(err))
	}
	labels := map[string]string{v1alpha1.LabelManaged: "true", v1alpha1.LabelVirtualCluster: vc.Name}
	if err := removeOwned(ctx, s, target, targetNamespace(vc), labels,
		&networkingv1.VirtualService{}, &gatewayv1.HTTPRoute{}, &networkingv1.DestinationRule{}, &corev1.Service{}); err != nil {
		return err
	}
	// Applications it imported go too; those a user created stay.
	return x.r.Client.DeleteAllOf(ctx, &v1alpha1.Application{}, client.InNamespace(vc.Name),
		client.MatchingLabels{v1alpha1.LabelImported: "true"})
}

func (x virtualClusterExecutor) Children(ctx context.Context, vc *v1alpha1.VirtualCluster) ([]child, error) {
	var all []child
	for _, k := range v1alpha1.NamespacedKinds() {
		children, err := x.r.childrenOf(ctx, k.Kind, k.NewList(), client.InNamespace(vc.Name))
		if err != nil {
			return nil, err
		}
		all = append(all, children...)
	}
	return all, nil
}

func virtualClusterKind(r *Reconciler) *kind[*v1alpha1.VirtualCluster] {
	return &kind[*v1alpha1.VirtualCluster]{
		name:      "VirtualCluster",
		newObject: func() *v1alpha1.VirtualCluster { return &v1alpha1.VirtualCluster{} },
		executors: map[string]implementation[*v1alpha1.VirtualCluster]{"VirtualClusterExecutor": phases(virtualClusterExecutor{r})},
	}
}

// ignoreUserError drops errors only a user's change can fix: a finalizer
// does not wait on them.
func ignoreUserError(err error) error {
	var cerr *conditionError
	if errors.As(err, &cerr) && !cerr.retry {
		return nil
	}
	return err
}

// clusterRevision is the Istio revision a Cluster's executor names.
func (r *Reconciler) clusterRevision(c *v1alpha1.Cluster) string {
	ref := c.Spec.Executor
	if ref == nil {
		return ""
	}
	params, errs := r.Executors.Parameters("Cluster", ref, field.NewPath("spec", "executor"))
	if len(errs) > 0 {
		return ""
	}
	rev, _ := params["revision"].(string)
	return rev
}

// ensureNamespace makes a namespace exist with the labels; other labels
// stay. With a revision label, istio-injection goes (it would win).
func ensureNamespace(ctx context.Context, s *scope, t *Target, name string, labels map[string]string) error {
	what := fmt.Sprintf("Namespace %s on %s", name, t)
	var ns corev1.Namespace
	err := t.Client.Get(ctx, types.NamespacedName{Name: name}, &ns)
	switch {
	case apierrors.IsNotFound(err):
		if s.readOnly {
			s.drift = append(s.drift, "create "+what)
			return nil
		}
		ns = corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if err := t.Client.Create(ctx, &ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return applyError(what, err)
		}
		writes.WithLabelValues(s.kind, "Namespace").Inc()
		return nil
	case err != nil:
		return applyError(what, err)
	}
	_, revision := labels[labelRevision]
	_, injection := ns.Labels[labelInjection]
	if hasLabels(&ns, labels) && (!revision || !injection) {
		return nil
	}
	if s.readOnly {
		s.drift = append(s.drift, "label "+what)
		return nil
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	maps.Copy(ns.Labels, labels)
	if revision {
		delete(ns.Labels, labelInjection)
	}
	if err := t.Client.Update(ctx, &ns); err != nil {
		return applyError(what, err)
	}
	writes.WithLabelValues(s.kind, "Namespace").Inc()
	return nil
}

// importApplications creates an Application, labelled as imported, for
// each app label of the namespace's Deployments that has none yet; an
// existing Application, imported or the user's, is never touched. It
// returns a note for the Ready message.
func (r *Reconciler) importApplications(ctx context.Context, s *scope, t *Target, vc *v1alpha1.VirtualCluster, ns string) (string, error) {
	var deployments appsv1.DeploymentList
	if err := t.Client.List(ctx, &deployments, client.InNamespace(ns), client.HasLabels{appLabel}, client.UnsafeDisableDeepCopy); err != nil {
		return "", applyError("Deployments in "+ns, err)
	}
	// An app is imported once its oldest Deployment has been there for the
	// grace period, so that a user applying a directory with its own
	// Application in it never races the import.
	apps := map[string]bool{}
	for _, d := range deployments.Items {
		age := s.now.Sub(d.CreationTimestamp.Time)
		if age < r.ImportGrace {
			s.requeueAfter(r.ImportGrace - age + time.Second)
			continue
		}
		apps[d.Labels[appLabel]] = true
	}
	var created, skipped []string
	for _, app := range sortedKeys(apps) {
		if len(validation.IsDNS1123Subdomain(app)) > 0 {
			skipped = append(skipped, app)
			continue
		}
		var existing v1alpha1.Application
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: vc.Name, Name: app}, &existing, client.UnsafeDisableDeepCopy)
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			return "", err
		}
		if s.readOnly {
			s.drift = append(s.drift, fmt.Sprintf("import Application %s/%s", vc.Name, app))
			continue
		}
		obj := &v1alpha1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: vc.Name, Labels: map[string]string{v1alpha1.LabelImported: "true"}},
			Spec:       v1alpha1.ApplicationSpec{Selector: map[string]string{appLabel: app}},
		}
		if err := r.Client.Create(ctx, obj); err != nil {
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if apierrors.IsNotFound(err) {
				return "", userError(ReasonError, "cannot import Application %s: the management namespace %s does not exist; create it", app, vc.Name)
			}
			return "", fmt.Errorf("import Application %s/%s: %w", vc.Name, app, err)
		}
		writes.WithLabelValues(s.kind, "Application").Inc()
		created = append(created, app)
	}
	note := ""
	if len(created) > 0 {
		sort.Strings(created)
		note += "; imported " + strings.Join(created, ", ")
	}
	if len(skipped) > 0 {
		note += fmt.Sprintf("; not imported (app label is not a valid name): %s", strings.Join(skipped, ", "))
	}
	return note, nil
}
