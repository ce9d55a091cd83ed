//go:build faults

package faults

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/manager/app"
	"github.com/kubist-io/kubist/test/testenv"
)

// TestShards: two managers on one API server, `--shard a` and `--shard b`,
// each leader-elected on a Lease of its own, run the canaries of the
// Projects labelled for their shard and no other. Shard b's manager is
// killed: shard a's canaries go on stepping on time while b's wait, and b's
// finish once their manager is back; every history holds each step once.
func TestShards(t *testing.T) {
	const period = 2 * time.Second
	binary, env := leaderElectionEnv(t)
	shards := map[string][]string{
		"a": progressingCanaries(t, env, "shard-a", 3, period),
		"b": progressingCanaries(t, env, "shard-b", 3, period),
	}
	managers := map[string]*managerProcess{}
	for shard, namespaces := range shards {
		for _, ns := range namespaces {
			p := &v1alpha1.Project{}
			if err := env.Client.Get(t.Context(), types.NamespacedName{Name: ns}, p); err != nil {
				t.Fatal(err)
			}
			patch := client.MergeFrom(p.DeepCopy())
			p.Labels = map[string]string{v1alpha1.LabelShard: shard}
			if err := env.Client.Patch(t.Context(), p, patch); err != nil {
				t.Fatal(err)
			}
		}
		managers[shard] = newManagerProcess(t, binary, env, "shard "+shard, "--shard="+shard, "--leader-elect=true", "--resync-period=30s")
		managers[shard].Start()
	}

	for shard, m := range managers {
		testenv.Eventually(t, time.Minute, "the manager of shard "+shard+" leads its own Lease", func() error {
			if err := leading(m); err != nil {
				return err
			}
			lease := &coordinationv1.Lease{}
			return env.Client.Get(t.Context(), types.NamespacedName{Namespace: controlplane.WebhookNamespace, Name: app.LeaseName(shard)}, lease)
		})
	}
	testenv.Eventually(t, time.Minute, "the canaries of both shards under way", func() error {
		for _, namespaces := range shards {
			for _, ns := range namespaces {
				if w := canary(t, env.Client, ns).Status.CanaryWeight; w < 20 {
					return fmt.Errorf("%s at %d%%", ns, w)
				}
			}
		}
		return nil
	})
	// Each manager exports the weights of the canaries it runs, and only
	// those.
	for shard, m := range managers {
		ran, err := testenv.MetricLabelValues(m.metricsURL, "kubist_canary_weight", "namespace")
		if err != nil {
			t.Fatal(err)
		}
		for other, namespaces := range shards {
			for _, ns := range namespaces {
				if ran[ns] != (shard == other) {
					t.Errorf("the manager of shard %s ran the canary of %s (shard %s): %v", shard, ns, other, ran[ns])
				}
			}
		}
	}

	managers["b"].Stop(syscall.SIGKILL)
	killed := time.Now()
	frozen := map[string]int32{}
	for _, ns := range shards["b"] {
		frozen[ns] = canary(t, env.Client, ns).Status.CanaryWeight
	}
	checkCanariesFinished(t, env.Client, shards["a"], 2*time.Minute)
	for _, ns := range shards["a"] {
		checkOnTime(t, env.Client, canary(t, env.Client, ns), period, killed)
	}
	for _, ns := range shards["b"] {
		if w := canary(t, env.Client, ns).Status.CanaryWeight; w != frozen[ns] {
			t.Errorf("%s (shard b) moved from %d%% to %d%% without its manager", ns, frozen[ns], w)
		}
	}
	managers["b"].Start()
	checkCanariesFinished(t, env.Client, shards["b"], 2*time.Minute)
}

// checkOnTime: each step of the history after since came within a second
// of its period after the one before.
func checkOnTime(t *testing.T, c client.Client, cr *v1alpha1.CanaryRelease, period time.Duration, since time.Time) {
	t.Helper()
	var late []string
	var longest time.Duration
	h := history(t, c, cr)
	for i := 1; i < len(h); i++ {
		if h[i].Time.Time.Before(since) {
			continue
		}
		gap := h[i].Time.Sub(h[i-1].Time.Time)
		longest = max(longest, gap)
		if gap > period+time.Second {
			late = append(late, fmt.Sprintf("%d%% %s after the step before", h[i].Weights[cr.Spec.Subset], gap.Round(time.Millisecond)))
		}
	}
	if len(late) > 0 {
		t.Errorf("%s/%s stepped late while the other shard's manager was down: %s", cr.Namespace, cr.Name, strings.Join(late, "; "))
	}
	if len(h) == 0 {
		t.Error(errors.New("no history"))
	}
	t.Logf("%s/%s: longest step period %s while the other shard's manager was down", cr.Namespace, cr.Name, longest.Round(time.Millisecond))
}
