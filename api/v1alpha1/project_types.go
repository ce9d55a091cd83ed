package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProjectSpec is the desired state of a Project.
type ProjectSpec struct {
	Stanzas             `json:",inline"`
	ReleasePolicyStanza `json:",inline"`

	// Description of the project, for the people who own it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`
}

// ProjectStatus is the observed state of a Project.
type ProjectStatus struct {
	CommonStatus `json:",inline"`

	// Clusters is the number of Clusters that belong to the project.
	// +optional
	Clusters int32 `json:"clusters,omitempty"`
}

// Project is the root of a Kubist tree: it groups the Clusters that one
// team manages. Its executor triggers the executors of its Clusters.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=proj,categories=kubist
// +kubebuilder:printcolumn:name="Clusters",type=integer,JSONPath=`.status.clusters`
// +kubebuilder:printcolumn:name="Shard",type=string,JSONPath=`.metadata.labels.kubist\.io/shard`,priority=1
// +kubebuilder:printcolumn:name="Executor",type=string,JSONPath=`.spec.executor.name`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Project struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ProjectSpec   `json:"spec,omitempty"`
	Status ProjectStatus `json:"status,omitempty"`
}

// ProjectList is a list of Projects.
// +kubebuilder:object:root=true
type ProjectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Project `json:"items"`
}
