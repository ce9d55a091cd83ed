package dashboard

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

func step(at time.Time, v1, v2 int32, phase string, metrics ...v1alpha1.StepMetrics) v1alpha1.ReleaseStep {
	return v1alpha1.ReleaseStep{Time: metav1.NewMicroTime(at), Weights: map[string]int32{"v1": v1, "v2": v2}, Phase: phase, Policy: "TimedCanaryRelease", Metrics: metrics}
}

// svgNode is enough of SVG to read the chart back.
type svgNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []svgNode  `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (n svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n svgNode) all(pred func(svgNode) bool) []svgNode {
	var out []svgNode
	if pred(n) {
		out = append(out, n)
	}
	for _, c := range n.Children {
		out = append(out, c.all(pred)...)
	}
	return out
}

func parseChart(t *testing.T, svg string) svgNode {
	t.Helper()
	var root svgNode
	if err := xml.Unmarshal([]byte(svg), &root); err != nil {
		t.Fatalf("the chart is not well-formed XML: %v\n%s", err, svg)
	}
	return root
}

func TestChartDrawsEveryStepAndEscapesMessages(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	history := []v1alpha1.ReleaseStep{
		step(t0, 100, 0, "Progressing"),
		step(t0.Add(30*time.Second), 80, 20, "Progressing",
			v1alpha1.StepMetrics{Subset: "v1", Requests: "100", ErrorRate: "0.01", LatencyP99Ms: "20"},
			v1alpha1.StepMetrics{Subset: "v2", Requests: "90", ErrorRate: "0.02", LatencyP99Ms: "35"}),
		step(t0.Add(60*time.Second), 100, 0, "RolledBack"),
	}
	history[2].Message = `error rate <script>alert("x")</script> & more`
	history[1].Action, history[1].User = "Promote", "alice"
	served := &v1alpha1.ServedSplit{Percent: map[string]int32{"v1": 81, "v2": 19}, Requests: 1000, Weights: map[string]int32{"v1": 80, "v2": 20}, Summary: "v1 81% / v2 19%"}

	svg := Chart(history, []string{"v1", "v2"}, served, t0.Add(time.Minute))
	if strings.Contains(svg, "<script>") {
		t.Fatalf("a message reached the chart unescaped:\n%s", svg)
	}
	root := parseChart(t, svg)
	if got := root.attr("data-points"); got != "3" {
		t.Errorf("data-points = %q, want 3", got)
	}
	steps := root.all(func(n svgNode) bool { return n.XMLName.Local == "circle" && n.attr("class") == "step" })
	if len(steps) != 3 {
		t.Fatalf("%d step markers, want 3", len(steps))
	}
	// The canary's markers: 0%, 20%, 0% of the weight panel's height.
	if steps[0].attr("cy") != steps[2].attr("cy") || steps[1].attr("cy") == steps[0].attr("cy") {
		t.Errorf("markers' heights %s %s %s do not follow the canary weight 0, 20, 0", steps[0].attr("cy"), steps[1].attr("cy"), steps[2].attr("cy"))
	}
	if steps[1].attr("fill") != "#7048e8" || steps[2].attr("fill") != "#e03131" {
		t.Errorf("an action's marker is %s and a rollback's %s", steps[1].attr("fill"), steps[2].attr("fill"))
	}
	var title string
	for _, c := range steps[2].Children {
		if c.XMLName.Local == "title" {
			title = c.Text
		}
	}
	if !strings.Contains(title, `error rate <script>alert("x")</script> & more`) || !strings.Contains(title, "RolledBack") {
		t.Errorf("the rollback's title is %q", title)
	}
	weights := root.all(func(n svgNode) bool { return n.attr("class") == "weight" })
	if len(weights) != 2 {
		t.Errorf("%d weight lines, want one per subset", len(weights))
	}
	metrics := root.all(func(n svgNode) bool { return n.attr("class") == "metric" })
	if len(metrics) != 4 {
		t.Errorf("%d metric lines, want error rate and p99 of v1 and v2", len(metrics))
	}
	if served := root.all(func(n svgNode) bool { return n.attr("class") == "served" }); len(served) != 1 {
		t.Errorf("%d served lines, want 1", len(served))
	}
}

func TestChartWithoutSteps(t *testing.T) {
	root := parseChart(t, Chart(nil, []string{"v1", "v2"}, nil, time.Now()))
	if root.attr("data-points") != "0" || len(root.all(func(n svgNode) bool { return n.attr("class") == "step" })) != 0 {
		t.Errorf("an empty history drew steps")
	}
	root = parseChart(t, Chart([]v1alpha1.ReleaseStep{step(time.Now(), 100, 0, "Progressing")}, []string{"v1", "v2"}, nil, time.Now()))
	empties := root.all(func(n svgNode) bool { return n.attr("class") == "empty" })
	if len(empties) != 2 {
		t.Errorf("a history without metrics says so in %d panels, want 2", len(empties))
	}
}

func TestGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := guard("127.0.0.1:3100", ok)
	for _, tc := range []struct {
		name    string
		method  string
		host    string
		headers map[string]string
		want    int
	}{
		{"the page", "GET", "127.0.0.1:3100", nil, http.StatusNoContent},
		{"localhost", "GET", "localhost:3100", nil, http.StatusNoContent},
		{"a rebound DNS name", "GET", "evil.example:3100", nil, http.StatusForbidden},
		{"an action from the page", "POST", "127.0.0.1:3100", map[string]string{"X-Kubist-Dashboard": "1", "Content-Type": "application/json", "Origin": "http://127.0.0.1:3100"}, http.StatusNoContent},
		{"a form post", "POST", "127.0.0.1:3100", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusForbidden},
		{"JSON without the page's header", "POST", "127.0.0.1:3100", map[string]string{"Content-Type": "application/json"}, http.StatusForbidden},
		{"another origin", "POST", "127.0.0.1:3100", map[string]string{"X-Kubist-Dashboard": "1", "Content-Type": "application/json", "Origin": "http://evil.example"}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://"+tc.host+"/api/actions", strings.NewReader("{}"))
			r.Host = tc.host
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if w.Code == http.StatusNoContent && !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'self'") {
				t.Errorf("no Content-Security-Policy on %s", tc.name)
			}
		})
	}
}
