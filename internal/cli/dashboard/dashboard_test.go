package dashboard

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/cli/tree"
	"github.com/kubist-io/kubist/internal/scheme"
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

func TestSnapshot(t *testing.T) {
	s := newServer(fake.NewClientBuilder().WithScheme(scheme.New()).Build(), "")
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	add := func(kind string, o any) {
		t.Helper()
		if err := s.byKind[kind].informer.GetStore().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	add("Projects", &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	add("Clusters", &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod"}, Spec: v1alpha1.ClusterSpec{Project: "shop"}})
	add("VirtualClusters", &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1alpha1.VirtualClusterSpec{Cluster: "prod"}})
	add("Routes", &v1alpha1.Route{ObjectMeta: metav1.ObjectMeta{Name: "front", Namespace: "web"}})
	paused := &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "front-v2", Namespace: "web", UID: "u1"},
		Spec: v1alpha1.CanaryReleaseSpec{Route: "front", Subset: "v2", Baseline: "v1"}}
	paused.Status.Phase, paused.Status.PausedPhase = v1alpha1.CanaryPaused, v1alpha1.CanaryProgressing
	paused.Status.Weights = map[string]int32{"v1": 60, "v2": 40}
	paused.Status.History = []v1alpha1.ReleaseStep{step(now.Add(-time.Minute), 80, 20, "Progressing"), step(now, 60, 40, "Paused")}
	add("CanaryReleases", paused)
	// A release whose Route does not exist is drawn apart, still with its chart.
	add("CanaryReleases", &v1alpha1.CanaryRelease{ObjectMeta: metav1.ObjectMeta{Name: "lost", Namespace: "other"}, Spec: v1alpha1.CanaryReleaseSpec{Route: "gone", Subset: "v2"}})
	add("Events", &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: "web"}, Reason: "Action", Note: "paused at v1 60% / v2 40%", Type: "Normal",
		EventTime: metav1.NewMicroTime(now), Regarding: corev1.ObjectReference{APIVersion: "kubist.io/v1alpha1", Kind: "CanaryRelease", Namespace: "web", Name: "front-v2", UID: "u1"}})

	snap := s.snapshot()
	if len(snap.Tree) != 2 || snap.Tree[0].Name != "shop" || snap.Tree[1].Kind != tree.Orphans {
		t.Fatalf("tree roots %+v, want the Project then the orphans", snap.Tree)
	}
	leaf := snap.Tree[0].Children[0].Children[0].Children[0].Children[0]
	if leaf.Kind != "CanaryRelease" || leaf.Release != "CanaryRelease/web/front-v2" {
		t.Fatalf("the release's node is %+v", leaf)
	}
	if !slices.Equal(snap.Projects, []string{"shop"}) || !slices.Equal(snap.Namespaces, []string{"other", "web"}) {
		t.Errorf("filters: projects %v, namespaces %v", snap.Projects, snap.Namespaces)
	}
	if len(snap.Releases) != 2 {
		t.Fatalf("%d releases, want 2", len(snap.Releases))
	}
	r := snap.Releases[0]
	if r.Project != "shop" || r.Phase != "Paused" || r.Weights != "v1 60% / v2 40%" || !slices.Equal(r.Subsets, []string{"v1", "v2"}) || len(r.Steps) != 2 {
		t.Errorf("release %+v", r)
	}
	if len(r.Events) != 1 || r.Events[0].Reason != "Action" {
		t.Errorf("events %+v, want the release's Action", r.Events)
	}
	// Buttons: what admission would refuse now is greyed out with its reason.
	refused := map[string]string{}
	for _, a := range r.Actions {
		refused[a.Name] = a.Refused
	}
	if refused["Resume"] != "" || refused["Abort"] != "" {
		t.Errorf("a paused release may be resumed and aborted: %v", refused)
	}
	if refused["Pause"] == "" || refused["Approve"] == "" || refused["Retry"] == "" {
		t.Errorf("a paused release without a ManualGate cannot be paused, approved or retried: %v", refused)
	}
	if !strings.Contains(r.Chart, `data-points="2"`) {
		t.Errorf("the chart does not draw the 2 steps")
	}
	if snap.Releases[1].Project != "" || snap.Releases[1].Phase != "Pending" {
		t.Errorf("the orphan release %+v", snap.Releases[1])
	}
}

func TestStreamPushesEachChange(t *testing.T) {
	s := newServer(fake.NewClientBuilder().WithScheme(scheme.New()).Build(), "")
	s.debounce = time.Millisecond
	srv := httptest.NewServer(s.Handler("127.0.0.1:0"))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	lines := bufio.NewScanner(res.Body)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	next := func() Snapshot {
		t.Helper()
		for lines.Scan() {
			if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				var snap Snapshot
				if err := json.Unmarshal([]byte(data), &snap); err != nil {
					t.Fatal(err)
				}
				return snap
			}
		}
		t.Fatalf("the stream ended: %v", lines.Err())
		return Snapshot{}
	}
	if first := next(); len(first.Tree) != 0 {
		t.Fatalf("first picture %+v, want an empty tree", first)
	}
	if err := s.byKind["Projects"].informer.GetStore().Add(&v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	s.bump()
	if second := next(); len(second.Tree) != 1 || second.Tree[0].Name != "shop" {
		t.Fatalf("after a change the picture is %+v", second.Tree)
	}
}
