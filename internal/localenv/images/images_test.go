package images

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// An image of one file: the file at /name with mode 0755, the entrypoint,
// the nonroot user, linux/amd64; the same file makes the same image; the
// archive reads back as the same image under its tag.
func TestBinaryImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "hello")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := Binary(bin, "hello")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/hello" || cfg.Config.User != Nonroot {
		t.Fatalf("config %+v", cfg.Config)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %v, %v", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	content, _ := io.ReadAll(tr)
	if h.Name != "hello" || h.Mode != 0o755 || string(content) != "#!/bin/true\n" {
		t.Fatalf("layer holds %s (%o): %q", h.Name, h.Mode, content)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("the layer holds more than the binary: %v", err)
	}

	again, err := Binary(bin, "hello")
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Fatalf("the same binary made two images: %s, %s", d1, d2)
	}

	archive := filepath.Join(dir, "hello.tar")
	if err := WriteArchive(img, "example.com/hello:dev", archive); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("example.com/hello:dev")
	read, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := read.Digest(); d != d1 {
		t.Fatalf("the archive reads back as %s, want %s", d, d1)
	}
	if err := WriteArchive(img, "not a reference", archive); err == nil {
		t.Fatal("a bad reference was taken")
	}
}
