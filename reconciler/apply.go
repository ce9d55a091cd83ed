package reconciler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Reasons of the objects an executor applies.
const (
	ReasonIstioAPIMissing       = "IstioAPIMissing"
	ReasonVirtualClusterMissing = "VirtualClusterMissing"
	ReasonClusterMissing        = "ClusterMissing"
	// ReasonRejected: an admission webhook of the target (Istio's
	// validation, for the Istio objects) refused the write.
	ReasonRejected = "Rejected"
)

// placement is where a namespaced resource's objects go: the namespace of
// its VirtualCluster on that VirtualCluster's Cluster.
type placement struct {
	vc        *v1alpha1.VirtualCluster
	cluster   *v1alpha1.Cluster
	target    *Target
	namespace string
}

// placementOf resolves the placement of the resources in a management
// namespace, which is named after its VirtualCluster.
func (r *Reconciler) placementOf(ctx context.Context, namespace string) (*placement, error) {
	vc := &v1alpha1.VirtualCluster{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: namespace}, vc, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, userError(ReasonVirtualClusterMissing, "no VirtualCluster %q: namespaced Kubist resources live in the namespace named after their VirtualCluster; create VirtualCluster %s", namespace, namespace)
		}
		return nil, err
	}
	cluster, target, err := r.clusterOf(ctx, vc)
	if err != nil {
		return nil, err
	}
	return &placement{vc: vc, cluster: cluster, target: target, namespace: targetNamespace(vc)}, nil
}

// clusterOf returns a VirtualCluster's Cluster and its target.
func (r *Reconciler) clusterOf(ctx context.Context, vc *v1alpha1.VirtualCluster) (*v1alpha1.Cluster, *Target, error) {
	cluster := &v1alpha1.Cluster{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: vc.Spec.Cluster}, cluster, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, userError(ReasonClusterMissing, "Cluster %q (spec.cluster of VirtualCluster %s) does not exist", vc.Spec.Cluster, vc.Name)
		}
		return nil, nil, err
	}
	target, err := r.Clusters.For(ctx, cluster)
	if err != nil {
		return nil, nil, err
	}
	return cluster, target, nil
}

// targetNamespace is a VirtualCluster's namespace on its cluster.
func targetNamespace(vc *v1alpha1.VirtualCluster) string {
	return cmp.Or(vc.Spec.Namespace, vc.Name)
}

// ownerLabels mark an object created on a target for a Kubist resource.
func ownerLabels(kind string, owner v1alpha1.Object, vc string) map[string]string {
	return map[string]string{
		v1alpha1.LabelManaged:        "true",
		v1alpha1.LabelVirtualCluster: vc,
		v1alpha1.LabelOwnerKind:      kind,
		v1alpha1.LabelOwnerName:      owner.GetName(),
		v1alpha1.LabelOwnerNamespace: owner.GetNamespace(),
	}
}

// hasLabels tells whether every label of want is on the object.
func hasLabels(obj client.Object, want map[string]string) bool {
	have := obj.GetLabels()
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// managedObject is an object type Kubist applies on a target: desired
// builds it, differs tells whether the current one needs an update, and
// update copies the desired state over the current one.
type managedObject[T client.Object] struct {
	kind    string
	empty   func() T
	differs func(current, desired T) bool
	update  func(current, desired T)
	// missing says how to install the type's API when the cluster lacks
	// it; Istio's by default.
	missing string
}

// ensure makes the target hold the desired object: created when missing,
// updated when its managed fields differ, left alone otherwise. A
// ReadOnly executor only records what it would do. An object of the same
// name that Kubist does not manage, or that another resource owns, is a
// conflict: it is never taken over.
func ensure[T client.Object](ctx context.Context, s *scope, t *Target, m managedObject[T], desired T) error {
	what := fmt.Sprintf("%s %s/%s on %s", m.kind, desired.GetNamespace(), desired.GetName(), t)
	// The cache's own object, read only until it is to change (most runs
	// find it as desired, and a VirtualService is costly to copy).
	current := m.empty()
	err := t.Client.Get(ctx, client.ObjectKeyFromObject(desired), current, client.UnsafeDisableDeepCopy)
	if meta.IsNoMatchError(err) && m.missing != "" {
		return userError(ReasonGatewayAPIMissing, "cannot apply %s: its API is not installed there (%v); %s", what, err, m.missing)
	}
	switch {
	case apierrors.IsNotFound(err):
		if s.readOnly {
			s.drift = append(s.drift, "create "+what)
			return nil
		}
		if err := t.Client.Create(ctx, desired); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return userError(ReasonConflict, "%s exists and is not managed by Kubist (it lacks the label %s=true): delete or rename it, or add the label to let Kubist manage it", what, v1alpha1.LabelManaged)
			}
			return applyError(what, err)
		}
		writes.WithLabelValues(s.kind, m.kind).Inc()
		return nil
	case err != nil:
		return applyError(what, err)
	}
	owner := map[string]string{
		v1alpha1.LabelOwnerKind:      desired.GetLabels()[v1alpha1.LabelOwnerKind],
		v1alpha1.LabelOwnerName:      desired.GetLabels()[v1alpha1.LabelOwnerName],
		v1alpha1.LabelOwnerNamespace: desired.GetLabels()[v1alpha1.LabelOwnerNamespace],
	}
	if !hasLabels(current, owner) {
		l := current.GetLabels()
		return userError(ReasonConflict, "%s belongs to %s %s/%s, not to this %s", what,
			l[v1alpha1.LabelOwnerKind], l[v1alpha1.LabelOwnerNamespace], l[v1alpha1.LabelOwnerName], s.kind)
	}
	if !m.differs(current, desired) && hasLabels(current, desired.GetLabels()) {
		return nil
	}
	if s.readOnly {
		s.drift = append(s.drift, "update "+what)
		return nil
	}
	current = current.DeepCopyObject().(T)
	labels := current.GetLabels()
	for k, v := range desired.GetLabels() {
		labels[k] = v
	}
	current.SetLabels(labels)
	m.update(current, desired)
	if err := t.Client.Update(ctx, current, metadataReply); err != nil {
		return applyError(what, err)
	}
	writes.WithLabelValues(s.kind, m.kind).Inc()
	return nil
}

// applyError explains a failed read or write on a target.
func applyError(what string, err error) error {
	if meta.IsNoMatchError(err) {
		return userError(ReasonIstioAPIMissing, "cannot apply %s: its API is not installed there (%v); install Istio, or set installIstio: true in the Cluster's executor parameters", what, err)
	}
	if msg, ok := webhookDenial(err); ok {
		// Istio's own validation (or another webhook of the cluster)
		// refused it: the resource's spec or policies must change, so no
		// retry helps until then.
		return userError(ReasonRejected, "%s was refused by the cluster: %s", what, msg)
	}
	if apierrors.IsForbidden(err) {
		return userError(ReasonError, "cannot apply %s: %v", what, err)
	}
	return transientError(ReasonError, "apply %s: %v", what, err)
}

// removeOwned deletes, in a target namespace, the objects of each given
// type that carry the labels: only what Kubist created for that owner,
// never a user's object of the same name.
func removeOwned(ctx context.Context, s *scope, t *Target, namespace string, labels map[string]string, objs ...client.Object) error {
	for _, obj := range objs {
		err := t.Client.DeleteAllOf(ctx, obj, client.InNamespace(namespace), client.MatchingLabels(labels))
		if err != nil && !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
			return fmt.Errorf("delete %T in %s on %s: %w", obj, namespace, t, err)
		}
	}
	writes.WithLabelValues(s.kind, "delete").Inc()
	return nil
}

// webhookDenial recognises an admission webhook's refusal, which the API
// server reports as `admission webhook "<name>" denied the request: <why>`,
// and returns that message.
func webhookDenial(err error) (string, bool) {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return "", false
	}
	msg := status.Status().Message
	if !strings.HasPrefix(msg, "admission webhook ") || !strings.Contains(msg, " denied the request") {
		return "", false
	}
	return msg, true
}
