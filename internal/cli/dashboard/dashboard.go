// Package dashboard serves `kubist dashboard`: one page that shows the
// Kubist tree and every release as it happens, and sends the release
// actions of `kubist canary` and `kubist experiment` with the user's own
// credentials. It watches each kind once, with the user's kubeconfig,
// and pushes a new picture to every open page (server-sent events) when
// a watch sees a change: pages never poll the API server.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/release"
	"github.com/kubist-io/kubist/internal/scheme"
)

//go:embed assets
var assets embed.FS

// Server is the dashboard: its watches, the picture it last drew, and
// its HTTP handler.
type Server struct {
	client    client.WithWatch
	namespace string
	// managerNamespace is where a ReleasePlan's actions are created.
	managerNamespace string
	kinds            []*watched
	byKind           map[string]*watched
	// actionWait is how long an action request waits for the release's
	// executor to apply or refuse it before answering "asked".
	actionWait time.Duration
	// debounce gathers the changes of one burst (a step writes the
	// status, the VirtualService's owner and an Event) into one picture.
	debounce time.Duration
	now      func() time.Time

	// drawing lets one request draw a picture at a time.
	drawing sync.Mutex
	mu      sync.Mutex
	version uint64
	changed chan struct{}
	drawn   *picture
}

// picture is one snapshot, drawn once for every page that asks.
type picture struct {
	version uint64
	body    []byte
}

// New builds the dashboard on the user's REST config. namespace limits
// the namespaced kinds to one namespace ("" for all).
func New(cfg *rest.Config, namespace string) (*Server, error) {
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, err
	}
	return newServer(c, namespace), nil
}

// newServer builds the dashboard on a client.
func newServer(c client.WithWatch, namespace string) *Server {
	s := &Server{client: c, namespace: namespace, managerNamespace: DefaultManagerNamespace, byKind: map[string]*watched{}, changed: make(chan struct{}),
		actionWait: 10 * time.Second, debounce: 100 * time.Millisecond, now: time.Now}
	add := func(kind string, example client.Object, list client.ObjectList, namespaced bool) {
		ns := ""
		if namespaced {
			ns = namespace
		}
		w := newWatched(c, kind, example, list, ns, s.bump)
		s.kinds = append(s.kinds, w)
		s.byKind[kind] = w
	}
	for _, k := range v1alpha1.Tree {
		add(k.Kind+"s", k.New(), k.NewList(), k.Namespaced)
	}
	add("Events", &eventsv1.Event{}, &eventsv1.EventList{}, true)
	add("ReleaseHistories", &v1alpha1.ReleaseHistory{}, &v1alpha1.ReleaseHistoryList{}, true)
	return s
}

// DefaultManagerNamespace is the manager's namespace the chart installs
// into, where a ReleasePlan's actions are created.
const DefaultManagerNamespace = "kubist-system"

// SetManagerNamespace says where the manager runs, for a ReleasePlan's
// actions.
func (s *Server) SetManagerNamespace(namespace string) { s.managerNamespace = namespace }

// Start runs the watches until ctx ends. A kind the user may not read
// is shown as such on the page; the others work.
func (s *Server) Start(ctx context.Context) {
	for _, w := range s.kinds {
		go w.informer.RunWithContext(ctx)
	}
}

// bump says that something the page shows has changed.
func (s *Server) bump() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
}

// current is the picture of the latest version, drawn if no page has
// asked for it yet, and the channel closed at the next change. It draws
// outside the lock the watches' handlers take, so that they never wait
// for a drawing.
func (s *Server) current() (*picture, <-chan struct{}, error) {
	s.mu.Lock()
	version, changed, drawn := s.version, s.changed, s.drawn
	s.mu.Unlock()
	if drawn != nil && drawn.version >= version {
		return drawn, changed, nil
	}
	s.drawing.Lock()
	defer s.drawing.Unlock()
	s.mu.Lock()
	drawn = s.drawn
	s.mu.Unlock()
	if drawn != nil && drawn.version >= version {
		// Another page's request drew it meanwhile.
		return drawn, changed, nil
	}
	body, err := json.Marshal(s.snapshot())
	if err != nil {
		return nil, nil, err
	}
	p := &picture{version: version, body: body}
	s.mu.Lock()
	s.drawn = p
	s.mu.Unlock()
	return p, changed, nil
}

// Handler serves the page, its assets, the stream of pictures and the
// actions. guard refuses what does not come from the page itself.
func (s *Server) Handler(listen string) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/snapshot", s.serveSnapshot)
	mux.HandleFunc("GET /api/stream", s.serveStream)
	mux.HandleFunc("POST /api/actions", s.serveAction)
	return guard(listen, mux)
}

func (s *Server) serveSnapshot(w http.ResponseWriter, _ *http.Request) {
	p, _, err := s.current()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(p.body)
}

// serveStream sends the picture now and again after every change, as
// server-sent events, until the page goes away.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	sent := ^uint64(0)
	for {
		p, changed, err := s.current()
		if err != nil {
			return
		}
		if p.version != sent {
			if _, err := fmt.Fprintf(w, "data: %s\n\n", p.body); err != nil {
				return
			}
			flusher.Flush()
			sent = p.version
		}
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			flusher.Flush()
			continue
		case <-changed:
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(s.debounce):
		}
	}
}

// actionRequest is what a button sends.
type actionRequest struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Action    string `json:"action"`
	Full      bool   `json:"full,omitempty"`
	Weight    *int32 `json:"weight,omitempty"`
	Winner    string `json:"winner,omitempty"`
}

// actionAnswer is what the page shows of it.
type actionAnswer struct {
	Phase   string `json:"phase,omitempty"`
	Message string `json:"message"`
	Action  string `json:"action,omitempty"`
}

// serveAction creates the ReleaseAction with the user's credentials and
// answers with what became of it: applied, refused by the executor, or
// refused by the API server (RBAC or admission) with its message.
func (s *Server) serveAction(w http.ResponseWriter, r *http.Request) {
	var req actionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, actionAnswer{Message: "the request is not an action: " + err.Error()})
		return
	}
	switch req.Kind {
	case "CanaryRelease", "Experiment":
	case "ReleasePlan":
		// Whatever the page said: a plan's actions live in the manager's namespace.
		req.Namespace = s.managerNamespace
	default:
		writeJSON(w, http.StatusBadRequest, actionAnswer{Message: fmt.Sprintf("kind %q is not a release: CanaryRelease, Experiment or ReleasePlan", req.Kind)})
		return
	}
	spec := v1alpha1.ReleaseActionSpec{
		Target: v1alpha1.ActionTarget{Kind: req.Kind, Name: req.Name}, Action: v1alpha1.ActionName(req.Action),
		Full: req.Full, Weight: req.Weight, Winner: req.Winner,
	}
	a, err := release.Ask(r.Context(), s.client, req.Namespace, spec)
	if err != nil {
		code := http.StatusUnprocessableEntity
		var status apierrors.APIStatus
		if errors.As(err, &status) && status.Status().Code != 0 {
			code = int(status.Status().Code)
		}
		writeJSON(w, code, actionAnswer{Phase: string(v1alpha1.ActionRefused), Message: err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.actionWait)
	defer cancel()
	what := release.Target(req.Namespace, spec)
	a, err = release.Await(ctx, s.client, a, 200*time.Millisecond)
	switch {
	case errors.Is(err, release.ErrNotSettled):
		writeJSON(w, http.StatusAccepted, actionAnswer{Action: a.Name, Message: fmt.Sprintf("%s: %s asked (releaseaction %s), not applied yet: is the Kubist manager running?", what, spec.Summary(), a.Name)})
	case err != nil:
		writeJSON(w, http.StatusBadGateway, actionAnswer{Action: a.Name, Message: err.Error()})
	case a.Status.Phase == v1alpha1.ActionRefused:
		writeJSON(w, http.StatusConflict, actionAnswer{Phase: string(a.Status.Phase), Action: a.Name, Message: fmt.Sprintf("%s: %s refused: %s", what, spec.Summary(), a.Status.Message)})
	default:
		writeJSON(w, http.StatusOK, actionAnswer{Phase: string(a.Status.Phase), Action: a.Name, Message: fmt.Sprintf("%s: %s by %s: %s", what, spec.Summary(), a.Spec.RequestedBy, a.Status.Message)})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// guard keeps the page and its actions to the page itself:
//   - on a loopback address, only requests naming a loopback host are
//     served, so a web site cannot reach the dashboard through a DNS name
//     it points at 127.0.0.1 (DNS rebinding);
//   - an action must be a JSON POST with the page's own header, which a
//     form or a cross-site request cannot send without a CORS preflight
//     the dashboard never grants, and an Origin, when the browser sends
//     one, must be the dashboard's own;
//   - the page may load nothing but its own assets (Content-Security-Policy).
func guard(listen string, next http.Handler) http.Handler {
	host, _, _ := net.SplitHostPort(listen)
	loopback := isLoopback(host)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loopback {
			h, _, err := net.SplitHostPort(r.Host)
			if err != nil {
				h = r.Host
			}
			if !isLoopback(h) {
				http.Error(w, fmt.Sprintf("host %q is not this machine's: open the dashboard at a loopback address", r.Host), http.StatusForbidden)
				return
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if r.Header.Get("X-Kubist-Dashboard") != "1" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				http.Error(w, "actions come from the dashboard's page only", http.StatusForbidden)
				return
			}
			if origin := r.Header.Get("Origin"); origin != "" && origin != "http://"+r.Host {
				http.Error(w, fmt.Sprintf("origin %q is not the dashboard's", origin), http.StatusForbidden)
				return
			}
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Synced says whether every kind the user may read has been listed.
func (s *Server) Synced() bool {
	for _, w := range s.kinds {
		if !w.informer.HasSynced() && w.problem() == "" {
			return false
		}
	}
	return true
}
