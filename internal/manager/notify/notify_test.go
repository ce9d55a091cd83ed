package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/slack-go/slack"
)

// fastOptions retry quickly, so that the tests see a receiver come back.
func fastOptions() Options {
	return Options{Timeout: 300 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond}
}

func note(i int) Notification {
	return Notification{Kind: "CanaryRelease", Namespace: "ops", Name: "web-v2", Reason: "Step",
		Message: fmt.Sprintf("canary v2 at %d%%", i*10), Time: time.Date(2026, 12, 2, 12, 0, i, 0, time.UTC)}
}

// ceReceiver is a CloudEvents receiver built with the SDK on loopback. It
// is down until up is called, answers slowly while slow is set, and keeps
// the IDs it took, in order.
type ceReceiver struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	ids  []string
	data []Notification
	slow time.Duration
	stop context.CancelFunc
}

func newCEReceiver(t *testing.T) *ceReceiver {
	// A port that nothing listens on yet: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	r := &ceReceiver{t: t, addr: addr}
	t.Cleanup(func() {
		if r.stop != nil {
			r.stop()
		}
	})
	return r
}

func (r *ceReceiver) url() string { return "http://" + r.addr + "/" }

func (r *ceReceiver) up() {
	l, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := cloudevents.NewClientHTTP(cloudevents.WithListener(l))
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() {
		_ = c.StartReceiver(ctx, func(e cloudevents.Event) {
			r.mu.Lock()
			slow := r.slow
			r.mu.Unlock()
			time.Sleep(slow)
			var n Notification
			if err := e.DataAs(&n); err != nil {
				r.t.Errorf("event %s: %v", e.ID(), err)
			}
			r.mu.Lock()
			r.ids = append(r.ids, e.ID())
			r.data = append(r.data, n)
			r.mu.Unlock()
		})
	}()
}

func (r *ceReceiver) setSlow(d time.Duration) {
	r.mu.Lock()
	r.slow = d
	r.mu.Unlock()
}

// messages are the distinct notifications taken, in the order first taken.
func (r *ceReceiver) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for i, id := range r.ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, r.data[i].Message)
		}
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCloudEventsReceiverDownSlowAndBack: a receiver that is down, then
// slow, then back gets every notification once it is back, in order, and
// Send never waited for it.
func TestCloudEventsReceiverDownSlowAndBack(t *testing.T) {
	rec := newCEReceiver(t)
	n := New(fastOptions())
	defer n.Stop()
	receivers := []Receiver{{Name: "down-slow-back", Type: TypeCloudEvents, URL: rec.url()}}
	failures := func() float64 { return testutil.ToFloat64(failed.WithLabelValues("down-slow-back", TypeCloudEvents)) }
	start := failures()

	began := time.Now()
	for i := 1; i <= 3; i++ {
		n.Send(receivers, note(i))
	}
	if d := time.Since(began); d > 50*time.Millisecond {
		t.Fatalf("Send waited %s for a receiver that is down", d)
	}
	eventually(t, "attempts on the receiver that is down fail", func() bool { return failures() >= start+2 })

	rec.setSlow(time.Second) // longer than the attempt's timeout
	rec.up()
	before := failures()
	eventually(t, "attempts on the slow receiver time out", func() bool { return failures() >= before+2 })
	n.Send(receivers, note(4))

	rec.setSlow(0)
	want := []string{"canary v2 at 10%", "canary v2 at 20%", "canary v2 at 30%", "canary v2 at 40%"}
	eventually(t, "every notification arrives once the receiver is back", func() bool { return len(rec.messages()) == len(want) })
	if got := rec.messages(); !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v in order", got, want)
	}
	if got := testutil.ToFloat64(dropped.WithLabelValues("down-slow-back", TypeCloudEvents)); got != 0 {
		t.Fatalf("dropped %v notifications", got)
	}
}

// TestFullQueueDropsTheOldest: past its size a receiver's queue drops its
// oldest notifications and counts them; the newest arrive.
func TestFullQueueDropsTheOldest(t *testing.T) {
	rec := newCEReceiver(t)
	opts := fastOptions()
	opts.QueueSize = 3
	n := New(opts)
	defer n.Stop()
	receivers := []Receiver{{Name: "full", Type: TypeCloudEvents, URL: rec.url()}}
	for i := 1; i <= 6; i++ {
		n.Send(receivers, note(i))
	}
	// The first may be in flight when the others push it out: it is
	// then delivered (an attempt never loses what it is sending) or
	// dropped; the last three always arrive.
	rec.up()
	eventually(t, "the newest notifications arrive", func() bool {
		m := rec.messages()
		return len(m) >= 3 && m[len(m)-1] == "canary v2 at 60%"
	})
	got := rec.messages()
	if !slices.Equal(got[len(got)-3:], []string{"canary v2 at 40%", "canary v2 at 50%", "canary v2 at 60%"}) {
		t.Fatalf("received %v, want the newest three last", got)
	}
	if d := testutil.ToFloat64(dropped.WithLabelValues("full", TypeCloudEvents)); d != 3 {
		t.Fatalf("dropped %v, want 3", d)
	}
}

// TestSlackAndLevels: a Slack-compatible endpoint gets the message and the
// attachment, and a receiver's minimum level filters what it gets.
func TestSlackAndLevels(t *testing.T) {
	var mu sync.Mutex
	var got []slack.WebhookMessage
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m slack.WebhookMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	n := New(fastOptions())
	defer n.Stop()
	all := Receiver{Name: "all", Type: TypeSlack, URL: srv.URL + "/all"}
	errorsOnly := Receiver{Name: "errors", Type: TypeSlack, URL: srv.URL + "/errors", MinLevel: Error}
	step := note(1)
	rollback := Notification{Kind: "CanaryRelease", Namespace: "ops", Name: "web-v2", Reason: "RolledBack", Level: Error,
		Message: "canary v2 error rate 0.5 is above maxErrorRate 0.3", Phase: "RolledBack", Weights: map[string]int32{"v1": 100, "v2": 0}, Time: time.Now()}
	n.Send([]Receiver{all, errorsOnly}, step)
	n.Send([]Receiver{all, errorsOnly}, rollback)
	eventually(t, "three Slack messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("got %d messages, want 3 (the errors receiver takes no step)", len(got))
	}
	var rolledBack int
	for _, m := range got {
		if m.Text == "[RolledBack] CanaryRelease ops/web-v2: canary v2 error rate 0.5 is above maxErrorRate 0.3" {
			rolledBack++
			if m.Attachments[0].Color != "danger" || m.Attachments[0].Fields[1].Value != "v1 100% / v2 0%" {
				t.Errorf("attachment %+v", m.Attachments[0])
			}
		}
	}
	if rolledBack != 2 {
		t.Fatalf("the rollback reached %d receivers, want 2: %+v", rolledBack, got)
	}
}

func TestRedactKeepsSecretsOutOfLogs(t *testing.T) {
	r := Receiver{URL: "https://hooks.slack.example/T000/B000/secret", Token: "tok3n"}
	msg := Redact(fmt.Errorf("post %s with tok3n: refused", r.URL), r.URL, r.Token)
	if msg != "post <redacted> with <redacted>: refused" {
		t.Fatal(msg)
	}
}
