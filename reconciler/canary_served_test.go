package reconciler

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// countedRequests is a MetricsProvider that knows only request counts.
type countedRequests struct {
	counts  map[string]float64
	queries []policies.MetricsQuery
}

func (c *countedRequests) Gather(_ context.Context, q policies.MetricsQuery) (map[string]policies.SubsetMetrics, error) {
	c.queries = append(c.queries, q)
	out := map[string]policies.SubsetMetrics{}
	for subset, n := range c.counts {
		out[subset] = policies.SubsetMetrics{Requests: n}
	}
	return out, nil
}

// ScrapeInterval is a second, as make run's Prometheus scrapes.
func (c *countedRequests) ScrapeInterval(context.Context) (time.Duration, error) {
	return time.Second, nil
}

// TestMetricsSpan checks the window a canary's decision is judged on: from
// the last step plus the mesh's grace period, capped at metricsWindow, and
// no metrics at all (the policies hold, saying until when) while that span
// is shorter than two scrapes.
func TestMetricsSpan(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	params := map[string]any{"metricsWindow": "1m", "meshGracePeriod": "10s"}
	for name, tc := range map[string]struct {
		sinceStep   time.Duration // 0: no step yet
		wantWindow  time.Duration
		wantStatus  metav1.ConditionStatus
		wantMessage string
		wantRequeue time.Duration
	}{
		"a release that has not stepped sees the whole window": {
			wantWindow: time.Minute, wantStatus: metav1.ConditionTrue, wantMessage: "metrics of 2 of 2 subsets over the last 1m0s",
		},
		"within the grace period and two scrapes after it, the policies hold": {
			sinceStep: 5 * time.Second, wantStatus: metav1.ConditionUnknown, wantRequeue: 7 * time.Second,
			wantMessage: "the policies hold until 2026-12-01T12:00:07Z: the metrics start at the last step plus the mesh's grace period (meshGracePeriod 10s) and need 2s, two Prometheus scrapes",
		},
		"after it, the window starts at the step plus the grace period": {
			sinceStep: 30 * time.Second, wantWindow: 20 * time.Second, wantStatus: metav1.ConditionTrue,
			wantMessage: "metrics of 2 of 2 subsets since 2026-12-01T11:59:40Z (the last step plus the mesh's grace period)",
		},
		"long after it, the window is metricsWindow": {
			sinceStep: 5 * time.Minute, wantWindow: time.Minute, wantStatus: metav1.ConditionTrue, wantMessage: "metrics of 2 of 2 subsets over the last 1m0s",
		},
	} {
		t.Run(name, func(t *testing.T) {
			metrics := &countedRequests{counts: map[string]float64{"v1": 100, "v2": 20}}
			c := &v1alpha1.CanaryRelease{}
			var last *metav1.MicroTime
			if tc.sinceStep > 0 {
				l := metav1.NewMicroTime(now.Add(-tc.sinceStep))
				last = &l
			}
			s := &scope{Reconciler: &Reconciler{Metrics: metrics}, metrics: metrics, obj: c, params: params, now: now, started: now}
			target := &trafficTarget{placement: &placement{namespace: "shop"}, destination: &v1alpha1.Destination{}}
			window, _ := s.metricsSpan(t.Context(), last)
			got := s.gather(t.Context(), target, policies.Chain{}, window, []string{"v1", "v2"})
			if window != tc.wantWindow {
				t.Errorf("window %v, want %v", window, tc.wantWindow)
			}
			if tc.wantWindow == 0 {
				if len(metrics.queries) != 0 || got != nil {
					t.Errorf("queried %v and gave %v before the span held two scrapes", metrics.queries, got)
				}
			} else if len(metrics.queries) != 1 || metrics.queries[0].Window != tc.wantWindow || got["v2"] == nil {
				t.Errorf("queries %+v gave %v; want one over %v", metrics.queries, got, tc.wantWindow)
			}
			cond := meta.FindStatusCondition(c.Status.Conditions, ConditionMetricsAvailable)
			if cond == nil || cond.Status != tc.wantStatus || cond.Message != tc.wantMessage {
				t.Errorf("MetricsAvailable %+v, want %s %q", cond, tc.wantStatus, tc.wantMessage)
			}
			if s.requeue != tc.wantRequeue {
				t.Errorf("requeue %v, want %v", s.requeue, tc.wantRequeue)
			}
		})
	}
}

func (c *countedRequests) Requests(_ context.Context, q policies.MetricsQuery) (map[string]float64, error) {
	c.queries = append(c.queries, q)
	return c.counts, nil
}

func TestObserveServed(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	weights := map[string]int32{"v1": 70, "v2": 30}
	params := map[string]any{"servedWindow": "30s", "servedTolerance": int64(10), "meshGracePeriod": "10s"}
	for name, tc := range map[string]struct {
		sinceStep    time.Duration
		counts       map[string]float64
		stored       *v1alpha1.ServedSplit
		wantQueries  int
		wantStatus   metav1.ConditionStatus // "" for no condition
		wantPercent  map[string]int32
		wantRequeue  time.Duration
		wantMessage  string
		wantMatching any
		// wantNoRequests: the status says "no requests" and the policies
		// see no measurement.
		wantNoRequests bool
	}{
		"within the grace and the window, nothing is measured yet": {
			sinceStep: 20 * time.Second, counts: map[string]float64{"v1": 100}, wantRequeue: 20 * time.Second,
		},
		"a split within the tolerance matches": {
			sinceStep: time.Minute, counts: map[string]float64{"v1": 710, "v2": 290}, wantQueries: 1,
			wantStatus: metav1.ConditionTrue, wantPercent: map[string]int32{"v1": 71, "v2": 29},
			wantMessage:  "the mesh serves v1 71% / v2 29% (1000 requests over 30s), within 10 points of the weights v1 70% / v2 30%",
			wantMatching: true,
		},
		"a mesh still on the old split is reported": {
			sinceStep: time.Minute, counts: map[string]float64{"v1": 1000}, wantQueries: 1,
			wantStatus: metav1.ConditionFalse, wantPercent: map[string]int32{"v1": 100, "v2": 0},
			wantMessage:  "the mesh serves v1 100% / v2 0% (1000 requests over 30s) while the weights have been v1 70% / v2 30% for more than 10s: the mesh is not doing what was asked",
			wantMatching: false,
		},
		"no traffic is said once, without a verdict": {
			sinceStep: time.Minute, counts: map[string]float64{}, wantQueries: 1, wantNoRequests: true,
		},
		"counting noise of the same verdict keeps the stored measurement": {
			sinceStep: time.Minute, counts: map[string]float64{"v1": 690, "v2": 310}, wantQueries: 1,
			stored:     &v1alpha1.ServedSplit{Percent: map[string]int32{"v1": 71, "v2": 29}, Requests: 1000, Weights: weights, Summary: "v1 71% / v2 29%"},
			wantStatus: metav1.ConditionTrue, wantPercent: map[string]int32{"v1": 71, "v2": 29}, wantMatching: true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			metrics := &countedRequests{counts: tc.counts}
			last := metav1.NewMicroTime(now.Add(-tc.sinceStep))
			c := &v1alpha1.CanaryRelease{Status: v1alpha1.CanaryReleaseStatus{Weights: weights, LastStepTime: &last, Served: tc.stored}}
			r := &scope{Reconciler: &Reconciler{Metrics: metrics}, metrics: metrics, obj: c, params: params, now: now, started: now}
			target := &trafficTarget{placement: &placement{namespace: "shop"}, destination: &v1alpha1.Destination{}}
			target.destination.Name = "web"
			in := r.observeServed(t.Context(), target, c, weights)

			if len(metrics.queries) != tc.wantQueries {
				t.Fatalf("%d queries, want %d", len(metrics.queries), tc.wantQueries)
			}
			if tc.wantQueries > 0 && (metrics.queries[0].Window != 30*time.Second || metrics.queries[0].Service != "web" || metrics.queries[0].Namespace != "shop") {
				t.Errorf("query %+v", metrics.queries[0])
			}
			if r.requeue != tc.wantRequeue {
				t.Errorf("requeue %v, want %v", r.requeue, tc.wantRequeue)
			}
			cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionTrafficShifted)
			switch {
			case tc.wantStatus == "" && cond != nil:
				t.Errorf("condition %+v, want none", cond)
			case tc.wantStatus != "" && (cond == nil || cond.Status != tc.wantStatus):
				t.Fatalf("condition %+v, want status %s", cond, tc.wantStatus)
			case tc.wantMessage != "" && !strings.HasPrefix(cond.Message, tc.wantMessage):
				t.Errorf("message %q, want it to start with %q", cond.Message, tc.wantMessage)
			}
			if tc.wantNoRequests {
				if got := c.Status.Served; got == nil || got.Summary != "no requests" || got.Requests != 0 || got.Weights["v2"] != 30 {
					t.Errorf("served %+v, want no requests at the weights", got)
				}
				if in != nil {
					t.Errorf("policies see %v, want nothing", in)
				}
				return
			}
			if tc.wantPercent == nil {
				if c.Status.Served != tc.stored {
					t.Errorf("served %+v, want the stored %+v", c.Status.Served, tc.stored)
				}
				return
			}
			if got := c.Status.Served; got == nil || got.Percent["v1"] != tc.wantPercent["v1"] || got.Percent["v2"] != tc.wantPercent["v2"] {
				t.Fatalf("served %+v, want %v", got, tc.wantPercent)
			}
			if in["matches"] != tc.wantMatching {
				t.Errorf("policies see matches=%v, want %v", in["matches"], tc.wantMatching)
			}
		})
	}
}

// TestChangedAt: a release's metrics and served split count from its
// creation until it steps, then from its last step, and from a person's
// Retry after it: never from an earlier attempt's requests.
func TestChangedAt(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.MicroTime { return metav1.NewMicroTime(t0.Add(d)) }
	c := &v1alpha1.CanaryRelease{}
	c.CreationTimestamp = metav1.NewTime(t0)
	if got := changedAt(c); !got.Equal(&metav1.MicroTime{Time: t0}) {
		t.Errorf("a new release changed at %v, want its creation", got)
	}
	step := at(time.Minute)
	c.Status.LastStepTime = &step
	c.Status.History = []v1alpha1.ReleaseStep{{Time: step, Phase: "RolledBack"}, {Time: at(2 * time.Minute), Action: "Pause"}}
	if got := changedAt(c); !got.Equal(&step) {
		t.Errorf("after a step and a Pause: %v, want the step", got)
	}
	c.Status.History = append(c.Status.History, v1alpha1.ReleaseStep{Time: at(3 * time.Minute), Action: string(v1alpha1.ActionRetry)})
	c.Status.LastStepTime = nil
	if got, want := changedAt(c), at(3*time.Minute); !got.Equal(&want) {
		t.Errorf("after a Retry: %v, want the Retry", got)
	}
}

// TestNextInputAfterAStepCollects: the chain's second evaluation after a
// step sees what the next run will, no metrics and until when they are
// collected, so that the hold it records is the one the runs until then
// decide again (no write between the step and the metrics).
func TestNextInputAfterAStepCollects(t *testing.T) {
	step := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	before := storedState(map[string]int32{"v1": 80, "v2": 20}, "Progressing", &metav1.MicroTime{Time: step.Add(-time.Minute)})
	after := storedState(map[string]int32{"v1": 70, "v2": 30}, "Progressing", &metav1.MicroTime{Time: step})
	decided := &Decision{Input: policies.Input{
		Observed: map[string]any{"weights": weightsValue(before.Weights), "phase": "Progressing", "lastStepTime": before.LastStepTime},
		Metrics:  map[string]any{"v2": map[string]any{"requests": 100.0, "errorRate": 0.0}},
	}, Result: &policies.Result{State: after.input(map[string]any{"baseline": "v1", "canary": "v2"})}}

	next := trafficStep{before: before, after: after, collect: 12 * time.Second}.nextInput(decided)
	if next == nil {
		t.Fatal("no second evaluation after a step")
	}
	if next.Metrics != nil {
		t.Errorf("metrics %v after the step, want none: the next run's start after it", next.Metrics)
	}
	if got := next.Observed["collectingUntil"]; got != "2026-12-01T12:00:12Z" {
		t.Errorf("collectingUntil %v, want 2026-12-01T12:00:12Z", got)
	}
	if decided.Input.Metrics == nil {
		t.Error("the run's own input lost its metrics")
	}

	// Without metrics to collect (no Prometheus), the input keeps its own.
	next = trafficStep{before: before, after: after}.nextInput(decided)
	if next.Metrics == nil || next.Observed["collectingUntil"] != nil {
		t.Errorf("without collecting: metrics %v, collectingUntil %v", next.Metrics, next.Observed["collectingUntil"])
	}
}
