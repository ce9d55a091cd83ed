package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// An Application writes its Deployments' replicas only with scaleDownRetired.
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=patch

// retirement is what an Application's run found of its versions' use:
// since when each retired one serves nothing, and which a running release
// needs.
type retirement struct {
	retired map[string]metav1.MicroTime
	needed  map[string]bool
}

// retirementOf works out, from the Routes and releases of an Application's
// Destinations (the manager's cache), which of its versions are retired:
// a version a release ended away from (the baseline it promoted from, the
// canary it rolled back from) that no Route's rule sends traffic to (a
// stable subset) and no running release shifts, retired since that end.
func (r *Reconciler) retirementOf(ctx context.Context, a *v1alpha1.Application) (retirement, error) {
	out := retirement{retired: map[string]metav1.MicroTime{}, needed: map[string]bool{}}
	var dests v1alpha1.DestinationList
	if err := r.Client.List(ctx, &dests, client.InNamespace(a.Namespace), client.MatchingFields{indexApplication: a.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return out, err
	}
	if len(dests.Items) == 0 {
		return out, nil
	}
	versionOf := map[string]map[string]string{} // destination → subset → version
	for i := range dests.Items {
		d := &dests.Items[i]
		label := cmp.Or(a.Spec.VersionLabel, "version")
		m := map[string]string{}
		for _, s := range d.Status.Subsets {
			m[s] = s
		}
		for _, s := range d.Spec.Subsets {
			m[s.Name] = cmp.Or(s.Labels[label], s.Name)
		}
		versionOf[d.Name] = m
	}
	version := func(destination, subset string) (string, bool) {
		m, ok := versionOf[destination]
		if !ok {
			return "", false
		}
		v, ok := m[subset]
		return v, ok
	}
	serving := map[string]bool{}
	var routes v1alpha1.RouteList
	if err := r.Client.List(ctx, &routes, client.InNamespace(a.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return out, err
	}
	ended := map[string]metav1.MicroTime{}
	for _, route := range routes.Items {
		for _, e := range route.Status.Stable {
			if v, ok := version(e.Destination, e.Subset); ok {
				serving[v] = true
			}
		}
		for _, h := range route.Status.Releases {
			from := h.Baseline
			if h.Outcome != string(v1alpha1.CanaryPromoted) {
				from = h.Subset
			}
			if v, ok := version(h.Destination, from); ok {
				if at, seen := ended[v]; !seen || at.Before(&h.Ended) {
					ended[v] = h.Ended
				}
			}
		}
	}
	var canaries v1alpha1.CanaryReleaseList
	if err := r.Client.List(ctx, &canaries, client.InNamespace(a.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return out, err
	}
	for _, c := range canaries.Items {
		if c.Status.Phase.Ended() || c.Status.Phase == v1alpha1.CanaryFailed {
			continue
		}
		for _, s := range []string{c.Spec.Subset, c.BaselineSubset()} {
			if v, ok := version(c.Spec.Destination, s); ok {
				out.needed[v] = true
			}
		}
	}
	for v, at := range ended {
		if !serving[v] && !out.needed[v] {
			out.retired[v] = at
		}
	}
	return out, nil
}

// scaling is a patch of a Deployment's replicas: down to zero (keeping
// them in AnnotationRetiredReplicas) or back.
type scaling struct {
	deployment string
	replicas   int32
	kept       *int32 // the annotation's value; nil removes it
}

// planScaling decides, with scaleDownRetired set (after > 0), which
// Deployments go to zero (their version retired that long) and which come
// back (their version needed by a running release, or no longer retired),
// and when the next one falls due.
func planScaling(deployments []appsv1.Deployment, label string, ret retirement, after time.Duration, now time.Time) (out []scaling, next time.Duration) {
	for _, d := range deployments {
		v := cmp.Or(d.Labels[label], d.Spec.Template.Labels[label])
		kept, scaledDown := d.Annotations[v1alpha1.AnnotationRetiredReplicas]
		since, retired := ret.retired[v]
		switch {
		case scaledDown && !retired:
			n, err := strconv.ParseInt(kept, 10, 32)
			if err != nil || n < 0 {
				n = 1
			}
			out = append(out, scaling{deployment: d.Name, replicas: int32(n)})
		case !scaledDown && retired && after > 0 && ptrOr(d.Spec.Replicas, 1) > 0:
			if due := since.Add(after); now.Before(due) {
				if next == 0 || due.Sub(now) < next {
					next = due.Sub(now)
				}
				continue
			}
			n := ptrOr(d.Spec.Replicas, 1)
			out = append(out, scaling{deployment: d.Name, replicas: 0, kept: &n})
		}
	}
	return out, next
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// applyScaling patches the Deployments' replicas on the target cluster
// (a merge patch of spec.replicas and the annotation: the cache's trimmed
// copies are never written back).
func applyScaling(ctx context.Context, s *scope, p *placement, plan []scaling) error {
	for _, sc := range plan {
		if s.readOnly {
			s.drift = append(s.drift, fmt.Sprintf("scale Deployment %s to %d", sc.deployment, sc.replicas))
			continue
		}
		annotation := "null"
		if sc.kept != nil {
			annotation = strconv.Quote(strconv.Itoa(int(*sc.kept)))
		}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%s}},"spec":{"replicas":%d}}`, v1alpha1.AnnotationRetiredReplicas, annotation, sc.replicas)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: p.namespace, Name: sc.deployment}}
		if err := p.target.Client.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			return applyError("Deployment "+sc.deployment, err)
		}
		writes.WithLabelValues("Application", "Deployment").Inc()
	}
	return nil
}

// applicationsOfRelease maps a Route or a CanaryRelease to the
// Applications of the Destinations it names: a release that ends, starts
// or is retried changes which of their versions are retired or needed.
func (r *Reconciler) applicationsOfRelease(ctx context.Context, o client.Object) []reconcile.Request {
	obj, ok := o.(v1alpha1.Object)
	if !ok {
		return nil
	}
	seen := map[string]bool{}
	var out []reconcile.Request
	for _, ref := range obj.References() {
		if ref.Kind != "Destination" || seen[ref.Name] {
			continue
		}
		seen[ref.Name] = true
		var d v1alpha1.Destination
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name}, &d, client.UnsafeDisableDeepCopy); err != nil {
			continue
		}
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: d.Spec.Application}})
	}
	return out
}

// retiredVersions sets each version's retirement in the Application's
// status, and says it in the summary.
func retiredVersions(versions []v1alpha1.ApplicationVersion, deployments []appsv1.Deployment, label string, ret retirement) {
	scaled := map[string]bool{}
	for _, d := range deployments {
		if _, ok := d.Annotations[v1alpha1.AnnotationRetiredReplicas]; ok {
			scaled[cmp.Or(d.Labels[label], d.Spec.Template.Labels[label])] = true
		}
	}
	for i := range versions {
		v := &versions[i]
		if at, ok := ret.retired[v.Name]; ok {
			v.Retired = at.DeepCopy()
		}
		v.ScaledDown = scaled[v.Name]
	}
}
