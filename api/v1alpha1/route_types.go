package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StringMatch matches a string exactly, by prefix or by RE2 regular
// expression; set exactly one.
// +kubebuilder:validation:XValidation:rule="[has(self.exact), has(self.prefix), has(self.regex)].filter(x, x).size() == 1",message="set exactly one of exact, prefix or regex"
type StringMatch struct {
	// Exact string.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Exact string `json:"exact,omitempty"`
	// Prefix of the string.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Prefix string `json:"prefix,omitempty"`
	// Regex in RE2 syntax.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Regex string `json:"regex,omitempty"`
}

// CookieMatch matches one cookie of the request.
type CookieMatch struct {
	// Name of the cookie.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`
	Name string `json:"name"`
	// Value the cookie must have.
	Value StringMatch `json:"value"`
}

// HTTPMatchRequest selects requests by URI, method, headers, query
// parameters or a cookie; every condition set must hold.
type HTTPMatchRequest struct {
	// Name of the match, reported in access logs.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name,omitempty"`
	// URI of the request.
	// +optional
	URI *StringMatch `json:"uri,omitempty"`
	// Method of the request.
	// +optional
	Method *StringMatch `json:"method,omitempty"`
	// Headers, by lower-case name.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// QueryParams, by name.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`
	// Cookie the request must carry.
	// +optional
	Cookie *CookieMatch `json:"cookie,omitempty"`
}

// RouteDestination sends a share of the traffic to a subset of a Destination.
type RouteDestination struct {
	// Destination is the name of a Destination in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Destination string `json:"destination"`
	// Subset of the Destination; absent means all of its pods.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Subset string `json:"subset,omitempty"`
	// Port of the Destination's Service; needed when it has several.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
	// Weight is the percentage of the traffic sent here. Required when the
	// route has several destinations; the weights of a route sum to 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight *int32 `json:"weight,omitempty"`

	// Headers to change on the requests to this destination and on its
	// responses.
	// +optional
	Headers *Headers `json:"headers,omitempty"`
}

// HTTPRetry is the retry policy of an HTTP route.
type HTTPRetry struct {
	// Attempts is the number of retries.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Attempts int32 `json:"attempts"`
	// PerTryTimeout, a duration such as 2s or 500ms.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	// RetryOn lists the conditions that cause a retry, as Envoy names them
	// (for example 5xx,gateway-error,connect-failure).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	RetryOn string `json:"retryOn,omitempty"`
}

// HTTPRoute is one rule of the Route: requests that match go to the
// weighted destinations.
// +kubebuilder:validation:XValidation:rule="self.route.size() == 1 ? (!has(self.route[0].weight) || self.route[0].weight == 100) : self.route.all(d, has(d.weight)) && self.route.map(d, d.weight).sum() == 100",message="weights must sum to 100; with several destinations every one needs a weight",fieldPath=".route"
type HTTPRoute struct {
	// Name of the rule; CanaryReleases and Experiments may name it.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name,omitempty"`
	// Match conditions; any one matching selects the rule. Empty matches all.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Match []HTTPMatchRequest `json:"match,omitempty"`
	// Route is the list of weighted destinations.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Route []RouteDestination `json:"route"`
	// Retries of failed requests.
	// +optional
	Retries *HTTPRetry `json:"retries,omitempty"`
	// Timeout of a request, a duration such as 10s.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	Timeout string `json:"timeout,omitempty"`

	// Mirror sends a copy of a share of the rule's requests to another
	// destination; the copies' responses are dropped.
	// +optional
	Mirror *HTTPMirror `json:"mirror,omitempty"`
}

// HTTPMirror mirrors a share of a rule's requests.
type HTTPMirror struct {
	// Destination (a Destination's name) the copies go to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Destination string `json:"destination"`
	// Subset of the Destination.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Subset string `json:"subset,omitempty"`
	// Port of the destination's service; needed when it has several.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
	// Percent of the rule's requests mirrored, 0 to 100; absent mirrors all.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent *int32 `json:"percent,omitempty"`
}

// Headers are header operations on requests and on responses.
type Headers struct {
	// +optional
	Request *HeaderOperations `json:"request,omitempty"`
	// +optional
	Response *HeaderOperations `json:"response,omitempty"`
}

// HeaderOperations set, add and remove headers.
type HeaderOperations struct {
	// Set overwrites the headers.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Set map[string]string `json:"set,omitempty"`
	// Add appends the headers.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Add map[string]string `json:"add,omitempty"`
	// Remove deletes the headers.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Remove []string `json:"remove,omitempty"`
}

// RouteSpec is the desired state of a Route: the user's intent, which
// Kubist never rewrites. The Route's executor composes it with the live
// weights of CanaryReleases and Experiments into an Istio VirtualService.
type RouteSpec struct {
	Stanzas `json:",inline"`

	// Hosts the route applies to, as in an Istio VirtualService.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	Hosts []string `json:"hosts"`

	// Gateways the route is bound to (namespace/name); absent means the mesh.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	Gateways []string `json:"gateways,omitempty"`

	// HTTP rules, evaluated in order.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	HTTP []HTTPRoute `json:"http"`

	// Release is the template of the releases Kubist starts on this Route
	// by itself: when the Destination gains a subset whose Deployments are
	// newer than the stable subset's and ready, a CanaryRelease from the
	// stable subset to it, owned by the Route and named <route>-<subset>.
	// +optional
	Release *ReleaseTemplate `json:"release,omitempty"`
}

// ReleaseTemplate is what a Route's automatic releases are made of.
type ReleaseTemplate struct {
	// Destination whose new subsets are released.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Destination string `json:"destination"`

	// HTTPRoute names the rule the releases shift; empty shifts every rule
	// whose stable subset is the baseline.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	HTTPRoute string `json:"httpRoute,omitempty"`

	// Executor and policies of the releases, as a CanaryRelease's.
	// +optional
	Executor *ExecutorRef `json:"executor,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Policies []PolicyRef `json:"policies,omitempty"`

	// OnNewer says what a subset newer than a release's canary does while
	// the release runs: Wait (the default) until it ends, then start; or
	// Replace the canary (the release is deleted, its traffic goes back
	// to the stable subset, and the newer subset's starts).
	// +optional
	// +kubebuilder:validation:Enum=Wait;Replace
	OnNewer string `json:"onNewer,omitempty"`

	// Keep is how many of the releases the template started that ended
	// are kept; older ones are deleted (the Route's history keeps them).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Keep *int32 `json:"keep,omitempty"`
}

// DefaultReleasesKept is how many ended releases a template keeps when
// its keep is not set.
const DefaultReleasesKept = 5

// The values of a release template's onNewer.
const (
	OnNewerWait    = "Wait"
	OnNewerReplace = "Replace"
)

// RouteStatus is the observed state of a Route.
type RouteStatus struct {
	CommonStatus `json:",inline"`

	// VirtualService the executor applied (RouteExecutor), as namespace/name.
	// +optional
	VirtualService string `json:"virtualService,omitempty"`

	// HTTPRoute the executor applied (GatewayAPIRouteExecutor), as namespace/name.
	// +optional
	HTTPRoute string `json:"httpRoute,omitempty"`

	// ComposedFrom lists the CanaryReleases and Experiments whose live
	// weights are composed into the VirtualService.
	// +optional
	ComposedFrom []string `json:"composedFrom,omitempty"`

	// Stable is, for each rule and Destination to which the rule sends
	// one subset, the subset that gets the rule's traffic when no release
	// shifts it: first what the spec names, then the subset a release
	// ended on (the canary once promoted, the baseline after a rollback
	// or an abort). Deleting a finished release moves no traffic.
	// +optional
	// +listType=map
	// +listMapKey=rule
	// +listMapKey=destination
	// +kubebuilder:validation:MaxItems=256
	Stable []StableSubset `json:"stable,omitempty"`

	// StableSummary is Stable for kubectl get, each rule's stable subsets:
	// "testers: v2, default: v4".
	// +optional
	StableSummary string `json:"stableSummary,omitempty"`

	// Started are the subsets the release template started a release of,
	// the last one last: each is started once.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Started []StartedRelease `json:"started,omitempty"`

	// Waiting names a newer subset that waits for the release running on
	// the template's rule to end.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Waiting string `json:"waiting,omitempty"`

	// Releases are the Route's releases that ended, oldest first: the last
	// RouteHistoryLimit of them, kept when the releases are deleted.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Releases []RouteRelease `json:"releases,omitempty"`
}

// StartedRelease is a release a Route's template started.
type StartedRelease struct {
	// Subset released, and the CanaryRelease started for it.
	// +kubebuilder:validation:MaxLength=63
	Subset string `json:"subset"`
	// +kubebuilder:validation:MaxLength=253
	Release string `json:"release"`
	// At is when it was started.
	At metav1.MicroTime `json:"at"`
}

// RouteHistoryLimit is how many ended releases a Route's status keeps.
const RouteHistoryLimit = 20

// RouteRelease is a release of a Route that ended.
type RouteRelease struct {
	// Release is kind/name, e.g. CanaryRelease/reviews-v2.
	// +kubebuilder:validation:MaxLength=320
	Release string `json:"release"`
	// Destination, and the subsets released: from Baseline to Subset.
	// +kubebuilder:validation:MaxLength=253
	Destination string `json:"destination"`
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Baseline string `json:"baseline,omitempty"`
	// +kubebuilder:validation:MaxLength=63
	Subset string `json:"subset"`
	// Started is when the release was created, Ended its last step.
	// +optional
	Started *metav1.MicroTime `json:"started,omitempty"`
	Ended   metav1.MicroTime  `json:"ended"`
	// Outcome is the phase it ended in: Promoted, RolledBack or Aborted.
	// +kubebuilder:validation:MaxLength=32
	Outcome string `json:"outcome"`
	// DecidedBy is the policy that took the last step, or the action
	// and the person who asked for it ("Abort by alice").
	// +optional
	// +kubebuilder:validation:MaxLength=320
	DecidedBy string `json:"decidedBy,omitempty"`
	// Message of the last step.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// StableSubset is the subset a rule of a Route sends a Destination's
// traffic to while no release shifts it.
type StableSubset struct {
	// Rule is the rule's name, or http[i] for the i-th rule without one.
	// +kubebuilder:validation:MaxLength=63
	Rule string `json:"rule"`
	// Destination the rule routes to.
	// +kubebuilder:validation:MaxLength=253
	Destination string `json:"destination"`
	// Subset that is stable.
	// +kubebuilder:validation:MaxLength=63
	Subset string `json:"subset"`
	// SpecSubset is the subset the Route's spec named when Subset was
	// recorded: a spec that names another one since was changed by a
	// person, and that change wins.
	// +kubebuilder:validation:MaxLength=63
	SpecSubset string `json:"specSubset"`
	// Release that ended on Subset (kind/name), and how it ended
	// (Promoted, RolledBack, Aborted); empty when the spec named it.
	// +optional
	// +kubebuilder:validation:MaxLength=320
	Release string `json:"release,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Outcome string `json:"outcome,omitempty"`
	// Since is when Subset became stable: the release's last step, or
	// when the spec's change was seen.
	// +optional
	Since *metav1.MicroTime `json:"since,omitempty"`
}

// Route is the user's traffic intent for a set of hosts: HTTP rules with
// match conditions, retries, timeouts and weighted destinations.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=krt,categories=kubist
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`
// +kubebuilder:printcolumn:name="VirtualService",type=string,JSONPath=`.status.virtualService`,priority=1
// +kubebuilder:printcolumn:name="HTTPRoute",type=string,JSONPath=`.status.httpRoute`,priority=1
// +kubebuilder:printcolumn:name="Stable",type=string,JSONPath=`.status.stableSummary`
// +kubebuilder:printcolumn:name="Spec",type=string,JSONPath=`.status.conditions[?(@.type=="StableInSpec")].reason`
// +kubebuilder:printcolumn:name="Executor",type=string,JSONPath=`.spec.executor.name`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Route struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RouteSpec   `json:"spec"`
	Status RouteStatus `json:"status,omitempty"`
}

// RouteList is a list of Routes.
// +kubebuilder:object:root=true
type RouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Route `json:"items"`
}
