package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ExperimentPhase is where an Experiment stands.
// +kubebuilder:validation:Enum=Pending;Running;Concluded;Inconclusive;Paused;Aborted
type ExperimentPhase string

// The phases of an Experiment.
const (
	ExperimentPending      ExperimentPhase = "Pending"
	ExperimentRunning      ExperimentPhase = "Running"
	ExperimentConcluded    ExperimentPhase = "Concluded"
	ExperimentInconclusive ExperimentPhase = "Inconclusive"
	// ExperimentPaused: an operator froze the weights until they resume it.
	ExperimentPaused ExperimentPhase = "Paused"
	// ExperimentAborted: an operator sent all traffic to the first subset.
	ExperimentAborted ExperimentPhase = "Aborted"
)

// GoalQueries are PromQL templates for a custom goal metric; `{{subset}}`,
// `{{namespace}}` and `{{service}}` are substituted per subset.
type GoalQueries struct {
	// Mean of the metric per request.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Mean string `json:"mean"`
	// Stddev of the metric per request.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Stddev string `json:"stddev"`
	// Count of the samples.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Count string `json:"count"`
}

// ExperimentGoal is the metric an Experiment optimises.
// +kubebuilder:validation:XValidation:rule="self.metric != 'custom' || has(self.queries)",message="a custom metric needs queries"
type ExperimentGoal struct {
	// Metric to compare: request latency or error rate from Istio's standard
	// metrics, or a custom one given by queries.
	// +kubebuilder:validation:Enum=latency;errorRate;custom
	Metric string `json:"metric"`
	// Objective: the better subset has the lower (Minimize) or the higher
	// (Maximize) value.
	// +optional
	// +kubebuilder:default=Minimize
	// +kubebuilder:validation:Enum=Minimize;Maximize
	Objective string `json:"objective,omitempty"`
	// Queries for a custom metric.
	// +optional
	Queries *GoalQueries `json:"queries,omitempty"`
}

// ExperimentSpec is the desired state of an Experiment.
type ExperimentSpec struct {
	Stanzas `json:",inline"`

	// Route whose traffic the experiment splits. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="route is immutable"
	Route string `json:"route"`

	// Destination whose subsets compete. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="destination is immutable"
	Destination string `json:"destination"`

	// Subsets that compete; traffic starts evenly split among them.
	// +kubebuilder:validation:MinItems=2
	// +kubebuilder:validation:MaxItems=8
	// +listType=set
	// +kubebuilder:validation:items:MaxLength=63
	Subsets []string `json:"subsets"`

	// Goal metric.
	Goal ExperimentGoal `json:"goal"`

	// HTTPRoute names the rule of the Route to split; absent means every
	// rule that sends traffic to the Destination.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	HTTPRoute string `json:"httpRoute,omitempty"`
}

// SubsetStatistics summarises the goal metric of one subset. Numbers are
// decimal strings, as the Kubernetes API conventions ask for non-integers.
type SubsetStatistics struct {
	// Subset measured.
	Subset string `json:"subset"`
	// Mean of the goal metric.
	// +optional
	Mean string `json:"mean,omitempty"`
	// Stddev of the goal metric.
	// +optional
	Stddev string `json:"stddev,omitempty"`
	// N is the number of samples.
	// +optional
	N int64 `json:"n,omitempty"`
	// PValue of Welch's t-test against the best other subset.
	// +optional
	PValue string `json:"pValue,omitempty"`
}

// ExperimentStatus is the observed state of an Experiment.
type ExperimentStatus struct {
	CommonStatus `json:",inline"`

	// Phase of the experiment.
	// +optional
	Phase ExperimentPhase `json:"phase,omitempty"`

	// Weights per subset, as served.
	// +optional
	Weights map[string]int32 `json:"weights,omitempty"`

	// Statistics per subset.
	// +optional
	// +listType=map
	// +listMapKey=subset
	Statistics []SubsetStatistics `json:"statistics,omitempty"`

	// Winner is the subset that is significantly better, once known.
	// +optional
	Winner string `json:"winner,omitempty"`

	// LastStepTime is when the weights last changed.
	// +optional
	LastStepTime *metav1.MicroTime `json:"lastStepTime,omitempty"`

	Steps `json:",inline"`

	// PausedPhase is the phase a paused experiment resumes in.
	// +optional
	PausedPhase ExperimentPhase `json:"pausedPhase,omitempty"`
}

// Experiment is an A/B test among subsets of a Destination on a goal
// metric; weights move towards the winner as Welch's t-test finds it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=exp,categories=kubist
// +kubebuilder:printcolumn:name="Route",type=string,JSONPath=`.spec.route`
// +kubebuilder:printcolumn:name="Subsets",type=string,JSONPath=`.spec.subsets`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Winner",type=string,JSONPath=`.status.winner`
// +kubebuilder:printcolumn:name="Executor",type=string,JSONPath=`.spec.executor.name`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Experiment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ExperimentSpec   `json:"spec"`
	Status ExperimentStatus `json:"status,omitempty"`
}

// ExperimentList is a list of Experiments.
// +kubebuilder:object:root=true
type ExperimentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Experiment `json:"items"`
}
