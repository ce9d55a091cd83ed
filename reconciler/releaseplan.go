package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/ancestry"
	"github.com/kubist-io/kubist/internal/release"
	"github.com/kubist-io/kubist/policies"
)

// A ReleasePlan's executor places the VirtualClusters of its Project in
// its waves, starts (and owns) one CanaryRelease per Route of the plan in
// each VirtualCluster its chain starts, and records each wave, each
// VirtualCluster and each release in its status. Its chain (WavePacing by
// default) decides when a VirtualCluster starts and what a failure does;
// the releases themselves step by their own chains, with PlanLockstep
// last, which keeps a VirtualCluster's releases (its group) together and
// follows the plan's pause, abort and rollback.
//
// Exactly once: a release's name is the plan's and the Route's, so a run
// that created it and stopped before its status write finds it created
// (AlreadyExists) when the chain starts that VirtualCluster again; what a
// VirtualCluster's start records (its time) is written with the status.
// +kubebuilder:rbac:groups=kubist.io,resources=releaseactions,verbs=create

// Reasons of a plan's Ready condition.
const (
	ReasonSubsetUnknown = "SubsetUnknown"
	ReasonInvalidSpec   = "InvalidSpec"
)

// planRoleRevert is ancestry.LabelPlanRole on a plan's revert releases.
const planRoleRevert = "revert"

type planExecutor struct{ r *Reconciler }

// planRelease is one Route of a member: the release the plan started (or
// will), and the one that reverted it.
type planRelease struct {
	route    string
	name     string
	obj      *v1alpha1.CanaryRelease
	revert   *v1alpha1.CanaryRelease
	template *v1alpha1.ReleaseTemplate
	// busy names another release running on the Route, which the plan's
	// waits for.
	busy    string
	problem string
	// recorded: the status names the release (it was created).
	recorded bool
}

// planMember is one VirtualCluster of a wave.
type planMember struct {
	target   release.PlanTarget
	started  *metav1.MicroTime
	releases []*planRelease
}

// planRun is what one run of a plan carries from phase to phase.
type planRun struct {
	waves    [][]*planMember
	unplaced int
	subset   string
	problem  string

	action  *v1alpha1.ReleaseAction
	answers []actionAnswer
	direct  *release.Result

	phase    v1alpha1.PlanPhase
	proposed map[string]any
	// decided: the chain's state, or the proposal without a chain.
	started map[string]bool
	res     *policies.Result
	created []string
}

func planReleaseName(plan, route string) string { return plan + "-" + route }

func (x planExecutor) Observe(ctx context.Context, s *scope, p *v1alpha1.ReleasePlan) (planRun, error) {
	run := planRun{phase: cmp.Or(p.Status.Phase, v1alpha1.PlanPending)}
	var clusters v1alpha1.ClusterList
	if err := x.r.Client.List(ctx, &clusters, client.MatchingFields{indexProject: p.Spec.Project}, client.UnsafeDisableDeepCopy); err != nil {
		return run, err
	}
	var vcs v1alpha1.VirtualClusterList
	if err := x.r.Client.List(ctx, &vcs, client.UnsafeDisableDeepCopy); err != nil {
		return run, err
	}
	placement, err := release.Place(p, clusters.Items, vcs.Items)
	if err != nil {
		return run, userError(ReasonInvalidSpec, "%v", err)
	}
	run.unplaced = placement.Unplaced
	var owned v1alpha1.CanaryReleaseList
	if err := x.r.Client.List(ctx, &owned, client.MatchingLabels{v1alpha1.LabelPlan: p.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return run, err
	}
	byKey := map[string]*v1alpha1.CanaryRelease{}
	for i := range owned.Items {
		c := &owned.Items[i]
		if metav1.IsControlledBy(c, p) {
			byKey[c.Namespace+"/"+c.Name] = c
		}
	}
	recorded := map[string]v1alpha1.PlanMember{}
	for _, w := range p.Status.Waves {
		for _, m := range w.Members {
			recorded[m.VirtualCluster] = m
		}
	}
	run.waves = make([][]*planMember, len(placement.Waves))
	for i, targets := range placement.Waves {
		for _, t := range targets {
			m := &planMember{target: t}
			rec, ok := recorded[t.VirtualCluster]
			if ok {
				m.started = rec.Started
			}
			for _, route := range p.Spec.Routes {
				pr := &planRelease{route: route, name: planReleaseName(p.Name, route)}
				pr.obj = byKey[t.Namespace+"/"+pr.name]
				pr.revert = byKey[t.Namespace+"/"+pr.name+"-revert"]
				pr.recorded = slices.ContainsFunc(rec.Releases, func(r v1alpha1.PlanMemberRelease) bool { return r.Route == route && r.Name != "" })
				if pr.obj == nil && !run.phase.Ended() {
					x.observeRoute(ctx, p, t.Namespace, pr)
				}
				m.releases = append(m.releases, pr)
			}
			run.waves[i] = append(run.waves[i], m)
		}
	}
	run.subset = cmp.Or(p.Status.Subset, p.Spec.Subset)
	if run.subset == "" {
		run.subset, run.problem = x.newestSubset(ctx, p, run.waves)
	}
	action, answers, err := s.pendingActions(ctx, &p.Status.Steps)
	if err != nil {
		return run, err
	}
	run.action, run.answers = action, answers
	if action != nil {
		res := release.Plan(action, release.State{Phase: string(run.phase), PausedPhase: string(p.Status.PausedPhase)})
		switch {
		case res.Refused != "":
			run.answers = append(run.answers, refusal(action, res.Refused))
			run.action = nil
		case !res.Chain:
			run.direct = &res
		}
	}
	return run, nil
}

// observeRoute reads what starting a plan's release on a Route needs: its
// release template, and whether another release runs on it.
func (x planExecutor) observeRoute(ctx context.Context, p *v1alpha1.ReleasePlan, namespace string, pr *planRelease) {
	var route v1alpha1.Route
	if err := x.r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: pr.route}, &route, client.UnsafeDisableDeepCopy); err != nil {
		pr.problem = fmt.Sprintf("Route %s/%s does not exist", namespace, pr.route)
		return
	}
	if route.Spec.Release == nil {
		pr.problem = fmt.Sprintf("Route %s/%s has no release template (spec.release): it names the Destination the plan releases", namespace, pr.route)
		return
	}
	pr.template = route.Spec.Release
	var others v1alpha1.CanaryReleaseList
	if err := x.r.Client.List(ctx, &others, client.InNamespace(namespace), client.MatchingFields{indexRoute: pr.route}, client.UnsafeDisableDeepCopy); err != nil {
		pr.problem = err.Error()
		return
	}
	for _, c := range others.Items {
		if c.Labels[v1alpha1.LabelPlan] != p.Name && !c.Status.Phase.Ended() {
			pr.busy = c.Name
		}
	}
}

// newestSubset is the subset a plan without spec.subset releases: the
// newest ready subset newer than the stable one, of the first Route of the
// first VirtualCluster it reaches.
func (x planExecutor) newestSubset(ctx context.Context, p *v1alpha1.ReleasePlan, waves [][]*planMember) (string, string) {
	var first *planMember
	for _, w := range waves {
		if len(w) > 0 {
			first = w[0]
			break
		}
	}
	if first == nil {
		return "", "the plan reaches no VirtualCluster yet"
	}
	var route v1alpha1.Route
	key := types.NamespacedName{Namespace: first.target.Namespace, Name: p.Spec.Routes[0]}
	if err := x.r.Client.Get(ctx, key, &route, client.UnsafeDisableDeepCopy); err != nil || route.Spec.Release == nil {
		return "", fmt.Sprintf("Route %s has no release template to find the newest subset with: set spec.subset", key)
	}
	view, err := x.r.observeTemplate(ctx, &route)
	if err != nil || view.problem != "" {
		return "", fmt.Sprintf("the newest subset of Route %s is unknown (%v%s): set spec.subset", key, err, view.problemText())
	}
	stable := ""
	for _, e := range route.Status.Stable {
		if e.Destination == route.Spec.Release.Destination {
			stable = e.Subset
		}
	}
	if stable == "" {
		return "", fmt.Sprintf("Route %s has recorded no stable subset of Destination %s yet: the newest subset is the newest after it", key, route.Spec.Release.Destination)
	}
	var stableAt *metav1.Time
	if v, ok := view.versions[stable]; ok {
		stableAt = v.Created
	}
	newest := release.Newest(view.subsets, view.versions, func(s string, v v1alpha1.ApplicationVersion) bool {
		return s != stable && (stableAt == nil || !v.Created.Before(stableAt))
	})
	if newest == "" {
		return "", fmt.Sprintf("Route %s has no ready subset newer than the stable %s: deploy one, or set spec.subset", key, stable)
	}
	return newest, ""
}

func (v *templateView) problemText() string {
	if v == nil || v.problem == "" {
		return ""
	}
	return v.problem
}

func (planExecutor) answers(run planRun) []actionAnswer { return run.answers }

// memberPhase is a member's phase: its releases', the worst first.
func memberPhase(m *planMember) v1alpha1.WavePhase {
	if m.started == nil {
		return v1alpha1.WavePending
	}
	phases := map[v1alpha1.CanaryPhase]int{}
	for _, r := range m.releases {
		switch {
		case r.obj != nil:
			phases[cmp.Or(r.obj.Status.Phase, v1alpha1.CanaryPending)]++
		case r.recorded:
			// Started, then deleted: it cannot end.
			phases[v1alpha1.CanaryFailed]++
		default:
			phases[v1alpha1.CanaryPending]++
		}
	}
	for _, bad := range []v1alpha1.CanaryPhase{v1alpha1.CanaryRolledBack, v1alpha1.CanaryAborted, v1alpha1.CanaryFailed} {
		if phases[bad] > 0 {
			return v1alpha1.WavePhase(bad)
		}
	}
	if slices.ContainsFunc(m.releases, func(r *planRelease) bool { return r.revert != nil }) {
		// The plan rolled it back after it was promoted.
		return v1alpha1.WaveRolledBack
	}
	if phases[v1alpha1.CanaryPromoted] == len(m.releases) {
		return v1alpha1.WavePromoted
	}
	return v1alpha1.WaveProgressing
}

// groupFailed says whether one of a member's releases rolled back, was
// aborted or failed.
func groupFailed(m *planMember) bool {
	return slices.ContainsFunc(m.releases, func(r *planRelease) bool {
		return r.obj != nil && (r.obj.Status.Phase == v1alpha1.CanaryRolledBack || r.obj.Status.Phase == v1alpha1.CanaryAborted || r.obj.Status.Phase == v1alpha1.CanaryFailed)
	})
}

// promotedAt is when a member's last release was promoted.
func promotedAt(m *planMember) *metav1.MicroTime {
	var last *metav1.MicroTime
	for _, r := range m.releases {
		if r.obj == nil || r.obj.Status.LastStepTime == nil {
			continue
		}
		if last == nil || last.Before(r.obj.Status.LastStepTime) {
			last = r.obj.Status.LastStepTime
		}
	}
	return last
}

// wavePromoted is when a wave's last member was promoted, nil while one
// is not (or has not started).
func wavePromoted(members []*planMember) *metav1.MicroTime {
	var last *metav1.MicroTime
	for _, m := range members {
		if memberPhase(m) != v1alpha1.WavePromoted {
			return nil
		}
		if t := promotedAt(m); t != nil && (last == nil || last.Before(t)) {
			last = t
		}
	}
	return last
}

// Propose offers the plan's waves — which VirtualClusters started, each
// one's phase — to its chain, with each release's phase, weights,
// decisions and metrics, and each wave's metrics across its clusters.
func (planExecutor) Propose(_ *scope, p *v1alpha1.ReleasePlan, run planRun) (planRun, *policies.Input) {
	run.started = map[string]bool{}
	for _, w := range run.waves {
		for _, m := range w {
			if m.started != nil {
				run.started[m.target.VirtualCluster] = true
			}
		}
	}
	if run.direct != nil || run.problem != "" || (run.phase.Ended() && run.action == nil) || run.phase == v1alpha1.PlanPaused {
		return run, nil
	}
	waves := make([]any, len(run.waves))
	observed := make([]any, len(run.waves))
	for i, w := range run.waves {
		members := make([]any, len(w))
		seen := make([]any, len(w))
		for j, m := range w {
			members[j] = map[string]any{"virtualCluster": m.target.VirtualCluster, "cluster": m.target.Cluster,
				"started": m.started != nil, "phase": string(memberPhase(m))}
			releases := make([]any, len(m.releases))
			for k, r := range m.releases {
				releases[k] = releaseInput(r)
			}
			seen[j] = map[string]any{"virtualCluster": m.target.VirtualCluster, "cluster": m.target.Cluster, "namespace": m.target.Namespace,
				"phase": string(memberPhase(m)), "releases": releases}
		}
		wave := map[string]any{"name": p.Spec.Waves[i].Name, "members": members}
		if t := wavePromoted(w); t != nil {
			wave["promoted"] = t.UTC().Format(timeLayout)
		}
		waves[i] = wave
		observed[i] = map[string]any{"name": p.Spec.Waves[i].Name, "members": seen, "metrics": metricsValue(waveMetrics(w))}
	}
	run.proposed = map[string]any{"phase": string(run.phase), "subset": run.subset, "waves": waves}
	return run, &policies.Input{
		State:    run.proposed,
		Observed: map[string]any{"waves": observed, "state": run.proposed},
		Action:   actionInput(run.action),
	}
}

// timeLayout is how a plan's input writes times.
const timeLayout = "2006-01-02T15:04:05.999999Z07:00"

// releaseInput is one release as a plan's input holds it.
func releaseInput(r *planRelease) map[string]any {
	in := map[string]any{"route": r.route, "name": r.name, "phase": string(v1alpha1.CanaryPending)}
	if c := r.obj; c != nil {
		in["phase"] = string(cmp.Or(c.Status.Phase, v1alpha1.CanaryPending))
		in["canaryWeight"] = int64(c.Status.CanaryWeight)
		in["weights"] = weightsValue(c.Status.Weights)
		decisions := make([]any, len(c.Status.Decisions))
		for i, d := range c.Status.Decisions {
			decisions[i] = map[string]any{"policy": d.Policy, "outcome": d.Outcome, "message": d.Message}
		}
		in["decisions"] = decisions
		in["metrics"] = metricsValue(lastMetrics(c))
	}
	return in
}

// lastMetrics are the figures of a release's last decision that saw any.
func lastMetrics(c *v1alpha1.CanaryRelease) []v1alpha1.StepMetrics {
	for i := len(c.Status.History) - 1; i >= 0; i-- {
		if m := c.Status.History[i].Metrics; len(m) > 0 {
			return m
		}
	}
	return nil
}

// waveMetrics are a wave's figures per subset across its clusters, from
// its releases' last decisions: requests summed, the error rate over all
// of them, p99 the highest (percentiles do not add up).
func waveMetrics(members []*planMember) []v1alpha1.StepMetrics {
	type sum struct{ requests, errors, p99 float64 }
	sums := map[string]*sum{}
	for _, m := range members {
		for _, r := range m.releases {
			if r.obj == nil {
				continue
			}
			for _, sm := range lastMetrics(r.obj) {
				s := sums[sm.Subset]
				if s == nil {
					s = &sum{}
					sums[sm.Subset] = s
				}
				req, _ := strconv.ParseFloat(sm.Requests, 64)
				rate, _ := strconv.ParseFloat(sm.ErrorRate, 64)
				p99, _ := strconv.ParseFloat(sm.LatencyP99Ms, 64)
				s.requests += req
				s.errors += rate * req
				s.p99 = math.Max(s.p99, p99)
			}
		}
	}
	out := make([]v1alpha1.StepMetrics, 0, len(sums))
	for _, subset := range slices.Sorted(maps.Keys(sums)) {
		s := sums[subset]
		sm := v1alpha1.StepMetrics{Subset: subset, Requests: strconv.FormatFloat(s.requests, 'f', 0, 64)}
		if s.requests > 0 {
			sm.ErrorRate = formatFloat(s.errors / s.requests)
		}
		if s.p99 > 0 {
			sm.LatencyP99Ms = formatFloat(s.p99)
		}
		out = append(out, sm)
	}
	return out
}

// metricsValue is figures as a chain's input: by subset, numbers.
func metricsValue(ms []v1alpha1.StepMetrics) map[string]any {
	out := make(map[string]any, len(ms))
	for _, m := range ms {
		v := map[string]any{}
		for key, s := range map[string]string{"requests": m.Requests, "errorRate": m.ErrorRate, "latencyP99Ms": m.LatencyP99Ms} {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				v[key] = f
			}
		}
		out[m.Subset] = v
	}
	return out
}

// Apply starts the releases of the VirtualClusters the chain started,
// promotes the current wave's releases for a person's promote-wave, and,
// when the plan rolled back, reverts the VirtualClusters it promoted.
func (x planExecutor) Apply(ctx context.Context, s *scope, p *v1alpha1.ReleasePlan, run planRun, decided *Decision) (planRun, error) {
	switch {
	case run.direct != nil:
		run.phase = v1alpha1.PlanPhase(run.direct.State.Phase)
	case decided != nil:
		run.res = decided.Result
		phase, started, err := decidedPlan(decided.State)
		if err != nil {
			return run, userError(ReasonInvalidDecision, "%v", err)
		}
		run.phase = phase
		for vc := range started {
			run.started[vc] = true
		}
	}
	if s.readOnly {
		for _, w := range run.waves {
			for _, m := range w {
				if run.started[m.target.VirtualCluster] && m.started == nil {
					s.drift = append(s.drift, "start VirtualCluster "+m.target.VirtualCluster)
				}
			}
		}
		return run, nil
	}
	current := -1
	for i, w := range run.waves {
		for _, m := range w {
			if run.started[m.target.VirtualCluster] {
				current = i
			}
		}
	}
	for i, w := range run.waves {
		for _, m := range w {
			if !run.started[m.target.VirtualCluster] {
				continue
			}
			if m.started == nil {
				m.started = &metav1.MicroTime{Time: s.now}
			}
			for _, r := range m.releases {
				if err := x.ensureRelease(ctx, s, p, &run, i, m, r); err != nil {
					return run, err
				}
				if run.action != nil && run.action.Spec.Action == v1alpha1.ActionPromote && i == current && r.obj != nil && !r.obj.Status.Phase.Ended() {
					if err := x.promote(ctx, s, run.action, r); err != nil {
						return run, err
					}
				}
				// A group rolls back together: a Route promoted in a
				// VirtualCluster where another rolled back goes back too,
				// whatever the plan's onFailure; and every one does when
				// the plan rolls back.
				if (run.phase == v1alpha1.PlanRolledBack || groupFailed(m)) && r.obj != nil && r.obj.Status.Phase == v1alpha1.CanaryPromoted && r.revert == nil {
					if err := x.revert(ctx, s, p, &run, i, r); err != nil {
						return run, err
					}
				}
			}
		}
	}
	return run, nil
}

// decidedPlan reads the plan's state a chain decided.
func decidedPlan(state map[string]any) (v1alpha1.PlanPhase, map[string]bool, error) {
	phase, _ := state["phase"].(string)
	switch v1alpha1.PlanPhase(phase) {
	case v1alpha1.PlanPending, v1alpha1.PlanProgressing, v1alpha1.PlanPaused, v1alpha1.PlanPromoted, v1alpha1.PlanHalted, v1alpha1.PlanRolledBack, v1alpha1.PlanAborted:
	default:
		return "", nil, fmt.Errorf("state.phase %q is not a phase of a ReleasePlan", phase)
	}
	started := map[string]bool{}
	waves, _ := state["waves"].([]any)
	for _, w := range waves {
		wm, _ := w.(map[string]any)
		members, _ := wm["members"].([]any)
		for _, m := range members {
			mm, _ := m.(map[string]any)
			if on, _ := mm["started"].(bool); on {
				vc, _ := mm["virtualCluster"].(string)
				started[vc] = true
			}
		}
	}
	return v1alpha1.PlanPhase(phase), started, nil
}

// ensureRelease creates a started member's release on a Route, unless it
// exists, was created before (its status records it), or another release
// runs on the Route (the plan's waits for it).
func (x planExecutor) ensureRelease(ctx context.Context, s *scope, p *v1alpha1.ReleasePlan, run *planRun, wave int, m *planMember, r *planRelease) error {
	if r.obj != nil || r.recorded || r.problem != "" || r.busy != "" || r.template == nil || run.phase.Ended() && run.phase != v1alpha1.PlanPromoted {
		return nil
	}
	t := r.template
	policies, executor := t.Policies, t.Executor
	if pr := p.Spec.Release; pr != nil {
		if len(pr.Policies) > 0 {
			policies = pr.Policies
		}
		if pr.Executor != nil {
			executor = pr.Executor
		}
	}
	c := &v1alpha1.CanaryRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: m.target.Namespace, Name: r.name, Labels: planLabels(p, wave, r.route)},
		Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Executor: executor.DeepCopy(), Policies: slices.Clone(policies)},
			Route: r.route, Destination: t.Destination, Subset: run.subset, HTTPRoute: t.HTTPRoute},
	}
	c.OwnerReferences = planOwner(p)
	return x.create(ctx, s, c, &r.obj, run)
}

func planLabels(p *v1alpha1.ReleasePlan, wave int, route string) map[string]string {
	return map[string]string{v1alpha1.LabelPlan: p.Name, v1alpha1.LabelWave: p.Spec.Waves[wave].Name,
		v1alpha1.LabelRoute: route, v1alpha1.LabelStartedBy: v1alpha1.StartedByPlan}
}

func planOwner(p *v1alpha1.ReleasePlan) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ReleasePlan", Name: p.Name, UID: p.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
}

// create creates a release of the plan; one that exists already (a run
// that created it stopped before its status write) counts as created.
func (planExecutor) create(ctx context.Context, s *scope, c *v1alpha1.CanaryRelease, into **v1alpha1.CanaryRelease, run *planRun) error {
	if err := s.Client.Create(ctx, c); err != nil && !apierrors.IsAlreadyExists(err) {
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return userError(ReasonInvalidSpec, "CanaryRelease %s/%s is refused: %v", c.Namespace, c.Name, err)
		}
		return fmt.Errorf("create CanaryRelease %s/%s: %w", c.Namespace, c.Name, err)
	}
	writes.WithLabelValues("ReleasePlan", "CanaryRelease").Inc()
	*into = c
	run.created = append(run.created, c.Namespace+"/"+c.Name)
	return nil
}

// promote asks a release of the current wave to go to 100 % at once, for a
// person's promote-wave: a ReleaseAction named after the plan's, so that
// a run that stops in between asks once.
func (planExecutor) promote(ctx context.Context, s *scope, a *v1alpha1.ReleaseAction, r *planRelease) error {
	act := &v1alpha1.ReleaseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.obj.Namespace, Name: a.Name + "-" + r.route},
		Spec: v1alpha1.ReleaseActionSpec{Target: v1alpha1.ActionTarget{Kind: "CanaryRelease", Name: r.obj.Name},
			Action: v1alpha1.ActionPromote, Full: true},
	}
	if err := s.Client.Create(ctx, act); err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsInvalid(err) {
		return fmt.Errorf("promote CanaryRelease %s/%s: %w", r.obj.Namespace, r.obj.Name, err)
	}
	writes.WithLabelValues("ReleasePlan", "ReleaseAction").Inc()
	return nil
}

// revert sends a promoted Route back to the release's baseline: a release
// of the baseline that goes to 100 % at its first step.
func (x planExecutor) revert(ctx context.Context, s *scope, p *v1alpha1.ReleasePlan, run *planRun, wave int, r *planRelease) error {
	c := r.obj
	labels := planLabels(p, wave, r.route)
	labels[ancestry.LabelPlanRole] = planRoleRevert
	back := &v1alpha1.CanaryRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: r.name + "-revert", Labels: labels, OwnerReferences: planOwner(p)},
		Spec: v1alpha1.CanaryReleaseSpec{
			Stanzas: v1alpha1.Stanzas{Policies: []v1alpha1.PolicyRef{{Name: "TimedCanaryRelease", Parameters: v1alpha1.Parameters{
				"step": {Raw: []byte("100")}, "period": {Raw: []byte(`"1s"`)}}}}},
			Route: c.Spec.Route, Destination: c.Spec.Destination, HTTPRoute: c.Spec.HTTPRoute,
			Subset: c.Status.Baseline, Baseline: c.Spec.Subset,
		},
	}
	return x.create(ctx, s, back, &r.revert, run)
}

func (planExecutor) Status(s *scope, p *v1alpha1.ReleasePlan, run planRun) (string, error) {
	before := p.Status.Phase
	p.Status.Phase = run.phase
	if run.direct != nil {
		p.Status.PausedPhase = v1alpha1.PlanPhase(run.direct.State.PausedPhase)
		s.recordAction(&p.Status.History, run.action, v1alpha1.ReleaseStep{Phase: string(run.phase), Message: run.direct.Message})
	}
	p.Status.Subset = run.subset
	p.Status.Unplaced = int32(run.unplaced)
	p.Status.Waves = make([]v1alpha1.WaveStatus, len(run.waves))
	p.Status.Wave = 0
	for i, w := range run.waves {
		ws := v1alpha1.WaveStatus{Name: p.Spec.Waves[i].Name, Phase: v1alpha1.WavePending}
		for _, m := range w {
			if run.started[m.target.VirtualCluster] && m.started == nil && !s.readOnly {
				m.started = &metav1.MicroTime{Time: s.now}
			}
			ms := v1alpha1.PlanMember{VirtualCluster: m.target.VirtualCluster, Cluster: m.target.Cluster, Namespace: m.target.Namespace,
				Started: m.started, Phase: memberPhase(m)}
			for _, r := range m.releases {
				rs := v1alpha1.PlanMemberRelease{Route: r.route}
				switch {
				case r.obj != nil:
					rs.Name, rs.Phase, rs.CanaryWeight, rs.Baseline = r.obj.Name, cmp.Or(r.obj.Status.Phase, v1alpha1.CanaryPending), r.obj.Status.CanaryWeight, r.obj.Status.Baseline
				case r.recorded:
					rs.Name, rs.Phase, rs.Problem = r.name, v1alpha1.CanaryFailed, "deleted while the plan ran"
				}
				if r.revert != nil {
					rs.Reverted = r.revert.Name
				}
				if m.started != nil && r.obj == nil && !r.recorded {
					rs.Problem = cmp.Or(r.problem, busyText(r.busy))
				}
				ms.Releases = append(ms.Releases, rs)
			}
			if ms.Started != nil && (ws.Started == nil || ms.Started.Before(ws.Started)) {
				ws.Started = ms.Started
			}
			ws.Members = append(ws.Members, ms)
		}
		ws.Phase = wavePhase(ws.Members)
		ws.Promoted = wavePromoted(w)
		ws.Metrics = waveMetrics(w)
		if ws.Started != nil {
			p.Status.Wave = int32(i + 1)
		}
		p.Status.Waves[i] = ws
	}
	if res := run.res; res != nil {
		if policy, message, ok := planStep(res); ok && (run.phase != before || len(run.created) > 0 || run.action != nil) {
			step := v1alpha1.ReleaseStep{Policy: policy, Phase: string(run.phase), Message: message}
			if run.action != nil {
				s.recordAction(&p.Status.History, run.action, step)
			} else {
				step.Time = metav1.MicroTime{Time: s.now}
				appendHistory(&p.Status.History, step)
			}
		}
	}
	p.Status.Summary = planSummary(p)
	if run.problem != "" {
		// Its waves are recorded all the same: the Routes they reach are
		// the plan's, and their templates wait.
		return "", userError(ReasonSubsetUnknown, "%s", run.problem)
	}
	return p.Status.Summary, nil
}

func busyText(busy string) string {
	if busy == "" {
		return ""
	}
	return fmt.Sprintf("waiting: CanaryRelease %s runs on the Route", busy)
}

// planStep is the decision a plan's history records: the last policy that
// started, promoted, halted or rolled back.
func planStep(res *policies.Result) (policy, message string, ok bool) {
	for i := len(res.Steps) - 1; i >= 0; i-- {
		st := res.Steps[i]
		switch st.Decision.Outcome {
		case "Hold", "Pass", "Done", "Gate", "":
			continue
		}
		return st.Policy, st.Decision.Message, true
	}
	if n := len(res.Steps); n > 0 {
		return res.Steps[n-1].Policy, res.Steps[n-1].Decision.Message, true
	}
	return "", "", false
}

// wavePhase is a wave's phase from its members'.
func wavePhase(members []v1alpha1.PlanMember) v1alpha1.WavePhase {
	if len(members) == 0 {
		return v1alpha1.WavePending
	}
	count := map[v1alpha1.WavePhase]int{}
	for _, m := range members {
		count[m.Phase]++
	}
	for _, bad := range []v1alpha1.WavePhase{v1alpha1.WaveRolledBack, v1alpha1.WaveAborted, v1alpha1.WaveFailed} {
		if count[bad] > 0 {
			return bad
		}
	}
	switch {
	case count[v1alpha1.WavePromoted] == len(members):
		return v1alpha1.WavePromoted
	case count[v1alpha1.WavePending] == len(members):
		return v1alpha1.WavePending
	}
	return v1alpha1.WaveProgressing
}

// planSummary is a plan's progress on one line, e.g. "wave 2/3 eu: 1/2
// promoted".
func planSummary(p *v1alpha1.ReleasePlan) string {
	n := len(p.Status.Waves)
	if p.Status.Wave == 0 {
		return fmt.Sprintf("%s: no wave started of %d", p.Status.Phase, n)
	}
	w := p.Status.Waves[p.Status.Wave-1]
	promoted := 0
	for _, m := range w.Members {
		if m.Phase == v1alpha1.WavePromoted {
			promoted++
		}
	}
	return fmt.Sprintf("%s: wave %d/%d %s: %d/%d promoted", p.Status.Phase, p.Status.Wave, n, w.Name, promoted, len(w.Members))
}

// Children are the plan's releases: they read its phase and their group's
// weights (PlanLockstep), which its status carries.
func (x planExecutor) Children(ctx context.Context, p *v1alpha1.ReleasePlan) ([]child, error) {
	return x.r.childrenOf(ctx, "CanaryRelease", &v1alpha1.CanaryReleaseList{}, client.MatchingLabels{v1alpha1.LabelPlan: p.Name})
}

func planKind(r *Reconciler) *kind[*v1alpha1.ReleasePlan] {
	return &kind[*v1alpha1.ReleasePlan]{
		name:      "ReleasePlan",
		newObject: func() *v1alpha1.ReleasePlan { return &v1alpha1.ReleasePlan{} },
		executors: map[string]implementation[*v1alpha1.ReleasePlan]{"ReleasePlanExecutor": phases(planExecutor{r})},
	}
}

// planGroup is input.plan of a release a ReleasePlan started (nil for
// any other): the plan's name, phase and wave, and the plan's other
// releases in the release's namespace (its group), read from the cache.
func (r *Reconciler) planGroup(ctx context.Context, c *v1alpha1.CanaryRelease) (map[string]any, error) {
	name := c.Labels[v1alpha1.LabelPlan]
	if name == "" || c.Labels[ancestry.LabelPlanRole] != "" {
		return nil, nil
	}
	var p v1alpha1.ReleasePlan
	if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, &p, client.UnsafeDisableDeepCopy); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	var peers v1alpha1.CanaryReleaseList
	if err := r.Client.List(ctx, &peers, client.InNamespace(c.Namespace), client.MatchingLabels{v1alpha1.LabelPlan: name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	group := []any{}
	for _, o := range peers.Items {
		if o.Name == c.Name || o.Labels[ancestry.LabelPlanRole] != "" {
			continue
		}
		group = append(group, map[string]any{"route": o.Spec.Route, "release": o.Name,
			"phase": string(cmp.Or(o.Status.Phase, v1alpha1.CanaryPending)), "canaryWeight": int64(o.Status.CanaryWeight)})
	}
	return map[string]any{"name": name, "phase": string(cmp.Or(p.Status.Phase, v1alpha1.PlanPending)), "wave": c.Labels[v1alpha1.LabelWave], "group": group}, nil
}
