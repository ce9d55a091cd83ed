package reconciler

import (
	"context"
	"fmt"
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

// destinationKind: a Destination applies a Kubernetes Service and an Istio
// DestinationRule with one subset per version, from spec.subsets or what
// its policies (SubsetDetector) decide.
func destinationKind(rc *Reconciler) *kind[*v1alpha1.Destination] {
	return &kind[*v1alpha1.Destination]{
		name:      "Destination",
		newObject: func() *v1alpha1.Destination { return &v1alpha1.Destination{} },
		execute: func(ctx context.Context, r *run, d *v1alpha1.Destination) error {
			p, err := rc.placementOf(ctx, d.Namespace)
			if err != nil {
				return err
			}
			var app v1alpha1.Application
			if err := rc.Client.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: d.Spec.Application}, &app, client.UnsafeDisableDeepCopy); err != nil {
				if apierrors.IsNotFound(err) {
					return userError(ReasonApplicationMissing, "Application %s (spec.application) does not exist in namespace %s", d.Spec.Application, d.Namespace)
				}
				return err
			}
			deployments, err := deploymentsOf(ctx, p, &app)
			if err != nil {
				return err
			}
			observed := make([]any, 0, len(deployments))
			for _, dep := range deployments {
				observed = append(observed, map[string]any{"name": dep.Name, "labels": dep.Spec.Template.Labels})
			}
			host := serviceHost(d.Name, p.namespace)
			state := map[string]any{"host": host, "subsets": d.Spec.Subsets}
			subsets := d.Spec.Subsets
			res, err := r.policies(ctx, policies.Input{State: state, Observed: map[string]any{"deployments": observed}})
			if err != nil {
				return err
			}
			if res != nil {
				var decided struct {
					Subsets []v1alpha1.Subset `json:"subsets"`
				}
				if err := fromMap(res.State, &decided); err != nil {
					return userError(ReasonPolicyError, "the policies' state.subsets is not a list of {name, labels}: %v", err)
				}
				subsets = decided.Subsets
			}

			labels := ownerLabels("Destination", d, p.vc.Name)
			service := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: p.namespace, Labels: labels},
				Spec:       corev1.ServiceSpec{Selector: applicationSelector(&app), Ports: servicePorts(d.Spec.Ports)},
			}
			if err := ensure(ctx, r, p.target, serviceObject, service); err != nil {
				return err
			}
			rule := &networkingv1.DestinationRule{
				ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: p.namespace, Labels: labels},
			}
			rule.Spec.Host = host
			names := make([]string, 0, len(subsets))
			for _, s := range subsets {
				rule.Spec.Subsets = append(rule.Spec.Subsets, &istioapi.Subset{Name: s.Name, Labels: s.Labels})
				names = append(names, s.Name)
			}
			if err := ensure(ctx, r, p.target, destinationRuleObject, rule); err != nil {
				return err
			}
			d.Status.Host, d.Status.Subsets = host, names
			if len(subsets) == 0 {
				return userError(ReasonNoSubsets, "no subsets: declare spec.subsets or add the SubsetDetector policy")
			}
			r.readyMessage = fmt.Sprintf("Service and DestinationRule %s/%s on %s; subsets %s", p.namespace, d.Name, p.target, strings.Join(names, ", "))
			return nil
		},
		finalize: func(ctx context.Context, r *run, d *v1alpha1.Destination) error {
			p, err := rc.placementOf(ctx, d.Namespace)
			if err != nil {
				return ignoreUserError(err)
			}
			return removeOwned(ctx, r, p.target, p.namespace, ownerLabels("Destination", d, p.vc.Name),
				&networkingv1.DestinationRule{}, &corev1.Service{})
		},
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
