package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Reasons a Cluster is not reachable.
const (
	ReasonSecretMissing = "KubeconfigSecretMissing"
	ReasonBadKubeconfig = "InvalidKubeconfig"
	ReasonUnreachable   = "Unreachable"
)

// remoteTimeout bounds the check that a cluster answers. (The cache's
// watches are long requests: its configuration has no timeout.)
const remoteTimeout = 10 * time.Second

// CacheOptions restricts what the manager (and each workload cluster's
// client) caches: Secrets only in the manager's namespace, Services only
// those Kubist manages, of Deployments what Kubist reads (trimDeployment),
// of everything else all but the managed fields, and Kubist's statuses
// compacted (compactCached). (Istio's kinds cannot be restricted here: a
// cluster without Istio would fail the cache's start. Their owner labels
// are checked on every write instead.)
func CacheOptions(namespace string) cache.Options {
	managed := labels.SelectorFromSet(labels.Set{v1alpha1.LabelManaged: "true"})
	opts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Service{}:    {Label: managed},
			&appsv1.Deployment{}: {Transform: trimDeployment},
		},
		DefaultTransform: compactCached,
	}
	if namespace != "" {
		opts.ByObject[&corev1.Secret{}] = cache.ByObject{Namespaces: map[string]cache.Config{namespace: {}}}
	}
	return opts
}

// trimDeployment keeps of a Deployment what Kubist reads (its metadata but
// the managed fields and kubectl's copy of the last applied manifest; its
// replicas, selector and the pod template's labels; its containers' names
// and images; its status) and drops the rest of the pod template, which
// in a real cluster is most of the object (containers' commands,
// environment, probes and resources; volumes). The cache serves these
// objects only to reads: Kubist never writes a Deployment.
func trimDeployment(obj any) (any, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return obj, nil
	}
	d.ManagedFields = nil
	delete(d.Annotations, corev1.LastAppliedConfigAnnotation)
	pod := d.Spec.Template.Spec
	containers := make([]corev1.Container, len(pod.Containers))
	for i, c := range pod.Containers {
		containers[i] = corev1.Container{Name: c.Name, Image: c.Image}
	}
	d.Spec.Template.Spec = corev1.PodSpec{Containers: containers}
	d.Spec.Template.Annotations = nil
	return d, nil
}

// Target is a cluster Kubist writes to.
type Target struct {
	// Client reads from a cache of the cluster and writes to it.
	Client client.Client
	// Config is the cluster's REST configuration (for Helm and discovery).
	Config *rest.Config
	// Local is the management cluster itself.
	Local bool
	// Name of the Cluster resource.
	Name string
}

// Clusters hands out clients for Cluster resources: the manager's own for
// a Cluster without a kubeconfig Secret, otherwise one built from the
// Secret (read only in the manager's namespace), cached and rebuilt when
// the Secret changes.
type Clusters struct {
	Local       client.Client
	LocalConfig *rest.Config
	// Secrets reads Secrets in Namespace.
	Secrets   client.Reader
	Namespace string
	Scheme    *runtime.Scheme

	base    context.Context
	stopAll context.CancelFunc
	mu      sync.Mutex
	remotes map[string]*remote
	// prometheus are the Clusters' own Prometheus (cluster_prometheus.go).
	prometheus map[string]clusterPrometheus
}

type remote struct {
	secretVersion string
	target        *Target
	stop          context.CancelFunc
}

// NewClusters returns the cluster clients of a manager.
func NewClusters(local client.Client, localConfig *rest.Config, secrets client.Reader, namespace string, scheme *runtime.Scheme) *Clusters {
	base, stop := context.WithCancel(context.Background())
	return &Clusters{Local: local, LocalConfig: localConfig, Secrets: secrets, Namespace: namespace, Scheme: scheme,
		base: base, stopAll: stop, remotes: map[string]*remote{}}
}

// Start runs until ctx ends, then stops every workload cluster's cache.
func (c *Clusters) Start(ctx context.Context) error {
	<-ctx.Done()
	c.stopAll()
	return nil
}

// For returns the target of a Cluster resource.
func (c *Clusters) For(ctx context.Context, cl *v1alpha1.Cluster) (*Target, error) {
	ref := cl.Spec.KubeconfigSecretRef
	if ref == nil {
		return &Target{Client: c.Local, Config: c.LocalConfig, Local: true, Name: cl.Name}, nil
	}
	key := cmp.Or(ref.Key, "kubeconfig")
	var secret corev1.Secret
	if err := c.Secrets.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: ref.Name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, userError(ReasonSecretMissing, "Secret %s/%s (spec.kubeconfigSecretRef) does not exist; kubeconfig Secrets are read from the manager's namespace %s only", c.Namespace, ref.Name, c.Namespace)
		}
		return nil, transientError(ReasonSecretMissing, "read Secret %s/%s: %v", c.Namespace, ref.Name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.remotes[cl.Name]; ok && r.secretVersion == secret.ResourceVersion+"/"+key {
		return r.target, nil
	}
	data, ok := secret.Data[key]
	if !ok {
		return nil, userError(ReasonBadKubeconfig, "Secret %s/%s has no key %q (spec.kubeconfigSecretRef.key)", c.Namespace, ref.Name, key)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return nil, userError(ReasonBadKubeconfig, "Secret %s/%s key %q is not a valid kubeconfig: %v", c.Namespace, ref.Name, key, err)
	}
	// A workload cluster gets the manager's own request budget.
	cfg.QPS, cfg.Burst = c.LocalConfig.QPS, c.LocalConfig.Burst
	remoteCluster, err := cluster.New(cfg, func(o *cluster.Options) {
		o.Scheme = c.Scheme
		o.Cache = CacheOptions("")
	})
	if err != nil {
		// Building the client asks the API server what it serves: this
		// fails first when the cluster cannot be reached.
		return nil, transientError(ReasonUnreachable, "cluster %s is unreachable at %s: %v", cl.Name, cfg.Host, err)
	}
	ctx, stop := context.WithCancel(c.base)
	go func() {
		if err := remoteCluster.Start(ctx); err != nil {
			log.FromContext(ctx).Error(err, "workload cluster cache stopped", "cluster", cl.Name)
		}
	}()
	if old, ok := c.remotes[cl.Name]; ok {
		old.stop()
	}
	r := &remote{
		secretVersion: secret.ResourceVersion + "/" + key,
		target:        &Target{Client: withMetadataReplies(remoteCluster.GetClient(), cfg, remoteCluster.GetHTTPClient()), Config: cfg, Name: cl.Name},
		stop:          stop,
	}
	c.remotes[cl.Name] = r
	return r.target, nil
}

// Forget stops the cache of a Cluster that no longer exists.
func (c *Clusters) Forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.remotes[name]; ok {
		r.stop()
		delete(c.remotes, name)
	}
}

// ServerVersion asks the cluster for its version: a live call, so that an
// unreachable cluster is reported as such even while its cache is warm.
func (t *Target) ServerVersion() (string, error) {
	cfg := rest.CopyConfig(t.Config)
	cfg.Timeout = remoteTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return "", transientError(ReasonUnreachable, "cluster %s is unreachable: %v", t.Name, err)
	}
	return v.GitVersion, nil
}

// String names the target for messages.
func (t *Target) String() string {
	if t.Local {
		return fmt.Sprintf("cluster %s (local)", t.Name)
	}
	return "cluster " + t.Name
}
