package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretKeyRef points at one key of a Secret in the manager's namespace.
type SecretKeyRef struct {
	// Name of the Secret, in the namespace Kubist's manager runs in.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key of the Secret that holds the kubeconfig.
	// +optional
	// +kubebuilder:default=kubeconfig
	Key string `json:"key,omitempty"`
}

// ClusterSpec is the desired state of a Cluster.
type ClusterSpec struct {
	Stanzas             `json:",inline"`
	ReleasePolicyStanza `json:",inline"`

	// Project this cluster belongs to. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="project is immutable"
	Project string `json:"project"`

	// KubeconfigSecretRef points at a Secret holding a kubeconfig for a remote
	// cluster. When absent, the cluster is the one Kubist runs in.
	// +optional
	KubeconfigSecretRef *SecretKeyRef `json:"kubeconfigSecretRef,omitempty"`

	// PrometheusSecretRef names a Secret, in the manager's namespace, for
	// the Prometheus that the releases on this cluster read their metrics
	// from instead of the manager's (--prometheus-url): its key url (e.g.
	// http://prometheus.istio-system:9090, as the manager reaches it),
	// and token (a bearer token) and ca.crt (the CA of its certificate)
	// when it needs them.
	// +optional
	PrometheusSecretRef *SecretReference `json:"prometheusSecretRef,omitempty"`
}

// IstioStatus reports the Istio installation the Cluster executor found.
type IstioStatus struct {
	// Version of istiod, taken from its image tag.
	// +optional
	Version string `json:"version,omitempty"`
	// Revision of the control plane, when one is named.
	// +optional
	Revision string `json:"revision,omitempty"`
	// Release is the Helm release Kubist installed, when it installed Istio.
	// +optional
	Release string `json:"release,omitempty"`
}

// ClusterStatus is the observed state of a Cluster.
type ClusterStatus struct {
	CommonStatus `json:",inline"`

	// Istio found on the cluster.
	// +optional
	Istio *IstioStatus `json:"istio,omitempty"`

	// KubernetesVersion of the cluster's API server.
	// +optional
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`

	// VirtualClusters is the number of VirtualClusters on this cluster.
	// +optional
	VirtualClusters int32 `json:"virtualClusters,omitempty"`
}

// Cluster is a Kubernetes cluster that runs workloads for a Project: the one
// Kubist runs in, or a remote one reached through a kubeconfig Secret. Its
// executor verifies Istio there, installs it when asked, and triggers the
// cluster's VirtualClusters.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=kcluster,categories=kubist
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=`.spec.project`
// +kubebuilder:printcolumn:name="Istio",type=string,JSONPath=`.status.conditions[?(@.type=="IstioReady")].status`
// +kubebuilder:printcolumn:name="Istio-Version",type=string,JSONPath=`.status.istio.version`
// +kubebuilder:printcolumn:name="Executor",type=string,JSONPath=`.spec.executor.name`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterSpec   `json:"spec"`
	Status ClusterStatus `json:"status,omitempty"`
}

// ClusterList is a list of Clusters.
// +kubebuilder:object:root=true
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Cluster `json:"items"`
}
