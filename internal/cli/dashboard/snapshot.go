package dashboard

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/cli/tree"
	"github.com/kubist-io/kubist/internal/release"
)

// eventsShown is how many of a release's last Events the page shows.
const eventsShown = 8

// Snapshot is what the page draws: the tree, the releases, and what the
// user cannot read.
type Snapshot struct {
	Time     time.Time `json:"time"`
	Synced   bool      `json:"synced"`
	Problems []string  `json:"problems,omitempty"`
	// Namespace is the one the dashboard watches, "" for all.
	Namespace  string    `json:"namespace,omitempty"`
	Projects   []string  `json:"projects"`
	Namespaces []string  `json:"namespaces"`
	Tree       []Node    `json:"tree"`
	Releases   []Release `json:"releases"`
	Routes     []Route   `json:"routes"`
	Plans      []Plan    `json:"plans"`
}

// Plan is a ReleasePlan as the page shows it: its waves as lanes, each
// VirtualCluster in its lane with its releases (whose cards, charts
// included, are in Releases), and each wave's figures.
type Plan struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Project string     `json:"project,omitempty"`
	Subset  string     `json:"subset"`
	Phase   string     `json:"phase"`
	Summary string     `json:"summary"`
	Lanes   []Lane     `json:"lanes"`
	Metrics tree.Table `json:"metrics"`
	History tree.Table `json:"history"`
	// Kind and Namespace are what the page sends with an action: a plan's
	// actions are created in the manager's namespace.
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Actions   []Action `json:"actions"`
}

// Lane is one wave of a plan.
type Lane struct {
	Name     string       `json:"name"`
	Phase    string       `json:"phase"`
	Started  string       `json:"started,omitempty"`
	Promoted string       `json:"promoted,omitempty"`
	Members  []LaneMember `json:"members"`
}

// LaneMember is one VirtualCluster of a wave, with the IDs of its
// releases' cards.
type LaneMember struct {
	VirtualCluster string   `json:"virtualCluster"`
	Cluster        string   `json:"cluster"`
	Phase          string   `json:"phase"`
	Releases       []string `json:"releases"`
	Problems       []string `json:"problems,omitempty"`
}

// Route is a Route as the page shows it: its stable subsets and the
// releases that ended on it.
type Route struct {
	ID        string     `json:"id"`
	Namespace string     `json:"namespace"`
	Name      string     `json:"name"`
	Project   string     `json:"project,omitempty"`
	Releasing string     `json:"releasing"`
	Stable    tree.Table `json:"stable"`
	Releases  tree.Table `json:"releases"`
}

// Node is a resource of the tree.
type Node struct {
	Kind      string `json:"kind"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Executor  string `json:"executor,omitempty"`
	// Ready is the Ready condition's status: True, False or Unknown.
	Ready   string `json:"ready,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// Release is the card the page draws of it, a release's or a Route's.
	Release  string `json:"release,omitempty"`
	Children []Node `json:"children,omitempty"`
}

// Release is one CanaryRelease or Experiment as the page shows it.
type Release struct {
	ID         string      `json:"id"`
	Kind       string      `json:"kind"`
	Namespace  string      `json:"namespace"`
	Name       string      `json:"name"`
	Project    string      `json:"project,omitempty"`
	Phase      string      `json:"phase"`
	Weights    string      `json:"weights"`
	Subsets    []string    `json:"subsets"`
	Served     string      `json:"served,omitempty"`
	Approved   *int32      `json:"approved,omitempty"`
	Policies   []string    `json:"policies"`
	Gates      []string    `json:"gates,omitempty"`
	Conditions []Condition `json:"conditions,omitempty"`
	Steps      []Step      `json:"steps"`
	Chart      string      `json:"chart"`
	Events     []Event     `json:"events,omitempty"`
	// Actions are the buttons: each with why it is refused now, if it is.
	Actions []Action `json:"actions"`
}

// Condition is one of a release's conditions.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// Step is one entry of a release's history.
type Step struct {
	Time      time.Time `json:"time"`
	Weights   string    `json:"weights"`
	Phase     string    `json:"phase,omitempty"`
	By        string    `json:"by"`
	Message   string    `json:"message,omitempty"`
	Requests  string    `json:"requests,omitempty"`
	ErrorRate string    `json:"errorRate,omitempty"`
	P99       string    `json:"p99,omitempty"`
}

// Event is one of a release's Events.
type Event struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Reason string    `json:"reason"`
	Note   string    `json:"note"`
	Count  int32     `json:"count,omitempty"`
}

// Action is one button of a release.
type Action struct {
	Name    string `json:"name"`
	Refused string `json:"refused,omitempty"`
}

// snapshot draws the picture from what the watches hold.
func (s *Server) snapshot() *Snapshot {
	now := s.now()
	snap := &Snapshot{Time: now, Synced: s.Synced(), Namespace: s.namespace, Projects: []string{}, Namespaces: []string{}, Tree: []Node{}, Releases: []Release{}, Routes: []Route{}, Plans: []Plan{}}
	for _, w := range s.kinds {
		if p := w.problem(); p != "" {
			snap.Problems = append(snap.Problems, p)
		}
	}
	o := tree.Objects{}
	for _, k := range v1alpha1.Tree {
		o[k.Kind] = s.byKind[k.Kind+"s"].objects()
	}
	sortByName(o)

	events := map[string][]eventsv1.Event{}
	for _, e := range items[eventsv1.Event](s.byKind["Events"]) {
		key := e.Regarding.Kind + "/" + e.Regarding.Namespace + "/" + e.Regarding.Name + "/" + string(e.Regarding.UID)
		events[key] = append(events[key], e)
	}
	pages := map[string][]v1alpha1.ReleaseHistory{}
	for _, p := range items[v1alpha1.ReleaseHistory](s.byKind["ReleaseHistories"]) {
		key := p.Namespace + "/" + p.Release.Name
		pages[key] = append(pages[key], p)
	}
	namespaces := map[string]bool{}
	var walk func(n *tree.Node, project string) Node
	walk = func(n *tree.Node, project string) Node {
		out := Node{Kind: n.Kind, Detail: n.Detail}
		if obj := n.Object; obj != nil {
			out.Name, out.Namespace = obj.GetName(), obj.GetNamespace()
			if out.Namespace != "" {
				namespaces[out.Namespace] = true
			}
			if ref := obj.GetStanzas().Executor; ref != nil {
				out.Executor = ref.Name
			}
			out.Ready = "Unknown"
			if c := meta.FindStatusCondition(obj.GetCommonStatus().Conditions, v1alpha1.ConditionReady); c != nil {
				out.Ready, out.Reason, out.Message = string(c.Status), c.Reason, c.Message
			}
			if n.Kind == "CanaryRelease" || n.Kind == "Experiment" {
				r := releaseOf(n.Kind, obj, pages[obj.GetNamespace()+"/"+obj.GetName()], project, now)
				r.Events = eventsOf(events[n.Kind+"/"+obj.GetNamespace()+"/"+obj.GetName()+"/"+string(obj.GetUID())])
				out.Release = r.ID
				snap.Releases = append(snap.Releases, r)
			}
			if p, ok := obj.(*v1alpha1.ReleasePlan); ok {
				plan := planOf(p, project, s.managerNamespace, now)
				out.Release = plan.ID
				snap.Plans = append(snap.Plans, plan)
			}
			if route, ok := obj.(*v1alpha1.Route); ok {
				r := Route{ID: "Route/" + route.Namespace + "/" + route.Name, Namespace: route.Namespace, Name: route.Name, Project: project,
					Releasing: cmp.Or(strings.Join(route.Status.ComposedFrom, ", "), "nothing"),
					Stable:    tree.StableTable(route), Releases: tree.ReleasesTable(route)}
				out.Release = r.ID
				snap.Routes = append(snap.Routes, r)
			}
		}
		for _, c := range n.Children {
			out.Children = append(out.Children, walk(c, project))
		}
		return out
	}
	for _, root := range tree.Build(o) {
		project := ""
		if root.Object != nil {
			project = root.Object.GetName()
			snap.Projects = append(snap.Projects, project)
		}
		snap.Tree = append(snap.Tree, walk(root, project))
	}
	for ns := range namespaces {
		snap.Namespaces = append(snap.Namespaces, ns)
	}
	slices.Sort(snap.Namespaces)
	return snap
}

// planOf is a plan's card: lanes of its waves.
func planOf(p *v1alpha1.ReleasePlan, project, managerNamespace string, now time.Time) Plan {
	out := Plan{ID: "ReleasePlan/" + p.Name, Name: p.Name, Project: project, Subset: cmp.Or(p.Status.Subset, p.Spec.Subset),
		Phase: string(p.Status.Phase), Summary: p.Status.Summary, Lanes: []Lane{}, Metrics: tree.WaveMetricsTable(p),
		Kind: "ReleasePlan", Namespace: managerNamespace, Actions: []Action{}}
	for _, name := range actionsOf["ReleasePlan"] {
		a := &v1alpha1.ReleaseAction{Spec: v1alpha1.ReleaseActionSpec{Target: v1alpha1.ActionTarget{Kind: "ReleasePlan", Name: p.Name}, Action: name}}
		out.Actions = append(out.Actions, Action{Name: string(name), Refused: release.Decide(a, p, now).Refused})
	}
	stamp := func(t *metav1.MicroTime) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, w := range p.Status.Waves {
		lane := Lane{Name: w.Name, Phase: string(w.Phase), Started: stamp(w.Started), Promoted: stamp(w.Promoted), Members: []LaneMember{}}
		for _, m := range w.Members {
			member := LaneMember{VirtualCluster: m.VirtualCluster, Cluster: m.Cluster, Phase: string(m.Phase), Releases: []string{}}
			for _, r := range m.Releases {
				if r.Name != "" {
					member.Releases = append(member.Releases, "CanaryRelease/"+m.Namespace+"/"+r.Name)
				}
				if r.Reverted != "" {
					member.Releases = append(member.Releases, "CanaryRelease/"+m.Namespace+"/"+r.Reverted)
				}
				if r.Problem != "" {
					member.Problems = append(member.Problems, r.Route+": "+r.Problem)
				}
			}
			lane.Members = append(lane.Members, member)
		}
		out.Lanes = append(out.Lanes, lane)
	}
	out.History = tree.Table{Head: []string{"TIME", "PHASE", "BY", "MESSAGE"}}
	for _, h := range p.Status.History {
		by := h.Policy
		if h.Action != "" {
			by = h.Action + " by " + cmp.Or(h.User, "unknown user")
		}
		out.History.Rows = append(out.History.Rows, []string{h.Time.UTC().Format(time.RFC3339), h.Phase, by, h.Message})
	}
	return out
}

// sortByName orders each kind's objects by namespace and name.
func sortByName(o tree.Objects) {
	for _, objs := range o {
		slices.SortFunc(objs, func(a, b v1alpha1.Object) int {
			return cmp.Or(strings.Compare(a.GetNamespace(), b.GetNamespace()), strings.Compare(a.GetName(), b.GetName()))
		})
	}
}

// actionsOf are the buttons of a kind of release, in the page's order.
var actionsOf = map[string][]v1alpha1.ActionName{
	"CanaryRelease": {v1alpha1.ActionPromote, v1alpha1.ActionPause, v1alpha1.ActionResume, v1alpha1.ActionApprove, v1alpha1.ActionAbort, v1alpha1.ActionRetry},
	"Experiment":    {v1alpha1.ActionPause, v1alpha1.ActionResume, v1alpha1.ActionConclude, v1alpha1.ActionAbort},
	// A plan's Promote promotes its current wave (kubist plan promote-wave).
	"ReleasePlan": {v1alpha1.ActionPause, v1alpha1.ActionResume, v1alpha1.ActionPromote, v1alpha1.ActionAbort},
}

// releaseOf is the page's view of a release; pages are the
// ReleaseHistories that may be its.
func releaseOf(kind string, obj v1alpha1.Object, pages []v1alpha1.ReleaseHistory, project string, now time.Time) Release {
	r := Release{
		ID: kind + "/" + obj.GetNamespace() + "/" + obj.GetName(), Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(),
		Project: project, Gates: release.GatesWaiting(obj), Steps: []Step{}, Policies: []string{},
	}
	r.Policies = append(r.Policies, release.Chain(obj)...)
	var weights map[string]int32
	switch o := obj.(type) {
	case *v1alpha1.CanaryRelease:
		r.Phase, weights, r.Approved = string(o.Status.Phase), o.Status.Weights, o.Status.ApprovedWeight
		if baseline := o.BaselineSubset(); baseline != "" {
			r.Subsets = append(r.Subsets, baseline)
		}
		r.Subsets = append(r.Subsets, o.Spec.Subset)
		if s := o.Status.Served; s != nil && s.Summary != "" {
			r.Served = fmt.Sprintf("%s of %d requests, when the weights were %s", s.Summary, s.Requests, v1alpha1.SplitString(s.Weights))
		}
	case *v1alpha1.Experiment:
		r.Phase, weights = string(o.Status.Phase), o.Status.Weights
		r.Subsets = append(r.Subsets, o.Spec.Subsets...)
	}
	r.Phase, r.Weights = tree.Phase(r.Phase), tree.Weights(weights)
	for _, c := range obj.GetCommonStatus().Conditions {
		r.Conditions = append(r.Conditions, Condition{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message})
	}
	history := release.History(obj, pages)
	for _, h := range history {
		st := Step{Time: h.Time.Time, Weights: v1alpha1.SplitString(h.Weights), Phase: h.Phase, By: release.DecidedBy(h), Message: h.Message}
		st.Requests, st.ErrorRate, st.P99 = release.StepFigures(h.Metrics)
		r.Steps = append(r.Steps, st)
	}
	var served *v1alpha1.ServedSplit
	if c, ok := obj.(*v1alpha1.CanaryRelease); ok {
		served = c.Status.Served
	}
	r.Chart = Chart(history, r.Subsets, served, now)
	for _, name := range actionsOf[kind] {
		a := &v1alpha1.ReleaseAction{Spec: v1alpha1.ReleaseActionSpec{Target: v1alpha1.ActionTarget{Kind: kind, Name: obj.GetName()}, Action: name}}
		switch name {
		case v1alpha1.ActionApprove:
			w := int32(100)
			a.Spec.Weight = &w
		case v1alpha1.ActionConclude:
			if len(r.Subsets) > 0 {
				a.Spec.Winner = r.Subsets[len(r.Subsets)-1]
			}
		}
		r.Actions = append(r.Actions, Action{Name: string(name), Refused: release.Decide(a, obj, now).Refused})
	}
	return r
}

// eventsOf are a release's last Events, newest last.
func eventsOf(events []eventsv1.Event) []Event {
	slices.SortFunc(events, func(a, b eventsv1.Event) int { return release.EventTime(&a).Compare(release.EventTime(&b)) })
	if len(events) > eventsShown {
		events = events[len(events)-eventsShown:]
	}
	var out []Event
	for i := range events {
		e := &events[i]
		ev := Event{Time: release.EventTime(e), Type: e.Type, Reason: e.Reason, Note: e.Note}
		switch {
		case e.Series != nil:
			ev.Count = e.Series.Count
		case e.DeprecatedCount > 1:
			ev.Count = e.DeprecatedCount
		}
		out = append(out, ev)
	}
	return out
}
