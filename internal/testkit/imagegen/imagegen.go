// Package imagegen writes small, deterministic container images as OCI or
// Docker archives, for tests and the demo: no registry or network needed.
package imagegen

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // go-digest needs the hash registered
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Spec describes the image to generate.
type Spec struct {
	Name      string   // full reference, e.g. docker.io/library/sample:latest
	Platforms []string // one manifest each; more than one makes an index
	// Layers lists each layer's compression: "gzip", "zstd" or "tar".
	Layers []string
	// LayerSize adds this many pseudo-random bytes to each layer.
	LayerSize int
	// Docker writes a 'docker save' archive with Docker media types.
	Docker bool
}

var epoch = time.Unix(1700000000, 0).UTC()

type blobSet map[digest.Digest][]byte

func (b blobSet) add(mediaType string, data []byte) ocispec.Descriptor {
	d := digest.FromBytes(data)
	b[d] = data
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// Write writes the image as an archive to w.
func Write(w io.Writer, spec Spec) error {
	if len(spec.Platforms) == 0 {
		spec.Platforms = []string{"linux/amd64"}
	}
	if len(spec.Layers) == 0 {
		spec.Layers = []string{"gzip"}
	}
	blobs := blobSet{}
	var manifests []ocispec.Descriptor
	var dockerEntries []dockerEntry
	for _, ps := range spec.Platforms {
		p, err := platforms.Parse(ps)
		if err != nil {
			return err
		}
		m, entry, err := buildManifest(blobs, spec, p)
		if err != nil {
			return err
		}
		m.Platform = &p
		manifests = append(manifests, m)
		dockerEntries = append(dockerEntries, entry)
	}
	if spec.Docker {
		return writeDocker(w, blobs, spec, dockerEntries[0])
	}
	root := manifests[0]
	if len(manifests) > 1 {
		idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
		data, _ := json.Marshal(idx)
		root = blobs.add(ocispec.MediaTypeImageIndex, data)
	} else {
		root.Platform = nil
	}
	root.Annotations = map[string]string{images.AnnotationImageName: spec.Name, ocispec.AnnotationRefName: spec.Name}
	return writeOCI(w, blobs, root)
}

type dockerEntry struct {
	config digest.Digest
	layers []digest.Digest // uncompressed
}

func buildManifest(blobs blobSet, spec Spec, p ocispec.Platform) (ocispec.Descriptor, dockerEntry, error) {
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	var entry dockerEntry
	for i, compression := range spec.Layers {
		plain := layerTar(platforms.Format(p), i, spec.LayerSize)
		diffIDs = append(diffIDs, digest.FromBytes(plain))
		var desc ocispec.Descriptor
		switch compression {
		case "gzip":
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
			zw.Write(plain)
			zw.Close()
			desc = blobs.add(mediaType(spec.Docker, ocispec.MediaTypeImageLayerGzip, images.MediaTypeDockerSchema2LayerGzip), buf.Bytes())
		case "zstd":
			var buf bytes.Buffer
			zw, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
			zw.Write(plain)
			zw.Close()
			desc = blobs.add(mediaType(spec.Docker, ocispec.MediaTypeImageLayerZstd, images.MediaTypeDockerSchema2LayerZstd), buf.Bytes())
		case "tar":
			desc = blobs.add(mediaType(spec.Docker, ocispec.MediaTypeImageLayer, images.MediaTypeDockerSchema2Layer), plain)
		default:
			return ocispec.Descriptor{}, entry, fmt.Errorf("unknown layer compression %q", compression)
		}
		if spec.Docker {
			blobs.add("", plain)
			entry.layers = append(entry.layers, digest.FromBytes(plain))
		}
		layers = append(layers, desc)
	}
	config := ocispec.Image{
		Created:  &epoch,
		Platform: p,
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	configData, _ := json.Marshal(config)
	configDesc := blobs.add(mediaType(spec.Docker, ocispec.MediaTypeImageConfig, images.MediaTypeDockerSchema2Config), configData)
	entry.config = configDesc.Digest
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: mediaType(spec.Docker, ocispec.MediaTypeImageManifest, images.MediaTypeDockerSchema2Manifest),
		Config:    configDesc,
		Layers:    layers,
		Annotations: map[string]string{
			"org.opencontainers.image.title": "imgcrypt sample",
		},
	}
	data, _ := json.Marshal(manifest)
	return blobs.add(manifest.MediaType, data), entry, nil
}

func mediaType(docker bool, oci, dockerType string) string {
	if docker {
		return dockerType
	}
	return oci
}

// layerTar makes layer i: a file naming the layer plus size filler bytes
// that do not compress away.
func layerTar(platform string, i, size int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
		tw.Write(data)
	}
	add(fmt.Sprintf("layer%d.txt", i), fmt.Appendf(nil, "layer %d of %s\n", i, platform))
	if size > 0 {
		add(fmt.Sprintf("filler%d.bin", i), filler(platform, i, size))
	}
	tw.Close()
	return buf.Bytes()
}

// filler is deterministic and incompressible enough to make real sizes.
func filler(seed string, i, n int) []byte {
	out := make([]byte, 0, n+32)
	block := digest.FromString(fmt.Sprintf("%s/%d", seed, i))
	for len(out) < n {
		block = digest.FromString(block.String())
		out = append(out, []byte(block.Encoded())...)
	}
	return out[:n]
}

func writeOCI(w io.Writer, blobs blobSet, root ocispec.Descriptor) error {
	tw := tar.NewWriter(w)
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	index, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{root}})
	files := map[string][]byte{ocispec.ImageLayoutFile: layout, "index.json": index}
	for d, data := range blobs {
		files["blobs/sha256/"+d.Encoded()] = data
	}
	return writeTar(tw, files)
}

func writeDocker(w io.Writer, blobs blobSet, spec Spec, entry dockerEntry) error {
	files := map[string][]byte{}
	files[entry.config.Encoded()+".json"] = blobs[entry.config]
	var layerPaths []string
	for _, d := range entry.layers {
		p := d.Encoded() + "/layer.tar"
		files[p] = blobs[d]
		layerPaths = append(layerPaths, p)
	}
	manifest, _ := json.Marshal([]map[string]any{{
		"Config": entry.config.Encoded() + ".json", "RepoTags": []string{spec.Name}, "Layers": layerPaths,
	}})
	files["manifest.json"] = manifest
	return writeTar(tar.NewWriter(w), files)
}

func writeTar(tw *tar.Writer, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	return tw.Close()
}
