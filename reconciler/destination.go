package reconciler

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	istioapi "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete;deletecollection
// +kubebuilder:rbac:groups=networking.istio.io,resources=destinationrules;virtualservices,verbs=get;list;watch;create;update;patch;delete;deletecollection

// Reasons a Destination or a canary cannot proceed.
const (
	ReasonApplicationMissing = "ApplicationMissing"
	ReasonNoSubsets          = "NoSubsets"
)

// serviceHost is the cluster-local name of a Destination's Service.
func serviceHost(name, namespace string) string {
	return fmt.Sprintf("%s.%s.svc.cluster.local", name, namespace)
}

// appProtocols maps a Destination port's protocol to the Service's
// appProtocol, which Istio reads.
var appProtocols = map[string]string{"": "http", "HTTP": "http", "HTTP2": "http2", "GRPC": "grpc", "TCP": "tcp"}

var serviceObject = managedObject[*corev1.Service]{
	kind:  "Service",
	empty: func() *corev1.Service { return &corev1.Service{} },
	differs: func(cur, want *corev1.Service) bool {
		return !equality.Semantic.DeepEqual(cur.Spec.Selector, want.Spec.Selector) ||
			!equality.Semantic.DeepEqual(cur.Spec.Ports, want.Spec.Ports)
	},
	update: func(cur, want *corev1.Service) {
		cur.Spec.Selector, cur.Spec.Ports = want.Spec.Selector, want.Spec.Ports
	},
}

var destinationRuleObject = managedObject[*networkingv1.DestinationRule]{
	kind:    "DestinationRule",
	empty:   func() *networkingv1.DestinationRule { return &networkingv1.DestinationRule{} },
	differs: func(cur, want *networkingv1.DestinationRule) bool { return !proto.Equal(&cur.Spec, &want.Spec) },
	update:  func(cur, want *networkingv1.DestinationRule) { want.Spec.DeepCopyInto(&cur.Spec) },
}

// subsetService names the Service of one subset: <destination>-<subset>.
func subsetService(destination, subset string) string { return destination + "-" + subset }

// destinationExecutor (DestinationExecutor): a Destination applies a
// Kubernetes Service and an Istio DestinationRule with one subset per
// version, from spec.subsets or what its policies (SubsetDetector)
// decide; with subsetServices, also one Service per subset, the backends
// a Gateway API HTTPRoute weighs.
type destinationExecutor struct {
	r *Reconciler
	noChildren[*v1alpha1.Destination]
}

// destinationPlan is what a Destination's run found and applied.
type destinationPlan struct {
	placement   *placement
	app         *v1alpha1.Application
	deployments []any
	host        string
	subsets     []v1alpha1.Subset
	// perSubset is the executor parameter subsetServices;
	// subsetServices are the subset Services applied.
	perSubset      bool
	subsetServices []string
}

func (x destinationExecutor) Observe(ctx context.Context, s *scope, d *v1alpha1.Destination) (destinationPlan, error) {
	var plan destinationPlan
	plan.perSubset, _ = s.params["subsetServices"].(bool)
	p, err := x.r.placementOf(ctx, d.Namespace)
	if err != nil {
		return plan, err
	}
	app := &v1alpha1.Application{}
	if err := x.r.Client.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: d.Spec.Application}, app, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return plan, userError(ReasonApplicationMissing, "Application %s (spec.application) does not exist in namespace %s", d.Spec.Application, d.Namespace)
		}
		return plan, err
	}
	deployments, err := deploymentsOf(ctx, p, app)
	if err != nil {
		return plan, err
	}
	plan.placement, plan.app = p, app
	plan.deployments = make([]any, 0, len(deployments))
	for _, dep := range deployments {
		plan.deployments = append(plan.deployments, map[string]any{"name": dep.Name, "labels": dep.Spec.Template.Labels})
	}
	return plan, nil
}

func (destinationExecutor) Propose(_ *scope, d *v1alpha1.Destination, plan destinationPlan) (destinationPlan, *policies.Input) {
	plan.host, plan.subsets = serviceHost(d.Name, plan.placement.namespace), d.Spec.Subsets
	return plan, &policies.Input{State: map[string]any{"host": plan.host, "subsets": d.Spec.Subsets},
		Observed: map[string]any{"deployments": plan.deployments}}
}

func (destinationExecutor) Apply(ctx context.Context, s *scope, d *v1alpha1.Destination, plan destinationPlan, decided *Decision) (destinationPlan, error) {
	if decided != nil {
		var state struct {
			Subsets []v1alpha1.Subset `json:"subsets"`
		}
		if err := fromMap(decided.State, &state); err != nil {
			return plan, userError(ReasonPolicyError, "the policies' state.subsets is not a list of {name, labels}: %v", err)
		}
		plan.subsets = state.Subsets
	}
	p := plan.placement
	service, rule := destinationObjects(d, plan)
	if err := ensure(ctx, s, p.target, serviceObject, service); err != nil {
		return plan, err
	}
	if err := ensure(ctx, s, p.target, destinationRuleObject, rule); err != nil {
		return plan, err
	}
	var err error
	plan.subsetServices, err = applySubsetServices(ctx, s, d, plan, service.Spec.Selector)
	return plan, err
}

// destinationObjects are the Service and the DestinationRule a
// Destination makes its target hold (and admission submits as a dry run).
func destinationObjects(d *v1alpha1.Destination, plan destinationPlan) (*corev1.Service, *networkingv1.DestinationRule) {
	p := plan.placement
	labels := ownerLabels("Destination", d, p.vc.Name)
	service := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: p.namespace, Labels: labels},
		Spec:       corev1.ServiceSpec{Selector: applicationSelector(plan.app), Ports: servicePorts(d.Spec.Ports)},
	}
	rule := &networkingv1.DestinationRule{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: p.namespace, Labels: maps.Clone(labels)},
	}
	rule.Spec.Host = plan.host
	for _, sub := range plan.subsets {
		rule.Spec.Subsets = append(rule.Spec.Subsets, &istioapi.Subset{Name: sub.Name, Labels: sub.Labels})
	}
	return service, rule
}

// applySubsetServices applies one Service per subset when the parameter
// asks for them, selecting the application's and the subset's labels, and
// removes those the status names that are no longer wanted (a subset
// went, or the parameter is off). It returns the names applied.
func applySubsetServices(ctx context.Context, s *scope, d *v1alpha1.Destination, plan destinationPlan, selector map[string]string) ([]string, error) {
	p := plan.placement
	var applied []string
	if plan.perSubset {
		for _, sub := range plan.subsets {
			name := subsetService(d.Name, sub.Name)
			if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
				return nil, userError(ReasonInvalidParameters, "subset %s needs a Service %q (executor parameter subsetServices): %s; shorten the Destination's or the subset's name",
					sub.Name, name, strings.Join(errs, "; "))
			}
			labels := ownerLabels("Destination", d, p.vc.Name)
			labels[v1alpha1.LabelSubset] = sub.Name
			sel := maps.Clone(selector)
			maps.Copy(sel, sub.Labels)
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.namespace, Labels: labels},
				Spec:       corev1.ServiceSpec{Selector: sel, Ports: servicePorts(d.Spec.Ports)},
			}
			if err := ensure(ctx, s, p.target, serviceObject, svc); err != nil {
				return nil, err
			}
			applied = append(applied, name)
		}
	}
	owner := ownerLabels("Destination", d, p.vc.Name)
	for _, name := range d.Status.SubsetServices {
		if slices.Contains(applied, name) {
			continue
		}
		svc := &corev1.Service{}
		err := p.target.Client.Get(ctx, types.NamespacedName{Namespace: p.namespace, Name: name}, svc)
		if apierrors.IsNotFound(err) || err == nil && !hasLabels(svc, owner) {
			continue
		}
		if err != nil {
			return nil, applyError("Service "+name, err)
		}
		if s.readOnly {
			s.drift = append(s.drift, fmt.Sprintf("delete Service %s/%s on %s", p.namespace, name, p.target))
			continue
		}
		if err := p.target.Client.Delete(ctx, svc); client.IgnoreNotFound(err) != nil {
			return nil, applyError("Service "+name, err)
		}
		writes.WithLabelValues(s.kind, "delete").Inc()
	}
	return applied, nil
}

func (destinationExecutor) Status(s *scope, d *v1alpha1.Destination, plan destinationPlan) (string, error) {
	names := make([]string, 0, len(plan.subsets))
	for _, sub := range plan.subsets {
		names = append(names, sub.Name)
	}
	d.Status.Host, d.Status.Subsets = plan.host, names
	if !s.readOnly {
		d.Status.SubsetServices = plan.subsetServices
	}
	if len(plan.subsets) == 0 {
		return "", userError(ReasonNoSubsets, "no subsets: declare spec.subsets or add the SubsetDetector policy")
	}
	p := plan.placement
	msg := fmt.Sprintf("Service and DestinationRule %s/%s on %s; subsets %s", p.namespace, d.Name, p.target, strings.Join(names, ", "))
	if plan.perSubset {
		msg += fmt.Sprintf("; a Service per subset (%s-<subset>)", d.Name)
	}
	return msg, nil
}

func (x destinationExecutor) Finalize(ctx context.Context, s *scope, d *v1alpha1.Destination) error {
	p, err := x.r.placementOf(ctx, d.Namespace)
	if err != nil {
		return ignoreUserError(err)
	}
	return removeOwned(ctx, s, p.target, p.namespace, ownerLabels("Destination", d, p.vc.Name),
		&networkingv1.DestinationRule{}, &corev1.Service{})
}

func destinationKind(r *Reconciler) *kind[*v1alpha1.Destination] {
	return &kind[*v1alpha1.Destination]{
		name:      "Destination",
		newObject: func() *v1alpha1.Destination { return &v1alpha1.Destination{} },
		executors: map[string]implementation[*v1alpha1.Destination]{"DestinationExecutor": phases(destinationExecutor{r: r})},
	}
}

// servicePorts are a Destination's ports as the API server stores them, so
// that comparing with the live Service finds no difference at rest.
func servicePorts(ports []v1alpha1.DestinationPort) []corev1.ServicePort {
	out := make([]corev1.ServicePort, 0, len(ports))
	for _, p := range ports {
		target := intstr.FromInt32(p.Port)
		if p.TargetPort != nil {
			target = *p.TargetPort
		}
		protocol := appProtocols[p.Protocol]
		out = append(out, corev1.ServicePort{
			Name: p.Name, Port: p.Port, TargetPort: target, Protocol: corev1.ProtocolTCP, AppProtocol: &protocol,
		})
	}
	return out
}
