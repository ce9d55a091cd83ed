package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Object is one manifest and where it was read from.
type Object struct {
	*unstructured.Unstructured
	// Source names the file (or stream) and the document index within it.
	Source string
}

// Decode reads every document of a multi-document YAML or JSON stream.
// Empty documents and comments-only documents are skipped; a document that
// is not an object with apiVersion and kind is an error naming its index.
func Decode(r io.Reader, source string) ([]Object, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var objects []Object
	for index := 0; ; index++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, index, err)
		}
		if isBlank(doc) {
			continue
		}
		// Through JSON with the API machinery's rules, so integers are int64
		// as the API server decodes them (CEL rules depend on it).
		data, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, index, err)
		}
		u := &unstructured.Unstructured{}
		if err := utiljson.Unmarshal(data, &u.Object); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, index, err)
		}
		if u.Object == nil {
			continue
		}
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			return nil, fmt.Errorf("%s: document %d: apiVersion and kind are required", source, index)
		}
		objects = append(objects, Object{Unstructured: u, Source: fmt.Sprintf("%s#%d", source, index)})
	}
}

// Load reads the manifests at path: a file, a directory (every manifest
// file below it, in lexical order), or "-" for standard input.
func Load(path string, stdin io.Reader) ([]Object, error) {
	if path == "-" {
		return Decode(stdin, "<stdin>")
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return Decode(f, path)
	}
	objects, err := DecodeFS(os.DirFS(path), ".")
	if err != nil {
		return nil, err
	}
	for i := range objects {
		objects[i].Source = filepath.Join(path, objects[i].Source)
	}
	return objects, nil
}

// DecodeFS reads every *.yaml, *.yml and *.json file of a directory in an
// fs.FS, in lexical order of their paths (the order kubectl apply -f uses).
func DecodeFS(fsys fs.FS, dir string) ([]Object, error) {
	var paths []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && isManifestFile(p) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var objects []Object
	for _, p := range paths {
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		decoded, err := Decode(bytes.NewReader(data), p)
		if err != nil {
			return nil, err
		}
		objects = append(objects, decoded...)
	}
	return objects, nil
}

func isManifestFile(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// isBlank reports whether a document holds only whitespace and comments.
func isBlank(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && !bytes.Equal(line, []byte("---")) {
			return false
		}
	}
	return true
}
