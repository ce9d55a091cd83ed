package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/test/testenv"
)

// chromium finds the browser: $KUBIST_CHROMIUM, or Debian's chromium
// (.ci/run installs it). Only a local run may go without it.
func chromium() string {
	GinkgoHelper()
	if p := os.Getenv("KUBIST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		Fail("chromium is not installed: .ci/run installs Debian's chromium package")
	}
	Skip("chromium is not installed (apt-get install chromium); CI installs it")
	return ""
}

// startDashboard runs `kubist dashboard` on a free loopback port and
// returns the address of its page.
func startDashboard(args ...string) string {
	GinkgoHelper()
	cmd := exec.Command(kubistBinary(), append([]string{"dashboard", "--kubeconfig", env.Kubectl.Kubeconfig, "--address", "127.0.0.1:0"}, args...)...)
	out, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	cmd.Stderr = GinkgoWriter
	Expect(cmd.Start()).To(Succeed())
	DeferCleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(out)
	Expect(lines.Scan()).To(BeTrue(), "kubist dashboard printed nothing")
	url := regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/`).FindString(lines.Text())
	Expect(url).NotTo(BeEmpty(), "kubist dashboard said %q", lines.Text())
	go func() {
		for lines.Scan() {
			fmt.Fprintln(GinkgoWriter, lines.Text())
		}
	}()
	return url
}

// browser is headless Chromium driven over the DevTools protocol, and
// every JavaScript error its pages report.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser() *browser {
	GinkgoHelper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium()), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(GinkgoT().TempDir()), chromedp.WindowSize(1400, 1000))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	DeferCleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	Expect(chromedp.Do(ctx)).To(Succeed(), "chromium must start")
	return b
}

// tab opens a page in a new tab and records its errors.
func (b *browser) tab(url string) context.Context {
	GinkgoHelper()
	tab, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if e := ev.ExceptionDetails.Exception; e != nil {
				msg += " " + e.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				msg = "console.error"
				for _, a := range ev.Args {
					msg += " " + string(a.Value)
				}
			}
		case *log.EventEntryAdded:
			// A refused action is an answer the page shows, not an error
			// of the page; anything else the browser logs as an error is.
			if ev.Entry.Level == log.EntryLevelError && (ev.Entry.Source != log.EntrySourceNetwork || !strings.HasSuffix(ev.Entry.URL, "/api/actions")) {
				msg = fmt.Sprintf("%s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	}))
	DeferCleanup(cancel)
	_, err := chromedp.Call(tab, log.Enable, cdp.Empty{})
	Expect(err).NotTo(HaveOccurred())
	Expect(chromedp.Do(tab, chromedp.Navigate(url))).To(Succeed())
	return tab
}

func (b *browser) jsErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.errors)
}

// evaluate runs JavaScript in the page.
func evaluate[T any](g Gomega, tab context.Context, js string) T {
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](js))
	g.Expect(err).NotTo(HaveOccurred(), js)
	return v
}

// click presses a button as a person would: the page must show it enabled.
func click(tab context.Context, selector string) {
	GinkgoHelper()
	c, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	Expect(chromedp.Do(c, chromedp.WaitEnabled(chromedp.CSS(selector)), chromedp.Click(chromedp.CSS(selector)))).To(Succeed(), selector)
}

// dashboardPeriod is the step period of the dashboard spec's canary: long
// enough that it is still mid-way when the page's Pause is pressed on a
// loaded machine.
const dashboardPeriod = 5 * time.Second

var _ = Describe("kubist dashboard in a real browser", Ordered, func() {
	const ns = "dashboard"
	card := `article[data-release="CanaryRelease/dashboard/web-v2"]`
	var (
		b        *browser
		page     context.Context
		opened   time.Time
		outDir   string
		canaryOf = func(g Gomega) v1alpha1.CanaryRelease {
			var c v1alpha1.CanaryRelease
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &c)).To(Succeed())
			return c
		}
		// shown is what the page says of the canary.
		points = func(g Gomega) int {
			return int(evaluate[float64](g, page, `Number(document.querySelector('`+card+` svg.chart')?.dataset.points ?? -1)`))
		}
		weights = func(g Gomega) string {
			return evaluate[string](g, page, `document.querySelector('`+card+` [data-fact="weights"]')?.textContent ?? ''`)
		}
		phase = func(g Gomega) string {
			return evaluate[string](g, page, `document.querySelector('`+card+` .phase')?.textContent ?? ''`)
		}
		result = func(g Gomega, tab context.Context) string {
			return evaluate[string](g, tab, `document.querySelector('`+card+` .result')?.textContent ?? ''`)
		}
	)

	BeforeAll(func() {
		if exporter == nil {
			Skip("prometheus is not installed; CI builds it")
		}
		outDir = os.Getenv("KUBIST_TEST_OUTPUT")
		if outDir == "" {
			outDir = filepath.Join(repoRoot, "bin", "test-output")
		}
		Expect(os.MkdirAll(outDir, 0o755)).To(Succeed())
		b = newBrowser()
		kubectl(nil, "apply", "-f", filepath.Join(repoRoot, "config", "rbac", "release-roles.yaml"))
		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		kubectl([]byte(fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-views, namespace: %s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubist-release-viewer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
`, ns)), "apply", "-f", "-")
		// Both subsets serve, the canary a little worse: the chart has
		// figures for each.
		exporter.AddTraffic(
			testenv.SubsetTraffic{Namespace: ns, Service: "web", Version: "v1", Codes: map[string]int{"200": 99, "500": 1}, Latency: map[float64]int{10: 90, 25: 10}},
			testenv.SubsetTraffic{Namespace: ns, Service: "web", Version: "v2", Codes: map[string]int{"200": 97, "500": 3}, Latency: map[float64]int{25: 80, 50: 20}},
		)
		page = b.tab(startDashboard())
		opened = time.Now()
	})

	AfterAll(func() {
		if b != nil {
			Expect(b.jsErrors()).To(BeEmpty(), "the page must run without JavaScript errors")
		}
	})

	It("draws the tree", func() {
		Eventually(func(g Gomega) {
			// Each resource of the tree, beneath its parent.
			path := `#tree li[data-kind="Project"][data-name="dashboard"]`
			for _, step := range []string{`li[data-kind="Cluster"][data-name="dashboard"]`, `li[data-kind="VirtualCluster"][data-name="dashboard"]`} {
				path += " " + step
				g.Expect(evaluate[bool](g, page, `document.querySelector('`+path+`') !== null`)).To(BeTrue(), path)
			}
			for _, kind := range []string{"Application", "Destination", "Route"} {
				leaf := path + ` li[data-kind="` + kind + `"][data-name="web"]`
				g.Expect(evaluate[bool](g, page, `document.querySelector('`+leaf+`') !== null`)).To(BeTrue(), leaf)
			}
			g.Expect(evaluate[bool](g, page, `document.querySelector('#tree li[data-kind="Project"][data-name="dashboard"] .badge').textContent === 'Ready True'`)).To(BeTrue())
			g.Expect(evaluate[string](g, page, `document.getElementById('status').textContent`)).To(Equal("live"))
		}).WithTimeout(30 * time.Second).Should(Succeed())
	})

	It("adds a point to the canary's chart at each real step", func() {
		kubectl([]byte(CanaryManifest(ns, `    - name: HealthBasedCanaryRelease
      parameters: {step: 10, period: `+dashboardPeriod.String()+`, maxErrorRate: 0.1, minRequests: 20}
  executor:
    name: CanaryReleaseExecutor
    parameters: {metricsWindow: 10s, meshGracePeriod: 1s}`)), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			g.Expect(evaluate[bool](g, page, `document.querySelector('#tree li[data-kind="CanaryRelease"][data-name="web-v2"]') !== null`)).To(BeTrue())
			g.Expect(points(g)).To(BeNumerically(">=", 1))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		before := points(Default)
		Eventually(func(g Gomega) {
			g.Expect(points(g)).To(BeNumerically(">", before))
			c := canaryOf(g)
			g.Expect(points(g)).To(BeNumerically("<=", len(historyOf(g, &c))))
			g.Expect(weights(g)).NotTo(BeEmpty())
		}).WithTimeout(30 * time.Second).Should(Succeed())
		// The figures the decisions saw are drawn for both subsets.
		Eventually(func(g Gomega) int {
			return int(evaluate[float64](g, page, `document.querySelectorAll('`+card+` polyline.metric').length`))
		}).WithTimeout(30 * time.Second).Should(Equal(4))
	})

	It("freezes the weights on Pause, refuses a viewer's Resume with the API server's message, and moves on at Resume", func() {
		Eventually(func(g Gomega) int32 { return canaryOf(g).Status.Weights["v2"] }).WithTimeout(30 * time.Second).Should(BeNumerically(">=", 50))
		click(page, card+` button[data-action="Pause"]`)
		Eventually(func(g Gomega) {
			g.Expect(result(g, page)).To(ContainSubstring("Pause by"))
			g.Expect(phase(g)).To(Equal("Paused"))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		frozen, frozenPoints := weights(Default), points(Default)
		Expect(canaryOf(Default).Status.Weights["v2"]).To(BeNumerically("<", 100), "paused mid-way")

		// Bob may read the namespace's releases but not act on them:
		// his dashboard says what he cannot read, and shows the API
		// server's refusal when he presses Resume.
		bob := b.tab(startDashboard("--as", "bob", "-n", ns))
		Eventually(func(g Gomega) {
			g.Expect(evaluate[string](g, bob, `document.getElementById('problems').innerText`)).To(ContainSubstring("cannot read Projects"))
			g.Expect(evaluate[string](g, bob, `document.querySelector('`+card+` .phase')?.textContent ?? ''`)).To(Equal("Paused"))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		click(bob, card+` button[data-action="Resume"]`)
		Eventually(func(g Gomega) string { return result(g, bob) }).WithTimeout(30 * time.Second).Should(And(
			ContainSubstring("Resume refused"),
			ContainSubstring(`User "bob" cannot create resource "releaseactions" in API group "kubist.io" in the namespace "dashboard"`)))
		Expect(evaluate[string](Default, bob, `document.querySelector('`+card+` .result').className`)).To(ContainSubstring("refused"))

		// Three periods later nothing has moved, in the page or the cluster.
		Consistently(func(g Gomega) {
			g.Expect(weights(g)).To(Equal(frozen))
			g.Expect(points(g)).To(Equal(frozenPoints))
			g.Expect(canaryOf(g).Status.Phase).To(Equal(v1alpha1.CanaryPaused))
		}).WithTimeout(3 * dashboardPeriod).WithPolling(500 * time.Millisecond).Should(Succeed())

		// The project filter leaves this spec's tree and release alone on
		// the page, as the screenshot shows them.
		evaluate[bool](Default, page, `(() => { const s = document.getElementById('project'); s.value = 'dashboard'; s.dispatchEvent(new Event('change')); window.scrollTo(0, 0); return true; })()`)
		Expect(evaluate[[]string](Default, page, `[...document.querySelectorAll('#tree li[data-kind="Project"]')].map((li) => li.dataset.name)`)).To(Equal([]string{"dashboard"}))
		Expect(evaluate[[]string](Default, page, `[...document.querySelectorAll('article.release')].map((a) => a.dataset.release)`)).To(Equal([]string{"CanaryRelease/dashboard/web-v2"}))
		shot, err := chromedp.Run(page, chromedp.CaptureScreenshot())
		Expect(err).NotTo(HaveOccurred())
		path := filepath.Join(outDir, "dashboard.png")
		Expect(os.WriteFile(path, shot, 0o644)).To(Succeed())
		AddReportEntry("screenshot", path)

		click(page, card+` button[data-action="Resume"]`)
		Eventually(func(g Gomega) {
			g.Expect(result(g, page)).To(ContainSubstring("Resume by"))
			g.Expect(points(g)).To(BeNumerically(">", frozenPoints+1))
			g.Expect(weights(g)).NotTo(Equal(frozen))
		}).WithTimeout(30 * time.Second).Should(Succeed())
	})

	It("shows each step on the chart soon after it is decided", func() {
		Eventually(func(g Gomega) v1alpha1.CanaryPhase { return canaryOf(g).Status.Phase }).WithTimeout(60 * time.Second).Should(Equal(v1alpha1.CanaryPromoted))
		promoted := canaryOf(Default)
		history := historyOf(Default, &promoted)
		Eventually(func(g Gomega) int { return points(g) }).Should(Equal(len(history)))
		type render struct {
			ID     string  `json:"id"`
			Points int     `json:"points"`
			At     float64 `json:"at"`
		}
		renders := evaluate[[]render](Default, page, `window.kubistRenders`)
		var delays []time.Duration
		for i, h := range history {
			if h.Time.Time.Before(opened) {
				continue
			}
			for _, r := range renders {
				if r.ID == "CanaryRelease/dashboard/web-v2" && r.Points >= i+1 {
					delays = append(delays, time.UnixMilli(int64(r.At)).Sub(h.Time.Time))
					break
				}
			}
		}
		Expect(len(delays)).To(BeNumerically(">=", 5), "steps seen while the page was open")
		slices.Sort(delays)
		p50, worst := delays[len(delays)/2], delays[len(delays)-1]
		AddReportEntry("step to chart", fmt.Sprintf("%d steps: p50 %s, max %s", len(delays), p50.Round(time.Millisecond), worst.Round(time.Millisecond)))
		// The page follows the watch: well within a step's period.
		Expect(worst).To(BeNumerically("<", 3*time.Second))
	})

	It("shows the Route's stable subset and the release that ended on it, and the version it retired in the tree", func() {
		route := `article[data-route="Route/dashboard/web"]`
		rows := func(g Gomega, part string) [][]string {
			return evaluate[[][]string](g, page, `[...document.querySelectorAll('`+route+` .`+part+` tbody tr')].map((tr) => [...tr.cells].map((c) => c.textContent))`)
		}
		Eventually(func(g Gomega) {
			stable := rows(g, "stable")
			g.Expect(stable).To(HaveLen(1))
			g.Expect(stable[0]).To(HaveExactElements("default", "web", "v2", "v1", Not(BeEmpty()), "CanaryRelease/web-v2 Promoted"))
			history := rows(g, "history")
			g.Expect(history).To(HaveLen(1))
			g.Expect(history[0][:3]).To(Equal([]string{"CanaryRelease/web-v2", "v1", "v2"}))
			g.Expect(history[0][5]).To(Equal("Promoted"))
			g.Expect(evaluate[string](g, page, `document.querySelector('`+route+` [data-fact="releasing"]').textContent`)).To(Equal("nothing"))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("the same rows as kubist get route prints")
		out := kubectlKubist("get", "route", "web", "-n", ns).Stdout
		for _, row := range append(rows(Default, "stable"), rows(Default, "history")...) {
			Expect(out).To(MatchRegexp(strings.Join(quoteAll(row), `\s+`)))
		}

		By("the tree links the Route to its card and says which version the release retired")
		Expect(evaluate[string](Default, page, `document.querySelector('#tree li[data-kind="Route"][data-name="web"] a.name').getAttribute('href')`)).To(Equal("#release-Route_dashboard_web"))
		Eventually(func(g Gomega) string {
			return evaluate[string](g, page, `document.querySelector('#tree li[data-kind="Application"][data-name="web"] > .node').textContent`)
		}).WithTimeout(30 * time.Second).Should(MatchRegexp(`v1 \d+/\d+ ready \(retired\)`))
	})

	It("draws a ReleasePlan's waves as lanes, each VirtualCluster's releases with their charts inside", func() {
		step := "      - {name: TimedCanaryRelease, parameters: {step: 50, period: 1s}}"
		kubectl([]byte(FleetManifest("dash-fleet", map[string]string{"dash-a": "{ring: canary}", "dash-b": "{region: eu}"},
			map[string]string{"web": step, "api": step})), "apply", "-f", "-")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: ReleasePlan
metadata: {name: dash-v2}
spec:
  project: dash-fleet
  routes: [web, api]
  subset: v2
  policies: [{name: WavePacing, parameters: {soak: 1s}}]
  waves:
    - {name: canary, clusters: {matchLabels: {ring: canary}}}
    - {name: rest}
`), "apply", "-f", "-")
		evaluate[bool](Default, page, `(() => { const s = document.getElementById('project'); s.value = 'dash-fleet'; s.dispatchEvent(new Event('change')); window.scrollTo(0, 0); return true; })()`)
		plan := `article[data-plan="ReleasePlan/dash-v2"]`
		Eventually(func(g Gomega) {
			g.Expect(evaluate[[]string](g, page, `[...document.querySelectorAll('`+plan+` .lane')].map((l) => l.dataset.wave + ' ' + l.dataset.phase)`)).
				To(Equal([]string{"canary Promoted", "rest Promoted"}))
			g.Expect(evaluate[[]string](g, page, `[...document.querySelectorAll('`+plan+` .member')].map((m) => m.dataset.virtualcluster)`)).
				To(Equal([]string{"dash-a", "dash-b"}))
			// Each release's chart, its two steps drawn.
			g.Expect(evaluate[[]float64](g, page, `[...document.querySelectorAll('`+plan+` .member svg.chart')].map((c) => Number(c.dataset.points))`)).
				To(Equal([]float64{2, 2, 2, 2}))
			g.Expect(evaluate[string](g, page, `document.querySelector('`+plan+` [data-fact="progress"]').textContent`)).To(Equal("Promoted: wave 2/2 rest: 1/1 promoted"))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		Expect(evaluate[bool](Default, page, `document.querySelector('#tree li[data-kind="Project"][data-name="dash-fleet"] li[data-kind="ReleasePlan"][data-name="dash-v2"]') !== null`)).To(BeTrue())
		By("the plan's buttons: a promoted plan refuses them, saying why")
		Expect(evaluate[[]string](Default, page, `[...document.querySelectorAll('`+plan+` .actions button')].map((b) => b.textContent + (b.disabled ? ': ' + b.title : ''))`)).To(Equal([]string{
			"Pause: the plan is Promoted: only a Pending or Progressing plan can be paused",
			"Resume: the plan is Promoted, not Paused",
			"Promote wave: the plan is Promoted: only a Progressing plan has a wave to promote",
			"Abort: the plan is Promoted already: it starts nothing more",
		}))
		shot, err := chromedp.Run(page, chromedp.CaptureScreenshot())
		Expect(err).NotTo(HaveOccurred())
		path := filepath.Join(outDir, "dashboard-plan.png")
		Expect(os.WriteFile(path, shot, 0o644)).To(Succeed())
		AddReportEntry("screenshot", path)
	})
})

// quoteAll are strings as regular expressions that match them literally.
func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = regexp.QuoteMeta(v)
	}
	return out
}
