package localmesh

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"
)

// ChartRepository is a Helm chart repository served on loopback.
type ChartRepository struct {
	// URL of the repository, http://127.0.0.1:<port>.
	URL    string
	server *http.Server
}

// ServeCharts packages chart directories with the Helm SDK into dir and
// serves them, with their index.yaml, as a chart repository on loopback.
func ServeCharts(dir string, chartDirs []string) (*ChartRepository, error) {
	serve := filepath.Join(dir, "repository")
	if err := os.MkdirAll(serve, 0o755); err != nil {
		return nil, err
	}
	for _, src := range chartDirs {
		chart, err := loader.LoadDir(src)
		if err != nil {
			return nil, fmt.Errorf("load chart %s: %w", src, err)
		}
		if _, err := chartutil.Save(chart, serve); err != nil {
			return nil, fmt.Errorf("package chart %s: %w", src, err)
		}
	}
	index, err := repov1.IndexDirectory(serve, "")
	if err != nil {
		return nil, err
	}
	if err := index.WriteFile(filepath.Join(serve, "index.yaml"), 0o644); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &ChartRepository{URL: "http://" + l.Addr().String(), server: &http.Server{Handler: http.FileServer(http.Dir(serve))}}
	go func() { _ = r.server.Serve(l) }()
	return r, nil
}

// Close stops serving.
func (r *ChartRepository) Close() error { return r.server.Close() }
