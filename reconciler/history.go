package reconciler

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// A release's status holds its last steps only; the older ones are in
// pages, ReleaseHistory objects written once each. Every step is a status
// write, and the API server's cost of one grows with the object: a
// history of fifty steps kept whole in the status made each write cost
// 2.6 times one with none (BenchmarkAPIWrite). So once the status holds
// HistoryInStatus steps, the run that writes it first moves all but the
// last HistoryKept into a new page — one create every few steps, of the
// same size whatever the release's age — and the status counts the moved
// ones in historyArchived. Pages wholly older than the last HistoryLimit
// steps are deleted.
//
// Nothing is lost or shown twice if a run stops between the two writes:
// a page is named after its first step's number, which the status still
// says, so the next run finds the page it would write already there, and
// readers (v1alpha1.MergeHistory) drop from the status the steps a page
// holds already. The exactly-once record of an action (its step, named
// after it) stays in the status until a later run has marked the action
// Applied: the status keeps the last HistoryKept steps (at least the
// newest), a run adds one at most, and every run answers its release's
// actions before it writes.
// Should an action's step be found moved all the same, pendingActions
// looks in the pages.

// +kubebuilder:rbac:groups=kubist.io,resources=releasehistories,verbs=get;list;create;delete

// UncachedObjects are the kinds the manager's client reads from the API
// server rather than from its cache: a release's pages are read rarely
// (to delete the oldest, or to find an action's step), and holding every
// release's in memory would cost more than those reads.
func UncachedObjects() []client.Object {
	return []client.Object{&v1alpha1.ReleaseHistory{}}
}

// archiveHistory moves the older steps of a release's status into a new
// page once the status holds HistoryInStatus of them, before the status
// write that drops them, and deletes the pages that fell out of the last
// HistoryLimit steps.
func (s *scope) archiveHistory(ctx context.Context, rel v1alpha1.Release) error {
	steps := rel.GetSteps()
	if s.readOnly || len(steps.History) < v1alpha1.HistoryInStatus || rel.GetNamespace() == "" {
		// A ReleasePlan (cluster-scoped; its steps are few: a wave's
		// start, an action) keeps its last HistoryLimit in its status.
		return nil
	}
	move := len(steps.History) - v1alpha1.HistoryKept
	page := &v1alpha1.ReleaseHistory{
		ObjectMeta: metav1.ObjectMeta{Namespace: rel.GetNamespace(), Name: v1alpha1.HistoryPageName(s.kind, rel.GetName(), steps.HistoryArchived),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: s.kind,
				Name: rel.GetName(), UID: rel.GetUID(), Controller: ptr.To(true)}}},
		Release: v1alpha1.ActionTarget{Kind: s.kind, Name: rel.GetName()},
		First:   steps.HistoryArchived,
		Steps:   slices.Clone(steps.History[:move]),
	}
	if err := s.Client.Create(ctx, page); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("move the older steps into ReleaseHistory %s: %w", page.Name, err)
		}
		// A run wrote this page and stopped before the status said so
		// (its steps are these: a status's first steps never change), or
		// an earlier release of the same name left it.
		if err := s.dropStalePage(ctx, rel, page); err != nil {
			return err
		}
	} else {
		writes.WithLabelValues(s.kind, "history").Inc()
	}
	steps.History = slices.Clone(steps.History[move:])
	steps.HistoryArchived += int32(move)
	if total := steps.HistoryArchived + int32(len(steps.History)); total > v1alpha1.HistoryLimit {
		return s.deleteOldPages(ctx, rel, total-v1alpha1.HistoryLimit)
	}
	return nil
}

// dropStalePage reads the page already named like the one a run writes:
// one of the release's own is kept; one an earlier release of the same
// name left is deleted, and the run tried again.
func (s *scope) dropStalePage(ctx context.Context, rel v1alpha1.Release, page *v1alpha1.ReleaseHistory) error {
	found := &v1alpha1.ReleaseHistory{}
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(page), found); err != nil {
		return fmt.Errorf("read ReleaseHistory %s: %w", page.Name, err)
	}
	if metav1.IsControlledBy(found, rel) {
		return nil
	}
	if err := s.Client.Delete(ctx, found, client.Preconditions{UID: &found.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete ReleaseHistory %s of an earlier %s %s: %w", found.Name, s.kind, rel.GetName(), err)
	}
	return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("releasehistories").GroupResource(), page.Name,
		fmt.Errorf("an earlier %s %s left it", s.kind, rel.GetName()))
}

// deleteOldPages deletes the release's pages whose steps all come before
// step number before.
func (s *scope) deleteOldPages(ctx context.Context, rel v1alpha1.Release, before int32) error {
	pages, err := s.pages(ctx, rel)
	if err != nil {
		return err
	}
	for i := range pages {
		p := &pages[i]
		if p.First+int32(len(p.Steps)) > before {
			break
		}
		if err := s.Client.Delete(ctx, p, client.Preconditions{UID: &p.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete ReleaseHistory %s: %w", p.Name, err)
		}
		writes.WithLabelValues(s.kind, "history").Inc()
	}
	return nil
}

// pages are the release's ReleaseHistory pages, in order.
func (s *scope) pages(ctx context.Context, rel v1alpha1.Release) ([]v1alpha1.ReleaseHistory, error) {
	var list v1alpha1.ReleaseHistoryList
	if err := s.Client.List(ctx, &list, client.InNamespace(rel.GetNamespace()),
		client.MatchingFields{v1alpha1.HistoryField: rel.GetName()}); err != nil {
		return nil, fmt.Errorf("list the ReleaseHistories of %s %s: %w", s.kind, rel.GetName(), err)
	}
	return v1alpha1.PagesOf(rel, list.Items), nil
}

// archivedStep finds the step an action made among those moved out of the
// release's status; nil when there is none.
func (s *scope) archivedStep(ctx context.Context, actionName string) (*v1alpha1.ReleaseStep, error) {
	rel, ok := s.obj.(v1alpha1.Release)
	if !ok || rel.GetSteps().HistoryArchived == 0 {
		return nil, nil
	}
	pages, err := s.pages(ctx, rel)
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		if i := slices.IndexFunc(p.Steps, func(st v1alpha1.ReleaseStep) bool { return st.ActionName == actionName }); i >= 0 {
			return &p.Steps[i], nil
		}
	}
	return nil, nil
}
