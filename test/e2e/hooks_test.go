package e2e

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// hookServer is an outside system's HTTP hook on loopback (a load test, a
// change ticket): it answers with the status it is set to, after a delay.
type hookServer struct {
	url      string
	mu       sync.Mutex
	status   int
	body     string
	delay    time.Duration
	requests []map[string]any
	auth     []string
}

func startHookServer() *hookServer {
	GinkgoHelper()
	h := &hookServer{status: http.StatusOK}
	addr := serveOnLoopback("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		h.mu.Lock()
		h.requests = append(h.requests, req)
		h.auth = append(h.auth, r.Header.Get("Authorization"))
		status, body, delay := h.status, h.body, h.delay
		h.mu.Unlock()
		time.Sleep(delay)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	h.url = "http://" + addr + "/gate"
	return h
}

func (h *hookServer) set(status int, body string, delay time.Duration) {
	h.mu.Lock()
	h.status, h.body, h.delay = status, body, delay
	h.mu.Unlock()
}

var _ = Describe("WebhookGate", func() {
	It("holds each step until the outside hook answers 2xx, saying what it answered: failing, timing out, then passing", func() {
		const ns = "hooked"
		hook := startHookServer()
		hook.set(http.StatusPreconditionFailed, "load test still running", 0)
		ensureNamespace(ctx(), "kubist-system")
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kubist-system", Name: "load-test-gate"},
			StringData: map[string]string{"url": hook.url, "token": "t0ken"}}
		Expect(env.Client.Create(ctx(), secret)).To(Succeed())
		DeferCleanup(func() { Expect(env.Client.Delete(ctx(), secret)).To(Succeed()) })
		kubectl([]byte(TreeManifest(ns)), "apply", "-f", "-")
		kubectl([]byte(CanaryManifest(ns, `    - name: TimedCanaryRelease
      parameters: {step: 50, period: 1s}
    - name: WebhookGate
      parameters: {secretRef: load-test-gate, timeout: 500ms, retry: 500ms}
`)), "apply", "-f", "-")
		canary := func(g Gomega) v1alpha1.CanaryRelease {
			var c v1alpha1.CanaryRelease
			g.Expect(env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web-v2"}, &c)).To(Succeed())
			return c
		}
		gateMessage := func(g Gomega) string {
			c := canary(g)
			g.Expect(c.Status.Decisions).To(HaveLen(2))
			return c.Status.Decisions[1].Message
		}

		By("failing: the step waits, and the release says what the hook answered")
		Eventually(gateMessage).Should(MatchRegexp(`^waiting for hook load-test-gate \(on step\): it answered 412 in [0-9]+ms \(load test still running\)$`))
		Consistently(func(g Gomega) { g.Expect(canary(g).Status.Weights).To(Equal(map[string]int32{"v1": 100, "v2": 0})) }, "1500ms").Should(Succeed())

		By("timing out: the step still waits")
		hook.set(http.StatusOK, "", 2*time.Second)
		Eventually(gateMessage).Should(And(HavePrefix("waiting for hook load-test-gate (on step): it failed: "), ContainSubstring("deadline exceeded")))
		Expect(gateMessage(Default)).NotTo(ContainSubstring(hook.url), "the hook's URL comes from a Secret and stays out of the status")
		Expect(canary(Default).Status.Weights).To(Equal(map[string]int32{"v1": 100, "v2": 0}))

		By("passing: the release walks on to promotion")
		hook.set(http.StatusOK, "", 0)
		Eventually(func(g Gomega) { g.Expect(canary(g).Status.Phase).To(Equal(v1alpha1.CanaryPromoted)) }).Should(Succeed())
		hook.mu.Lock()
		defer hook.mu.Unlock()
		Expect(hook.requests).NotTo(BeEmpty())
		last := hook.requests[len(hook.requests)-1]
		Expect(last).To(HaveKeyWithValue("name", "web-v2"))
		Expect(last).To(HaveKeyWithValue("namespace", ns))
		Expect(last).To(HaveKeyWithValue("on", "step"))
		Expect(hook.auth).To(HaveEach("Bearer t0ken"))
	})
})
