// Package images builds container images without Docker, with
// go-containerregistry: one static binary on an empty base (no image to
// pull), as the Dockerfile's distroless image holds it — at /NAME, run as
// the nonroot user 65532 — written as an image archive that `ctr images
// import` (containerd) and `docker load` read.
package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Nonroot is the user and group the image runs as, distroless's nonroot.
const Nonroot = "65532:65532"

// Binary is an image holding the executable at path as /name, its
// entrypoint, running as Nonroot, for linux/amd64 (the machine's). Its
// layer's times are the Unix epoch, so the same binary makes the same
// image.
func Binary(path, name string) (v1.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = []string{"/" + name}
	cfg.Config.User = Nonroot
	cfg.Created = v1.Time{Time: time.Unix(0, 0)}
	return mutate.ConfigFile(img, cfg)
}

// WriteArchive writes an image as an archive tagged ref.
func WriteArchive(img v1.Image, ref, path string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
