package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of every Kubist kind.
var GroupVersion = schema.GroupVersion{Group: "kubist.io", Version: "v1alpha1"}

// SchemeBuilder registers the Kubist kinds with a runtime.Scheme.
var SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

// AddToScheme adds every Kubist kind to a scheme.
var AddToScheme = SchemeBuilder.AddToScheme

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&Project{}, &ProjectList{},
		&Cluster{}, &ClusterList{},
		&VirtualCluster{}, &VirtualClusterList{},
		&Application{}, &ApplicationList{},
		&Destination{}, &DestinationList{},
		&Route{}, &RouteList{},
		&CanaryRelease{}, &CanaryReleaseList{},
		&Experiment{}, &ExperimentList{},
		&ReleasePlan{}, &ReleasePlanList{},
		&Policy{}, &PolicyList{},
		&ReleaseAction{}, &ReleaseActionList{},
		&ReleaseHistory{}, &ReleaseHistoryList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}

// NewScheme is a scheme of Kubist's kinds alone: what a client that reads
// only Kubist resources (kubist validate, kubist policy) needs.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
