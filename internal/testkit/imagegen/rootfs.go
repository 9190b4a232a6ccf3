package imagegen

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"path"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RunnableSpec describes an image a runtime can start: a static busybox in
// its first layer and a marker file in every layer.
type RunnableSpec struct {
	Name      string   // full reference, e.g. docker.io/library/hello:1
	Platforms []string // one manifest each; more than one makes an index
	// Layers lists each layer's compression: "gzip", "zstd" or "tar".
	// Layer N holds /etc/imgcrypt-layer-N with the text "layer N"; layer 0
	// also holds /bin/busybox and the applets in Applets.
	Layers []string
	// Busybox is a statically linked busybox binary (Debian's busybox-static
	// installs one as /bin/busybox); it must suit every platform in
	// Platforms to actually run.
	Busybox []byte
	// Cmd is the image's command; it defaults to RunnableCmd.
	Cmd []string
}

// Applets are the /bin links to busybox in a runnable image's first layer.
var Applets = []string{"sh", "echo", "cat", "ls"}

// RunnableCmd is a runnable image's default command, and RunnableOutput
// what it prints.
var (
	RunnableCmd    = []string{"/bin/sh", "-c", "echo hello from imgcrypt"}
	RunnableOutput = "hello from imgcrypt\n"
)

// WriteRunnable writes a runnable image as an OCI archive to w.
func WriteRunnable(w io.Writer, spec RunnableSpec) error {
	if len(spec.Busybox) == 0 {
		return fmt.Errorf("runnable image %s: no busybox binary", spec.Name)
	}
	if len(spec.Platforms) == 0 {
		spec.Platforms = []string{"linux/amd64"}
	}
	if len(spec.Layers) == 0 {
		spec.Layers = []string{"gzip"}
	}
	if len(spec.Cmd) == 0 {
		spec.Cmd = RunnableCmd
	}
	blobs := blobSet{}
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i, compression := range spec.Layers {
		plain, err := runnableLayer(i, spec.Busybox)
		if err != nil {
			return err
		}
		desc, err := addLayer(blobs, compression, plain)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		layers = append(layers, desc)
		diffIDs = append(diffIDs, digest.FromBytes(plain))
	}
	var manifests []ocispec.Descriptor
	for _, ps := range spec.Platforms {
		p, err := platforms.Parse(ps)
		if err != nil {
			return err
		}
		config, _ := json.Marshal(ocispec.Image{
			Created:  &epoch,
			Platform: p,
			Config:   ocispec.ImageConfig{Cmd: spec.Cmd, Env: []string{"PATH=/bin"}, WorkingDir: "/"},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		})
		manifest, _ := json.Marshal(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    blobs.add(ocispec.MediaTypeImageConfig, config),
			Layers:    layers,
		})
		m := blobs.add(ocispec.MediaTypeImageManifest, manifest)
		m.Platform = &p
		manifests = append(manifests, m)
	}
	root := manifests[0]
	if len(manifests) > 1 {
		idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests})
		root = blobs.add(ocispec.MediaTypeImageIndex, idx)
	} else {
		root.Platform = nil
	}
	root.Annotations = map[string]string{images.AnnotationImageName: spec.Name, ocispec.AnnotationRefName: spec.Name}
	return writeOCI(w, blobs, root)
}

// addLayer compresses a plain layer tar as asked and stores the blob.
func addLayer(blobs blobSet, compression string, plain []byte) (ocispec.Descriptor, error) {
	var buf bytes.Buffer
	switch compression {
	case "gzip":
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		zw.Write(plain)
		if err := zw.Close(); err != nil {
			return ocispec.Descriptor{}, err
		}
		return blobs.add(ocispec.MediaTypeImageLayerGzip, buf.Bytes()), nil
	case "zstd":
		zw, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
		zw.Write(plain)
		if err := zw.Close(); err != nil {
			return ocispec.Descriptor{}, err
		}
		return blobs.add(ocispec.MediaTypeImageLayerZstd, buf.Bytes()), nil
	case "tar":
		return blobs.add(ocispec.MediaTypeImageLayer, plain), nil
	}
	return ocispec.Descriptor{}, fmt.Errorf("unknown layer compression %q", compression)
}

// runnableLayer is the plain tar of layer i.
func runnableLayer(i int, busybox []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := func(h *tar.Header) {
		h.ModTime, h.Format, h.Uname, h.Gname = epoch, tar.FormatPAX, "root", "root"
		tw.WriteHeader(h)
	}
	dir := func(name string) { hdr(&tar.Header{Name: name + "/", Mode: 0o755, Typeflag: tar.TypeDir}) }
	file := func(name string, mode int64, data []byte) {
		hdr(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	if i == 0 {
		dir("bin")
		file("bin/busybox", 0o755, busybox)
		for _, applet := range Applets {
			hdr(&tar.Header{Name: path.Join("bin", applet), Linkname: "busybox", Mode: 0o777, Typeflag: tar.TypeSymlink})
		}
	}
	dir("etc")
	file(fmt.Sprintf("etc/imgcrypt-layer-%d", i), 0o644, fmt.Appendf(nil, "layer %d\n", i))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
