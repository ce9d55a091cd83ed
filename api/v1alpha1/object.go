package v1alpha1

// Compile-time checks that every kind is an Object.
var (
	_ Object = &Project{}
	_ Object = &Cluster{}
	_ Object = &VirtualCluster{}
	_ Object = &Application{}
	_ Object = &Destination{}
	_ Object = &Route{}
	_ Object = &CanaryRelease{}
	_ Object = &Experiment{}
	_ Object = &Policy{}
	_ Object = &ReleasePlan{}

	_ Release = &CanaryRelease{}
	_ Release = &Experiment{}
	_ Release = &ReleasePlan{}
)

// GetStanzas returns the executor and policies stanzas.
func (o *Project) GetStanzas() *Stanzas { return &o.Spec.Stanzas }

// GetCommonStatus returns the status part every kind shares.
func (o *Project) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetStanzas returns the executor and policies stanzas.
func (o *Cluster) GetStanzas() *Stanzas { return &o.Spec.Stanzas }

// GetCommonStatus returns the status part every kind shares.
func (o *Cluster) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetStanzas returns the executor and policies stanzas.
func (o *VirtualCluster) GetStanzas() *Stanzas { return &o.Spec.Stanzas }

// GetCommonStatus returns the status part every kind shares.
func (o *VirtualCluster) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetStanzas returns the executor and policies stanzas.
func (o *Application) GetStanzas() *Stanzas { return &o.Spec.Stanzas }

// GetCommonStatus returns the status part every kind shares.
func (o *Application) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetStanzas returns the executor and policies stanzas.
func (o *Destination) GetStanzas() *Stanzas { return &o.Spec.Stanzas }

// GetCommonStatus returns the status part every kind shares.
func (o *Destination) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetStanzas returns the executor and policies stanzas.
func (o *Route) GetStanzas() *Stanzas { return &o.Spec.Stanzas }

// GetCommonStatus returns the status part every kind shares.
func (o *Route) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetStanzas returns the executor and policies stanzas.
func (o *CanaryRelease) GetStanzas() *Stanzas { return &o.Spec.Stanzas }

// GetCommonStatus returns the status part every kind shares.
func (o *CanaryRelease) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetStanzas returns the executor and policies stanzas.
func (o *Experiment) GetStanzas() *Stanzas { return &o.Spec.Stanzas }

// GetCommonStatus returns the status part every kind shares.
func (o *Experiment) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetStanzas returns the executor and policies stanzas.
func (o *ReleasePlan) GetStanzas() *Stanzas { return &o.Spec.Stanzas }

// GetCommonStatus returns the status part every kind shares.
func (o *ReleasePlan) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// GetStanzas returns the executor and policies stanzas.
func (o *Policy) GetStanzas() *Stanzas { return &o.Spec.Stanzas }

// GetCommonStatus returns the status part every kind shares.
func (o *Policy) GetCommonStatus() *CommonStatus { return &o.Status.CommonStatus }

// Release is a kind whose status records steps: a CanaryRelease or an
// Experiment.
// +kubebuilder:object:generate=false
type Release interface {
	Object
	GetSteps() *Steps
	// ReleaseKind is the kind's name, which a typed object read from the
	// API may not carry in its TypeMeta.
	ReleaseKind() string
}

// ReleaseKind is "CanaryRelease".
func (o *CanaryRelease) ReleaseKind() string { return "CanaryRelease" }

// ReleaseKind is "Experiment".
func (o *Experiment) ReleaseKind() string { return "Experiment" }

// GetSteps returns the steps the status records.
func (o *CanaryRelease) GetSteps() *Steps { return &o.Status.Steps }

// ReleaseKind is "ReleasePlan".
func (o *ReleasePlan) ReleaseKind() string { return "ReleasePlan" }

// GetSteps returns the steps the status records.
func (o *ReleasePlan) GetSteps() *Steps { return &o.Status.Steps }

// GetSteps returns the steps the status records.
func (o *Experiment) GetSteps() *Steps { return &o.Status.Steps }
