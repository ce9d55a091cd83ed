package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/release"
	"github.com/kubist-io/kubist/policies"
)

// Reasons a canary or experiment cannot run, and of MetricsAvailable.
const (
	ConditionMetricsAvailable = "MetricsAvailable"

	ReasonRouteMissing          = "RouteMissing"
	ReasonDestinationMissing    = "DestinationMissing"
	ReasonSubsetMissing         = "SubsetMissing"
	ReasonBaselineUnknown       = "BaselineUnknown"
	ReasonAlreadyStable         = "AlreadyStable"
	ReasonInvalidDecision       = "InvalidDecision"
	ReasonMetricsReady          = "Gathered"
	ReasonCollecting            = "Collecting"
	ReasonPrometheusUnavailable = "PrometheusUnavailable"
)

// trafficParameters are the CanaryRelease and Experiment executors' parameters.
type trafficParameters struct {
	MetricsWindow string `json:"metricsWindow"`
}

// trafficState is the part of a canary's or experiment's state that the
// executor reads back from the policies.
type trafficState struct {
	Weights      map[string]int32 `json:"weights"`
	Phase        string           `json:"phase"`
	LastStepTime string           `json:"lastStepTime,omitempty"`
	// Mirror and Preview are a canary's (compose_extras.go).
	Mirror  *mirrorState  `json:"mirror,omitempty"`
	Preview *previewState `json:"preview,omitempty"`
}

// trafficTarget is what a canary or experiment splits traffic on.
type trafficTarget struct {
	placement   *placement
	route       *v1alpha1.Route
	destination *v1alpha1.Destination
	subsets     []string
}

// trafficTargetOf looks up the Route and Destination of a canary or
// experiment and the Destination's subsets.
func (r *Reconciler) trafficTargetOf(ctx context.Context, namespace, route, destination string) (*trafficTarget, error) {
	p, err := r.placementOf(ctx, namespace)
	if err != nil {
		return nil, err
	}
	// The cache's own objects, read only (no copy per run).
	t := &trafficTarget{placement: p, route: &v1alpha1.Route{}, destination: &v1alpha1.Destination{}}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: route}, t.route, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, userError(ReasonRouteMissing, "Route %s (spec.route) does not exist in namespace %s", route, namespace)
		}
		return nil, err
	}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: destination}, t.destination, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, userError(ReasonDestinationMissing, "Destination %s (spec.destination) does not exist in namespace %s", destination, namespace)
		}
		return nil, err
	}
	t.subsets = slices.Clone(t.destination.Status.Subsets)
	if len(t.subsets) == 0 {
		for _, s := range t.destination.Spec.Subsets {
			t.subsets = append(t.subsets, s.Name)
		}
	}
	return t, nil
}

// requireSubsets checks that every subset is one of the Destination's.
func (t *trafficTarget) requireSubsets(field string, subsets ...string) error {
	for _, s := range subsets {
		if !slices.Contains(t.subsets, s) {
			return userError(ReasonSubsetMissing, "subset %q (%s) is not a subset of Destination %s (subsets: %s)",
				s, field, t.destination.Name, cmp.Or(strings.Join(t.subsets, ", "), "none yet"))
		}
	}
	return nil
}

// gather reads the metrics of the subsets for a chain over window (see
// metricsSpan); without a configured Prometheus, or a window, it returns
// none, and the policies hold.
func (s *scope) gather(ctx context.Context, t *trafficTarget, chain policies.Chain, window time.Duration, subsets []string, extra ...string) map[string]any {
	if s.metrics == nil || chain == nil || window <= 0 {
		return nil
	}
	q := policies.MetricsQuery{
		Namespace: t.placement.namespace, Service: t.destination.Name, Subsets: subsets,
		Window: window, Custom: append(chain.Queries(), extra...), Time: s.now,
	}
	metrics, err := s.metrics.Gather(ctx, q)
	if err != nil {
		s.metricsUnavailable(err)
		return nil
	}
	over := "over the last " + window.String()
	if window < s.metricsWindow() {
		// Said by the start, which stays put until the next step: a
		// message that counted the span would change at every run.
		over = fmt.Sprintf("since %s (the last step plus the mesh's grace period)", s.now.Add(-window).UTC().Format(time.RFC3339))
	}
	s.condition(ConditionMetricsAvailable, true, ReasonMetricsReady,
		fmt.Sprintf("metrics of %d of %d subsets %s", len(metrics), len(subsets), over))
	return policies.AsInput(metrics)
}

// changedAt is when a release last changed what it asks of the mesh: its
// last step, or a person's Retry (its last entry in the history), or else
// its creation: requests served before belong to another split, or to an
// earlier attempt.
func changedAt(c *v1alpha1.CanaryRelease) *metav1.MicroTime {
	at := metav1.NewMicroTime(c.CreationTimestamp.Time)
	if h := c.Status.History; len(h) > 0 && h[len(h)-1].Action == string(v1alpha1.ActionRetry) && at.Before(&h[len(h)-1].Time) {
		at = h[len(h)-1].Time
	}
	if l := c.Status.LastStepTime; l != nil && at.Before(l) {
		at = *l
	}
	return &at
}

// metricsUnavailable says on MetricsAvailable why there are no metrics.
func (s *scope) metricsUnavailable(err error) {
	s.condition(ConditionMetricsAvailable, false, ReasonPrometheusUnavailable,
		fmt.Sprintf("metrics are unavailable, so the policies hold: %v", err))
}

// metricsSpan is the window of the metrics a decision sees: it ends now
// and starts at the last step plus the mesh's grace period, so that no
// request served before the step counts, or metricsWindow ago, whichever
// is later. While that span is shorter than least, two Prometheus scrapes
// (the fewest an increase is computed from), there are no metrics yet: it
// returns a window of 0, and MetricsAvailable says until when the
// policies hold (collecting).
func (s *scope) metricsSpan(ctx context.Context, last *metav1.MicroTime) (window, least time.Duration) {
	window = s.metricsWindow()
	if s.metrics == nil {
		return window, 0
	}
	scrape, err := s.metrics.ScrapeInterval(ctx)
	if err != nil {
		s.metricsUnavailable(err)
		return 0, 0
	}
	least = 2 * scrape
	if last == nil {
		return window, least
	}
	_, _, grace := s.servedParameters()
	window = min(window, s.now.Sub(last.Add(grace)).Truncate(time.Millisecond))
	if window < least {
		s.collecting(last, least)
		return 0, least
	}
	return window, least
}

// collecting says on MetricsAvailable until when the policies hold after
// the step at last, for want of metrics since, and asks for the run then.
// A run that steps says it at once, so that the runs until then find
// nothing new to write.
func (s *scope) collecting(last *metav1.MicroTime, least time.Duration) {
	_, _, grace := s.servedParameters()
	ready := last.Add(grace + least)
	s.collectingTill = collectingUntil(last, grace+least)
	s.setCondition(ConditionMetricsAvailable, metav1.ConditionUnknown, ReasonCollecting, fmt.Sprintf(
		"the policies hold until %s: the metrics start at the last step plus the mesh's grace period (meshGracePeriod %s) and need %s, two Prometheus scrapes",
		ready.UTC().Format(time.RFC3339), grace, least))
	s.requeueAfter(ready.Sub(s.now))
}

// collectingUntil is when the metrics since the step at last start to
// count, as the policies read it (input.observed.collectingUntil).
func collectingUntil(last *metav1.MicroTime, collect time.Duration) string {
	return last.Add(collect).UTC().Format(time.RFC3339)
}

// checkWeights refuses a decided split that does not send all traffic to
// the subsets of the Destination.
func checkWeights(t *trafficTarget, weights map[string]int32) error {
	var sum int32
	for _, s := range sortedKeys(weights) {
		w := weights[s]
		if w < 0 || w > 100 {
			return userError(ReasonInvalidDecision, "the policies decided weight %d for subset %s; weights are 0 to 100", w, s)
		}
		if !slices.Contains(t.subsets, s) {
			return userError(ReasonInvalidDecision, "the policies decided a weight for %q, which is not a subset of Destination %s", s, t.destination.Name)
		}
		sum += w
	}
	if sum != 100 {
		return userError(ReasonInvalidDecision, "the policies decided weights %v that sum to %d, not 100", weights, sum)
	}
	return nil
}

// storedState is the traffic state a status holds.
func storedState(weights map[string]int32, phase string, last *metav1.MicroTime) trafficState {
	return trafficState{Weights: weights, Phase: phase, LastStepTime: formatTime(last)}
}

// input is the state as the policies' input.state, with the kind's own
// fields added.
func (s trafficState) input(fields map[string]any) map[string]any {
	fields["weights"], fields["phase"] = weightsValue(s.Weights), s.Phase
	if s.LastStepTime != "" {
		fields["lastStepTime"] = s.LastStepTime
	}
	if s.Mirror != nil {
		fields["mirror"] = s.Mirror.value()
	}
	if s.Preview != nil {
		fields["preview"] = s.Preview.value()
	}
	return fields
}

// decidedTraffic reads the traffic state the chain decided, checked
// against the Destination's subsets. Without a chain the state stays.
func decidedTraffic(t *trafficTarget, decided *Decision, before trafficState) (trafficState, error) {
	if decided == nil {
		return before, nil
	}
	var s trafficState
	if err := fromMap(decided.State, &s); err != nil {
		return before, userError(ReasonInvalidDecision, "the policies' state is not {weights, phase, lastStepTime}: %v", err)
	}
	if err := checkWeights(t, s.Weights); err != nil {
		return before, err
	}
	if err := checkExtras(t, s); err != nil {
		return before, err
	}
	return s, nil
}

// differs says whether two traffic states split traffic differently, are
// in different phases, or mirror or preview differently.
func (s trafficState) differs(o trafficState) bool {
	return !maps.Equal(s.Weights, o.Weights) || s.Phase != o.Phase ||
		!reflect.DeepEqual(s.Mirror, o.Mirror) || !reflect.DeepEqual(s.Preview, o.Preview)
}

// trafficStep is what a release's run decided about its split: the
// state it started from and the one it leaves. A run that moved the split
// has the chain evaluated once more on the state it leaves
// (decideAfterStep in pipeline.go).
type trafficStep struct {
	before, after trafficState
	// collect is how long after a step the metrics of a canary start to
	// count (the mesh's grace period and two scrapes): the run after the
	// step has none until then. 0 without metrics, or for an experiment.
	collect time.Duration
}

// nextInput is the chain's input as the run after a step will see it:
// the split, phase and time of the step as served, and no action (a
// Promote is this run's alone); nil when the run did not move the split.
func (t trafficStep) nextInput(decided *Decision) *policies.Input {
	s := t.after
	if !s.differs(t.before) {
		return nil
	}
	last, err := parseTime(s.LastStepTime)
	if err != nil {
		return nil
	}
	served := map[string]any{"weights": weightsValue(s.Weights), "phase": s.Phase, "lastStepTime": timeValue(last),
		"mirror": s.Mirror.value(), "preview": s.Preview.value()}
	in := decided.Input
	in.State = maps.Clone(decided.State)
	in.Action = nil
	if last != nil {
		in.State["lastStepTime"] = served["lastStepTime"]
		if t.collect > 0 {
			// The next run's metrics start after the step: it has none.
			in.Metrics = nil
			served["collectingUntil"] = collectingUntil(last, t.collect)
		}
	}
	observed := make(map[string]any, len(in.Observed))
	for k, v := range in.Observed {
		if now, ok := served[k]; ok {
			v = now
		}
		observed[k] = v
	}
	if until, ok := served["collectingUntil"]; ok {
		observed["collectingUntil"] = until
	}
	in.Observed = observed
	return &in
}

// holds says whether a state the chain decided keeps the split the step
// left.
func (t trafficStep) holds(state map[string]any) bool {
	var next trafficState
	return fromMap(state, &next) == nil && !next.differs(t.after)
}

// metricsWindow is the executor's metricsWindow parameter (defaulted by
// its schema).
func (s *scope) metricsWindow() time.Duration {
	var params trafficParameters
	_ = fromMap(s.params, &params)
	window, err := time.ParseDuration(params.MetricsWindow)
	if err != nil || window <= 0 {
		return time.Minute
	}
	return window
}

// responsible finds the last policy of a chain that changed the traffic
// state, and its message, for the history.
func responsible(res *policies.Result, before trafficState) (string, string) {
	policy, message := "", ""
	prev := before
	for _, step := range res.Steps {
		m, err := step.Decision.State()
		if err != nil {
			continue
		}
		var s trafficState
		if fromMap(m, &s) != nil {
			continue
		}
		if s.differs(prev) {
			policy, message = step.Policy, step.Decision.Message
		}
		prev = s
	}
	return policy, message
}

// parseTime reads a state's RFC 3339 time; empty gives nil.
func parseTime(s string) (*metav1.MicroTime, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, userError(ReasonInvalidDecision, "the policies decided lastStepTime %q, which is not an RFC 3339 time", s)
	}
	return &metav1.MicroTime{Time: t.Truncate(time.Microsecond)}, nil
}

// formatTime renders a status time as a state's RFC 3339 time; nil gives "".
func formatTime(t *metav1.MicroTime) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// timeValue is a status time as an input value: null when unset.
func timeValue(t *metav1.MicroTime) any {
	if t == nil {
		return nil
	}
	return formatTime(t)
}

func weightsValue(w map[string]int32) map[string]any {
	out := make(map[string]any, len(w))
	for k, v := range w {
		out[k] = int64(v)
	}
	return out
}

// baselineOf finds a canary's baseline in its Route: in the rule it names
// (or else the first rule that routes to its Destination), the stable
// subset (stable.go) where the Route records one other than the canary,
// or else the subset other than the canary with the largest weight.
// stable says that the canary is already the stable subset of every rule
// that could be its baseline's.
func baselineOf(route *v1alpha1.Route, destination, canary, httpRoute string) (baseline string, stable bool) {
	recorded := map[string]string{}
	for _, e := range route.Status.Stable {
		if e.Destination == destination {
			recorded[e.Rule] = e.Subset
		}
	}
	for i, rule := range route.Spec.HTTP {
		if httpRoute != "" && rule.Name != httpRoute {
			continue
		}
		if s, ok := recorded[ruleKey(&route.Spec, i)]; ok {
			if s != canary {
				return s, false
			}
			stable = true
			continue
		}
		best, bestWeight := "", int32(-1)
		for _, d := range rule.Route {
			if d.Destination != destination || d.Subset == "" || d.Subset == canary {
				continue
			}
			w := int32(100)
			if d.Weight != nil {
				w = *d.Weight
			}
			if w > bestWeight {
				best, bestWeight = d.Subset, w
			}
		}
		if best != "" {
			return best, false
		}
	}
	return "", stable
}

// canaryExecutor (CanaryReleaseExecutor): a CanaryRelease gathers
// metrics, runs its chain on the traffic state, and stores the decided
// weights, phase and a bounded history in its status; its Route composes
// the weights.
type canaryExecutor struct {
	r *Reconciler
	noChildren[*v1alpha1.CanaryRelease]
}

// canaryPlan is what a CanaryRelease's run found and decided.
type canaryPlan struct {
	target           *trafficTarget
	canary, baseline string
	// action is the person's action this run applies, if any; answers are
	// those it answers without applying them.
	action  *v1alpha1.ReleaseAction
	answers []actionAnswer
	current release.State
	// direct is what an action decided without the chain; final says
	// that no policy is asked (a release that is over, or paused).
	direct *release.Result
	final  bool
	// served and metrics are what the mesh served and what Prometheus
	// measured, for the chain.
	served, metrics map[string]any
	// least is the shortest span of metrics since a step (metricsSpan); 0
	// without metrics.
	least time.Duration
	// step is the split before and after the chain, res the chain's result.
	step trafficStep
	res  *policies.Result
	last *metav1.MicroTime
	// group is input.plan, for a release a ReleasePlan started.
	group map[string]any
}

// Observe reads the release's Route and Destination, the people's
// actions waiting for it, what the mesh served and the metrics.
func (x canaryExecutor) Observe(ctx context.Context, s *scope, c *v1alpha1.CanaryRelease) (canaryPlan, error) {
	var plan canaryPlan
	t, err := x.r.trafficTargetOf(ctx, c.Namespace, c.Spec.Route, c.Spec.Destination)
	if err != nil {
		return plan, err
	}
	s.useClusterMetrics(ctx, t.placement.cluster)
	canary := c.Spec.Subset
	found, stable := baselineOf(t.route, c.Spec.Destination, canary, c.Spec.HTTPRoute)
	baseline := cmp.Or(c.Spec.Baseline, c.Status.Baseline, found)
	switch {
	case baseline == "" && stable:
		return plan, userError(ReasonAlreadyStable, "subset %s (spec.subset) is already the stable subset of Route %s for Destination %s: there is nothing to release; name a newer subset", canary, t.route.Name, c.Spec.Destination)
	case baseline == "":
		return plan, userError(ReasonBaselineUnknown, "Route %s sends no traffic to another subset of Destination %s: set spec.baseline", t.route.Name, c.Spec.Destination)
	}
	if err := t.requireSubsets("spec.subset", canary); err != nil {
		return plan, err
	}
	if err := t.requireSubsets("spec.baseline", baseline); err != nil {
		return plan, err
	}
	action, answers, err := s.pendingActions(ctx, &c.Status.Steps)
	if err != nil {
		return plan, err
	}
	before := storedState(c.Status.Weights, string(c.Status.Phase), c.Status.LastStepTime)
	before.Mirror, before.Preview = mirrorOf(c.Status.Mirror), previewOf(c.Status.Preview)
	if _, ok := before.Weights[canary]; !ok || c.Status.Baseline != baseline {
		// A new release (or a new subset): start from the baseline.
		before = trafficState{Weights: map[string]int32{baseline: 100, canary: 0}, Phase: string(v1alpha1.CanaryPending)}
	}
	plan = canaryPlan{target: t, canary: canary, baseline: baseline, action: action, answers: answers,
		step: trafficStep{before: before, after: before},
		current: release.State{Weights: before.Weights, Phase: before.Phase, PausedPhase: string(c.Status.PausedPhase),
			Last: c.Status.LastStepTime, Approved: c.Status.ApprovedWeight}}
	if action != nil {
		res := release.Canary(action, plan.current, canary, baseline, release.Gated(c.Spec.Policies), s.now)
		switch {
		case res.Refused != "":
			// A refusal is answered at once, whatever the chain does.
			plan.answers = append(plan.answers, refusal(action, res.Refused))
			plan.action = nil
		case !res.Chain:
			plan.direct = &res
			return plan, nil
		}
	}
	if plan.action == nil && (finished(c, baseline) || c.Status.Phase == v1alpha1.CanaryPaused) {
		// A promoted, rolled-back or aborted release is final until its
		// spec changes, and a paused one waits for a person: no policy to
		// ask, and no metrics to gather once the split it ended on has
		// been measured as served.
		if c.Status.Served == nil || !maps.Equal(c.Status.Served.Weights, c.Status.Weights) {
			s.observeServed(ctx, t, c, c.Status.Weights)
		}
		plan.final = true
		return plan, nil
	}
	chain, err := s.chain(ctx)
	if err != nil {
		return plan, err
	}
	// The split the mesh reported serving, measured after the last step.
	plan.served = s.observeServed(ctx, t, c, before.Weights)
	var window time.Duration
	window, plan.least = s.metricsSpan(ctx, changedAt(c))
	if plan.least > 0 {
		_, _, grace := s.servedParameters()
		plan.step.collect = grace + plan.least
	}
	plan.metrics = s.gather(ctx, t, chain, window, []string{baseline, canary})
	plan.group, err = x.r.planGroup(ctx, c)
	return plan, err
}

func (canaryExecutor) answers(plan canaryPlan) []actionAnswer { return plan.answers }

// Propose offers the traffic state, with what was observed, the metrics
// and the action, to the chain; none when the release is over or an
// action decided without it.
func (canaryExecutor) Propose(s *scope, c *v1alpha1.CanaryRelease, plan canaryPlan) (canaryPlan, *policies.Input) {
	if plan.direct != nil || plan.final {
		return plan, nil
	}
	before := plan.step.before
	observed := map[string]any{"weights": weightsValue(before.Weights), "phase": before.Phase, "lastStepTime": timeValue(c.Status.LastStepTime),
		"mirror": before.Mirror.value(), "preview": before.Preview.value(), "served": plan.served}
	if s.collectingTill != "" {
		observed["collectingUntil"] = s.collectingTill
	}
	return plan, &policies.Input{
		State:    before.input(map[string]any{"baseline": plan.baseline, "canary": plan.canary}),
		Observed: observed,
		Metrics:  plan.metrics,
		Action:   actionInput(plan.action),
		Plan:     plan.group,
	}
}

// Apply decides the split: the Route applies it to the mesh.
func (canaryExecutor) Apply(_ context.Context, s *scope, _ *v1alpha1.CanaryRelease, plan canaryPlan, decided *Decision) (canaryPlan, error) {
	if plan.direct != nil || plan.final {
		return plan, nil
	}
	var err error
	plan.step.after, plan.last, err = decideTraffic(s, plan.target, decided, plan.step.before)
	if decided != nil {
		plan.res = decided.Result
	}
	return plan, err
}

func (canaryExecutor) stepped(plan canaryPlan) trafficStep { return plan.step }

// decideTraffic is what the canary and experiment executors apply: the
// split decided (see decidedTraffic) and the time of its last step, which
// a ReadOnly executor does not keep.
func decideTraffic(s *scope, t *trafficTarget, decided *Decision, before trafficState) (trafficState, *metav1.MicroTime, error) {
	after, err := decidedTraffic(t, decided, before)
	if err != nil || s.readOnly {
		return after, nil, err
	}
	last, err := parseTime(after.LastStepTime)
	return after, last, err
}

func (canaryExecutor) Status(s *scope, c *v1alpha1.CanaryRelease, plan canaryPlan) (string, error) {
	canary, baseline, before, after := plan.canary, plan.baseline, plan.step.before, plan.step.after
	switch {
	case plan.direct != nil:
		s.recordAction(&c.Status.History, plan.action, v1alpha1.ReleaseStep{Weights: plan.direct.State.Weights, Phase: plan.direct.State.Phase, Message: plan.direct.Message})
		msg := setCanaryState(s, c, before.Weights, plan.direct.State, canary, baseline)
		setExtras(c, before)
		return msg, nil
	case plan.final:
		return splitMessage(string(c.Status.Phase), c.Status.Weights, canary, baseline), nil
	case s.readOnly:
		return readOnlyDecision(s, before, after), nil
	}
	if res := plan.res; res != nil && (after.differs(before) || plan.action != nil) {
		policy, message := responsible(res, before)
		step := v1alpha1.ReleaseStep{Policy: policy, Weights: after.Weights, Phase: after.Phase, Message: message,
			Metrics: stepMetrics(plan.metrics, baseline, canary)}
		if plan.action == nil {
			step.Time = metav1.MicroTime{Time: s.now}
			appendHistory(&c.Status.History, step)
		} else {
			if !after.differs(before) {
				step.Message = "the policies held: " + heldBy(res)
			}
			s.recordAction(&c.Status.History, plan.action, step)
		}
	}
	if plan.least > 0 && plan.last != nil && after.differs(before) && !v1alpha1.CanaryPhase(after.Phase).Ended() {
		s.collecting(plan.last, plan.least)
	}
	current := plan.current
	current.Weights, current.Phase, current.Last = after.Weights, after.Phase, plan.last
	msg := setCanaryState(s, c, before.Weights, current, canary, baseline)
	setExtras(c, after)
	return msg, nil
}

// Finalize holds the deletion of a release that ended until its Route has
// recorded the end (route_stable.go): the release in its history and,
// for a promotion, the canary as its stable subset, written together.
// Deleting it then moves no traffic and loses nothing of it, whichever ran
// first and whatever stopped between. A release still shifting traffic
// goes at once (its Route sends the traffic to the stable subset, as the
// webhook warned).
func (x canaryExecutor) Finalize(ctx context.Context, _ *scope, c *v1alpha1.CanaryRelease) error {
	if !c.Status.Phase.Ended() || c.Status.LastStepTime == nil {
		return nil
	}
	route := &v1alpha1.Route{}
	if err := x.r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.Route}, route, client.UnsafeDisableDeepCopy); err != nil || !route.DeletionTimestamp.IsZero() {
		return client.IgnoreNotFound(err)
	}
	if !recorded(route.Status.Releases, endOf(c, *c.Status.LastStepTime)) {
		return fmt.Errorf("waiting for Route %s to record the end of the release (%s), as its Ready condition says", route.Name, c.Status.Phase)
	}
	return nil
}

// NeedsFinalizer: only a release that ended has something to wait for
// when it is deleted; one still shifting traffic carries no finalizer.
func (canaryExecutor) NeedsFinalizer(c *v1alpha1.CanaryRelease) bool { return c.Status.Phase.Ended() }

func canaryKind(r *Reconciler) *kind[*v1alpha1.CanaryRelease] {
	return &kind[*v1alpha1.CanaryRelease]{
		name:      "CanaryRelease",
		newObject: func() *v1alpha1.CanaryRelease { return &v1alpha1.CanaryRelease{} },
		executors: map[string]implementation[*v1alpha1.CanaryRelease]{"CanaryReleaseExecutor": phases(canaryExecutor{r: r})},
	}
}

// setCanaryState stores a canary's decided state in its status and
// returns its Ready message.
func setCanaryState(s *scope, c *v1alpha1.CanaryRelease, before map[string]int32, state release.State, canary, baseline string) string {
	if !maps.Equal(before, state.Weights) {
		s.stepped(c)
	}
	c.Status.Baseline, c.Status.Weights, c.Status.Phase = baseline, state.Weights, v1alpha1.CanaryPhase(state.Phase)
	c.Status.CanaryWeight, c.Status.LastStepTime = state.Weights[canary], state.Last
	c.Status.PausedPhase, c.Status.ApprovedWeight = v1alpha1.CanaryPhase(state.PausedPhase), state.Approved
	return splitMessage(state.Phase, state.Weights, canary, baseline)
}

// heldBy summarises why a chain kept the split: each policy's message.
func heldBy(res *policies.Result) string {
	parts := make([]string, 0, len(res.Steps))
	for _, step := range res.Steps {
		parts = append(parts, fmt.Sprintf("%s: %s", step.Policy, cmp.Or(step.Decision.Message, "-")))
	}
	return strings.Join(parts, "; ")
}

// stepMetrics are the figures of the subsets a decision saw, for the history.
func stepMetrics(metrics map[string]any, subsets ...string) []v1alpha1.StepMetrics {
	var out []v1alpha1.StepMetrics
	for _, subset := range slices.Sorted(slices.Values(subsets)) {
		m, ok := metrics[subset].(map[string]any)
		if !ok {
			continue
		}
		sm := v1alpha1.StepMetrics{Subset: subset}
		if f, ok := m["requests"].(float64); ok {
			// A count, which Prometheus's increase() extrapolates.
			sm.Requests = strconv.FormatFloat(math.Round(f), 'f', 0, 64)
		}
		for key, into := range map[string]*string{"errorRate": &sm.ErrorRate, "latencyP99Ms": &sm.LatencyP99Ms} {
			if f, ok := m[key].(float64); ok {
				*into = formatFloat(f)
			}
		}
		out = append(out, sm)
	}
	return out
}

// finished says whether a canary's release is over: Promoted, RolledBack
// or Aborted at the current generation of its spec, against the same
// baseline.
func finished(c *v1alpha1.CanaryRelease, baseline string) bool {
	return c.Status.Phase.Ended() && c.Status.ObservedGeneration == c.Generation && c.Status.Baseline == baseline
}

// splitMessage is a canary's Ready message: its phase and split.
func splitMessage(phase string, weights map[string]int32, canary, baseline string) string {
	return fmt.Sprintf("%s: %s at %d%%, %s at %d%%", phase, canary, weights[canary], baseline, weights[baseline])
}

// readOnlyDecision reports, for a ReadOnly executor, the split the
// policies decided without storing it (the Route composes nothing new),
// and returns the Ready message.
func readOnlyDecision(s *scope, before, after trafficState) string {
	if after.differs(before) {
		s.drift = append(s.drift, fmt.Sprintf("set weights %s (%s)", weightsText(after.Weights), after.Phase))
	}
	return fmt.Sprintf("read-only: the policies keep %s (%s)", weightsText(after.Weights), cmp.Or(after.Phase, "Pending"))
}

// weightsText renders a split as "v1 90%, v2 10%".
func weightsText(w map[string]int32) string {
	parts := make([]string, 0, len(w))
	for _, s := range sortedKeys(w) {
		parts = append(parts, fmt.Sprintf("%s %d%%", s, w[s]))
	}
	return strings.Join(parts, ", ")
}

// formatFloat renders a statistic for the status.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
