package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ApplicationSpec is the desired state of an Application.
type ApplicationSpec struct {
	Stanzas `json:",inline"`

	// Selector picks the application's Deployments in the virtual cluster's
	// namespace; defaults to `app: <metadata.name>`.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Selector map[string]string `json:"selector,omitempty"`

	// VersionLabel is the Deployment label that names a version.
	// +optional
	// +kubebuilder:default=version
	// +kubebuilder:validation:MaxLength=317
	VersionLabel string `json:"versionLabel,omitempty"`
}

// ApplicationVersion is one version of an Application as observed.
type ApplicationVersion struct {
	// Name of the version: the value of the version label.
	Name string `json:"name"`
	// Deployment running the version.
	// +optional
	Deployment string `json:"deployment,omitempty"`
	// Replicas desired.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// ReadyReplicas observed.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Created is when the version's newest Deployment was created: a
	// Route's release template releases versions newer than its stable one.
	// +optional
	Created *metav1.Time `json:"created,omitempty"`
	// Retired is when the version last served: set while it serves no
	// traffic since a release ended (promoted away from it, or rolled back
	// from it) and no release runs to or from it.
	// +optional
	Retired *metav1.MicroTime `json:"retired,omitempty"`
	// ScaledDown says that Kubist scaled the version's Deployments to zero
	// (the executor's scaleDownRetired), keeping their replicas in the
	// annotation kubist.io/retired-replicas.
	// +optional
	ScaledDown bool `json:"scaledDown,omitempty"`
}

// ApplicationStatus is the observed state of an Application.
type ApplicationStatus struct {
	CommonStatus `json:",inline"`

	// Versions observed, one per Deployment.
	// +optional
	// +listType=map
	// +listMapKey=name
	Versions []ApplicationVersion `json:"versions,omitempty"`

	// Summary of the versions for kubectl get, ready replicas of desired,
	// e.g. "v1 2/2, v2 1/2".
	// +optional
	Summary string `json:"summary,omitempty"`
}

// Application is a set of Deployments that share an `app` label, one per
// version. Kubist observes it; Destinations route to it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kapp,categories=kubist
// +kubebuilder:printcolumn:name="Versions",type=string,JSONPath=`.status.summary`
// +kubebuilder:printcolumn:name="Executor",type=string,JSONPath=`.spec.executor.name`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ApplicationSpec   `json:"spec,omitempty"`
	Status ApplicationStatus `json:"status,omitempty"`
}

// ApplicationList is a list of Applications.
// +kubebuilder:object:root=true
type ApplicationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Application `json:"items"`
}
