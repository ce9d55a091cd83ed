package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VirtualClusterSpec is the desired state of a VirtualCluster.
type VirtualClusterSpec struct {
	Stanzas             `json:",inline"`
	ReleasePolicyStanza `json:",inline"`

	// Cluster this virtual cluster lives on. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cluster is immutable"
	Cluster string `json:"cluster"`

	// Namespace on the target cluster; defaults to the VirtualCluster's name.
	// The namespaced Kubist resources of this virtual cluster live in the
	// management namespace of the same name. Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="namespace is immutable"
	Namespace string `json:"namespace,omitempty"`
}

// VirtualClusterStatus is the observed state of a VirtualCluster.
type VirtualClusterStatus struct {
	CommonStatus `json:",inline"`

	// Namespace the virtual cluster occupies on the target cluster.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Applications is the number of Applications in the virtual cluster.
	// +optional
	Applications int32 `json:"applications,omitempty"`
}

// VirtualCluster is a namespace on a Cluster, labelled for Istio sidecar
// injection, in which Kubist manages Applications, Destinations, Routes,
// CanaryReleases and Experiments.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=vc,categories=kubist
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.status.namespace`
// +kubebuilder:printcolumn:name="Apps",type=integer,JSONPath=`.status.applications`
// +kubebuilder:printcolumn:name="Executor",type=string,JSONPath=`.spec.executor.name`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VirtualCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   VirtualClusterSpec   `json:"spec"`
	Status VirtualClusterStatus `json:"status,omitempty"`
}

// VirtualClusterList is a list of VirtualClusters.
// +kubebuilder:object:root=true
type VirtualClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualCluster `json:"items"`
}
