package reconciler

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/catalog"
	"github.com/kubist-io/kubist/internal/manager/eventwriter"
	"github.com/kubist-io/kubist/internal/manager/notify"
	"github.com/kubist-io/kubist/policies"
)

// Options configure the executors.
type Options struct {
	// Namespace is the manager's own: kubeconfig Secrets are read there only.
	Namespace string
	// ResyncPeriod is the period of the root run that triggers every Project.
	ResyncPeriod time.Duration
	// Metrics gathers what canary and experiment policies decide on; nil
	// without Prometheus.
	Metrics policies.MetricsProvider
	// Workers is the number of concurrent executor runs per kind.
	Workers int
	// ImportGrace is how long a Deployment exists before it is imported
	// as an Application; DefaultImportGrace when zero.
	ImportGrace time.Duration
	// WrapClient, when set, wraps the client the executors use (tests
	// count writes with it).
	WrapClient func(client.Client) client.Client
	// Notifications tune the delivery of release notifications.
	Notifications notify.Options
	// Shard, when set, limits the manager to the Projects of that shard
	// (label kubist.io/shard; DefaultShard for those without it) and to
	// everything below them. Empty: every Project.
	Shard string
}

// DefaultImportGrace is how long a Deployment exists before import.
const DefaultImportGrace = 30 * time.Second

// DefaultResyncPeriod is the root run's default period.
const DefaultResyncPeriod = 5 * time.Minute

// triggerBuffer is the capacity of each kind's trigger channel.
const triggerBuffer = 1024

// Setup adds every Kubist controller to the manager, the readiness check
// that waits for every Policy object to be loaded, and the periodic root
// run; it returns the executors' Reconciler.
func Setup(mgr ctrl.Manager, engine catalog.Engine, opts Options) (*Reconciler, error) {
	events := eventwriter.New(mgr.GetClient(), mgr.GetScheme(), mgr.GetLogger().WithName("events"))
	if err := mgr.Add(events); err != nil {
		return nil, err
	}
	policyReconciler := &PolicyReconciler{
		Client:   mgr.GetClient(),
		Compiler: engine.Compiler,
		Registry: engine.Registry,
		Recorder: events.Recorder("kubist-policy"),
		Elected:  mgr.Elected(),
		NoStatus: opts.Shard != "" && opts.Shard != DefaultShard,
	}
	if err := policyReconciler.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("policy controller: %w", err)
	}
	if err := mgr.AddReadyzCheck("policies-loaded", policyReconciler.LoadedChecker()); err != nil {
		return nil, fmt.Errorf("policy readiness check: %w", err)
	}
	for _, ix := range indexes() {
		if err := mgr.GetFieldIndexer().IndexField(context.Background(), ix.obj, ix.field, ix.extract); err != nil {
			return nil, fmt.Errorf("index %s: %w", ix.field, err)
		}
	}

	c := withMetadataReplies(mgr.GetClient(), mgr.GetConfig(), mgr.GetHTTPClient())
	if opts.WrapClient != nil {
		c = opts.WrapClient(c)
	}
	clusters := NewClusters(c, mgr.GetConfig(), mgr.GetClient(), opts.Namespace, mgr.GetScheme())
	if err := mgr.Add(clusters); err != nil {
		return nil, err
	}
	r := &Reconciler{
		Client: c, Registry: engine.Registry, Executors: engine.Executors, Recorder: events.Recorder("kubist"),
		Clusters: clusters, Metrics: opts.Metrics, triggers: map[string]chan event.GenericEvent{},
		ImportGrace: opts.ImportGrace, leaves: map[string]bool{}, pass: newRootPass(rootPassDepth),
	}
	if r.ImportGrace <= 0 {
		r.ImportGrace = DefaultImportGrace
	}
	r.Namespace = opts.Namespace
	r.Shard = opts.Shard
	r.Notifier = notify.New(opts.Notifications)
	if err := mgr.Add(r.Notifier); err != nil {
		return nil, err
	}
	for _, k := range v1alpha1.TreeKindNames() {
		r.triggers[k] = make(chan event.GenericEvent, triggerBuffer)
	}
	workers := max(opts.Workers, 1)
	copts := controller.Options{MaxConcurrentReconciles: workers}

	toClusters := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		if o.GetNamespace() != opts.Namespace {
			return nil
		}
		return r.requests(ctx, &v1alpha1.ClusterList{}, client.MatchingFields{indexSecret: o.GetName()})
	})
	deploymentToVCs := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.requests(ctx, &v1alpha1.VirtualClusterList{}, client.MatchingFields{indexTargetNS: o.GetNamespace()})
	})
	deploymentToApps := handler.EnqueueRequestsFromMapFunc(r.applicationsOfDeployment)
	releasesToApps := handler.EnqueueRequestsFromMapFunc(r.applicationsOfRelease)
	routeToTraffic := func(list func() client.ObjectList) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return r.requests(ctx, list(), client.InNamespace(o.GetNamespace()), client.MatchingFields{indexRoute: o.GetName()})
		})
	}

	// A pending action runs its release.
	actionToRelease := func(kind string) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			a := o.(*v1alpha1.ReleaseAction)
			if a.Spec.Target.Kind != kind || (a.Status.Phase != "" && a.Status.Phase != v1alpha1.ActionPending) {
				return nil
			}
			namespace := a.Namespace
			if k, _ := v1alpha1.TreeKind(kind); !k.Namespaced {
				namespace = ""
			}
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: namespace, Name: a.Spec.Target.Name}}}
		})
	}

	// A parent counts its children: it runs again when one comes or goes.
	// The parent is the one the child's references name (a VirtualCluster
	// is named by its namespace).
	toParent := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		obj := o.(v1alpha1.Object)
		parent, ok := v1alpha1.ParentOf(obj)
		if !ok {
			if k, _ := v1alpha1.TreeKind(v1alpha1.KindOf(obj)); k.Namespaced && k.Parent == "VirtualCluster" {
				return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.GetNamespace()}}}
			}
			return nil
		}
		namespace := ""
		if k, _ := v1alpha1.TreeKind(parent.Kind); k.Namespaced {
			namespace = o.GetNamespace()
		}
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: namespace, Name: parent.Name}}}
	})
	arrivals := builder.WithPredicates(predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }})
	// Each kind's children (v1alpha1.Tree): the arrivals and departures of
	// those it counts, and every change of those whose status it reads.
	children := func(kind string) func(*builder.Builder) *builder.Builder {
		return func(b *builder.Builder) *builder.Builder {
			for _, child := range v1alpha1.ChildKinds(kind) {
				switch {
				case child.ParentReadsStatus:
					b = b.Watches(child.New(), toParent)
				case child.ParentCounts:
					b = b.Watches(child.New(), toParent, arrivals)
				}
			}
			return b
		}
	}

	// What the tree does not say of each kind's controller: its executors
	// (the kind's implementations) and what else it watches.
	controllers := map[string]func(kind string) error{
		"Project": func(kind string) error { return register(mgr, r, projectKind(r), copts, children(kind)) },
		"Cluster": func(kind string) error {
			return register(mgr, r, clusterKind(r), copts, children(kind), func(b *builder.Builder) *builder.Builder {
				return b.Watches(&corev1.Secret{}, toClusters)
			})
		},
		"VirtualCluster": func(kind string) error {
			return register(mgr, r, virtualClusterKind(r), copts, children(kind), func(b *builder.Builder) *builder.Builder {
				return b.Watches(&appsv1.Deployment{}, deploymentToVCs, builder.WithPredicates(appLabelChanged))
			})
		},
		"Application": func(kind string) error {
			return register(mgr, r, applicationKind(r), copts, children(kind), func(b *builder.Builder) *builder.Builder {
				return b.Watches(&appsv1.Deployment{}, deploymentToApps).
					Watches(&v1alpha1.Route{}, releasesToApps, builder.WithPredicates(servingChanged)).
					Watches(&v1alpha1.CanaryRelease{}, releasesToApps, builder.WithPredicates(servingChanged))
			})
		},
		"Destination": func(kind string) error { return register(mgr, r, destinationKind(r), copts, children(kind)) },
		"Route": func(kind string) error {
			return register(mgr, r, routeKind(r), copts, children(kind), func(b *builder.Builder) *builder.Builder {
				return b.Watches(&v1alpha1.Application{}, handler.EnqueueRequestsFromMapFunc(r.routesOfApplication), builder.WithPredicates(versionsChanged)).
					// A plan that comes, goes, places or ends holds or frees
					// the templates of the Routes it releases.
					Watches(&v1alpha1.ReleasePlan{}, handler.EnqueueRequestsFromMapFunc(routesOfPlan), builder.WithPredicates(planPlacementChanged)).
					Watches(&v1alpha1.Destination{}, handler.EnqueueRequestsFromMapFunc(r.routesOfApplication), builder.WithPredicates(versionsChanged))
			})
		},
		"CanaryRelease": func(kind string) error {
			return register(mgr, r, canaryKind(r), copts, children(kind), func(b *builder.Builder) *builder.Builder {
				return b.Watches(&v1alpha1.Route{}, routeToTraffic(func() client.ObjectList { return &v1alpha1.CanaryReleaseList{} })).
					Watches(&v1alpha1.ReleaseAction{}, actionToRelease(kind))
			})
		},
		"Experiment": func(kind string) error {
			return register(mgr, r, experimentKind(r), copts, children(kind), func(b *builder.Builder) *builder.Builder {
				return b.Watches(&v1alpha1.Route{}, routeToTraffic(func() client.ObjectList { return &v1alpha1.ExperimentList{} })).
					Watches(&v1alpha1.ReleaseAction{}, actionToRelease(kind))
			})
		},
		"ReleasePlan": func(kind string) error {
			return register(mgr, r, planKind(r), copts, children(kind), func(b *builder.Builder) *builder.Builder {
				return b.Watches(&v1alpha1.CanaryRelease{}, handler.EnqueueRequestsFromMapFunc(releaseToPlan)).
					Watches(&v1alpha1.VirtualCluster{}, handler.EnqueueRequestsFromMapFunc(r.allPlans), builder.WithPredicates(labelsChanged)).
					// A plan that releases the newest ready subset finds it
					// when a version becomes ready, against the stable one.
					Watches(&v1alpha1.Application{}, handler.EnqueueRequestsFromMapFunc(r.unresolvedPlans), builder.WithPredicates(versionsChanged)).
					Watches(&v1alpha1.Route{}, handler.EnqueueRequestsFromMapFunc(r.unresolvedPlans), builder.WithPredicates(servingChanged)).
					Watches(&v1alpha1.ReleaseAction{}, actionToRelease(kind))
			})
		},
	}
	for _, k := range v1alpha1.Tree {
		add, ok := controllers[k.Kind]
		if !ok {
			return nil, fmt.Errorf("kind %s of the tree has no controller", k.Kind)
		}
		if err := add(k.Kind); err != nil {
			return nil, err
		}
	}
	period := opts.ResyncPeriod
	if period <= 0 {
		period = DefaultResyncPeriod
	}
	r.resync = period
	if err := mgr.Add(&rootRun{reconciler: r, period: period}); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(r.feedPass)); err != nil {
		return nil, err
	}
	releaseMetrics.export(r, mgr.Elected())
	return r, nil
}

// changed lets through the updates an executor must see — spec
// (generation), labels, annotations (e.g. an approved weight), deletion
// and finalizers — but not its own status writes, which would loop.
var changed = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, n := e.ObjectOld, e.ObjectNew
	return o.GetGeneration() != n.GetGeneration() ||
		!maps.Equal(o.GetLabels(), n.GetLabels()) ||
		!maps.Equal(o.GetAnnotations(), n.GetAnnotations()) ||
		!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
		!slices.Equal(o.GetFinalizers(), n.GetFinalizers())
}}

// servingChanged: which versions an Application's Routes and releases
// keep serving changes when a Route's stable subsets or ended releases do,
// or a release starts, ends or is retried (its phase) — not at each step.
var servingChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	switch o := e.ObjectOld.(type) {
	case *v1alpha1.Route:
		n := e.ObjectNew.(*v1alpha1.Route)
		return !equality.Semantic.DeepEqual(o.Status.Stable, n.Status.Stable) || len(o.Status.Releases) != len(n.Status.Releases) ||
			(len(n.Status.Releases) > 0 && !o.Status.Releases[len(o.Status.Releases)-1].Ended.Equal(&n.Status.Releases[len(n.Status.Releases)-1].Ended))
	case *v1alpha1.CanaryRelease:
		return o.Status.Phase != e.ObjectNew.(*v1alpha1.CanaryRelease).Status.Phase
	}
	return false
}}

// versionsChanged: a Route's release template reads an Application's
// versions (which are ready, and when each was created) and a
// Destination's subsets.
var versionsChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	if o, ok := e.ObjectOld.(*v1alpha1.Destination); ok {
		return !slices.Equal(o.Status.Subsets, e.ObjectNew.(*v1alpha1.Destination).Status.Subsets)
	}
	return !equality.Semantic.DeepEqual(e.ObjectOld.(*v1alpha1.Application).Status.Versions, e.ObjectNew.(*v1alpha1.Application).Status.Versions)
}}

// labelsChanged: a plan places VirtualClusters by their labels, so only
// those appearing, going or changing labels matter to it.
var labelsChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	return !maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels())
}}

// releaseToPlan: a plan runs on every change of the releases it started
// (its status follows their weights, its chain their phases).
func releaseToPlan(_ context.Context, o client.Object) []reconcile.Request {
	if plan := o.GetLabels()[v1alpha1.LabelPlan]; plan != "" {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: plan}}}
	}
	return nil
}

// allPlans are every ReleasePlan, for a change that may move a
// VirtualCluster into or out of a wave that has not started.
func (r *Reconciler) allPlans(ctx context.Context, _ client.Object) []reconcile.Request {
	var plans v1alpha1.ReleasePlanList
	if err := r.Client.List(ctx, &plans, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(plans.Items))
	for _, p := range plans.Items {
		if !p.Status.Phase.Ended() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: p.Name}})
		}
	}
	return out
}

// routesOfPlan are the Routes a plan releases, in the namespaces its
// status places.
func routesOfPlan(_ context.Context, o client.Object) []reconcile.Request {
	p := o.(*v1alpha1.ReleasePlan)
	var out []reconcile.Request
	for _, w := range p.Status.Waves {
		for _, m := range w.Members {
			for _, route := range p.Spec.Routes {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: m.Namespace, Name: route}})
			}
		}
	}
	return out
}

// planPlacementChanged: a plan's placement (its members) or its end.
var planPlacementChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, n := e.ObjectOld.(*v1alpha1.ReleasePlan), e.ObjectNew.(*v1alpha1.ReleasePlan)
	if o.Status.Phase.Ended() != n.Status.Phase.Ended() || len(o.Status.Waves) != len(n.Status.Waves) {
		return true
	}
	for i := range o.Status.Waves {
		if len(o.Status.Waves[i].Members) != len(n.Status.Waves[i].Members) {
			return true
		}
	}
	return false
}}

// unresolvedPlans are the ReleasePlans that have yet to find the newest
// ready subset they release.
func (r *Reconciler) unresolvedPlans(ctx context.Context, _ client.Object) []reconcile.Request {
	var plans v1alpha1.ReleasePlanList
	if err := r.Client.List(ctx, &plans, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, p := range plans.Items {
		if p.Spec.Subset == "" && p.Status.Subset == "" && !p.Status.Phase.Ended() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: p.Name}})
		}
	}
	return out
}

// appLabelChanged: a VirtualCluster imports by app label, so only
// Deployments appearing, going or changing that label matter to it.
var appLabelChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	return e.ObjectOld.GetLabels()[appLabel] != e.ObjectNew.GetLabels()[appLabel]
}}

// register adds one kind's controller: its own objects (spec and metadata
// changes), the triggers of its parents, and any further watches.
func register[T v1alpha1.Object](mgr ctrl.Manager, r *Reconciler, k *kind[T], opts controller.Options, watches ...func(*builder.Builder) *builder.Builder) error {
	if err := k.implementsCatalog(r.Executors); err != nil {
		return err
	}
	r.leaves[k.name] = k.implementation(r.Executors.DefaultFor(k.name), r.Executors).leaf()
	name := strings.ToLower(k.name)
	logger := mgr.GetLogger().WithValues("controller", name, "controllerKind", k.name)
	b := ctrl.NewControllerManagedBy(mgr).
		For(k.newObject(), builder.WithPredicates(changed)).
		Named(name).
		WithOptions(opts).
		WithLogConstructor(func(req *reconcile.Request) logr.Logger {
			// The resource's namespace and name, in one call and as
			// strings: each call makes zap copy and encode the logger's
			// fields, and controller-runtime's own constructor makes
			// two, one of them encoded by reflection, at every run.
			if req == nil {
				return logger
			}
			return logger.WithValues("namespace", req.Namespace, "name", req.Name)
		}).
		WatchesRawSource(source.Channel(r.triggers[k.name], cascaded))
	for _, w := range watches {
		b = w(b)
	}
	err := b.Complete(reconcile.Func(func(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
		return reconcileKind(ctx, r, k, req)
	}))
	if err != nil {
		return fmt.Errorf("%s controller: %w", k.name, err)
	}
	return nil
}

// cascaded enqueues what a parent's run (or the root run) triggers behind
// the work that is due: a root run that enqueues every resource of the
// tree must not delay a canary's step or a Route carrying it.
var cascaded = handler.TypedFuncs[client.Object, reconcile.Request]{
	GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(e.Object)}
		if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(handler.LowPriority)}, req)
			return
		}
		q.Add(req)
	},
}

// requests lists objects as reconcile requests.
func (r *Reconciler) requests(ctx context.Context, list client.ObjectList, opts ...client.ListOption) []reconcile.Request {
	children, err := r.childrenOf(ctx, "", list, opts...)
	if err != nil {
		log.FromContext(ctx).Error(err, "list for a watch")
		return nil
	}
	out := make([]reconcile.Request, len(children))
	for i, c := range children {
		out[i] = reconcile.Request{NamespacedName: c.key}
	}
	return out
}

// applicationsOfDeployment maps a Deployment to the Applications that
// select it, in the management namespaces of the VirtualClusters whose
// namespace it is in.
func (r *Reconciler) applicationsOfDeployment(ctx context.Context, o client.Object) []reconcile.Request {
	var vcs v1alpha1.VirtualClusterList
	if err := r.Client.List(ctx, &vcs, client.MatchingFields{indexTargetNS: o.GetNamespace()}); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, vc := range vcs.Items {
		var apps v1alpha1.ApplicationList
		if err := r.Client.List(ctx, &apps, client.InNamespace(vc.Name)); err != nil {
			continue
		}
		for i := range apps.Items {
			if labels.SelectorFromSet(applicationSelector(&apps.Items[i])).Matches(labels.Set(o.GetLabels())) {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&apps.Items[i])})
			}
		}
	}
	return out
}

// rootRun triggers every Project periodically: the safety net under the
// event-driven reconciliation.
type rootRun struct {
	reconciler *Reconciler
	period     time.Duration
}

func (r *rootRun) NeedLeaderElection() bool { return true }

func (r *rootRun) Start(ctx context.Context) error {
	ticker := time.NewTicker(r.period)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if err := r.reconciler.RootRun(ctx); err != nil {
				log.FromContext(ctx).Error(err, "root run")
			}
		}
	}
}

// RootRun triggers every Project, whose executors trigger their children
// in turn: one full pass over the tree.
func (r *Reconciler) RootRun(ctx context.Context) error {
	projects, err := r.childrenOf(ctx, "Project", &v1alpha1.ProjectList{})
	if err != nil {
		return err
	}
	owned := projects[:0]
	for _, p := range projects {
		if r.ownsProject(ctx, p.key.Name) {
			owned = append(owned, p)
		}
	}
	r.trigger(owned, true)
	return nil
}
