package bench

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"

	"github.com/imgcrypt/imgcrypt/internal/cli"
	"github.com/imgcrypt/imgcrypt/internal/keygen"
	"github.com/imgcrypt/imgcrypt/internal/store"
)

const mib = 1 << 20

// TestMain lets the benchmarks run this test binary as imgcrypt or as
// ctd-decoder, so process-level measurements use the real entry point.
func TestMain(m *testing.M) {
	switch filepath.Base(os.Args[0]) {
	case "imgcrypt", cli.DecoderName:
		os.Exit(cli.Main(os.Args))
	}
	logrus.SetLevel(logrus.ErrorLevel) // the content store warns about fsverity
	os.Exit(m.Run())
}

// noise writes n pseudo-random bytes quickly (AES-CTR keystream), so layer
// data neither compresses nor costs the benchmark set-up much time.
func noise(w io.Writer, n int64, seed byte) error {
	block, _ := aes.NewCipher(bytes.Repeat([]byte{seed}, 32))
	stream := cipher.NewCTR(block, make([]byte, 16))
	buf := make([]byte, mib)
	for n > 0 {
		chunk := buf[:min(int64(len(buf)), n)]
		clear(chunk)
		stream.XORKeyStream(chunk, chunk)
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	return nil
}

// newImage stores an image named name with layers of size bytes each.
func newImage(tb testing.TB, s *store.Layout, name string, layers int, size int64) images.Image {
	tb.Helper()
	ctx := context.Background()
	cs := s.Content()
	var descs []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i := range layers {
		w, err := content.OpenWriter(ctx, cs, content.WithRef(fmt.Sprintf("bench-%s-%d", name, i)))
		if err != nil {
			tb.Fatal(err)
		}
		if err := noise(w, size, byte(i+1)); err != nil {
			tb.Fatal(err)
		}
		d := w.Digest()
		if err := w.Commit(ctx, size, d); err != nil {
			tb.Fatal(err)
		}
		descs = append(descs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: size})
		diffIDs = append(diffIDs, d)
	}
	config := writeJSON(tb, cs, ocispec.MediaTypeImageConfig, ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	manifest := writeJSON(tb, cs, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: descs,
	})
	img := images.Image{Name: name, Target: manifest}
	if _, err := s.Images().Create(ctx, img); err != nil {
		tb.Fatal(err)
	}
	return img
}

func writeJSON(tb testing.TB, cs content.Store, mediaType string, v any) ocispec.Descriptor {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := content.WriteBlob(context.Background(), cs, desc.Digest.String(), bytes.NewReader(data), desc); err != nil {
		tb.Fatal(err)
	}
	return desc
}

// benchDir is where benchmark stores live: $IMGCRYPT_BENCH_DIR, else
// tmpfs when there is one, so that the disk's fsync speed (the content
// store syncs every blob it commits) does not hide the code's own rate.
func benchDir(b *testing.B) string {
	parent := os.Getenv("IMGCRYPT_BENCH_DIR")
	if parent == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			parent = "/dev/shm"
		}
	}
	if parent == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "imgcrypt-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// newKey writes an RSA key pair into dir and returns the private key path.
func newKey(tb testing.TB, dir string) string {
	tb.Helper()
	priv, pub, err := keygen.Generate(keygen.Options{Type: "rsa", Bits: 2048})
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "key")
	if err := keygen.WriteFiles(path, priv, pub, true); err != nil {
		tb.Fatal(err)
	}
	return path
}
