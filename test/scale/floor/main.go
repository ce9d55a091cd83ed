// Command floor is the least a controller built on controller-runtime
// does for a canary step, the reference BenchmarkStepFloor measures the
// manager against: one controller writes a CanaryRelease's status (its
// weights and a history of its last five steps) every period until the
// canary has all the traffic, and another, on each change of a
// CanaryRelease, writes its VirtualService's weights. Both read from the
// cache, configured as the manager's (reconciler.CacheOptions), through
// controller-runtime's client with its defaults. No policy, no Route, no
// Event, no metric: only the two writes of a step and their watch events.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	istioapi "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/reconciler"
)

func main() {
	// --kubeconfig is controller-runtime's flag (ctrl.GetConfig).
	period := flag.Duration("period", 30*time.Second, "time between two steps of a canary")
	step := flag.Int("step", 10, "percent of the traffic a step moves")
	workers := flag.Int("workers", 4, "concurrent runs per controller")
	flag.Parse()
	ctrl.SetLogger(logr.Discard())
	if err := run(*period, int32(*step), *workers); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(period time.Duration, step int32, workers int) error {
	config, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	config.QPS, config.Burst = 1000, 2000
	mgr, err := ctrl.NewManager(config, ctrl.Options{
		Scheme:                 scheme.New(),
		Cache:                  reconciler.CacheOptions(""),
		Metrics:                server.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return err
	}
	c := mgr.GetClient()
	opts := controller.Options{MaxConcurrentReconciles: workers}

	// The canary: a step every period, its status written once per step.
	err = ctrl.NewControllerManagedBy(mgr).Named("canary").WithOptions(opts).
		For(&v1alpha1.CanaryRelease{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			var cr v1alpha1.CanaryRelease
			if err := c.Get(ctx, req.NamespacedName, &cr); err != nil {
				return reconcile.Result{}, client.IgnoreNotFound(err)
			}
			canary, baseline := cr.Spec.Subset, cr.Spec.Baseline
			weight := cr.Status.Weights[canary]
			if weight >= 100 {
				return reconcile.Result{}, nil
			}
			now := time.Now()
			if last := cr.Status.LastStepTime; last != nil {
				if wait := last.Add(period).Sub(now); wait > 0 {
					return reconcile.Result{RequeueAfter: wait}, nil
				}
			}
			weight = min(weight+step, 100)
			at := metav1.NewMicroTime(now)
			cr.Status.Weights = map[string]int32{baseline: 100 - weight, canary: weight}
			cr.Status.Phase = v1alpha1.CanaryProgressing
			cr.Status.LastStepTime = &at
			cr.Status.History = append(cr.Status.History, v1alpha1.ReleaseStep{Time: at, Weights: cr.Status.Weights,
				Phase: string(cr.Status.Phase), Message: "canary " + canary + " at " + strconv.Itoa(int(weight)) + "%"})
			if n := len(cr.Status.History); n > 5 {
				cr.Status.History = cr.Status.History[n-5:]
			}
			if err := c.Status().Update(ctx, &cr); err != nil {
				if apierrors.IsConflict(err) {
					return reconcile.Result{RequeueAfter: time.Millisecond}, nil
				}
				return reconcile.Result{}, err
			}
			return reconcile.Result{RequeueAfter: period}, nil
		}))
	if err != nil {
		return err
	}

	// The route: on each change of a canary, its VirtualService's weights.
	err = ctrl.NewControllerManagedBy(mgr).Named("route").WithOptions(opts).
		For(&v1alpha1.CanaryRelease{}).
		Complete(reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			var cr v1alpha1.CanaryRelease
			if err := c.Get(ctx, req.NamespacedName, &cr); err != nil {
				return reconcile.Result{}, client.IgnoreNotFound(err)
			}
			if len(cr.Status.Weights) == 0 {
				return reconcile.Result{}, nil
			}
			var routes []*istioapi.HTTPRouteDestination
			for _, subset := range []string{cr.Spec.Baseline, cr.Spec.Subset} {
				if w := cr.Status.Weights[subset]; w > 0 {
					routes = append(routes, &istioapi.HTTPRouteDestination{
						Destination: &istioapi.Destination{Host: cr.Spec.Destination, Subset: subset}, Weight: w})
				}
			}
			var vs networkingv1.VirtualService
			err := c.Get(ctx, client.ObjectKey{Namespace: cr.Namespace, Name: cr.Spec.Route}, &vs)
			if apierrors.IsNotFound(err) {
				vs = networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: cr.Namespace, Name: cr.Spec.Route,
					Labels: map[string]string{v1alpha1.LabelOwnerName: cr.Spec.Route}},
					Spec: istioapi.VirtualService{Hosts: []string{cr.Spec.Destination}, Http: []*istioapi.HTTPRoute{{Route: routes}}}}
				return reconcile.Result{}, c.Create(ctx, &vs)
			}
			if err != nil {
				return reconcile.Result{}, err
			}
			vs.Spec.Http = []*istioapi.HTTPRoute{{Route: routes}}
			if err := c.Update(ctx, &vs); err != nil {
				if apierrors.IsConflict(err) {
					return reconcile.Result{RequeueAfter: time.Millisecond}, nil
				}
				return reconcile.Result{}, err
			}
			return reconcile.Result{}, nil
		}))
	if err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}
