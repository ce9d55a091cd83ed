package reconciler

import (
	"context"
	"net/url"

	promconfig "github.com/prometheus/common/config"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// prometheusOf is the Prometheus a Cluster's releases read their metrics
// from: the one its prometheusSecretRef names, built once per version of
// the Secret (its token and CA through Prometheus's own HTTP client
// configuration), or the manager's when it names none.
func (c *Clusters) prometheusOf(ctx context.Context, cl *v1alpha1.Cluster, manager policies.MetricsProvider) (policies.MetricsProvider, error) {
	ref := cl.Spec.PrometheusSecretRef
	if ref == nil {
		return manager, nil
	}
	var secret corev1.Secret
	if err := c.Secrets.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: ref.Name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, userError(ReasonSecretMissing, "Secret %s/%s (spec.prometheusSecretRef of Cluster %s) does not exist; it is read from the manager's namespace %s only", c.Namespace, ref.Name, cl.Name, c.Namespace)
		}
		return nil, transientError(ReasonSecretMissing, "read Secret %s/%s: %v", c.Namespace, ref.Name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := cl.Name + "/" + ref.Name
	if p, ok := c.prometheus[key]; ok && p.version == secret.ResourceVersion {
		return p.provider, nil
	}
	address := string(secret.Data["url"])
	if u, err := url.Parse(address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, userError(ReasonInvalidParameters, "Secret %s/%s (spec.prometheusSecretRef of Cluster %s): key url must hold Prometheus's http(s) URL, e.g. http://prometheus.istio-system:9090", c.Namespace, ref.Name, cl.Name)
	}
	cfg := promconfig.DefaultHTTPClientConfig
	if token := secret.Data["token"]; len(token) > 0 {
		cfg.Authorization = &promconfig.Authorization{Type: "Bearer", Credentials: promconfig.Secret(token)}
	}
	cfg.TLSConfig.CA = string(secret.Data["ca.crt"])
	rt, err := promconfig.NewRoundTripperFromConfig(cfg, "kubist-"+cl.Name)
	if err != nil {
		return nil, userError(ReasonInvalidParameters, "Secret %s/%s (spec.prometheusSecretRef of Cluster %s): %v", c.Namespace, ref.Name, cl.Name, err)
	}
	provider, err := policies.NewPrometheus(address, rt)
	if err != nil {
		return nil, userError(ReasonInvalidParameters, "Secret %s/%s (spec.prometheusSecretRef of Cluster %s): %v", c.Namespace, ref.Name, cl.Name, err)
	}
	if c.prometheus == nil {
		c.prometheus = map[string]clusterPrometheus{}
	}
	c.prometheus[key] = clusterPrometheus{version: secret.ResourceVersion, provider: provider}
	return provider, nil
}

// clusterPrometheus is a Cluster's Prometheus, built from a version of its
// Secret.
type clusterPrometheus struct {
	version  string
	provider policies.MetricsProvider
}

// useClusterMetrics has a release's run read its metrics from its
// Cluster's Prometheus; one that cannot be built leaves the run without
// metrics (the policies hold), saying why on MetricsAvailable.
func (s *scope) useClusterMetrics(ctx context.Context, cl *v1alpha1.Cluster) {
	provider, err := s.Clusters.prometheusOf(ctx, cl, s.Metrics)
	if err != nil {
		s.metricsUnavailable(err)
		s.metrics = nil
		return
	}
	s.metrics = provider
}
