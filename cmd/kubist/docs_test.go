//go:build !manager_only

package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kubist-io/kubist/internal/manifest"
)

// TestDocsManifests: every Kubist manifest in a YAML block of the README
// and docs/ passes kubist validate, so that a doc cannot drift from the
// code (blocks of other YAML, such as the chart's values, are left
// alone). A block is
// either whole manifests, or a fragment completed from the sample of its
// kind (config/samples), marked on the line before its fence:
//
//	<!-- validate: CanaryRelease -->   a fragment of a CanaryRelease (its spec, or stanzas of it)
//	<!-- refused -->                  must be refused, with messages the doc prints
//	<!-- illustration -->             shows a shape, not a manifest: not checked
//
// The markers combine: <!-- validate: CanaryRelease, refused -->.
func TestDocsManifests(t *testing.T) {
	root := filepath.Join("..", "..")
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join(root, "README.md")}, docs...)
	samples := samplesByKind(t, filepath.Join(root, "config", "samples"))
	dir := t.TempDir()
	checked := 0
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range yamlBlocks(string(text)) {
			name := fmt.Sprintf("%s:%d", filepath.Base(doc), b.line)
			if b.illustration {
				continue
			}
			manifests, err := b.manifests(samples)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if manifests == "" {
				continue // no Kubist manifest in it
			}
			t.Run(name, func(t *testing.T) {
				file := writeFile(t, dir, strings.ReplaceAll(name, ":", "-")+".yaml", manifests)
				out, err := run(t, "validate", "-f", file)
				if !b.refused {
					if err != nil || strings.Contains(out, "Warning:") {
						t.Fatalf("%s does not validate as written (mark it <!-- refused --> if it shows a refusal):\n%s\n%s", name, out, manifests)
					}
					return
				}
				if err == nil {
					t.Fatalf("%s is marked refused, but kubist validate admits it:\n%s", name, out)
				}
				for _, msg := range findings(out) {
					if !strings.Contains(string(text), msg) {
						t.Errorf("%s is refused with a message the doc does not print:\n%s", name, msg)
					}
				}
			})
			checked++
		}
	}
	if checked < 8 {
		t.Fatalf("only %d YAML blocks checked: the docs hold more", checked)
	}
}

// block is a YAML block of a doc and its marker.
type block struct {
	line         int
	text         string
	kind         string
	refused      bool
	illustration bool
}

var marker = regexp.MustCompile(`^<!--\s*(.*?)\s*-->$`)

// yamlBlocks finds the ```yaml blocks of a Markdown text.
func yamlBlocks(text string) []block {
	var blocks []block
	var cur *block
	var body strings.Builder
	prev := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```yaml":
			cur = &block{line: n}
			if m := marker.FindStringSubmatch(strings.TrimSpace(prev)); m != nil {
				for _, word := range strings.Split(m[1], ",") {
					word = strings.TrimSpace(word)
					switch {
					case word == "refused":
						cur.refused = true
					case word == "illustration":
						cur.illustration = true
					case strings.HasPrefix(word, "validate:"):
						cur.kind = strings.TrimSpace(strings.TrimPrefix(word, "validate:"))
					}
				}
			}
			body.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		}
		prev = line
	}
	return blocks
}

// manifests are the block's documents, each fragment completed from the
// sample of its kind.
func (b block) manifests(samples map[string]map[string]any) (string, error) {
	var out []string
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(b.text, -1) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return "", err
		}
		if obj == nil {
			continue
		}
		if !kubistLike(obj) {
			// Not a manifest of Kubist's (e.g. the chart's values).
			continue
		}
		if _, whole := obj["apiVersion"]; !whole {
			kind, _ := obj["kind"].(string)
			if kind == "" {
				kind = b.kind
			}
			sample, ok := samples[kind]
			if !ok {
				return "", fmt.Errorf("a YAML block that is not whole manifests: mark it <!-- validate: KIND --> (a kind of config/samples) or <!-- illustration -->")
			}
			obj = complete(sample, obj)
		}
		data, err := yaml.Marshal(obj)
		if err != nil {
			return "", err
		}
		out = append(out, string(data))
	}
	return strings.Join(out, "---\n"), nil
}

// kubistLike says whether a document is a manifest, or a fragment of
// one: an apiVersion, a kind, a spec or a spec's stanzas.
func kubistLike(obj map[string]any) bool {
	for _, key := range []string{"apiVersion", "kind", "spec", "policies", "executor"} {
		if _, ok := obj[key]; ok {
			return true
		}
	}
	return false
}

// complete merges a fragment into a copy of its kind's sample: its spec,
// or the spec's fields at its top level.
func complete(sample, fragment map[string]any) map[string]any {
	obj := merge(nil, sample)
	spec, _ := obj["spec"].(map[string]any)
	for k, v := range fragment {
		switch k {
		case "kind":
		case "spec":
			if m, ok := v.(map[string]any); ok {
				spec = merge(spec, m)
			}
		default:
			spec = merge(spec, map[string]any{k: v})
		}
	}
	obj["spec"] = spec
	return obj
}

// merge copies b's fields over a's, objects merged field by field.
func merge(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			am, _ := out[k].(map[string]any)
			out[k] = merge(am, bm)
			continue
		}
		out[k] = v
	}
	return out
}

// samplesByKind reads config/samples: one object of each kind.
func samplesByKind(t *testing.T, dir string) map[string]map[string]any {
	t.Helper()
	objects, err := manifest.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, o := range objects {
		if _, seen := out[o.GetKind()]; !seen && o.GetAPIVersion() == "kubist.io/v1alpha1" {
			out[o.GetKind()] = o.Object
		}
	}
	return out
}

// findings are the messages of kubist validate's errors, without the
// file and the object they are about.
func findings(out string) []string {
	var msgs []string
	for _, line := range strings.Split(out, "\n") {
		parts := strings.SplitN(line, ": ", 3)
		if len(parts) < 3 || !strings.Contains(parts[1], "/") || strings.HasPrefix(parts[2], "Warning:") {
			continue
		}
		msgs = append(msgs, parts[2])
	}
	return msgs
}
