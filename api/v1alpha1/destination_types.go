package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// DestinationPort is one port of the Destination's Service.
type DestinationPort struct {
	// Name of the port; Istio reads the protocol from its prefix (http-, grpc-, tcp-).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Port the Service exposes.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// TargetPort on the pods; defaults to Port.
	// +optional
	TargetPort *intstr.IntOrString `json:"targetPort,omitempty"`
	// Protocol Istio applies to the port; empty means HTTP. (Not defaulted in
	// the schema: a default inside a list item makes kubectl apply resend
	// the list on every apply.)
	// +optional
	// +kubebuilder:validation:Enum=HTTP;HTTP2;GRPC;TCP
	Protocol string `json:"protocol,omitempty"`
}

// Subset is a named set of pods of the Application, usually one version.
type Subset struct {
	// Name of the subset, referenced by Routes and CanaryReleases.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Labels that select the subset's pods, for example `version: v2`.
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=16
	Labels map[string]string `json:"labels"`
}

// DestinationSpec is the desired state of a Destination.
type DestinationSpec struct {
	Stanzas `json:",inline"`

	// Application whose pods this Destination reaches. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="application is immutable"
	Application string `json:"application"`

	// Ports of the Service.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	Ports []DestinationPort `json:"ports"`

	// Subsets of the DestinationRule. When empty, the SubsetDetector policy
	// (or the executor's default) derives one subset per version.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	Subsets []Subset `json:"subsets,omitempty"`
}

// DestinationStatus is the observed state of a Destination.
type DestinationStatus struct {
	CommonStatus `json:",inline"`

	// Host is the Service's cluster-local name that Routes send traffic to.
	// +optional
	Host string `json:"host,omitempty"`

	// Subsets in the DestinationRule as last applied.
	// +optional
	Subsets []string `json:"subsets,omitempty"`

	// SubsetServices are the Services of single subsets applied with the
	// executor parameter subsetServices, by name.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	SubsetServices []string `json:"subsetServices,omitempty"`
}

// Destination is a Kubernetes Service and an Istio DestinationRule in front
// of an Application, with one subset per version.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dest,categories=kubist
// +kubebuilder:printcolumn:name="Application",type=string,JSONPath=`.spec.application`
// +kubebuilder:printcolumn:name="Subsets",type=string,JSONPath=`.status.subsets`
// +kubebuilder:printcolumn:name="Executor",type=string,JSONPath=`.spec.executor.name`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Destination struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DestinationSpec   `json:"spec"`
	Status DestinationStatus `json:"status,omitempty"`
}

// DestinationList is a list of Destinations.
// +kubebuilder:object:root=true
type DestinationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Destination `json:"items"`
}
