//go:build !manager_only

package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateCorpora: every invalid manifest that the API server or the
// webhook refuses through kubectl (test/e2e) is refused by kubist validate
// with the same message.
func TestValidateCorpora(t *testing.T) {
	for _, corpus := range []string{"admission"} {
		files, err := filepath.Glob(filepath.Join("..", "..", "test", "testdata", corpus, "invalid", "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no manifests in the %s corpus", corpus)
		}
		for _, file := range files {
			t.Run(corpus+"/"+filepath.Base(file), func(t *testing.T) {
				out, err := run(t, "validate", "-f", file)
				if err == nil {
					t.Fatalf("kubist validate admitted it:\n%s", out)
				}
				if want := expectedMessage(t, file); !strings.Contains(out, want) {
					t.Fatalf("output lacks %q:\n%s", want, out)
				}
			})
		}
	}
}

func TestValidateSamples(t *testing.T) {
	out, err := run(t, "validate", "-f", filepath.Join("..", "..", "config", "samples"))
	if err != nil || !strings.Contains(out, "7 Kubist objects checked, 0 invalid") {
		t.Fatalf("the samples must validate: %v\n%s", err, out)
	}
}

func TestValidateRegistersPolicyObjectsFirst(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "tree.yaml", `apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: c, namespace: x}
spec:
  route: r
  destination: d
  subset: v2
  policies: [{name: TimedCanaryRelease}, {name: max-weight, parameters: {max: 40}}]
---
apiVersion: kubist.io/v1alpha1
kind: Policy
metadata: {name: max-weight}
spec:
  rego: |
`+indent(readFile(t, filepath.Join("..", "..", "rego", "examples", "max_weight", "max_weight.rego")), "    "))
	out, err := run(t, "validate", "-f", file)
	if err != nil {
		t.Fatalf("a stanza naming a Policy of the same input must validate: %v\n%s", err, out)
	}

	out, err = run(t, "validate", "-f", writeFile(t, dir, "typo.yaml", `apiVersion: kubist.io/v1alpha1
kind: CanaryRelease
metadata: {name: c, namespace: x}
spec: {route: r, destination: d, subset: v2, speed: fast, policies: [{name: max-weigth}]}
`))
	if err == nil || !strings.Contains(out, `typo.yaml#0: CanaryRelease/c: Warning: unknown field "spec.speed"`) ||
		!strings.Contains(out, `typo.yaml#0: CanaryRelease/c: spec.policies[0].name: Invalid value: "max-weigth": no policy named max-weigth`) {
		t.Fatalf("want the unknown field warned and the unknown policy refused: %v\n%s", err, out)
	}
}

func expectedMessage(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	want, ok := strings.CutPrefix(strings.TrimSpace(line), "# expect: ")
	if !ok {
		t.Fatalf("%s must start with '# expect: '", file)
	}
	return want
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix) + "\n"
}
