package reconciler

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// The manager's Prometheus metrics, served on its metrics endpoint.
var (
	executorRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubist_executor_runs_total",
		Help: "Executor runs by kind, executor and result (success or error).",
	}, []string{"kind", "executor", "result"})
	executorDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kubist_executor_duration_seconds",
		Help:    "Time of one executor run, from reading the resource to writing its status.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"kind", "executor"})
	policyDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubist_policy_decisions_total",
		Help: "Policy decisions by policy and outcome (Step, Hold, Promote, RollBack, …, Error).",
	}, []string{"policy", "outcome"})
	lateness = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kubist_executor_lateness_seconds",
		Help:    "Time from when a run asked to run again (a canary's next step, a re-check) to when that run started.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"kind"})
	writes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubist_writes_total",
		Help: "Writes made by executors, by kind of the resource and what was written (status, finalizer, or the target object's kind).",
	}, []string{"kind", "object"})
	releaseActions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubist_release_actions_total",
		Help: "Actions people asked of releases (ReleaseActions), by kind of the release, action and outcome (Applied or Refused).",
	}, []string{"kind", "action", "outcome"})
	releaseSteps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubist_release_steps_total",
		Help: "Steps written to the history of CanaryReleases and Experiments, by kind and the phase after the step (a rollback is a step to RolledBack).",
	}, []string{"kind", "phase"})
	hookCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubist_webhook_gate_calls_total",
		Help: "Calls of the outside HTTP hooks that webhook policies (WebhookGate) name, by result: 2xx, non-2xx or error (unreachable, timed out, misconfigured).",
	}, []string{"result"})
)

func init() {
	metrics.Registry.MustRegister(executorRuns, executorDuration, policyDecisions, releaseMetrics, lateness, writes, releaseActions, releaseSteps, hookCalls)
}

// releaseMetrics exports kubist_canary_weight, each release's split as
// its status stores it, and kubist_canary_served_percent, the split the
// mesh served as its status.served stores it, from the cache when
// Prometheus scrapes: they are the cached objects' own state, so the
// manager keeps no series per release and subset (a gauge per series took
// about 600 bytes, 5 MiB for 4,000 releases), and a deleted release's
// series go with it. Only the leader exports them, and a shard only its
// own releases'.
var releaseMetrics = &releaseCollector{}

var (
	canaryWeightDesc = prometheus.NewDesc("kubist_canary_weight",
		"Traffic weight, in percent, of each subset of a CanaryRelease or Experiment as stored in its status.",
		[]string{"namespace", "name", "subset"}, nil)
	servedPercentDesc = prometheus.NewDesc("kubist_canary_served_percent",
		"Share, in percent, of a CanaryRelease's requests that each subset served, as the mesh reported after the last step (status.served).",
		[]string{"namespace", "name", "subset"}, nil)
)

type releaseCollector struct {
	mu         sync.Mutex
	reconciler *Reconciler
	elected    <-chan struct{}
}

// export makes the collector read r's releases once elected is closed.
func (w *releaseCollector) export(r *Reconciler, elected <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reconciler, w.elected = r, elected
}

func (w *releaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- canaryWeightDesc
	ch <- servedPercentDesc
}

func (w *releaseCollector) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	r, elected := w.reconciler, w.elected
	w.mu.Unlock()
	if r == nil {
		return
	}
	select {
	case <-elected:
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	send := func(desc *prometheus.Desc, obj v1alpha1.Object, split map[string]int32) {
		for subset, weight := range split {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(weight), obj.GetNamespace(), obj.GetName(), subset)
		}
	}
	var canaries v1alpha1.CanaryReleaseList
	if err := r.Client.List(ctx, &canaries, client.UnsafeDisableDeepCopy); err == nil {
		for i := range canaries.Items {
			c := &canaries.Items[i]
			if owned, _ := r.owns(ctx, c); !owned {
				continue
			}
			send(canaryWeightDesc, c, c.Status.Weights)
			if c.Status.Served != nil {
				send(servedPercentDesc, c, c.Status.Served.Percent)
			}
		}
	}
	var experiments v1alpha1.ExperimentList
	if err := r.Client.List(ctx, &experiments, client.UnsafeDisableDeepCopy); err == nil {
		for i := range experiments.Items {
			if owned, _ := r.owns(ctx, &experiments.Items[i]); owned {
				send(canaryWeightDesc, &experiments.Items[i], experiments.Items[i].Status.Weights)
			}
		}
	}
}

// countSteps counts the steps a status write added to a release's
// history: the ones after the last step the release had before.
func countSteps(old, updated v1alpha1.Object) {
	rel, ok := updated.(v1alpha1.Release)
	if !ok {
		return
	}
	kind := rel.ReleaseKind()
	before, after := old.(v1alpha1.Release).GetSteps().History, rel.GetSteps().History
	for _, step := range after {
		if len(before) == 0 || step.Time.After(before[len(before)-1].Time.Time) {
			releaseSteps.WithLabelValues(kind, step.Phase).Inc()
		}
	}
}
