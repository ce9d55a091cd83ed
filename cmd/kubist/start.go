//go:build !manager_only

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/release"
)

// startOptions are kubist release's flags.
type startOptions struct {
	subset, destination, httpRoute string
	policies, sets                 []string
	follow                         bool
	interval                       time.Duration
}

func newStartCommand() *cobra.Command {
	var o startOptions
	cmd := &cobra.Command{
		Use:   "release ROUTE",
		Short: "Start a release on a Route: a CanaryRelease from its stable subset to the newest ready subset (or --subset), with the Route's release template (or --policy); prints what it created and follows it until it ends",
		Args:  cobra.ExactArgs(1),
	}
	flags := clientFlags(cmd)
	cmd.Flags().StringVar(&o.subset, "subset", "", "Subset to release; the default is the newest ready subset that is not the stable one.")
	cmd.Flags().StringVar(&o.destination, "destination", "", "Destination whose subset is released; the default is the release template's, or the one the Route routes to.")
	cmd.Flags().StringVar(&o.httpRoute, "http-route", "", "Rule of the Route to shift; the default is the release template's.")
	cmd.Flags().StringArrayVar(&o.policies, "policy", nil, "Policy of the release, repeated for a chain; the default is the release template's policies.")
	cmd.Flags().StringArrayVar(&o.sets, "set", nil, "Parameter k=v of the last --policy (the value read as YAML: 20, 0.1, 10s, true).")
	cmd.Flags().BoolVar(&o.follow, "follow", true, "Follow the release, as kubist get canary --watch does, until it ends.")
	cmd.Flags().DurationVar(&o.interval, "interval", time.Second, "How often --follow reads the release.")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, namespace, err := clientOf(flags)
		if err != nil {
			return err
		}
		created, summary, err := startRelease(cmd.Context(), c, types.NamespacedName{Namespace: namespace, Name: args[0]}, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "canaryrelease.kubist.io/%s created: %s\n", created.Name, summary)
		if !o.follow {
			return nil
		}
		return followRelease(cmd, c, client.ObjectKeyFromObject(created), o.interval)
	}
	return cmd
}

// startRelease works out and creates the CanaryRelease kubist release
// asks for; it returns it and a line saying what it releases.
func startRelease(ctx context.Context, c client.Client, key types.NamespacedName, o startOptions) (*v1alpha1.CanaryRelease, string, error) {
	var route v1alpha1.Route
	if err := c.Get(ctx, key, &route); err != nil {
		return nil, "", fmt.Errorf("route %s: %w", key, err)
	}
	t := route.Spec.Release
	if t == nil {
		t = &v1alpha1.ReleaseTemplate{}
	}
	destination, rule := o.destination, o.httpRoute
	if destination == "" {
		destination = t.Destination
	}
	if rule == "" {
		rule = t.HTTPRoute
	}
	if destination == "" {
		var names []string
		for _, e := range route.Status.Stable {
			if !slices.Contains(names, e.Destination) {
				names = append(names, e.Destination)
			}
		}
		if len(names) != 1 {
			return nil, "", fmt.Errorf("route %s has no release template and sends one subset of %d Destinations (%s): name one with --destination",
				route.Name, len(names), strings.Join(names, ", "))
		}
		destination = names[0]
	}
	stable := ""
	for _, e := range route.Status.Stable {
		if e.Destination == destination && (rule == "" || e.Rule == rule) {
			stable = e.Subset
			break
		}
	}
	if stable == "" {
		return nil, "", fmt.Errorf("route %s records no stable subset of Destination %s%s: name a rule that sends it one subset (--http-route), or wait for the Route's executor to run",
			route.Name, destination, map[bool]string{true: " in rule " + rule, false: ""}[rule != ""])
	}
	var d v1alpha1.Destination
	if err := c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: destination}, &d); err != nil {
		return nil, "", fmt.Errorf("destination %s: %w", destination, err)
	}
	var app v1alpha1.Application
	if err := c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: d.Spec.Application}, &app); err != nil {
		return nil, "", fmt.Errorf("application %s of Destination %s: %w", d.Spec.Application, destination, err)
	}
	subsets, versions := release.SubsetVersions(&d, &app)
	subset := o.subset
	switch {
	case subset == "":
		subset = release.Newest(subsets, versions, func(s string, _ v1alpha1.ApplicationVersion) bool { return s != stable })
		if subset == "" {
			return nil, "", fmt.Errorf("no ready subset of Destination %s other than the stable %s: deploy a new version, or name a subset with --subset", destination, stable)
		}
	case !slices.Contains(subsets, subset):
		return nil, "", fmt.Errorf("subset %s (--subset) is not a subset of Destination %s (subsets: %s)", subset, destination, strings.Join(subsets, ", "))
	case subset == stable:
		return nil, "", fmt.Errorf("subset %s (--subset) is already the stable subset of Route %s for Destination %s: there is nothing to release", subset, route.Name, destination)
	}
	refs := slices.Clone(t.Policies)
	if len(o.policies) > 0 {
		refs = nil
		for _, p := range o.policies {
			refs = append(refs, v1alpha1.PolicyRef{Name: p})
		}
	}
	for _, kv := range o.sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, "", fmt.Errorf("--set %q: want k=v, e.g. --set step=20", kv)
		}
		if len(refs) == 0 {
			return nil, "", fmt.Errorf("--set %s: name the policy it is a parameter of with --policy", kv)
		}
		var value any
		if err := yaml.Unmarshal([]byte(v), &value); err != nil {
			return nil, "", fmt.Errorf("--set %s: the value is not YAML: %w", kv, err)
		}
		raw, err := json.Marshal(value)
		if err != nil {
			return nil, "", fmt.Errorf("--set %s: %w", kv, err)
		}
		last := &refs[len(refs)-1]
		if last.Parameters == nil {
			last.Parameters = v1alpha1.Parameters{}
		}
		last.Parameters[k] = apiextensionsv1.JSON{Raw: raw}
	}
	cr := &v1alpha1.CanaryRelease{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ReleaseName(route.Name, subset), Namespace: key.Namespace,
			Labels: map[string]string{v1alpha1.LabelRoute: route.Name}},
		Spec: v1alpha1.CanaryReleaseSpec{Stanzas: v1alpha1.Stanzas{Executor: t.Executor.DeepCopy(), Policies: refs},
			Route: route.Name, Destination: destination, Subset: subset, Baseline: stable, HTTPRoute: rule},
	}
	if err := c.Create(ctx, cr); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, "", fmt.Errorf("CanaryRelease %s exists already (kubist get canary %s shows it): delete it to release %s anew", cr.Name, cr.Name, subset)
		}
		return nil, "", err
	}
	where := "Route " + route.Name
	if rule != "" {
		where += ", rule " + rule
	}
	return cr, fmt.Sprintf("%s → %s of Destination %s on %s", stable, subset, destination, where), nil
}

// followRelease draws a release as kubist get canary --watch does until
// it ends (the last frame shows how) or the command is interrupted.
func followRelease(cmd *cobra.Command, c client.Client, key types.NamespacedName, interval time.Duration) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	ended := false
	render := func(ctx context.Context) (string, error) {
		if ended {
			// The frame that showed the end is drawn: stop.
			cancel()
		}
		var cr v1alpha1.CanaryRelease
		if err := c.Get(ctx, key, &cr); err == nil && cr.Status.Phase.Ended() {
			ended = true
		}
		return renderRelease(ctx, c, "CanaryRelease", key, "")
	}
	title := fmt.Sprintf("(kubist get canary %s --watch)", key.Name)
	return watchRendered(ctx, cmd.OutOrStdout(), interval, isTerminal(cmd.OutOrStdout()), title, render)
}
