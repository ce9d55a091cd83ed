package reconciler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubist-io/kubist/internal/localenv/localmesh"
)

// chartDir writes a chart with no templates at version.
func chartDir(t *testing.T, name, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	chart := "apiVersion: v2\nname: " + name + "\nversion: " + version + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Chart.yaml"), []byte(chart), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFetchChartVersions(t *testing.T) {
	devOnly, err := localmesh.ServeCharts(t.TempDir(), []string{chartDir(t, "base", "1.31-alpha.eed52ebb66ad")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = devOnly.Close() })
	withRelease, err := localmesh.ServeCharts(t.TempDir(), []string{chartDir(t, "base", "1.30.2"), chartDir(t, "base", "1.31-alpha.eed52ebb66ad")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = withRelease.Close() })

	for name, tc := range map[string]struct {
		repository, version, want, wantErr string
	}{
		"no version takes the latest release":                           {repository: withRelease.URL, want: "1.30.2"},
		"no version and only development builds takes the newest build": {repository: devOnly.URL, want: "1.31-alpha.eed52ebb66ad"},
		"a development build by its version":                            {repository: withRelease.URL, version: "1.31-alpha.eed52ebb66ad", want: "1.31-alpha.eed52ebb66ad"},
		"a version the repository lacks":                                {repository: devOnly.URL, version: "1.29.0", wantErr: `has no chart base at version "1.29.0"`},
	} {
		t.Run(name, func(t *testing.T) {
			chart, err := fetchChart(t.Context(), tc.repository, "base", tc.version)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if chart.Metadata.Version != tc.want {
				t.Errorf("version %s, want %s", chart.Metadata.Version, tc.want)
			}
		})
	}
}
