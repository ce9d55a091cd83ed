package testenv

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"
)

// ChartRepository packages chart directories and serves them, with their
// index.yaml, as a Helm chart repository on loopback. extra adds files to
// the charts before packaging: chart name → path in the chart → content.
func ChartRepository(dir string, chartDirs []string, extra map[string]map[string][]byte) (*httptest.Server, error) {
	serve := filepath.Join(dir, "repository")
	if err := os.MkdirAll(serve, 0o755); err != nil {
		return nil, err
	}
	for _, src := range chartDirs {
		chart, err := loader.LoadDir(src)
		if err != nil {
			return nil, fmt.Errorf("load chart %s: %w", src, err)
		}
		for name, content := range extra[chart.Name()] {
			chart.Files = append(chart.Files, &common.File{Name: name, Data: content})
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
	return httptest.NewServer(http.FileServer(http.Dir(serve))), nil
}
