package testenv

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/release"
)

// History is a release's whole history, oldest first, as `kubist get`
// shows it: the steps of its ReleaseHistory pages, then its status's.
func History(ctx context.Context, c client.Reader, rel v1alpha1.Release) ([]v1alpha1.ReleaseStep, error) {
	var pages v1alpha1.ReleaseHistoryList
	if err := c.List(ctx, &pages, client.InNamespace(rel.GetNamespace()), client.MatchingFields{v1alpha1.HistoryField: rel.GetName()}); err != nil {
		return nil, fmt.Errorf("list the ReleaseHistories of %s %s/%s: %w", rel.ReleaseKind(), rel.GetNamespace(), rel.GetName(), err)
	}
	return release.History(rel, pages.Items), nil
}
