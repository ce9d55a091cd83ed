package v1alpha1

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CanaryPhase is where a CanaryRelease stands.
// +kubebuilder:validation:Enum=Pending;Progressing;Paused;Promoted;RolledBack;Aborted;Failed
type CanaryPhase string

// The phases of a CanaryRelease.
const (
	CanaryPending     CanaryPhase = "Pending"
	CanaryProgressing CanaryPhase = "Progressing"
	CanaryPromoted    CanaryPhase = "Promoted"
	CanaryRolledBack  CanaryPhase = "RolledBack"
	CanaryFailed      CanaryPhase = "Failed"
	// CanaryPaused: an operator froze the weights until they resume it.
	CanaryPaused CanaryPhase = "Paused"
	// CanaryAborted: an operator sent all traffic back to the baseline,
	// as distinct from a policy's RolledBack.
	CanaryAborted CanaryPhase = "Aborted"
)

// Ended says whether a release in this phase has ended: its split moves
// no more (Promoted, RolledBack or Aborted).
func (p CanaryPhase) Ended() bool {
	return p == CanaryPromoted || p == CanaryRolledBack || p == CanaryAborted
}

// HistoryLimit is how many steps of a CanaryRelease or an Experiment its
// ReleaseHistory keeps, besides the last ones in its status.
const HistoryLimit = 50

// Steps is the part of a release's status that records its steps and the
// actions people asked of it: the last ones, the older ones being in the
// release's ReleaseHistory.
type Steps struct {
	// History of the last steps and actions, oldest first; the older ones
	// are in the ReleaseHistory named after the release.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	History []ReleaseStep `json:"history,omitempty"`

	// HistoryArchived counts the steps moved from History into the
	// release's ReleaseHistory.
	// +optional
	HistoryArchived int32 `json:"historyArchived,omitempty"`
}

// CanaryReleaseSpec is the desired state of a CanaryRelease.
type CanaryReleaseSpec struct {
	Stanzas `json:",inline"`

	// Route whose traffic the canary shifts. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="route is immutable"
	Route string `json:"route"`

	// Destination whose subsets take the traffic. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="destination is immutable"
	Destination string `json:"destination"`

	// Subset of the Destination that runs the new version.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Subset string `json:"subset"`

	// Baseline subset that traffic moves away from; defaults to the subset
	// the Route sends traffic to.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Baseline string `json:"baseline,omitempty"`

	// HTTPRoute names the rule of the Route to shift; absent means every
	// rule that sends traffic to the Destination.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	HTTPRoute string `json:"httpRoute,omitempty"`

	// SessionAffinity keeps a user on the canary once it served them: while
	// the release shifts traffic, the canary's responses set a cookie, and
	// requests that carry it reach the canary whatever the weights.
	// +optional
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
}

// SessionAffinity is a sticky canary's cookie.
type SessionAffinity struct {
	// CookieName is the cookie the canary's responses set; its value is the
	// canary's subset name.
	// +optional
	// +kubebuilder:default=kubist-canary
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	// +kubebuilder:validation:MaxLength=64
	CookieName string `json:"cookieName,omitempty"`
	// MaxAge of the cookie in seconds.
	// +optional
	// +kubebuilder:default=86400
	// +kubebuilder:validation:Minimum=1
	MaxAge int32 `json:"maxAge,omitempty"`
}

// CanaryMirror is a release's mirroring of requests to its canary (the
// mirror's responses are dropped), as its policies decided it.
type CanaryMirror struct {
	// Subset the requests are mirrored to.
	Subset string `json:"subset"`
	// Percent of the requests mirrored.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
	// Since is when the mirroring began.
	// +optional
	Since *metav1.MicroTime `json:"since,omitempty"`
}

// CanaryPreview is a release's preview route: requests carrying Header
// with Value reach the canary, whatever the weights.
type CanaryPreview struct {
	// Header that selects the preview, lower case.
	Header string `json:"header"`
	// Value of the header: the canary's subset name.
	Value string `json:"value"`
	// Since is when the preview opened.
	// +optional
	Since *metav1.MicroTime `json:"since,omitempty"`
}

// ReleaseStep is one decision in the history of a CanaryRelease or an
// Experiment: a step of its policies or an action a person asked for.
type ReleaseStep struct {
	// Time the step was decided.
	Time metav1.MicroTime `json:"time"`
	// Policy that decided the step (the last of the chain that changed it).
	// +optional
	Policy string `json:"policy,omitempty"`
	// Weights per subset after the step.
	// +optional
	Weights map[string]int32 `json:"weights,omitempty"`
	// Phase after the step: a CanaryPhase or an ExperimentPhase.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Phase string `json:"phase,omitempty"`
	// Message explaining the step.
	// +optional
	Message string `json:"message,omitempty"`
	// Action is the ReleaseAction a person asked for that made the step,
	// e.g. Promote; empty for the policies' own steps.
	// +optional
	Action string `json:"action,omitempty"`
	// ActionName is the name of that ReleaseAction.
	// +optional
	ActionName string `json:"actionName,omitempty"`
	// User who asked for the action, as the API server authenticated them.
	// +optional
	User string `json:"user,omitempty"`
	// Metrics each subset showed to the policies that decided the step.
	// +optional
	// +listType=map
	// +listMapKey=subset
	// +kubebuilder:validation:MaxItems=8
	Metrics []StepMetrics `json:"metrics,omitempty"`
}

// StepMetrics are the figures of one subset that a decision saw. Numbers
// are decimal strings, as the Kubernetes API conventions ask for
// non-integers.
type StepMetrics struct {
	// Subset measured.
	Subset string `json:"subset"`
	// Requests over the metrics window.
	// +optional
	Requests string `json:"requests,omitempty"`
	// ErrorRate is the share of failed requests, 0 to 1.
	// +optional
	ErrorRate string `json:"errorRate,omitempty"`
	// LatencyP99Ms is the 99th percentile latency in milliseconds.
	// +optional
	LatencyP99Ms string `json:"latencyP99Ms,omitempty"`
}

// ServedSplit is the traffic split the mesh reported serving, from Istio's
// istio_requests_total by destination_version over the executor's
// servedWindow, measured once a step has had time to take effect.
type ServedSplit struct {
	// Percent of the requests each subset served.
	// +optional
	Percent map[string]int32 `json:"percent,omitempty"`
	// Requests counted over the window.
	// +optional
	Requests int64 `json:"requests,omitempty"`
	// Weights the release had set when the split was measured.
	// +optional
	Weights map[string]int32 `json:"weights,omitempty"`
	// Summary for kubectl get, e.g. "v1 71% / v2 29%".
	// +optional
	Summary string `json:"summary,omitempty"`
}

// SplitString renders a split in subset order, e.g. "v1 71% / v2 29%".
func SplitString(split map[string]int32) string {
	parts := make([]string, 0, len(split))
	for _, s := range slices.Sorted(maps.Keys(split)) {
		parts = append(parts, fmt.Sprintf("%s %d%%", s, split[s]))
	}
	return strings.Join(parts, " / ")
}

// CanaryReleaseStatus is the observed state of a CanaryRelease: the live
// weights that the Route's executor composes into the VirtualService.
type CanaryReleaseStatus struct {
	CommonStatus `json:",inline"`

	// Phase of the release.
	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`

	// Baseline subset the release moves traffic away from.
	// +optional
	Baseline string `json:"baseline,omitempty"`

	// CanaryWeight is the percentage of traffic the canary subset receives.
	// +optional
	CanaryWeight int32 `json:"canaryWeight,omitempty"`

	// Weights per subset, as served.
	// +optional
	Weights map[string]int32 `json:"weights,omitempty"`

	// LastStepTime is when the weights last changed.
	// +optional
	LastStepTime *metav1.MicroTime `json:"lastStepTime,omitempty"`

	Steps `json:",inline"`

	// Served is the split the mesh reported serving, beside Weights: the
	// condition TrafficShifted says whether the two agree.
	// +optional
	Served *ServedSplit `json:"served,omitempty"`

	// PausedPhase is the phase a paused release resumes in.
	// +optional
	PausedPhase CanaryPhase `json:"pausedPhase,omitempty"`

	// ApprovedWeight is the weight an Approve action let a ManualGate
	// open up to; the annotation kubist.io/approved-weight does the same.
	// +optional
	ApprovedWeight *int32 `json:"approvedWeight,omitempty"`

	// Mirror is the mirroring of requests to the canary its policies
	// decided (MirrorThenShift); the Route composes it.
	// +optional
	Mirror *CanaryMirror `json:"mirror,omitempty"`

	// Preview is the preview route its policies opened (BlueGreenRelease);
	// the Route composes it ahead of the rule it shifts.
	// +optional
	Preview *CanaryPreview `json:"preview,omitempty"`
}

// CanaryRelease moves traffic of a Route from a baseline subset to a new
// one, step by step, as its policies decide; it promotes, holds or rolls back.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=canary,categories=kubist
// +kubebuilder:printcolumn:name="Route",type=string,JSONPath=`.spec.route`
// +kubebuilder:printcolumn:name="Subset",type=string,JSONPath=`.spec.subset`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Served",type=string,JSONPath=`.status.served.summary`
// +kubebuilder:printcolumn:name="Baseline",type=string,JSONPath=`.status.baseline`,priority=1
// +kubebuilder:printcolumn:name="Executor",type=string,JSONPath=`.spec.executor.name`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CanaryRelease struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CanaryReleaseSpec   `json:"spec"`
	Status CanaryReleaseStatus `json:"status,omitempty"`
}

// CanaryReleaseList is a list of CanaryReleases.
// +kubebuilder:object:root=true
type CanaryReleaseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CanaryRelease `json:"items"`
}
