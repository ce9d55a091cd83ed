package reconciler

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unique"

	"k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// compactCached is the cache's transform of every object but Deployments
// (trimDeployment): it drops the managed fields, which nothing reads and
// which are a large share of every object a status is written to, and
// makes Kubist's statuses cheaper to hold.
//
// A release's history is most of what the cache holds of it: a step of
// the history decoded from JSON took about 590 bytes (its weights a Go map
// of their own, every string a copy), so 4,000 releases of 10 steps held
// 23 MiB, a quarter of the manager's live heap at 11,110 resources. What
// repeats from step to step and release to release — policy names,
// phases, messages such as "canary v2 at 30%", the condition types and
// reasons, the weights themselves — is held once (strings through Go's
// unique package, splits through a small table), and each list is held
// at its length rather than the capacity the decoder grew it to.
//
// The cache's objects are read-only (its readers get copies, or promise
// not to write, client.UnsafeDisableDeepCopy): shared maps and strings are
// never written through. A copy (DeepCopy) owns its maps again.
func compactCached(in any) (any, error) {
	obj := in
	if d, ok := in.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if _, err := stripManagedFields(obj); err != nil {
		return nil, err
	}
	switch o := obj.(type) {
	case *v1alpha1.CanaryRelease:
		compactHistory(&o.Status.History)
		o.Status.Weights = sharedWeights(o.Status.Weights)
	case *v1alpha1.Experiment:
		compactHistory(&o.Status.History)
		o.Status.Weights = sharedWeights(o.Status.Weights)
	}
	if k, ok := obj.(v1alpha1.Object); ok {
		compactCommon(k.GetCommonStatus())
	}
	return in, nil
}

// stripManagedFields is controller-runtime's transform that drops them.
var stripManagedFields = crcache.TransformStripManagedFields()

// intern returns s held once for the whole process (Go frees it once no
// object holds it any more).
func intern[S ~string](s S) S {
	if s == "" {
		return s
	}
	return S(unique.Make(string(s)).Value())
}

// atLength reallocates a list the JSON decoder grew by doubling at its length.
func atLength[T any](list []T) []T {
	if cap(list) == len(list) {
		return list
	}
	return append(make([]T, 0, len(list)), list...)
}

func compactHistory(h *[]v1alpha1.ReleaseStep) {
	*h = atLength(*h)
	for i := range *h {
		s := &(*h)[i]
		s.Policy, s.Phase, s.Message = intern(s.Policy), intern(s.Phase), intern(s.Message)
		s.Action, s.User = intern(s.Action), intern(s.User)
		s.Weights = sharedWeights(s.Weights)
		s.Metrics = atLength(s.Metrics)
		for j := range s.Metrics {
			s.Metrics[j].Subset = intern(s.Metrics[j].Subset)
		}
	}
}

func compactCommon(s *v1alpha1.CommonStatus) {
	s.Conditions = atLength(s.Conditions)
	for i := range s.Conditions {
		c := &s.Conditions[i]
		c.Type, c.Status, c.Reason, c.Message = intern(c.Type), intern(c.Status), intern(c.Reason), intern(c.Message)
	}
	s.Decisions = atLength(s.Decisions)
	for i := range s.Decisions {
		d := &s.Decisions[i]
		d.Policy, d.Outcome, d.Message = intern(d.Policy), intern(d.Outcome), intern(d.Message)
	}
}

// splits holds each split (weights per subset) once: a release's history
// repeats the same few splits, and so do releases stepping alike. The
// table forgets everything when it reaches splitsLimit entries: what is
// shared then stays shared, new objects start a new table.
var splits struct {
	sync.Mutex
	m map[string]map[string]int32
}

const splitsLimit = 4096

func sharedWeights(w map[string]int32) map[string]int32 {
	if len(w) == 0 {
		return w
	}
	var key strings.Builder
	for _, subset := range slices.Sorted(maps.Keys(w)) {
		key.WriteString(subset)
		key.WriteByte('=')
		key.WriteString(strconv.FormatInt(int64(w[subset]), 10))
		key.WriteByte(',')
	}
	splits.Lock()
	defer splits.Unlock()
	if held, ok := splits.m[key.String()]; ok {
		return held
	}
	if splits.m == nil || len(splits.m) >= splitsLimit {
		splits.m = map[string]map[string]int32{}
	}
	held := make(map[string]int32, len(w))
	for subset, weight := range w {
		held[intern(subset)] = weight
	}
	splits.m[key.String()] = held
	return held
}
