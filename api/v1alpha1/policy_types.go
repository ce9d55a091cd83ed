package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PolicySpec is the desired state of a Policy.
type PolicySpec struct {
	Stanzas `json:",inline"`

	// Rego is a Rego v1 module with the contract of the predefined policies:
	// a METADATA block (title, description, custom.kinds,
	// custom.parameters) and a `decision` rule. It is admitted only if it
	// compiles in Kubist's sandbox.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	Rego string `json:"rego"`
}

// PolicyStatus is the observed state of a Policy.
type PolicyStatus struct {
	CommonStatus `json:",inline"`

	// Title declared in the module's METADATA.
	// +optional
	Title string `json:"title,omitempty"`

	// Kinds the policy applies to, from the module's METADATA.
	// +optional
	Kinds []string `json:"kinds,omitempty"`
}

// Policy is a user-defined policy: a Rego module that stanzas name by the
// Policy's metadata.name, exactly as they name a predefined policy.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=kpol,categories=kubist
// +kubebuilder:printcolumn:name="Kinds",type=string,JSONPath=`.status.kinds`
// +kubebuilder:printcolumn:name="Compiled",type=string,JSONPath=`.status.conditions[?(@.type=="Compiled")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Policy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PolicySpec   `json:"spec"`
	Status PolicyStatus `json:"status,omitempty"`
}

// PolicyList is a list of Policies.
// +kubebuilder:object:root=true
type PolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Policy `json:"items"`
}
