package reconciler

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/release"
	"github.com/kubist-io/kubist/policies"
)

// goalQueries are the PromQL templates of an Experiment's goal metric per
// subset: spec.goal.queries for a custom metric, otherwise built from
// Istio's standard metrics over the window. For latency the standard
// deviation is estimated from the histogram as half the distance between
// its 15.87th and 84.13th percentiles (exact for a normal distribution);
// an error rate is a proportion, whose deviation is sqrt(p(1-p)).
func goalQueries(goal v1alpha1.ExperimentGoal, window time.Duration) (mean, stddev, count string) {
	if goal.Queries != nil {
		return goal.Queries.Mean, goal.Queries.Stddev, goal.Queries.Count
	}
	w := model.Duration(window).String()
	sel := `reporter="destination",destination_service_namespace="{{namespace}}",destination_service_name="{{service}}",destination_version="{{subset}}"`
	switch goal.Metric {
	case "errorRate":
		requests := fmt.Sprintf(`sum(increase(istio_requests_total{%s}[%s]))`, sel, w)
		rate := fmt.Sprintf(`(sum(increase(istio_requests_total{%s,response_code=~"5.."}[%s])) or vector(0)) / %s`, sel, w, requests)
		return rate, fmt.Sprintf(`sqrt((%s) * (1 - (%s)))`, rate, rate), requests
	default: // latency, in milliseconds
		quantile := func(q string) string {
			return fmt.Sprintf(`histogram_quantile(%s, sum by (le) (rate(istio_request_duration_milliseconds_bucket{%s}[%s])))`, q, sel, w)
		}
		return fmt.Sprintf(`sum(increase(istio_request_duration_milliseconds_sum{%s}[%s])) / sum(increase(istio_request_duration_milliseconds_count{%s}[%s]))`, sel, w, sel, w),
			fmt.Sprintf(`(%s - %s) / 2`, quantile("0.8413"), quantile("0.1587")),
			fmt.Sprintf(`sum(increase(istio_request_duration_milliseconds_count{%s}[%s]))`, sel, w)
	}
}

// experimentExecutor (ExperimentExecutor): an Experiment splits traffic
// among subsets, reads the goal metric of each, and runs its chain
// (WelchExperiment by default), which moves weight towards the better
// subset and names the winner.
type experimentExecutor struct {
	r *Reconciler
	noChildren[*v1alpha1.Experiment]
}

// experimentPlan is what an Experiment's run found and decided.
type experimentPlan struct {
	target  *trafficTarget
	action  *v1alpha1.ReleaseAction
	answers []actionAnswer
	// direct is what an action decided without the chain; final says
	// that no policy is asked (paused or aborted by a person).
	direct *release.Result
	final  bool
	// metrics are what Prometheus measured, stats the goal's figures
	// among them.
	metrics map[string]any
	stats   map[string]goalStats
	step    trafficStep
	res     *policies.Result
	last    *metav1.MicroTime
	// pValues and winner are what the chain decided besides the split.
	pValues map[string]float64
	winner  string
}

// Observe reads the experiment's Route and Destination, the people's
// actions waiting for it, and the goal metric of each subset.
func (x experimentExecutor) Observe(ctx context.Context, s *scope, e *v1alpha1.Experiment) (experimentPlan, error) {
	var plan experimentPlan
	t, err := x.r.trafficTargetOf(ctx, e.Namespace, e.Spec.Route, e.Spec.Destination)
	if err != nil {
		return plan, err
	}
	s.useClusterMetrics(ctx, t.placement.cluster)
	if err := t.requireSubsets("spec.subsets", e.Spec.Subsets...); err != nil {
		return plan, err
	}
	action, answers, err := s.pendingActions(ctx, &e.Status.Steps)
	if err != nil {
		return plan, err
	}
	before := storedState(e.Status.Weights, string(e.Status.Phase), e.Status.LastStepTime)
	if !sameSubsets(before.Weights, e.Spec.Subsets) {
		before = trafficState{Weights: evenSplit(e.Spec.Subsets), Phase: string(v1alpha1.ExperimentPending)}
	}
	plan = experimentPlan{target: t, action: action, answers: answers, step: trafficStep{before: before, after: before}}
	if action != nil {
		current := release.State{Weights: before.Weights, Phase: before.Phase, PausedPhase: string(e.Status.PausedPhase), Last: e.Status.LastStepTime}
		res := release.Experiment(action, current, e.Spec.Subsets, s.now)
		if res.Refused == "" {
			plan.direct = &res
			return plan, nil
		}
		// A refusal is answered at once.
		plan.answers = append(plan.answers, refusal(action, res.Refused))
		plan.action = nil
	}
	if (e.Status.Phase == v1alpha1.ExperimentPaused || e.Status.Phase == v1alpha1.ExperimentAborted) && sameSubsets(e.Status.Weights, e.Spec.Subsets) {
		// A person paused or aborted it: the policies wait for them.
		plan.final = true
		return plan, nil
	}
	chain, err := s.chain(ctx)
	if err != nil {
		return plan, err
	}
	// The whole metricsWindow: an experiment's policy stamps each
	// evaluation as a step, weights moved or not, and its statistics want
	// every sample the window holds.
	window := s.metricsWindow()
	mean, stddev, count := goalQueries(e.Spec.Goal, window)
	plan.metrics = s.gather(ctx, t, chain, window, e.Spec.Subsets, mean, stddev, count)
	plan.stats = goalStatistics(plan.metrics, e.Spec.Subsets, mean, stddev, count)
	return plan, nil
}

func (experimentExecutor) answers(plan experimentPlan) []actionAnswer { return plan.answers }

// Propose offers the split, with what the policies decided before
// (winner, p-values) and the goal's figures, to the chain.
func (experimentExecutor) Propose(_ *scope, e *v1alpha1.Experiment, plan experimentPlan) (experimentPlan, *policies.Input) {
	if plan.direct != nil || plan.final {
		return plan, nil
	}
	before := plan.step.before
	state := before.input(map[string]any{"subsets": e.Spec.Subsets})
	// What the policies decided before (winner, p-values) is part of the
	// state they decide on, so a run that decides nothing new keeps it.
	if sameSubsets(e.Status.Weights, e.Spec.Subsets) {
		if e.Status.Winner != "" {
			state["winner"] = e.Status.Winner
		}
		if p := storedPValues(e.Status.Statistics); len(p) > 0 {
			state["pValues"] = p
		}
	}
	return plan, &policies.Input{State: state, Metrics: plan.metrics, Observed: map[string]any{"weights": weightsValue(before.Weights)}}
}

// Apply decides the split and the winner: the Route applies the split.
func (experimentExecutor) Apply(_ context.Context, s *scope, _ *v1alpha1.Experiment, plan experimentPlan, decided *Decision) (experimentPlan, error) {
	if plan.direct != nil || plan.final {
		return plan, nil
	}
	var err error
	if plan.step.after, plan.last, err = decideTraffic(s, plan.target, decided, plan.step.before); err != nil {
		return plan, err
	}
	if decided != nil {
		var decision struct {
			PValues map[string]float64 `json:"pValues"`
			Winner  string             `json:"winner"`
		}
		_ = fromMap(decided.State, &decision)
		plan.res, plan.pValues, plan.winner = decided.Result, decision.PValues, decision.Winner
	}
	return plan, nil
}

func (experimentExecutor) stepped(plan experimentPlan) trafficStep { return plan.step }

func (experimentExecutor) Status(s *scope, e *v1alpha1.Experiment, plan experimentPlan) (string, error) {
	switch {
	case plan.direct != nil:
		res := plan.direct
		s.recordAction(&e.Status.History, plan.action, v1alpha1.ReleaseStep{Weights: res.State.Weights, Phase: res.State.Phase, Message: res.Message})
		e.Status.Weights, e.Status.Phase, e.Status.LastStepTime = res.State.Weights, v1alpha1.ExperimentPhase(res.State.Phase), res.State.Last
		e.Status.PausedPhase = v1alpha1.ExperimentPhase(res.State.PausedPhase)
		if plan.action.Spec.Action == v1alpha1.ActionConclude {
			e.Status.Winner = plan.action.Spec.Winner
		}
		return experimentWeights(e), nil
	case plan.final:
		return experimentWeights(e), nil
	case s.readOnly:
		return readOnlyDecision(s, plan.step.before, plan.step.after), nil
	}
	after := plan.step.after
	e.Status.Weights, e.Status.Phase, e.Status.LastStepTime = after.Weights, v1alpha1.ExperimentPhase(after.Phase), plan.last
	e.Status.Winner = plan.winner
	e.Status.Statistics = nil
	for _, subset := range e.Spec.Subsets {
		st := v1alpha1.SubsetStatistics{Subset: subset}
		if g, ok := plan.stats[subset]; ok {
			st.Mean, st.Stddev, st.N = formatFloat(g.mean), formatFloat(g.stddev), g.n
		}
		if p, ok := plan.pValues[subset]; ok {
			st.PValue = formatFloat(p)
		}
		e.Status.Statistics = append(e.Status.Statistics, st)
	}
	if after.differs(plan.step.before) && plan.res != nil {
		policy, message := responsible(plan.res, plan.step.before)
		appendHistory(&e.Status.History, v1alpha1.ReleaseStep{Time: metav1.MicroTime{Time: s.now}, Policy: policy,
			Weights: after.Weights, Phase: after.Phase, Message: message})
	}
	return experimentWeights(e), nil
}

func experimentKind(r *Reconciler) *kind[*v1alpha1.Experiment] {
	return &kind[*v1alpha1.Experiment]{
		name:      "Experiment",
		newObject: func() *v1alpha1.Experiment { return &v1alpha1.Experiment{} },
		executors: map[string]implementation[*v1alpha1.Experiment]{"ExperimentExecutor": phases(experimentExecutor{r: r})},
	}
}

// experimentWeights is an experiment's Ready message: its split.
func experimentWeights(e *v1alpha1.Experiment) string {
	msg := fmt.Sprintf("%s: %s", e.Status.Phase, weightsText(e.Status.Weights))
	if e.Status.Winner != "" {
		msg += "; winner " + e.Status.Winner
	}
	return msg
}

type goalStats struct {
	mean, stddev float64
	n            int64
}

// goalStatistics picks each subset's goal figures out of the gathered
// metrics and puts them where the policies read them: metrics[s].goal.
func goalStatistics(metrics map[string]any, subsets []string, mean, stddev, count string) map[string]goalStats {
	out := map[string]goalStats{}
	for _, s := range subsets {
		m, _ := metrics[s].(map[string]any)
		q, _ := m["queries"].(map[string]any)
		mv, ok1 := q[mean].(float64)
		sv, ok2 := q[stddev].(float64)
		nv, ok3 := q[count].(float64)
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		g := goalStats{mean: mv, stddev: sv, n: int64(nv)}
		out[s] = g
		m["goal"] = map[string]any{"mean": g.mean, "stddev": g.stddev, "n": g.n}
	}
	return out
}

// storedPValues reads the p-values a status holds.
func storedPValues(stats []v1alpha1.SubsetStatistics) map[string]any {
	out := map[string]any{}
	for _, s := range stats {
		if p, err := strconv.ParseFloat(s.PValue, 64); err == nil {
			out[s.Subset] = p
		}
	}
	return out
}

// evenSplit shares 100% among subsets; the remainder goes to the first.
func evenSplit(subsets []string) map[string]int32 {
	out := make(map[string]int32, len(subsets))
	if len(subsets) == 0 {
		return out
	}
	each := int32(100 / len(subsets))
	for _, s := range subsets {
		out[s] = each
	}
	out[subsets[0]] += 100 - each*int32(len(subsets))
	return out
}

func sameSubsets(weights map[string]int32, subsets []string) bool {
	if len(weights) != len(subsets) {
		return false
	}
	for _, s := range subsets {
		if _, ok := weights[s]; !ok {
			return false
		}
	}
	return true
}
