package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Parameters are the free-form parameters of an executor or a policy. Each
// value is any JSON; the admission webhook checks them against the schema
// that the named executor or policy declares, and fills its defaults.
type Parameters map[string]apiextensionsv1.JSON

// ExecutorRef names the executor that reconciles a resource.
type ExecutorRef struct {
	// Name of a registered executor, for example ClusterExecutor or
	// ReadOnlyClusterExecutor. `kubist validate` and the admission webhook
	// list the executors that apply to each kind.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9-]*$`
	Name string `json:"name"`

	// Parameters of the executor, checked against its schema.
	// +optional
	Parameters Parameters `json:"parameters,omitempty"`
}

// PolicyRef names one policy of a resource's chain.
type PolicyRef struct {
	// Name of a predefined policy (PascalCase, for example
	// TimedCanaryRelease) or of a Policy object (its metadata.name).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`
	Name string `json:"name"`

	// Parameters of the policy, checked against its schema.
	// +optional
	Parameters Parameters `json:"parameters,omitempty"`
}

// Stanzas are the two stanzas that every Kubist kind carries in its spec.
type Stanzas struct {
	// Executor that reconciles this resource. When absent, the admission
	// webhook fills the default executor of the kind.
	// +optional
	Executor *ExecutorRef `json:"executor,omitempty"`

	// Policies run in order on the executor's proposal, each on the previous
	// one's output; the last decision is applied.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Policies []PolicyRef `json:"policies,omitempty"`

	// Notifications say who hears about the releases at and below this
	// resource. Without them a resource inherits its parent's: a
	// CanaryRelease or Experiment its VirtualCluster's, which inherits its
	// Cluster's, which inherits its Project's.
	// +optional
	Notifications *Notifications `json:"notifications,omitempty"`
}

// ReleasePolicyStanza is what a Project, a Cluster or a VirtualCluster
// sets for every release below it.
type ReleasePolicyStanza struct {
	// ReleasePolicies are added to the policy chain of every CanaryRelease
	// and Experiment below this resource (the policies that apply to the
	// release's kind): after the release's own step policies and before
	// its gates, this resource's gates last. A Project's come first, then
	// its Cluster's, then the VirtualCluster's. A release's status shows
	// its effective chain (status.effectivePolicies).
	// +optional
	// +kubebuilder:validation:MaxItems=4
	ReleasePolicies []PolicyRef `json:"releasePolicies,omitempty"`
}

// EffectivePolicy is one policy of a release's effective chain.
type EffectivePolicy struct {
	// Name of the policy.
	Name string `json:"name"`
	// From is the resource whose releasePolicies added it, e.g.
	// "Project demo"; empty for the release's own.
	// +optional
	From string `json:"from,omitempty"`
}

// Notifications are the receivers of a resource's release notifications.
type Notifications struct {
	// Receivers of the notifications; an empty list silences the resource
	// and what inherits from it.
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	Receivers []NotificationReceiver `json:"receivers"`
}

// NotificationReceiver is one place notifications go.
type NotificationReceiver struct {
	// Name of the receiver, for metrics and logs.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Type is Slack (an incoming webhook) or CloudEvents (any HTTP sink,
	// structured JSON).
	// +kubebuilder:validation:Enum=Slack;CloudEvents
	Type string `json:"type"`

	// SecretRef names the Secret, in the Kubist manager's namespace, that
	// holds the receiver's URL under the key url and, for CloudEvents, an
	// optional bearer token under the key token. Neither ever appears in
	// a spec or a log.
	SecretRef SecretReference `json:"secretRef"`

	// MinLevel is the lowest level sent: info (every step), warning
	// (pauses, aborts) or error (rollbacks, policy errors).
	// +optional
	// +kubebuilder:validation:Enum=info;warning;error
	MinLevel string `json:"minLevel,omitempty"`
}

// SecretReference names a Secret in the Kubist manager's namespace.
type SecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// PolicyDecision records the outcome of one policy of the chain in the last run.
type PolicyDecision struct {
	// Policy is the name of the policy that decided.
	Policy string `json:"policy"`
	// Outcome summarises the decision, for example Step, Hold, Promote or RollBack.
	// +optional
	Outcome string `json:"outcome,omitempty"`
	// Message explains the decision to a person.
	// +optional
	Message string `json:"message,omitempty"`
	// Time of the decision.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// CommonStatus is the part of the status that every Kubist kind shares.
type CommonStatus struct {
	// ObservedGeneration is the metadata.generation that the executor last
	// reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready and PoliciesApplied for every kind, plus kind-specific
	// ones such as IstioReady on a Cluster or Compiled on a Policy.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// Decisions of the policy chain in the last run, in chain order.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Decisions []PolicyDecision `json:"decisions,omitempty"`

	// EffectivePolicies is a release's chain as it runs, in order: its own
	// policies and those that the Project, Cluster and VirtualCluster above
	// it add (releasePolicies). Set on the CanaryReleases and Experiments
	// whose chain gains a policy so.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	EffectivePolicies []EffectivePolicy `json:"effectivePolicies,omitempty"`
}

// Condition types shared by every kind.
const (
	// ConditionReady is True when the executor applied the desired state.
	ConditionReady = "Ready"
	// ConditionPoliciesApplied is True when every policy of the chain decided.
	ConditionPoliciesApplied = "PoliciesApplied"
	// ConditionIstioReady (Cluster) is True when Istio is installed and healthy.
	ConditionIstioReady = "IstioReady"
	// ConditionCompiled (Policy) is True when the module compiled in the sandbox.
	ConditionCompiled = "Compiled"
	// ConditionTrafficShifted (CanaryRelease) is True when the split the
	// mesh reports serving is within the executor's servedTolerance of the
	// weights, False when it is not once the mesh has had its
	// meshGracePeriod to apply them.
	ConditionTrafficShifted = "TrafficShifted"
)

// Labels and annotations Kubist reads or writes.
const (
	// LabelProject is set on Clusters to the name of their Project.
	LabelProject = "kubist.io/project"
	// LabelCluster is set on VirtualClusters to the name of their Cluster.
	LabelCluster = "kubist.io/cluster"
	// LabelManaged marks objects that Kubist created on a target cluster.
	LabelManaged = "kubist.io/managed"
	// LabelShard on a Project names the shard whose manager (kubist
	// manager --shard NAME) reconciles it and everything below it;
	// Projects without it are the default shard's.
	LabelShard = "kubist.io/shard"
	// LabelImported marks Applications that a VirtualCluster imported.
	LabelImported = "kubist.io/imported"
	// LabelVirtualCluster, LabelOwnerKind, LabelOwnerName and
	// LabelOwnerNamespace mark the objects an executor creates on a target
	// cluster with the Kubist resource they come from.
	LabelVirtualCluster = "kubist.io/virtualcluster"
	LabelOwnerKind      = "kubist.io/owner-kind"
	LabelOwnerName      = "kubist.io/owner-name"
	LabelOwnerNamespace = "kubist.io/owner-namespace"
	// LabelSubset marks the Service of one subset of a Destination.
	LabelSubset = "kubist.io/subset"
	// AnnotationApprovedWeight caps a canary's weight under the ManualGate policy.
	AnnotationApprovedWeight = "kubist.io/approved-weight"
	// AnnotationDeleteChildren allows deleting a parent that still has children.
	AnnotationDeleteChildren = "kubist.io/delete-children"
	// AnnotationFreeze on a Project, Cluster or VirtualCluster freezes the
	// releases below it (the FreezeGate policy holds their forward steps);
	// its value is the reason. kubist freeze sets it.
	AnnotationFreeze = "kubist.io/freeze"
	// AnnotationRetiredReplicas on a Deployment Kubist scaled to zero
	// (an Application's scaleDownRetired) keeps its replicas, restored
	// when a release needs its version again.
	AnnotationRetiredReplicas = "kubist.io/retired-replicas"
	// LabelRoute names the Route of a release Kubist started (a Route's
	// release template, kubist release).
	LabelRoute = "kubist.io/route"
	// LabelStartedBy says what started a release: StartedByTemplate for
	// a Route's release template.
	LabelStartedBy    = "kubist.io/started-by"
	StartedByTemplate = "release-template"
	// LabelPlan names the ReleasePlan that started a release; LabelWave
	// its wave (the wave's name).
	LabelPlan = "kubist.io/plan"
	LabelWave = "kubist.io/wave"
	// StartedByPlan is LabelStartedBy's value on a plan's releases.
	StartedByPlan = "release-plan"
)

// Object is implemented by every Kubist kind: it gives generic code (the
// webhook, the reconciler, the command-line tool) the two stanzas and the
// shared status without knowing the kind.
// +kubebuilder:object:generate=false
type Object interface {
	runtime.Object
	metav1.Object
	// GetStanzas returns the executor and policies stanzas of the spec.
	GetStanzas() *Stanzas
	// GetCommonStatus returns the status part shared by every kind.
	GetCommonStatus() *CommonStatus
	// References are the resources the spec names (see kinds.go).
	References() []Reference
}

// Kinds lists every Kubist kind with webhooks: the Tree's, parents before
// children, and Policy.
var Kinds = append(TreeKindNames(), "Policy")
