package reconciler

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/release"
)

// A Route's release template creates the releases it starts, and deletes
// those it started once they have ended beyond its keep.
// +kubebuilder:rbac:groups=kubist.io,resources=canaryreleases,verbs=create;delete

// Condition and reasons of a Route's release template.
const (
	ConditionReleasing   = "Releasing"
	ReasonStarted        = "Started"
	ReasonNewerWaits     = "NewerWaits"
	ReasonNothingNewer   = "NothingNewer"
	ReasonTemplateBroken = "TemplateBroken"
	ReasonPlanReleases   = "PlanReleases"
)

// templateView is what a Route's run read for its release template: the
// Destination's subsets, each with the Application's version it runs.
type templateView struct {
	subsets  []string
	versions map[string]v1alpha1.ApplicationVersion // by subset
	problem  string
	// planned says which unfinished ReleasePlan releases the Route: the
	// template starts nothing meanwhile.
	planned string
}

// observeTemplate reads the template's Destination and its Application.
func (r *Reconciler) observeTemplate(ctx context.Context, route *v1alpha1.Route) (*templateView, error) {
	t := route.Spec.Release
	if t == nil {
		return nil, nil
	}
	view := &templateView{}
	var d v1alpha1.Destination
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: route.Namespace, Name: t.Destination}, &d, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			view.problem = fmt.Sprintf("Destination %s (spec.release.destination) does not exist", t.Destination)
			return view, nil
		}
		return nil, err
	}
	var app v1alpha1.Application
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: route.Namespace, Name: d.Spec.Application}, &app, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			view.problem = fmt.Sprintf("Application %s of Destination %s does not exist", d.Spec.Application, d.Name)
			return view, nil
		}
		return nil, err
	}
	view.subsets, view.versions = release.SubsetVersions(&d, &app)
	var plans v1alpha1.ReleasePlanList
	if err := r.Client.List(ctx, &plans, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	for i := range plans.Items {
		if wave, ok := release.Covering(&plans.Items[i], route.Namespace, route.Name); ok {
			view.planned = fmt.Sprintf("ReleasePlan %s releases this Route here (wave %s): the template starts nothing until the plan ends", plans.Items[i].Name, wave)
		}
	}
	return view, nil
}

// templateDecision is what a Route's template decided in a run: the
// release to start (and one to delete first, to replace it), the ended
// releases it started to delete, what it records and says.
type templateDecision struct {
	start   *v1alpha1.CanaryRelease
	replace string
	prune   []string
	started []v1alpha1.StartedRelease
	waiting string
	reason  string
	message string
}

// decideTemplate works out what a Route's release template does: start a
// release of the newest ready subset whose version is newer than the
// stable one's (and than the Route), once; wait while a release runs on
// the rule (or replace it, when the template says so); and delete the
// ended releases it started beyond keep, once the Route's history holds
// them. It reads only what the run observed.
func decideTemplate(route *v1alpha1.Route, view *templateView, stable []v1alpha1.StableSubset, live []liveWeights, now metav1.MicroTime) templateDecision {
	t := route.Spec.Release
	dec := templateDecision{started: slices.Clone(route.Status.Started)}
	// A release the template started is recorded even if the run that
	// started it stopped before its status write: one created after the
	// last start recorded (older ones the record let go are not brought
	// back).
	var latest metav1.MicroTime
	for _, s := range dec.started {
		if latest.Before(&s.At) {
			latest = s.At
		}
	}
	for _, l := range live {
		if l.startedByTemplate && latest.Before(&l.created) && !slices.ContainsFunc(dec.started, func(s v1alpha1.StartedRelease) bool { return s.Release == l.name }) {
			dec.started = append(dec.started, v1alpha1.StartedRelease{Subset: l.canary, Release: l.name, At: l.created})
		}
	}
	dec.started = dec.started[max(0, len(dec.started)-v1alpha1.RouteHistoryLimit):]
	if view.problem != "" {
		dec.reason, dec.message = ReasonTemplateBroken, view.problem
		return dec
	}
	if view.planned != "" {
		dec.reason, dec.message = ReasonPlanReleases, view.planned
		return dec
	}
	stableSubset := ""
	for _, e := range stable {
		if e.Destination == t.Destination && (t.HTTPRoute == "" || e.Rule == t.HTTPRoute) {
			stableSubset = e.Subset
			break
		}
	}
	if stableSubset == "" {
		dec.reason, dec.message = ReasonTemplateBroken, fmt.Sprintf("no rule of the Route sends Destination %s one subset (spec.release.httpRoute %q): there is no stable subset to release from", t.Destination, t.HTTPRoute)
		return dec
	}
	// Newer: created after the Route, and no earlier than the stable
	// version (creation times count whole seconds: two versions deployed
	// within one are both newer than each other), and not released since
	// it was created.
	var stableAt *metav1.Time
	if v, ok := view.versions[stableSubset]; ok {
		stableAt = v.Created
	}
	released := func(s string, created *metav1.Time) bool {
		return slices.ContainsFunc(dec.started, func(r v1alpha1.StartedRelease) bool { return r.Subset == s && !r.At.Time.Before(created.Time) }) ||
			slices.ContainsFunc(live, func(l liveWeights) bool {
				return l.canary == s && l.destination == t.Destination && !l.created.Time.Before(created.Time)
			})
	}
	anyReleased := false
	newest := release.Newest(view.subsets, view.versions, func(s string, v v1alpha1.ApplicationVersion) bool {
		if s == stableSubset || !route.CreationTimestamp.Before(v.Created) || (stableAt != nil && v.Created.Before(stableAt)) {
			return false
		}
		if released(s, v.Created) {
			anyReleased = true
			return false
		}
		return true
	})
	dec.prune = pruneStarted(route, live)
	if newest == "" {
		dec.reason, dec.message = ReasonNothingNewer, fmt.Sprintf("no ready subset of Destination %s newer than the stable %s waits for a release", t.Destination, stableSubset)
		if anyReleased {
			dec.reason = ReasonStarted
			dec.message = fmt.Sprintf("every ready subset of Destination %s newer than the stable %s has had its release", t.Destination, stableSubset)
		}
		return dec
	}
	for _, l := range live {
		if l.end != nil || l.failed || l.destination != t.Destination || l.canary == "" || (t.HTTPRoute != "" && l.httpRoute != "" && l.httpRoute != t.HTTPRoute) {
			continue
		}
		if t.OnNewer == v1alpha1.OnNewerReplace && l.startedByTemplate {
			dec.replace = l.name
			break
		}
		dec.waiting = newest
		dec.reason, dec.message = ReasonNewerWaits, fmt.Sprintf("%s is newer and ready: its release starts when %s ends", newest, l.source)
		return dec
	}
	name := v1alpha1.ReleaseName(route.Name, newest)
	dec.start = &v1alpha1.CanaryRelease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: route.Namespace,
			Labels: map[string]string{v1alpha1.LabelRoute: route.Name, v1alpha1.LabelStartedBy: v1alpha1.StartedByTemplate},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Route", Name: route.Name, UID: route.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
		Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Executor: t.Executor.DeepCopy(), Policies: slices.Clone(t.Policies)},
			// The baseline is the stable subset as this run records it: the
			// release's first run may read the Route before that record.
			Route: route.Name, Destination: t.Destination, Subset: newest, Baseline: stableSubset, HTTPRoute: t.HTTPRoute},
	}
	dec.started = append(dec.started, v1alpha1.StartedRelease{Subset: newest, Release: name, At: now})
	dec.started = dec.started[max(0, len(dec.started)-v1alpha1.RouteHistoryLimit):]
	dec.reason, dec.message = ReasonStarted, fmt.Sprintf("started CanaryRelease %s: %s is newer than the stable %s and ready", name, newest, stableSubset)
	if dec.replace != "" {
		dec.message += fmt.Sprintf(", replacing %s", dec.replace)
	}
	return dec
}

// pruneStarted lists the ended releases a Route's template started beyond
// the template's keep, oldest first, that the Route's history holds.
func pruneStarted(route *v1alpha1.Route, live []liveWeights) []string {
	keep := int(ptr.Deref(route.Spec.Release.Keep, v1alpha1.DefaultReleasesKept))
	var ended []liveWeights
	for _, l := range live {
		if l.startedByTemplate && l.end != nil {
			ended = append(ended, l)
		}
	}
	slices.SortStableFunc(ended, func(a, b liveWeights) int { return a.end.Compare(b.end.Time) })
	var out []string
	for _, l := range ended[:max(0, len(ended)-keep)] {
		if recorded(route.Status.Releases, l.last) {
			out = append(out, l.name)
		}
	}
	return out
}

// applyTemplate carries out a template's decision on the management
// cluster: deletes the release it replaces and those beyond keep, creates
// the new one (admitted by the webhooks as any CanaryRelease); one that
// exists already counts as started.
func applyTemplate(ctx context.Context, s *scope, route *v1alpha1.Route, dec templateDecision) error {
	if s.readOnly {
		if dec.start != nil {
			s.drift = append(s.drift, "create CanaryRelease "+dec.start.Name)
		}
		return nil
	}
	for _, name := range append(slices.Clone(dec.prune), dec.replace) {
		if name == "" {
			continue
		}
		c := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Namespace: route.Namespace, Name: name}}
		if err := s.Client.Delete(ctx, c); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete CanaryRelease %s: %w", name, err)
		}
		writes.WithLabelValues("Route", "CanaryRelease").Inc()
	}
	if dec.start == nil {
		return nil
	}
	if err := s.Client.Create(ctx, dec.start.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return userError(ReasonTemplateBroken, "the release template's CanaryRelease %s is refused: %v", dec.start.Name, err)
		}
		return fmt.Errorf("create CanaryRelease %s: %w", dec.start.Name, err)
	}
	writes.WithLabelValues("Route", "CanaryRelease").Inc()
	return nil
}

// templateStatus records what the release template started and what
// waits, and says it in the Releasing condition; without a template, the
// condition goes.
func templateStatus(s *scope, route *v1alpha1.Route, plan routePlan) {
	if plan.template == nil {
		route.Status.Waiting = ""
		meta.RemoveStatusCondition(&route.Status.Conditions, ConditionReleasing)
		return
	}
	d := plan.decided
	route.Status.Started, route.Status.Waiting = d.started, d.waiting
	s.condition(ConditionReleasing, d.reason != ReasonTemplateBroken, d.reason, d.message)
}
