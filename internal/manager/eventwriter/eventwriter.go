// Package eventwriter writes Kubernetes Events (events.k8s.io/v1) for the
// manager's executors, one API create per Event, from a bounded queue.
//
// client-go's events broadcaster (what controller-runtime's recorders use)
// keeps every Event it wrote in memory for six minutes, to count repeats of
// the same reason on the same object into a series. Its key holds the
// object's resourceVersion, which changes with every status Kubist writes,
// so for Kubist no Event ever repeated: the cache only held a copy of every
// Event of the last six minutes (6–8 MiB of a manager running 1,000
// releases) and each Event was copied three times on its way. The
// executors pace their Events already (one a minute per resource and
// reason, see reconciler.EventInterval), so here an Event is built once,
// queued and created; nothing is kept once it is written.
//
// Giving the stock recorder a reference without the resourceVersion
// restores its series, but not what a person reads: its key for "the same
// Event" (type, action, reason, reporting controller and instance,
// regarding, related; client-go v0.37 tools/events getKey) leaves out the
// note, and a repeat only counts into the series while the note stays the
// first one's. A canary's successive Step Events ("v2 at 20%", "v2 at
// 40%", …) would read as the first note ×N while the release is at 100%.
// client-go's older recorder (tools/record) keys by message but is
// deprecated in controller-runtime. So this writer stays.
package eventwriter

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/reference"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// QueueSize is how many Events wait to be written at most; past it (the
// API server unreachable for long) an Event is dropped, logged and counted
// in kubist_events_dropped_total.
const QueueSize = 1024

// attempts and retryAfter: an Event whose create fails for a reason that
// may pass (a timeout, the API server restarting) is tried again.
const (
	attempts   = 4
	retryAfter = time.Second
)

var dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "kubist_events_dropped_total",
	Help: "Events not written, by reason: queue (the queue was full) or error (the API server refused them or stayed unreachable).",
}, []string{"reason"})

func init() { metrics.Registry.MustRegister(dropped) }

// Writer creates the Events its recorders queue. It is a manager
// Runnable, run on every replica (a replica that is not the leader makes
// no Events).
type Writer struct {
	client client.Client
	scheme *runtime.Scheme
	log    logr.Logger
	queue  chan *eventsv1.Event
}

// New returns a Writer that creates Events with c.
func New(c client.Client, scheme *runtime.Scheme, log logr.Logger) *Writer {
	return &Writer{client: c, scheme: scheme, log: log, queue: make(chan *eventsv1.Event, QueueSize)}
}

// NeedLeaderElection is false: Events are written wherever they are made.
func (w *Writer) NeedLeaderElection() bool { return false }

// Start writes queued Events until ctx ends, then writes what is still
// queued for at most a few seconds.
func (w *Writer) Start(ctx context.Context) error {
	for {
		select {
		case e := <-w.queue:
			w.write(ctx, e)
		case <-ctx.Done():
			flush, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			for {
				select {
				case e := <-w.queue:
					w.write(flush, e)
				default:
					return nil
				}
			}
		}
	}
}

func (w *Writer) write(ctx context.Context, e *eventsv1.Event) {
	var err error
	for try := 1; try <= attempts; try++ {
		if err = w.client.Create(ctx, e.DeepCopy()); err == nil || apierrors.IsAlreadyExists(err) {
			return
		}
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) || apierrors.IsNotFound(err) {
			break // the same Event would fail again
		}
		select {
		case <-ctx.Done():
			try = attempts
		case <-time.After(time.Duration(try) * retryAfter):
		}
	}
	dropped.WithLabelValues("error").Inc()
	w.log.Error(err, "event not written", "object", e.Regarding.Namespace+"/"+e.Regarding.Name, "kind", e.Regarding.Kind, "reason", e.Reason, "note", e.Note)
}

// Recorder returns the recorder of one reporting controller.
func (w *Writer) Recorder(controller string) recorder.EventRecorder {
	host, _ := os.Hostname()
	instance := controller + "-" + host
	if len(instance) > 128 {
		instance = instance[:128]
	}
	return &eventRecorder{w: w, controller: controller, instance: instance}
}

type eventRecorder struct {
	w                    *Writer
	controller, instance string
}

func (r *eventRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.AnnotatedEventf(regarding, related, nil, eventtype, reason, action, note, args...)
}

// AnnotatedEventf builds the Event as client-go's recorder does (its name,
// namespace, reporting controller and instance, the objects' references)
// and queues it; it never blocks.
func (r *eventRecorder) AnnotatedEventf(regarding, related runtime.Object, annotations map[string]string, eventtype, reason, action, note string, args ...any) {
	w := r.w
	note = fmt.Sprintf(note, args...)
	ref, err := reference.GetReference(w.scheme, regarding)
	if err != nil {
		w.log.Error(err, "event not written: no reference to its object", "reason", reason, "note", note)
		return
	}
	if eventtype != corev1.EventTypeNormal && eventtype != corev1.EventTypeWarning {
		w.log.Error(nil, "event not written: its type is neither Normal nor Warning", "type", eventtype, "reason", reason, "note", note)
		return
	}
	var relatedRef *corev1.ObjectReference
	if related != nil {
		relatedRef, _ = reference.GetReference(w.scheme, related)
	}
	now := time.Now()
	namespace := ref.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	e := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("%s.%x", ref.Name, now.UnixNano()),
			Namespace:   namespace,
			Annotations: annotations,
		},
		EventTime:           metav1.MicroTime{Time: now},
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Related:             relatedRef,
		Note:                note,
		Type:                eventtype,
	}
	w.log.V(1).Info(note, "type", eventtype, "object", ref.Namespace+"/"+ref.Name, "kind", ref.Kind, "reason", reason)
	select {
	case w.queue <- e:
	default:
		dropped.WithLabelValues("queue").Inc()
		w.log.Error(nil, "event dropped: the queue of events to write is full (is the API server reachable?)", "object", ref.Namespace+"/"+ref.Name, "kind", ref.Kind, "reason", reason, "note", note)
	}
}
