package reconciler

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// executorKinds are the kinds reconciled by an executor, in tree order.
var executorKinds = v1alpha1.TreeKindNames()

// executorParameters are the parameter schemas of each kind's executors;
// every executor of a kind and their ReadOnly twins take the same
// parameters.
var executorParameters = map[string]string{
	"Destination": `
type: object
properties:
  subsetServices:
    description: Also apply one Service per subset, named <destination>-<subset> and selecting the subset's labels — the backends a Gateway API HTTPRoute (GatewayAPIRouteExecutor) weighs.
    type: boolean
    default: false
`,
	"Cluster": `
type: object
properties:
  installIstio:
    description: Install Istio with Helm (charts base and istiod) when it is missing or at another version.
    type: boolean
    default: false
  istioVersion:
    description: Istio version to install and to expect, e.g. 1.27.3, or 1.31-alpha.<commit> for a development build; empty accepts any installed version.
    type: string
    pattern: '^[0-9]+\.[0-9]+(\.[0-9]+)?(-[0-9A-Za-z.-]+)?$'
  chartRepository:
    description: Helm repository of Istio's charts.
    type: string
    pattern: '^https?://'
    default: https://istio-release.storage.googleapis.com/charts
  revision:
    description: Istio revision; namespaces are then labelled istio.io/rev instead of istio-injection.
    type: string
    maxLength: 63
    pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
`,
	"CanaryRelease": `
type: object
properties:
  metricsWindow:
    description: Window of the Prometheus rates the policies see, e.g. 1m.
    type: string
    pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
    default: 1m
  servedWindow:
    description: Window over which the split the mesh served is counted (istio_requests_total by destination_version), e.g. 30s; at least two Prometheus scrape intervals.
    type: string
    pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
    default: 30s
  servedTolerance:
    description: Most percentage points a subset's served share may differ from its weight while the mesh still counts as doing what was asked.
    type: integer
    minimum: 0
    maximum: 100
    default: 10
  meshGracePeriod:
    description: Time the mesh gets to apply a step before the split it serves is compared with the weights.
    type: string
    pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
    default: 10s
`,
	"Experiment": `
type: object
properties:
  metricsWindow:
    description: Window of the Prometheus rates the policies see, e.g. 5m.
    type: string
    pattern: '^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$'
    default: 5m
`,
}

// alternatives are the executors a kind has besides its default, each
// with a ReadOnly twin; name and description.
var alternatives = map[string][][2]string{
	"Route": {{"GatewayAPIRouteExecutor", "Reconciles a Route as a Gateway API HTTPRoute (gateway.networking.k8s.io/v1) instead of an Istio VirtualService: parents are the hosts' Services (mesh) or spec.gateways, each subset a weighted backendRef to its own Service (set subsetServices on the Destination's executor)."}},
}

// RegisterExecutors registers every kind's executors — the default, which
// applies the desired state, any alternative implementation, and for each
// its ReadOnly twin, which computes and reports the desired state without
// writing it — in the registry the webhook, the reconciler and the
// command-line tool share. Each name has its Go implementation in the
// kind's executors (see the kind's *Kind function).
func RegisterExecutors(r *policies.Registry) error {
	for _, kind := range executorKinds {
		var props any
		if s, ok := executorParameters[kind]; ok {
			if err := yaml.Unmarshal([]byte(s), &props); err != nil {
				return fmt.Errorf("%sExecutor parameters: %w", kind, err)
			}
		}
		type entry struct {
			name, description   string
			isDefault, readOnly bool
		}
		entries := []entry{
			{kind + "Executor", fmt.Sprintf("Reconciles %s %s and applies its desired state.", article(kind), kind), true, false},
			{"ReadOnly" + kind + "Executor", fmt.Sprintf("Computes and reports %s %s's desired state without writing it.", article(kind), kind), false, true},
		}
		for _, alt := range alternatives[kind] {
			entries = append(entries, entry{alt[0], alt[1], false, false},
				entry{"ReadOnly" + alt[0], fmt.Sprintf("Computes and reports what %s would write, without writing it.", alt[0]), false, true})
		}
		for _, e := range entries {
			schema, err := policies.SchemaFromValue(props)
			if err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
			if err := r.RegisterExecutor(&policies.Executor{
				Name: e.name, Description: e.description, Kinds: []string{kind}, Schema: schema, Default: e.isDefault, ReadOnly: e.readOnly,
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// defaultAndReadOnly are a kind's executors when it has only its default
// implementation: under its name and its ReadOnly twin's.
func defaultAndReadOnly[T v1alpha1.Object](kind string, impl implementation[T]) map[string]implementation[T] {
	return map[string]implementation[T]{kind + "Executor": impl, "ReadOnly" + kind + "Executor": impl}
}

// article is "an" before a kind that starts with a vowel, "a" otherwise.
func article(kind string) string {
	if strings.ContainsRune("AEIOU", rune(kind[0])) {
		return "an"
	}
	return "a"
}
