package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PlanPhase is where a ReleasePlan stands.
// +kubebuilder:validation:Enum=Pending;Progressing;Paused;Promoted;Halted;RolledBack;Aborted
type PlanPhase string

// The phases of a ReleasePlan.
const (
	PlanPending     PlanPhase = "Pending"
	PlanProgressing PlanPhase = "Progressing"
	// PlanPaused: a person paused the plan; no wave or VirtualCluster
	// starts and its releases hold their weights until it is resumed.
	PlanPaused   PlanPhase = "Paused"
	PlanPromoted PlanPhase = "Promoted"
	// PlanHalted: a release failed and the plan's policies stopped it
	// there (onFailure: Halt); the waves already promoted keep the subset.
	PlanHalted PlanPhase = "Halted"
	// PlanRolledBack: a release failed and the plan's policies sent every
	// VirtualCluster it reached back to the baseline (onFailure: Rollback).
	PlanRolledBack PlanPhase = "RolledBack"
	// PlanAborted: a person aborted the plan; its running releases were
	// aborted, the waves already promoted keep the subset.
	PlanAborted PlanPhase = "Aborted"
)

// Ended says whether a plan in this phase has ended: it starts nothing more.
func (p PlanPhase) Ended() bool {
	return p == PlanPromoted || p == PlanHalted || p == PlanRolledBack || p == PlanAborted
}

// ReleasePlanSpec is the desired state of a ReleasePlan: what to release,
// where, and in which waves.
// +kubebuilder:validation:XValidation:rule="self.waves.all(w, self.waves.exists_one(x, x.name == w.name))",message="wave names must be unique"
type ReleasePlanSpec struct {
	// Executor and policies of the plan itself: its chain decides when a
	// wave (or a VirtualCluster of a wave) starts; WavePacing by default.
	Stanzas `json:",inline"`

	// Project whose VirtualClusters the plan releases to. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="project is immutable"
	Project string `json:"project"`

	// Routes released, by name, in each VirtualCluster's namespace: a
	// group of several is released as one (its releases advance in
	// lockstep and roll back together). Each Route's release template
	// (spec.release) says which Destination and rule, and its policies
	// unless the plan's release stanza gives them.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.all(r, self.exists_one(x, x == r))",message="a Route may be named once"
	Routes []string `json:"routes"`

	// Subset released on every Route; empty releases each Route's newest
	// ready subset that is newer than its stable one, resolved once, when
	// the plan starts (status.subset). Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="subset is immutable"
	Subset string `json:"subset,omitempty"`

	// Clusters selects, by their labels, the Clusters whose VirtualClusters
	// the plan reaches; absent means every Cluster of the Project.
	// +optional
	Clusters *metav1.LabelSelector `json:"clusters,omitempty"`

	// VirtualClusters selects, by their labels, the VirtualClusters the
	// plan reaches; absent means every one of the selected Clusters.
	// +optional
	VirtualClusters *metav1.LabelSelector `json:"virtualClusters,omitempty"`

	// Waves in order: each VirtualCluster the plan reaches is in the first
	// wave whose selectors match it and its Cluster; a wave without
	// selectors takes the rest. A VirtualCluster in no wave is not
	// released (the status counts them).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Waves []ReleaseWave `json:"waves"`

	// Release is the chain of the releases the plan starts; absent, each
	// Route's release template gives its own.
	// +optional
	Release *PlanRelease `json:"release,omitempty"`
}

// ReleaseWave is one wave of a plan: the VirtualClusters it selects.
type ReleaseWave struct {
	// Name of the wave, e.g. canary, eu, rest.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Clusters selects the wave's Clusters by their labels.
	// +optional
	Clusters *metav1.LabelSelector `json:"clusters,omitempty"`

	// VirtualClusters selects the wave's VirtualClusters by their labels.
	// +optional
	VirtualClusters *metav1.LabelSelector `json:"virtualClusters,omitempty"`
}

// PlanRelease is what the releases a plan starts run.
type PlanRelease struct {
	// Policies of each release the plan starts, instead of its Route's
	// release template's.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Policies []PolicyRef `json:"policies,omitempty"`

	// Executor of each release the plan starts.
	// +optional
	Executor *ExecutorRef `json:"executor,omitempty"`
}

// ReleasePlanStatus is where a plan stands: each wave, each VirtualCluster
// it reached, each release it started.
type ReleasePlanStatus struct {
	CommonStatus `json:",inline"`

	// Phase of the plan.
	// +optional
	Phase PlanPhase `json:"phase,omitempty"`

	// PausedPhase is the phase a paused plan resumes in.
	// +optional
	PausedPhase PlanPhase `json:"pausedPhase,omitempty"`

	// Subset released, as resolved when the plan started.
	// +optional
	Subset string `json:"subset,omitempty"`

	// Wave is the number of waves started.
	// +optional
	Wave int32 `json:"wave,omitempty"`

	// Summary for kubectl get, e.g. "wave 2/3 eu: 1/2 promoted".
	// +optional
	Summary string `json:"summary,omitempty"`

	// Waves in the spec's order.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	Waves []WaveStatus `json:"waves,omitempty"`

	// Unplaced counts the VirtualClusters the plan reaches that no wave
	// selects.
	// +optional
	Unplaced int32 `json:"unplaced,omitempty"`

	// Steps are the plan's decisions (a wave or a VirtualCluster started,
	// the plan promoted, halted, rolled back) and the actions people
	// asked of it.
	Steps `json:",inline"`
}

// WavePhase is where a wave stands.
// +kubebuilder:validation:Enum=Pending;Progressing;Promoted;Failed;RolledBack;Aborted
type WavePhase string

// The phases of a wave.
const (
	WavePending     WavePhase = "Pending"
	WaveProgressing WavePhase = "Progressing"
	WavePromoted    WavePhase = "Promoted"
	WaveFailed      WavePhase = "Failed"
	WaveRolledBack  WavePhase = "RolledBack"
	WaveAborted     WavePhase = "Aborted"
)

// WaveStatus is one wave of a plan.
type WaveStatus struct {
	// Name of the wave.
	Name string `json:"name"`
	// Phase of the wave.
	// +optional
	Phase WavePhase `json:"phase,omitempty"`
	// Started is when the wave's first VirtualCluster started.
	// +optional
	Started *metav1.MicroTime `json:"started,omitempty"`
	// Promoted is when the wave's last release was promoted.
	// +optional
	Promoted *metav1.MicroTime `json:"promoted,omitempty"`
	// Members are the wave's VirtualClusters: those it selects now until
	// it starts, those it held when it started afterwards.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Members []PlanMember `json:"members,omitempty"`
	// Metrics per subset across the wave's clusters, from its releases'
	// last decisions: requests summed, error rate over all of them,
	// p99 the highest of the clusters'.
	// +optional
	// +listType=map
	// +listMapKey=subset
	// +kubebuilder:validation:MaxItems=8
	Metrics []StepMetrics `json:"metrics,omitempty"`
}

// PlanMember is one VirtualCluster of a wave, with the releases the plan
// started in its namespace.
type PlanMember struct {
	// VirtualCluster released to.
	VirtualCluster string `json:"virtualCluster"`
	// Cluster of the VirtualCluster.
	// +optional
	Cluster string `json:"cluster,omitempty"`
	// Namespace of the VirtualCluster, where its releases are.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Started is when the plan started its releases.
	// +optional
	Started *metav1.MicroTime `json:"started,omitempty"`
	// Phase of the member: its releases' phase, the worst first.
	// +optional
	Phase WavePhase `json:"phase,omitempty"`
	// Releases started in the namespace, one per Route of the plan.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Releases []PlanMemberRelease `json:"releases,omitempty"`
}

// PlanMemberRelease is one release a plan started.
type PlanMemberRelease struct {
	// Route released.
	Route string `json:"route"`
	// Name of the CanaryRelease.
	// +optional
	Name string `json:"name,omitempty"`
	// Phase of the release.
	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`
	// CanaryWeight of the release.
	// +optional
	CanaryWeight int32 `json:"canaryWeight,omitempty"`
	// Baseline the release moves traffic away from.
	// +optional
	Baseline string `json:"baseline,omitempty"`
	// Reverted names the release that sent the Route back to the baseline
	// after this one was promoted (a plan's rollback).
	// +optional
	Reverted string `json:"reverted,omitempty"`
	// Problem says why the release could not be started.
	// +optional
	Problem string `json:"problem,omitempty"`
}

// ReleasePlan releases one subset of one or more Routes to many
// VirtualClusters, over many Clusters, wave by wave: it starts and owns a
// CanaryRelease per Route in each VirtualCluster of a wave, and its own
// policy chain decides when the next wave starts and what a failure does.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=plan,categories=kubist
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=`.spec.project`
// +kubebuilder:printcolumn:name="Subset",type=string,JSONPath=`.status.subset`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Progress",type=string,JSONPath=`.status.summary`
// +kubebuilder:printcolumn:name="Executor",type=string,JSONPath=`.spec.executor.name`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ReleasePlan struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ReleasePlanSpec   `json:"spec"`
	Status ReleasePlanStatus `json:"status,omitempty"`
}

// ReleasePlanList is a list of ReleasePlans.
// +kubebuilder:object:root=true
type ReleasePlanList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ReleasePlan `json:"items"`
}
