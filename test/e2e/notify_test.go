package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slack-go/slack"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/manager/notify"
)

// slackEndpoint is a Slack-compatible incoming webhook on loopback: it
// takes the JSON message Slack takes and answers "ok".
type slackEndpoint struct {
	url      string
	mu       sync.Mutex
	messages []slack.WebhookMessage
}

func startSlackEndpoint() *slackEndpoint {
	GinkgoHelper()
	s := &slackEndpoint{}
	addr := serveOnLoopback("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m slack.WebhookMessage
		if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&m) != nil || m.Text == "" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.messages = append(s.messages, m)
		s.mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	s.url = "http://" + addr + "/services/T000/B000/XXXX"
	return s
}

// serveOnLoopback serves a handler on a loopback address ("127.0.0.1:0"
// for any port) until the spec ends, and returns the address.
func serveOnLoopback(addr string, h http.Handler) string {
	GinkgoHelper()
	l, err := net.Listen("tcp", addr)
	Expect(err).NotTo(HaveOccurred())
	server := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: h}
	go func() {
		if err := server.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			GinkgoWriter.Println("loopback server:", err)
		}
	}()
	DeferCleanup(server.Close)
	return l.Addr().String()
}

func (s *slackEndpoint) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.messages {
		out = append(out, m.Text)
	}
	return out
}

// eventSink is a CloudEvents receiver built with the SDK on loopback,
// behind a bearer token. It starts down (its port refuses connections),
// can be slow, and keeps each event it took once, by ID, in order.
type eventSink struct {
	addr   string
	mu     sync.Mutex
	slow   time.Duration
	ids    []string
	events []notify.Notification
	types  []string
}

func newEventSink() *eventSink {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	return &eventSink{addr: addr}
}

func (e *eventSink) url() string { return "http://" + e.addr + "/events" }

func (e *eventSink) up() {
	GinkgoHelper()
	p, err := cehttp.New()
	Expect(err).NotTo(HaveOccurred())
	receive, err := cloudevents.NewHTTPReceiveHandler(context.Background(), p, func(ev cloudevents.Event) {
		var n notify.Notification
		Expect(ev.DataAs(&n)).To(Succeed())
		e.mu.Lock()
		defer e.mu.Unlock()
		if !slices.Contains(e.ids, ev.ID()) {
			e.ids, e.events, e.types = append(e.ids, ev.ID()), append(e.events, n), append(e.types, ev.Type())
		}
	})
	Expect(err).NotTo(HaveOccurred())
	serveOnLoopback(e.addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "who are you?", http.StatusUnauthorized)
			return
		}
		e.mu.Lock()
		slow := e.slow
		e.mu.Unlock()
		time.Sleep(slow)
		receive.ServeHTTP(w, r)
	}))
}

func (e *eventSink) setSlow(d time.Duration) {
	e.mu.Lock()
	e.slow = d
	e.mu.Unlock()
}

func (e *eventSink) reasons() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, n := range e.events {
		out = append(out, n.Reason)
	}
	return out
}

func counter(name, receiver string) float64 {
	var sum float64
	for _, m := range managerMetrics(name, map[string]string{"receiver": receiver}) {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

var _ = Describe("Notifications", func() {
	It("reach a Slack endpoint and a CloudEvents sink from the Project's stanza, through a sink that is down, slow and back, and no step waits for them", func() {
		const ns = "notified"
		slackHook := startSlackEndpoint()
		sink := newEventSink()
		ensureNamespace(ctx(), "kubist-system")
		for name, data := range map[string]map[string]string{
			"slack-hook": {"url": slackHook.url},
			"event-sink": {"url": sink.url(), "token": "s3cret"},
		} {
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kubist-system", Name: name}, StringData: data}
			Expect(env.Client.Create(ctx(), secret)).To(Succeed())
			DeferCleanup(func() { Expect(env.Client.Delete(ctx(), secret)).To(Succeed()) })
		}
		// The Project says who hears; everything below it inherits that.
		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		kubectl([]byte(`apiVersion: kubist.io/v1alpha1
kind: Project
metadata: {name: notified}
spec:
  notifications:
    receivers:
      - {name: team-slack, type: Slack, secretRef: {name: slack-hook}}
      - {name: audit, type: CloudEvents, secretRef: {name: event-sink}}
`), "apply", "-f", "-")

		By("the sink is down while the canary steps every 2 s, and kubist get --watch follows it on a pipe")
		screens := &syncBuffer{}
		watch := kubectlKubistCommand(context.Background(), "get", "canary", "web-v2", "-n", ns, "--watch", "--interval", "200ms")
		watch.Stdout, watch.Stderr = screens, GinkgoWriter
		Expect(watch.Start()).To(Succeed())
		// Its first screen says there is no such release yet.
		Eventually(screens.String, "20s").Should(ContainSubstring("not found"))
		kubectl([]byte(CanaryManifest(ns, "    - name: TimedCanaryRelease\n      parameters: {step: 25, period: 2s}\n")), "apply", "-f", "-")
		var c v1alpha1.CanaryRelease
		Eventually(func(g Gomega) {
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &c)).To(Succeed())
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
		}).Should(Succeed())
		time.Sleep(time.Second)
		Expect(watch.Process.Signal(os.Interrupt)).To(Succeed())
		Expect(watch.Wait()).To(Succeed())
		GinkgoWriter.Printf("kubist get canary --watch, on a pipe:\n%s\n", screens.String())
		frames := strings.Split(screens.String(), "(kubist get canary web-v2 --watch)")
		Expect(len(frames)).To(BeNumerically(">=", 5), "a screen per change, appended on a pipe")
		Expect(screens.String()).NotTo(ContainSubstring("\033[H"), "a pipe gets no terminal redraws")
		for _, split := range []string{"v1 75% / v2 25%", "v1 50% / v2 50%", "v1 25% / v2 75%", "v1 0% / v2 100%"} {
			Expect(screens.String()).To(MatchRegexp(`Weights:\s+` + regexp.QuoteMeta(split)))
		}
		Expect(c.Status.History).To(HaveLen(4))
		for i := 1; i < len(c.Status.History); i++ {
			gap := c.Status.History[i].Time.Sub(c.Status.History[i-1].Time.Time)
			Expect(gap).To(BeNumerically("<", 3*time.Second), "step %d came %s after the one before (period 2s), with the sink down", i, gap)
		}
		Eventually(func() []string { return slackHook.texts() }).Should(Equal([]string{
			"[Step] CanaryRelease notified/web-v2: canary v2 at 25%",
			"[Step] CanaryRelease notified/web-v2: canary v2 at 50%",
			"[Step] CanaryRelease notified/web-v2: canary v2 at 75%",
			"[Promoted] CanaryRelease notified/web-v2: canary v2 at 100%",
		}))
		Expect(counter("kubist_notifications_failed_total", "audit")).To(BeNumerically(">", 0))
		Expect(sink.reasons()).To(BeEmpty())

		By("the sink comes back slow: each attempt times out and is retried")
		sink.setSlow(2 * time.Second)
		sink.up()
		failed := counter("kubist_notifications_failed_total", "audit")
		Eventually(func() float64 { return counter("kubist_notifications_failed_total", "audit") }, "10s").Should(BeNumerically(">=", failed+2))

		By("the sink is back: every notification arrives once, in order, none dropped")
		sink.setSlow(0)
		Eventually(sink.reasons, "20s").Should(Equal([]string{"Step", "Step", "Step", "Promoted"}))
		Expect(sink.types).To(Equal([]string{"io.kubist.release.step", "io.kubist.release.step", "io.kubist.release.step", "io.kubist.release.promoted"}))
		Expect(sink.events[3].Weights).To(Equal(map[string]int32{"v1": 0, "v2": 100}))
		Expect(counter("kubist_notifications_dropped_total", "audit")).To(BeZero())
		Expect(counter("kubist_notifications_sent_total", "team-slack")).To(BeNumerically(">=", 4))

		By("a resource's own stanza overrides what it inherits: an empty one silences it")
		before := len(slackHook.texts())
		kubectl(nil, "delete", "canaryrelease", "web-v2", "-n", ns, "--wait")
		specWins(ns)
		kubectl([]byte(CanaryManifest(ns, "    - name: TimedCanaryRelease\n      parameters: {step: 50, period: 1s}\n  notifications: {receivers: []}\n")), "apply", "-f", "-")
		Eventually(func(g Gomega) {
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &c)).To(Succeed())
			g.Expect(c.Status.Phase).To(Equal(v1alpha1.CanaryPromoted))
		}).Should(Succeed())
		Consistently(func() int { return len(slackHook.texts()) }, "2s").Should(Equal(before))
	})
})

// syncBuffer is a bytes.Buffer a process writes while a spec reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
