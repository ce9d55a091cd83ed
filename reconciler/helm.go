package reconciler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"helm.sh/helm/v4/pkg/action"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"
)

// helmTimeout bounds one chart install or upgrade.
const helmTimeout = 5 * time.Minute

// maxChartBytes bounds what is downloaded from a chart repository.
const maxChartBytes = 64 << 20

// istioCharts are installed in this order: base holds the CRDs istiod needs.
var istioCharts = []struct{ chart, release string }{
	{"base", "istio-base"},
	{"istiod", "istiod"},
}

// installIstio installs Istio's base and istiod charts on a target with the
// Helm SDK, or upgrades them when the wanted version differs from the
// release's; it returns the releases as "istio-base 1.27.3, istiod 1.27.3".
// It does not wait for istiod: the next verification reports it.
func (r *Reconciler) installIstio(ctx context.Context, s *scope, t *Target, p clusterParameters) (string, error) {
	getter := &restClientGetter{config: t.Config, namespace: istioNamespace}
	cfg := action.NewConfiguration()
	cfg.SetLogger(logr.ToSlogHandler(log.FromContext(ctx).WithName("helm")))
	if err := cfg.Init(getter, istioNamespace, "secret"); err != nil {
		return "", fmt.Errorf("helm on %s: %w", t, err)
	}
	var releases []string
	for _, c := range istioCharts {
		name := c.release
		values := map[string]any{}
		if p.Revision != "" && c.chart == "istiod" {
			name += "-" + p.Revision
			values["revision"] = p.Revision
		}
		chart, err := fetchChart(ctx, p.ChartRepository, c.chart, p.IstioVersion)
		if err != nil {
			return "", err
		}
		version := chart.Metadata.Version
		current, err := action.NewGet(cfg).Run(name)
		switch {
		case errors.Is(err, driver.ErrReleaseNotFound):
			install := action.NewInstall(cfg)
			install.ReleaseName, install.Namespace, install.CreateNamespace = name, istioNamespace, true
			install.Timeout, install.WaitStrategy = helmTimeout, kube.HookOnlyStrategy
			if _, err := install.RunWithContext(ctx, chart, values); err != nil {
				return "", fmt.Errorf("helm install %s (chart %s %s) on %s: %w", name, c.chart, version, t, err)
			}
			writes.WithLabelValues(s.kind, "HelmRelease").Inc()
		case err != nil:
			return "", fmt.Errorf("helm release %s on %s: %w", name, t, err)
		case releaseVersion(current) != version:
			upgrade := action.NewUpgrade(cfg)
			upgrade.Namespace, upgrade.Timeout, upgrade.WaitStrategy = istioNamespace, helmTimeout, kube.HookOnlyStrategy
			if _, err := upgrade.RunWithContext(ctx, name, chart, values); err != nil {
				return "", fmt.Errorf("helm upgrade %s to chart %s %s on %s: %w", name, c.chart, version, t, err)
			}
			writes.WithLabelValues(s.kind, "HelmRelease").Inc()
		}
		releases = append(releases, name+" "+version)
	}
	return strings.Join(releases, ", "), nil
}

// releaseVersion is the chart version of a Helm release.
func releaseVersion(rel any) string {
	if r, ok := rel.(*releasev1.Release); ok && r.Chart != nil && r.Chart.Metadata != nil {
		return r.Chart.Metadata.Version
	}
	return ""
}

// fetchChart downloads a chart from a Helm repository over HTTP(S): the
// repository's index.yaml names the archive of the wanted version (the
// latest release when version is empty, or the newest development build
// when the repository has no release).
func fetchChart(ctx context.Context, repository, name, version string) (*chartv2.Chart, error) {
	repository = strings.TrimSuffix(repository, "/")
	raw, err := download(ctx, repository+"/index.yaml")
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: %w", repository, err)
	}
	var index repov1.IndexFile
	if err := yaml.Unmarshal(raw, &index); err != nil {
		return nil, fmt.Errorf("chart repository %s: index.yaml: %w", repository, err)
	}
	index.SortEntries()
	cv, err := index.Get(name, version)
	if err != nil && version == "" && len(index.Entries[name]) > 0 {
		// No release, only development builds (as `helm install --devel`
		// would take): the newest of them.
		cv, err = index.Entries[name][0], nil
	}
	if err != nil {
		return nil, fmt.Errorf("chart repository %s has no chart %s at version %q: %w", repository, name, version, err)
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart repository %s: chart %s %s has no URL", repository, name, cv.Version)
	}
	url := cv.URLs[0]
	if !strings.Contains(url, "://") {
		url = repository + "/" + strings.TrimPrefix(url, "/")
	}
	archive, err := download(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", name, cv.Version, err)
	}
	chart, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		return nil, fmt.Errorf("chart %s %s from %s: %w", name, cv.Version, url, err)
	}
	return chart, nil
}

func download(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxChartBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(body) > maxChartBytes {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", url, maxChartBytes)
	}
	return body, nil
}

// restClientGetter gives Helm a cluster from a REST configuration.
type restClientGetter struct {
	config    *rest.Config
	namespace string
}

func (g *restClientGetter) ToRESTConfig() (*rest.Config, error) {
	return rest.CopyConfig(g.config), nil
}

func (g *restClientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(g.config)
	if err != nil {
		return nil, err
	}
	return memory.NewMemCacheClient(dc), nil
}

func (g *restClientGetter) ToRESTMapper() (meta.RESTMapper, error) {
	dc, err := g.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	return restmapper.NewDeferredDiscoveryRESTMapper(dc), nil
}

func (g *restClientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	cfg := clientcmdapi.NewConfig()
	cfg.Contexts["kubist"] = &clientcmdapi.Context{Namespace: g.namespace}
	cfg.CurrentContext = "kubist"
	return clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{})
}
