package v1alpha1

import (
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ActionName is what a person asks of a release.
// +kubebuilder:validation:Enum=Promote;Abort;Pause;Resume;Approve;Retry;Conclude
type ActionName string

// The actions. Promote, Approve and Retry apply to CanaryReleases,
// Conclude to Experiments, the others to both.
const (
	// ActionPromote runs the next step now; with full, goes to 100 %
	// skipping the remaining steps and gates.
	ActionPromote ActionName = "Promote"
	// ActionAbort sends all traffic to the baseline; the release ends Aborted.
	ActionAbort ActionName = "Abort"
	// ActionPause freezes the weights until ActionResume.
	ActionPause  ActionName = "Pause"
	ActionResume ActionName = "Resume"
	// ActionApprove lets a ManualGate open up to weight.
	ActionApprove ActionName = "Approve"
	// ActionRetry starts an aborted or rolled-back release again from its first step.
	ActionRetry ActionName = "Retry"
	// ActionConclude ends an Experiment with winner taking all traffic.
	ActionConclude ActionName = "Conclude"
)

// ActionPhase is where a ReleaseAction stands.
// +kubebuilder:validation:Enum=Pending;Applied;Refused
type ActionPhase string

// The phases of a ReleaseAction.
const (
	ActionPending ActionPhase = "Pending"
	ActionApplied ActionPhase = "Applied"
	ActionRefused ActionPhase = "Refused"
)

// ActionTarget names the release an action is for, in the action's namespace.
type ActionTarget struct {
	// Kind of the release: CanaryRelease, Experiment, or ReleasePlan (whose
	// actions live in the manager's namespace).
	// +kubebuilder:validation:Enum=CanaryRelease;Experiment;ReleasePlan
	Kind string `json:"kind"`
	// Name of the release.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ReleaseActionSpec is what is asked, of which release, by whom.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a ReleaseAction is immutable; create another one"
// +kubebuilder:validation:XValidation:rule="self.action != 'Approve' || has(self.weight)",message="weight is required to Approve"
// +kubebuilder:validation:XValidation:rule="self.action != 'Conclude' || has(self.winner)",message="winner is required to Conclude"
type ReleaseActionSpec struct {
	// Target is the release acted on.
	Target ActionTarget `json:"target"`

	// Action asked.
	Action ActionName `json:"action"`

	// Full (Promote) goes to 100 % at once, skipping the remaining steps and gates.
	// +optional
	Full bool `json:"full,omitempty"`

	// Weight (Approve) is the canary weight a ManualGate may open up to.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight *int32 `json:"weight,omitempty"`

	// Winner (Conclude) is the subset that takes all traffic.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Winner string `json:"winner,omitempty"`

	// RequestedBy is the user who created the action, as the API server
	// authenticated them; the admission webhook sets it, whatever the
	// request said.
	// +optional
	RequestedBy string `json:"requestedBy,omitempty"`

	// RequestedAt is when the admission webhook admitted the action;
	// a release applies its actions in this order.
	// +optional
	RequestedAt *metav1.MicroTime `json:"requestedAt,omitempty"`
}

// ReleaseActionStatus says whether the action was applied.
type ReleaseActionStatus struct {
	// Phase: Pending until the release's executor applies the action or
	// refuses it.
	// +optional
	Phase ActionPhase `json:"phase,omitempty"`

	// Message says what the action did, or why it was refused.
	// +optional
	Message string `json:"message,omitempty"`

	// Time the action was applied or refused.
	// +optional
	Time *metav1.MicroTime `json:"time,omitempty"`
}

// ReleaseAction asks the executor of a CanaryRelease or an Experiment to
// promote, abort, pause, resume, approve, retry or conclude it. Creating
// one is the whole request: Kubernetes RBAC on releaseactions decides who
// may act, the release's own manifest stays as its author wrote it, and
// the release's history records the action with the user who asked.
// `kubist canary promote NAME` and its sibling commands create them.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kact
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.target.kind`
// +kubebuilder:printcolumn:name="Release",type=string,JSONPath=`.spec.target.name`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="By",type=string,JSONPath=`.spec.requestedBy`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ReleaseAction struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ReleaseActionSpec   `json:"spec"`
	Status ReleaseActionStatus `json:"status,omitempty"`
}

// ReleaseActionList is a list of ReleaseActions.
// +kubebuilder:object:root=true
type ReleaseActionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ReleaseAction `json:"items"`
}

// Summary renders an action for people, e.g. "Approve up to 40%".
func (s *ReleaseActionSpec) Summary() string {
	switch {
	case s.Action == ActionPromote && s.Full:
		return "Promote --full"
	case s.Action == ActionApprove && s.Weight != nil:
		return "Approve up to " + strconv.Itoa(int(*s.Weight)) + "%"
	case s.Action == ActionConclude:
		return "Conclude with winner " + s.Winner
	}
	return string(s.Action)
}
