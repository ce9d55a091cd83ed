package v1alpha1

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HistoryInStatus is how many steps at most a release's status holds
// before its executor moves the older ones into a ReleaseHistory page;
// HistoryKept of the newest stay. The API server's cost of a status write
// grows with the status, and every step is one: moved a few at a time, in
// pages written once each, a step costs about the same whatever the
// release's age. Each step kept in the status adds about 0.19 ms of API
// server CPU to every status write, and a page costs about 2.4 ms more
// than its steps (BenchmarkAPIWrite): pages of five steps make a step's
// share of the two the least.
const (
	HistoryInStatus = 6
	HistoryKept     = 1
)

// ReleaseHistory is a page of a CanaryRelease's or an Experiment's
// history: steps its executor moved out of the release's status, written
// once and never changed. The status keeps the last steps and counts the
// moved ones (historyArchived); the pages hold the HistoryLimit or so
// before them, and older pages are deleted. `kubist get` and the
// dashboard show the pages and the status as one history. Owned by the
// release, deleted with it.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=khist,categories=kubist
// +kubebuilder:selectablefield:JSONPath=`.release.name`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.release.kind`
// +kubebuilder:printcolumn:name="Release",type=string,JSONPath=`.release.name`
// +kubebuilder:printcolumn:name="First",type=integer,JSONPath=`.first`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ReleaseHistory struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Release whose steps these are.
	Release ActionTarget `json:"release"`

	// First is the number of the page's first step among the release's
	// steps, counted from 0.
	// +kubebuilder:validation:Minimum=0
	First int32 `json:"first"`

	// Steps, oldest first.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	Steps []ReleaseStep `json:"steps,omitempty"`
}

// ReleaseHistoryList is a list of ReleaseHistories.
// +kubebuilder:object:root=true
type ReleaseHistoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ReleaseHistory `json:"items"`
}

// HistoryField is the field a release's pages are selected by.
const HistoryField = "release.name"

// HistoryPageName is the name of a release's page whose first step is
// first: the kind in lower case, the release's name and first
// ("canaryrelease.reviews-v2.8"), shortened by a hash where that would be
// longer than a name may be.
func HistoryPageName(kind, release string, first int32) string {
	return ShortName(strings.ToLower(kind)+"."+release+"."+strconv.Itoa(int(first)), 253)
}

// ReleaseName is the name of a CanaryRelease of a Route's subset that
// Kubist starts (a Route's release template, kubist release):
// <route>-<subset>, shortened by a hash where that would be too long.
func ReleaseName(route, subset string) string {
	return ShortName(route+"-"+subset, 253)
}

// ShortName is name, or, where it is longer than limit, its first
// characters and a hash of the whole that make it limit long.
func ShortName(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:limit-17] + "-" + hex.EncodeToString(sum[:8])
}

// PagesOf are those of pages that belong to release, in the order of
// their steps; pages an earlier release of the same name left are not
// among them.
func PagesOf(release Release, pages []ReleaseHistory) []ReleaseHistory {
	var out []ReleaseHistory
	for _, p := range pages {
		if p.Release.Kind == release.ReleaseKind() && p.Release.Name == release.GetName() && metav1.IsControlledBy(&p, release) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b ReleaseHistory) int { return cmp.Compare(a.First, b.First) })
	return out
}

// MergeHistory is a release's whole history, oldest first: its pages'
// steps (PagesOf), then its status's, less those the status still holds
// although a page has them already (a run stopped between the page's
// write and the status's).
func MergeHistory(pages []ReleaseHistory, status *Steps) []ReleaseStep {
	if len(pages) == 0 {
		return status.History
	}
	var out []ReleaseStep
	end := int32(0)
	for _, p := range pages {
		out = append(out, p.Steps...)
		end = max(end, p.First+int32(len(p.Steps)))
	}
	dup := min(max(int(end-status.HistoryArchived), 0), len(status.History))
	return append(out, status.History[dup:]...)
}
