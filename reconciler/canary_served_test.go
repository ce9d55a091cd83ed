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

func (c *countedRequests) Gather(context.Context, policies.MetricsQuery) (map[string]policies.SubsetMetrics, error) {
	return nil, nil
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
			r := &scope{Reconciler: &Reconciler{Metrics: metrics}, obj: c, params: params, now: now, started: now}
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
