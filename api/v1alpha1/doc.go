// Package v1alpha1 holds the kubist.io/v1alpha1 API: the resources of the
// Kubist tree (Project, Cluster, VirtualCluster, Application, Destination,
// Route, CanaryRelease, Experiment) and user-defined Policy modules.
//
// Every kind carries the same two stanzas in its spec, executor and
// policies, and the same status core: conditions and observedGeneration.
//
// +kubebuilder:object:generate=true
// +groupName=kubist.io
package v1alpha1
