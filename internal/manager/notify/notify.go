// Package notify tells people what their releases do: steps, promotions,
// rollbacks, aborts, pauses, gates waiting, policy errors, experiments
// concluded. Each receiver (a Slack incoming webhook, or any HTTP sink
// taking CloudEvents) has a bounded queue of its own, delivered in order by
// one goroutine that retries with back-off until the receiver takes the
// notification: Send never waits for a receiver, so a dead one delays no
// step; a full queue drops its oldest notification and counts it.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Level is how much a notification matters.
type Level int

// The levels, lowest first; a receiver gets those at or above its minimum.
const (
	Info Level = iota
	Warning
	Error
)

// ParseLevel reads a level as resources write it: info, warning or error;
// empty is info.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return Info, nil
	case "warning":
		return Warning, nil
	case "error":
		return Error, nil
	}
	return Info, fmt.Errorf("level %q: one of info, warning, error", s)
}

func (l Level) String() string {
	switch l {
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return "info"
}

// Notification is one thing a release did.
type Notification struct {
	// Kind, Namespace and Name of the release.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Reason is what happened: Step, Promoted, RolledBack, Aborted, Paused,
	// Resumed, GateWaiting, PolicyError, Concluded, or a person's action.
	Reason string `json:"reason"`
	Level  Level  `json:"-"`
	// Message says it to a person.
	Message string `json:"message"`
	// Phase and Weights of the release after it.
	Phase   string           `json:"phase,omitempty"`
	Weights map[string]int32 `json:"weights,omitempty"`
	// User who asked, for a person's action.
	User string    `json:"user,omitempty"`
	Time time.Time `json:"time"`
	// Plan and Wave name the ReleasePlan that started the release, and
	// its wave; for a ReleasePlan's own notifications, Wave is its
	// current wave.
	Plan string `json:"plan,omitempty"`
	Wave string `json:"wave,omitempty"`
}

// Subject names what a notification is about: "CanaryRelease ns/name"
// ("ReleasePlan name" for a cluster-scoped plan), with its plan's wave.
func (n Notification) Subject() string {
	s := n.Kind + " " + n.Name
	if n.Namespace != "" {
		s = fmt.Sprintf("%s %s/%s", n.Kind, n.Namespace, n.Name)
	}
	switch {
	case n.Plan != "" && n.Wave != "":
		s += fmt.Sprintf(" (ReleasePlan %s, wave %s)", n.Plan, n.Wave)
	case n.Wave != "":
		s += fmt.Sprintf(" (wave %s)", n.Wave)
	}
	return s
}

// Receiver is where notifications go. URL and Token come from a Secret.
type Receiver struct {
	// Name of the receiver in the resource, for metrics and logs.
	Name string
	// Type is Slack or CloudEvents.
	Type     string
	URL      string
	Token    string
	MinLevel Level
}

// key identifies a receiver's queue: same type, URL and token, same queue,
// whichever resources name it.
func (r Receiver) key() string {
	sum := sha256.Sum256([]byte(r.Type + "\x00" + r.URL + "\x00" + r.Token))
	return hex.EncodeToString(sum[:8])
}

// Options tune delivery; zero values take the defaults.
type Options struct {
	// QueueSize bounds each receiver's queue (default 256).
	QueueSize int
	// Timeout bounds one delivery attempt (default 10s).
	Timeout time.Duration
	// RetryMin and RetryMax bound the back-off between attempts (default
	// 1s doubling up to 1m).
	RetryMin, RetryMax time.Duration
	// HTTPClient sends the requests (default: one with Timeout).
	HTTPClient *http.Client
}

// Notifier delivers notifications to their receivers. It is a manager
// Runnable: deliveries stop when the manager does.
type Notifier struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	queues map[string]*queue
	wg     sync.WaitGroup
}

// New returns a Notifier; Start ties its deliveries to a manager.
func New(opts Options) *Notifier {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(time.Minute, opts.RetryMin)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: opts.Timeout}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Notifier{opts: opts, ctx: ctx, cancel: cancel, queues: map[string]*queue{}}
}

// Start waits for ctx to end, then stops the deliveries; what is still
// queued is not sent.
func (n *Notifier) Start(ctx context.Context) error {
	<-ctx.Done()
	n.Stop()
	return nil
}

// Stop stops the deliveries and waits for them.
func (n *Notifier) Stop() {
	n.cancel()
	n.wg.Wait()
}

// Send queues a notification for each receiver that wants its level, and
// returns at once.
func (n *Notifier) Send(receivers []Receiver, note Notification) {
	for _, r := range receivers {
		if note.Level < r.MinLevel {
			continue
		}
		n.queueOf(r).push(note)
	}
}

func (n *Notifier) queueOf(r Receiver) *queue {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := r.key()
	if q, ok := n.queues[k]; ok {
		// The latest name and level for the same endpoint.
		q.setReceiver(r)
		return q
	}
	q := &queue{receiver: r, size: n.opts.QueueSize, wake: make(chan struct{}, 1)}
	n.queues[k] = q
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.deliver(q)
	}()
	return q
}

// queue is one receiver's notifications, oldest first.
type queue struct {
	mu       sync.Mutex
	receiver Receiver
	items    []entry
	next     uint64
	size     int
	wake     chan struct{}
}

// entry is a queued notification and its place in the queue's order.
type entry struct {
	seq  uint64
	note Notification
}

func (q *queue) setReceiver(r Receiver) {
	q.mu.Lock()
	q.receiver = r
	q.mu.Unlock()
}

// push adds a notification; a full queue drops its oldest.
func (q *queue) push(note Notification) {
	q.mu.Lock()
	if len(q.items) >= q.size {
		q.items = q.items[1:]
		dropped.WithLabelValues(q.receiver.Name, q.receiver.Type).Inc()
	}
	q.next++
	q.items = append(q.items, entry{seq: q.next, note: note})
	queued.WithLabelValues(q.receiver.Name, q.receiver.Type).Set(float64(len(q.items)))
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// head is the oldest notification and the receiver, if any.
func (q *queue) head() (entry, Receiver, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return entry{}, q.receiver, false
	}
	return q.items[0], q.receiver, true
}

// pop removes the head once delivered, unless a push dropped it meanwhile.
func (q *queue) pop(delivered entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 && q.items[0].seq == delivered.seq {
		q.items = q.items[1:]
	}
	queued.WithLabelValues(q.receiver.Name, q.receiver.Type).Set(float64(len(q.items)))
}

// deliver sends a queue's notifications in order, each until it is taken.
func (n *Notifier) deliver(q *queue) {
	logger := log.FromContext(n.ctx).WithName("notify")
	backoff := n.opts.RetryMin
	for {
		head, r, ok := q.head()
		if !ok {
			select {
			case <-n.ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
		note := head.note
		err := n.send(ctx, r, note)
		cancel()
		if err == nil {
			sent.WithLabelValues(r.Name, r.Type).Inc()
			q.pop(head)
			backoff = n.opts.RetryMin
			continue
		}
		failed.WithLabelValues(r.Name, r.Type).Inc()
		// The URL is a secret: the log names the receiver, not where it is.
		logger.Info("Notification not delivered; retrying", "receiver", r.Name, "type", r.Type,
			"release", note.Namespace+"/"+note.Name, "reason", note.Reason, "retryIn", backoff.String(), "error", Redact(err, r.URL, r.Token))
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, n.opts.RetryMax)
	}
}

// send delivers one notification to one receiver.
func (n *Notifier) send(ctx context.Context, r Receiver, note Notification) error {
	switch r.Type {
	case TypeSlack:
		return n.sendSlack(ctx, r, note)
	case TypeCloudEvents:
		return n.sendCloudEvent(ctx, r, note)
	}
	return fmt.Errorf("receiver type %q: Slack or CloudEvents", r.Type)
}

// The receiver types.
const (
	TypeSlack       = "Slack"
	TypeCloudEvents = "CloudEvents"
)

// Redact removes secrets (a URL, a token) from an error's message, so that
// logs and statuses never carry them.
func Redact(err error, secrets ...string) string {
	msg := err.Error()
	for _, secret := range secrets {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "<redacted>")
		}
	}
	return msg
}

// The notifier's metrics, by receiver name and type.
var (
	sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubist_notifications_sent_total",
		Help: "Notifications a receiver accepted.",
	}, []string{"receiver", "type"})
	failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubist_notifications_failed_total",
		Help: "Delivery attempts that failed (each is retried with back-off).",
	}, []string{"receiver", "type"})
	dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubist_notifications_dropped_total",
		Help: "Notifications dropped, oldest first, because a receiver's queue was full.",
	}, []string{"receiver", "type"})
	queued = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubist_notifications_queued",
		Help: "Notifications waiting for a receiver.",
	}, []string{"receiver", "type"})
)

func init() {
	metrics.Registry.MustRegister(sent, failed, dropped, queued)
}
