package manifest

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestDecode(t *testing.T) {
	tests := map[string]struct {
		input     string
		wantKinds []string
		wantErr   string
	}{
		"multi-document with blanks and comments": {
			input:     "# leading comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\n---\n# only a comment\n---\napiVersion: kubist.io/v1alpha1\nkind: Project\nmetadata: {name: p}\n",
			wantKinds: []string{"Namespace", "Project"},
		},
		"json document": {
			input:     `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}`,
			wantKinds: []string{"ConfigMap"},
		},
		"missing kind is refused with the document index": {
			input:   "apiVersion: v1\nkind: Namespace\n---\napiVersion: v1\nmetadata: {name: x}\n",
			wantErr: "in.yaml: document 1: apiVersion and kind are required",
		},
		"malformed yaml is refused": {
			input:   "apiVersion: v1\nkind: [unclosed\n",
			wantErr: "in.yaml: document 0:",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			objects, err := Decode(strings.NewReader(tc.input), "in.yaml")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			var kinds []string
			for _, o := range objects {
				kinds = append(kinds, o.GetKind())
			}
			if strings.Join(kinds, ",") != strings.Join(tc.wantKinds, ",") {
				t.Fatalf("kinds = %v, want %v", kinds, tc.wantKinds)
			}
		})
	}
}

func TestDecodeFSOrdersByPath(t *testing.T) {
	fsys := fstest.MapFS{
		"dir/02-b.yaml":     {Data: []byte("apiVersion: v1\nkind: B\n")},
		"dir/01-a.yml":      {Data: []byte("apiVersion: v1\nkind: A\n")},
		"dir/sub/03-c.json": {Data: []byte(`{"apiVersion": "v1", "kind": "C"}`)},
		"dir/README.md":     {Data: []byte("not a manifest")},
	}
	objects, err := DecodeFS(fsys, "dir")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objects {
		got = append(got, o.GetKind()+"@"+o.Source)
	}
	want := "A@dir/01-a.yml#0,B@dir/02-b.yaml#0,C@dir/sub/03-c.json#0"
	if strings.Join(got, ",") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}
