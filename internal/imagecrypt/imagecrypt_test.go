package imagecrypt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"github.com/containers/ocicrypt"
	"github.com/containers/ocicrypt/config"
	"github.com/containers/ocicrypt/keywrap"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcrypt/imgcrypt/internal/layercrypt"
	"github.com/imgcrypt/imgcrypt/internal/store"
)

type testImage struct {
	dir    string // the store's directory
	cs     content.Store
	root   ocispec.Descriptor
	shared ocispec.Descriptor // a layer both platforms use
}

func put(t *testing.T, cs content.Store, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := content.WriteBlob(context.Background(), cs, desc.Digest.String(), bytes.NewReader(data), desc); err != nil {
		t.Fatal(err)
	}
	return desc
}

func putJSON(t *testing.T, cs content.Store, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return put(t, cs, mediaType, data)
}

// newTestImage builds an index of two platforms that share their first
// layer; the index and the manifests carry annotations, a subject and
// fields imgcrypt does not know, which must all survive.
func newTestImage(t *testing.T, manifestType, layerType string) testImage {
	t.Helper()
	dir := t.TempDir()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cs := s.Content()
	shared := put(t, cs, layerType, []byte("shared layer"))
	subject := put(t, cs, ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2}`))
	var manifests []map[string]any
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		plat := platforms.MustParse(p)
		own := put(t, cs, layerType, []byte("layer of "+p))
		configType := ocispec.MediaTypeImageConfig
		if manifestType == images.MediaTypeDockerSchema2Manifest {
			configType = images.MediaTypeDockerSchema2Config
		}
		config := putJSON(t, cs, configType, ocispec.Image{Platform: plat})
		m := map[string]any{
			"schemaVersion": 2,
			"mediaType":     manifestType,
			"config":        config,
			"layers":        []any{shared, map[string]any{"mediaType": own.MediaType, "digest": own.Digest, "size": own.Size, "x-extra": "kept"}},
			"annotations":   map[string]string{"org.example.manifest": p + " & <more>"},
			"subject":       subject,
		}
		desc := putJSON(t, cs, manifestType, m)
		manifests = append(manifests, map[string]any{
			"mediaType": desc.MediaType, "digest": desc.Digest, "size": desc.Size, "platform": plat,
			"annotations": map[string]string{"org.example.entry": p},
		})
	}
	indexType := ocispec.MediaTypeImageIndex
	if manifestType == images.MediaTypeDockerSchema2Manifest {
		indexType = images.MediaTypeDockerSchema2ManifestList
	}
	root := putJSON(t, cs, indexType, map[string]any{
		"schemaVersion": 2, "mediaType": indexType, "manifests": manifests,
		"annotations": map[string]string{"org.example.index": "kept"},
		"x-unknown":   map[string]int{"answer": 42},
	})
	return testImage{dir: dir, cs: cs, root: root, shared: shared}
}

func readMap(t *testing.T, cs content.Store, desc ocispec.Descriptor) map[string]json.RawMessage {
	t.Helper()
	raw, err := readJSON(context.Background(), cs, desc)
	if err != nil {
		t.Fatal(err)
	}
	return raw.values
}

// manifestsOf returns the platform -> manifest of an index.
func manifestsOf(t *testing.T, cs content.Store, root ocispec.Descriptor) map[string]ocispec.Manifest {
	t.Helper()
	var idx ocispec.Index
	if err := json.Unmarshal(readMap(t, cs, root)["manifests"], &idx.Manifests); err != nil {
		t.Fatal(err)
	}
	out := map[string]ocispec.Manifest{}
	for _, d := range idx.Manifests {
		blob, err := content.ReadBlob(context.Background(), cs, d)
		if err != nil {
			t.Fatal(err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(blob, &m); err != nil {
			t.Fatal(err)
		}
		out[platforms.Format(*d.Platform)] = m
	}
	return out
}

type keyPair struct {
	ec *config.EncryptConfig
	dc *config.DecryptConfig
}

func newKeyPair(t *testing.T) keyPair {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	ecc, err := config.EncryptWithJwe([][]byte{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})})
	if err != nil {
		t.Fatal(err)
	}
	dcc, err := config.DecryptWithPrivKeys([][]byte{pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})}, [][]byte{nil})
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{ec: ecc.EncryptConfig, dc: dcc.DecryptConfig}
}

func TestEncryptKeepsUnrelatedFields(t *testing.T) {
	img := newTestImage(t, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerGzip)
	key := newKeyPair(t)
	ctx := context.Background()
	enc, err := Encrypt(ctx, img.cs, img.root, EncryptOptions{Config: key.ec})
	if err != nil {
		t.Fatal(err)
	}
	idx := readMap(t, img.cs, enc)
	if string(idx["x-unknown"]) != `{"answer":42}` || !strings.Contains(string(idx["annotations"]), "org.example.index") {
		t.Errorf("index fields lost: %s", idx)
	}
	if !strings.Contains(string(idx["manifests"]), `"org.example.entry":"linux/arm64"`) {
		t.Errorf("index entry annotations lost: %s", idx["manifests"])
	}
	for p, m := range manifestsOf(t, img.cs, enc) {
		if m.Subject == nil || m.Annotations["org.example.manifest"] != p+" & <more>" {
			t.Errorf("%s: subject or annotations lost: %+v", p, m)
		}
		for i, l := range m.Layers {
			if l.MediaType != ocispec.MediaTypeImageLayerGzip+"+encrypted" || !layercrypt.IsEncrypted(l) {
				t.Errorf("%s layer %d not encrypted: %+v", p, i, l)
			}
		}
	}
	blob, _ := content.ReadBlob(ctx, img.cs, ocispec.Descriptor{Digest: digestOfManifest(t, img.cs, enc, "linux/arm64")})
	if !strings.Contains(string(blob), `"x-extra":"kept"`) {
		t.Errorf("unknown layer descriptor field lost: %s", blob)
	}

	dec, err := Decrypt(ctx, img.cs, enc, DecryptOptions{Config: key.dc})
	if err != nil {
		t.Fatal(err)
	}
	if dec.Digest != img.root.Digest {
		t.Errorf("decrypting gave root %s, want the original %s", dec.Digest, img.root.Digest)
	}
}

func digestOfManifest(t *testing.T, cs content.Store, root ocispec.Descriptor, platform string) digest.Digest {
	var entries []ocispec.Descriptor
	json.Unmarshal(readMap(t, cs, root)["manifests"], &entries)
	for _, e := range entries {
		if platforms.Format(*e.Platform) == platform {
			return e.Digest
		}
	}
	t.Fatalf("no %s manifest", platform)
	return ""
}

func TestEncryptDockerBecomesOCI(t *testing.T) {
	img := newTestImage(t, images.MediaTypeDockerSchema2Manifest, images.MediaTypeDockerSchema2LayerGzip)
	key := newKeyPair(t)
	ctx := context.Background()
	enc, err := Encrypt(ctx, img.cs, img.root, EncryptOptions{Config: key.ec, Options: Options{Filter: Filter{Layers: []int{-1}}}})
	if err != nil {
		t.Fatal(err)
	}
	if enc.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("root media type %s, want an OCI index", enc.MediaType)
	}
	for p, m := range manifestsOf(t, img.cs, enc) {
		if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.MediaType != ocispec.MediaTypeImageConfig {
			t.Errorf("%s: manifest %s config %s, want OCI types", p, m.MediaType, m.Config.MediaType)
		}
		if m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip || m.Layers[0].Digest != img.shared.Digest {
			t.Errorf("%s: unselected layer 0 is %+v, want plain OCI gzip with its digest", p, m.Layers[0])
		}
		if m.Layers[1].MediaType != ocispec.MediaTypeImageLayerGzip+"+encrypted" {
			t.Errorf("%s: layer 1 is %s", p, m.Layers[1].MediaType)
		}
	}
}

func TestEncryptSharedLayerOnlyWhereSelected(t *testing.T) {
	img := newTestImage(t, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer)
	key := newKeyPair(t)
	enc, err := Encrypt(context.Background(), img.cs, img.root, EncryptOptions{Config: key.ec,
		Options: Options{Filter: Filter{Platforms: []ocispec.Platform{platforms.MustParse("linux/arm64")}}}})
	if err != nil {
		t.Fatal(err)
	}
	ms := manifestsOf(t, img.cs, enc)
	if got := ms["linux/amd64"].Layers[0]; got.Digest != img.shared.Digest || layercrypt.IsEncrypted(got) {
		t.Errorf("amd64 shared layer changed: %+v", got)
	}
	if got := ms["linux/arm64"].Layers[0]; got.Digest == img.shared.Digest || !layercrypt.IsEncrypted(got) {
		t.Errorf("arm64 shared layer not encrypted: %+v", got)
	}
	if digestOfManifest(t, img.cs, enc, "linux/amd64") != digestOfManifest(t, img.cs, img.root, "linux/amd64") {
		t.Error("the amd64 manifest was rewritten though nothing in it was selected")
	}
}

func TestSelectionErrors(t *testing.T) {
	img := newTestImage(t, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer)
	key := newKeyPair(t)
	ctx := context.Background()
	_, err := Encrypt(ctx, img.cs, img.root, EncryptOptions{Config: key.ec,
		Options: Options{Filter: Filter{Platforms: []ocispec.Platform{platforms.MustParse("linux/s390x")}}}})
	if err == nil || err.Error() != "image has no linux/s390x manifest (it has linux/amd64, linux/arm64)" {
		t.Errorf("missing platform: %v", err)
	}
	_, err = Encrypt(ctx, img.cs, img.root, EncryptOptions{Config: key.ec, Options: Options{Filter: Filter{Layers: []int{2}}}})
	if err == nil || err.Error() != "layer 2 out of range: linux/amd64 has 2 layers" {
		t.Errorf("layer out of range: %v", err)
	}
	_, err = Encrypt(ctx, img.cs, img.root, EncryptOptions{Config: key.ec, Options: Options{Filter: Filter{Layers: []int{-3}}}})
	if err == nil || !strings.Contains(err.Error(), "layer -3 out of range") {
		t.Errorf("negative layer out of range: %v", err)
	}
}

func TestDecryptWithWrongKeyWritesNothing(t *testing.T) {
	img := newTestImage(t, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer)
	ctx := context.Background()
	enc, err := Encrypt(ctx, img.cs, img.root, EncryptOptions{Config: newKeyPair(t).ec})
	if err != nil {
		t.Fatal(err)
	}
	before := countBlobs(t, img.cs)
	_, err = Decrypt(ctx, img.cs, enc, DecryptOptions{Config: newKeyPair(t).dc})
	var noKey *NoKeyError
	if !errors.As(err, &noKey) || !errors.Is(err, layercrypt.ErrNoKey) {
		t.Fatalf("got %v, want a NoKeyError", err)
	}
	if want := "no key matches any recipient of layer 0 of linux/amd64 (it is encrypted for jwe)"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if after := countBlobs(t, img.cs); after != before {
		t.Errorf("blobs went from %d to %d", before, after)
	}
}

func TestDecryptDetectsTamperedLayer(t *testing.T) {
	img := newTestImage(t, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer)
	key := newKeyPair(t)
	ctx := context.Background()
	enc, err := Encrypt(ctx, img.cs, img.root, EncryptOptions{Config: key.ec, Options: Options{Filter: Filter{Layers: []int{1}}}})
	if err != nil {
		t.Fatal(err)
	}
	// Flip one byte of the encrypted layer in place. The plain layer is
	// still stored, which must not let decryption skip the HMAC check.
	layer := manifestsOf(t, img.cs, enc)["linux/amd64"].Layers[1]
	path := filepath.Join(img.dir, "blobs", "sha256", layer.Digest.Encoded())
	os.Chmod(path, 0o644)
	data, _ := os.ReadFile(path)
	data[0] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Decrypt(ctx, img.cs, enc, DecryptOptions{Config: key.dc})
	if !errors.Is(err, layercrypt.ErrTampered) || !strings.Contains(err.Error(), "layer 1 of linux/amd64") {
		t.Errorf("got %v, want ErrTampered naming layer 1 of linux/amd64", err)
	}
}

func countBlobs(t *testing.T, cs content.Store) int {
	t.Helper()
	n := 0
	if err := cs.Walk(context.Background(), func(content.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAddRecipientKeepsLayerData(t *testing.T) {
	img := newTestImage(t, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerGzip)
	alice, bob := newKeyPair(t), newKeyPair(t)
	ctx := context.Background()
	enc, err := Encrypt(ctx, img.cs, img.root, EncryptOptions{Config: alice.ec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Encrypt(ctx, img.cs, enc, EncryptOptions{Config: bob.ec}); !errors.Is(err, layercrypt.ErrNoKey) {
		t.Fatalf("adding a recipient without a current key: got %v, want ErrNoKey", err)
	}
	withBob := *bob.ec
	withBob.DecryptConfig = *alice.dc
	both, err := Encrypt(ctx, img.cs, enc, EncryptOptions{Config: &withBob})
	if err != nil {
		t.Fatal(err)
	}
	before, after := manifestsOf(t, img.cs, enc), manifestsOf(t, img.cs, both)
	for p := range before {
		for i := range before[p].Layers {
			b, a := before[p].Layers[i], after[p].Layers[i]
			if a.Digest != b.Digest {
				t.Errorf("%s layer %d: digest changed", p, i)
			}
			if n := strings.Count(a.Annotations["org.opencontainers.image.enc.keys.jwe"], ",") + 1; n != 2 {
				t.Errorf("%s layer %d: %d jwe recipients, want 2", p, i, n)
			}
		}
	}
	dec, err := Decrypt(ctx, img.cs, both, DecryptOptions{Config: bob.dc})
	if err != nil {
		t.Fatal(err)
	}
	if dec.Digest != img.root.Digest {
		t.Error("bob's decryption does not give back the original image")
	}
}

// An image pulled for one platform lacks the other's manifest: encrypting
// and describing it work on what is there, and asking for the missing
// platform by name is a clear error.
func TestPartialImage(t *testing.T) {
	img := newTestImage(t, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer)
	ctx := context.Background()
	if err := img.cs.Delete(ctx, digestOfManifest(t, img.cs, img.root, "linux/arm64")); err != nil {
		t.Fatal(err)
	}
	layers, err := Layers(ctx, img.cs, img.root, Filter{})
	if err != nil || len(layers) != 2 || layers[0].Platform != "linux/amd64" {
		t.Fatalf("layers of a partial image: %v, %+v", err, layers)
	}
	key := newKeyPair(t)
	enc, err := Encrypt(ctx, img.cs, img.root, EncryptOptions{Config: key.ec})
	if err != nil {
		t.Fatal(err)
	}
	if got := digestOfManifest(t, img.cs, enc, "linux/arm64"); got != digestOfManifest(t, img.cs, img.root, "linux/arm64") {
		t.Error("the missing manifest's entry changed")
	}
	_, err = Layers(ctx, img.cs, img.root, Filter{Platforms: []ocispec.Platform{platforms.MustParse("linux/arm64")}})
	if err == nil || !strings.Contains(err.Error(), "the linux/arm64 manifest is not in the store") {
		t.Errorf("asking for the missing platform: %v", err)
	}
}

// failingWrapper is a key wrapper whose recipients can never be reached,
// like a key provider that is down.
type failingWrapper struct{ keywrap.KeyWrapper }

// WrapKeys fails for its own recipients only: ocicrypt asks every
// registered wrapper on every encryption, as it does real providers.
func (failingWrapper) WrapKeys(ec *config.EncryptConfig, _ []byte) ([]byte, error) {
	if len(ec.Parameters["imagecrypt-test"]) == 0 {
		return nil, nil
	}
	return nil, errors.New("provider unreachable")
}
func (failingWrapper) GetAnnotationID() string {
	return "org.opencontainers.image.enc.keys.provider.imagecrypt-test"
}

// A recipient that cannot be wrapped for fails the command before any layer
// is read or written, not after all the data work.
func TestEncryptChecksRecipientsFirst(t *testing.T) {
	ocicrypt.RegisterKeyWrapper("provider.imagecrypt-test", failingWrapper{})
	img := newTestImage(t, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer)
	before := countBlobs(t, img.cs)
	ec := &config.EncryptConfig{Parameters: map[string][][]byte{"imagecrypt-test": {[]byte("x")}}}
	progress := &countingProgress{}
	_, err := Encrypt(context.Background(), img.cs, img.root, EncryptOptions{Config: ec, Options: Options{Progress: progress}})
	if err == nil || !strings.Contains(err.Error(), "provider unreachable") {
		t.Fatalf("got %v, want the wrapper's error", err)
	}
	if progress.bytes.Load() != 0 {
		t.Errorf("%d bytes of layer data were read before the recipient check", progress.bytes.Load())
	}
	if after := countBlobs(t, img.cs); after != before {
		t.Errorf("blobs went from %d to %d", before, after)
	}
}

type countingProgress struct{ bytes atomic.Int64 }

func (p *countingProgress) Start(int, int64) {}
func (p *countingProgress) Add(n int64)      { p.bytes.Add(n) }
func (p *countingProgress) LayerDone()       {}

// Replacing recipients keeps the layer data and leaves the layers
// encrypted for the new recipients only: the old one is refused.
func TestReplaceRecipients(t *testing.T) {
	img := newTestImage(t, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerGzip)
	alice, bob := newKeyPair(t), newKeyPair(t)
	ctx := context.Background()
	enc, err := Encrypt(ctx, img.cs, img.root, EncryptOptions{Config: alice.ec})
	if err != nil {
		t.Fatal(err)
	}
	toBob := *bob.ec
	toBob.DecryptConfig = *alice.dc
	onlyBob, err := Encrypt(ctx, img.cs, enc, EncryptOptions{Config: &toBob, ReplaceRecipients: true})
	if err != nil {
		t.Fatal(err)
	}
	before, after := manifestsOf(t, img.cs, enc), manifestsOf(t, img.cs, onlyBob)
	for p := range before {
		for i := range before[p].Layers {
			if after[p].Layers[i].Digest != before[p].Layers[i].Digest {
				t.Errorf("%s layer %d: data changed", p, i)
			}
			if n := strings.Count(after[p].Layers[i].Annotations["org.opencontainers.image.enc.keys.jwe"], ",") + 1; n != 1 {
				t.Errorf("%s layer %d: %d jwe recipients, want 1", p, i, n)
			}
		}
	}
	if _, err := Decrypt(ctx, img.cs, onlyBob, DecryptOptions{Config: alice.dc}); !errors.Is(err, layercrypt.ErrNoKey) {
		t.Errorf("the dropped recipient decrypts: %v", err)
	}
	dec, err := Decrypt(ctx, img.cs, onlyBob, DecryptOptions{Config: bob.dc})
	if err != nil || dec.Digest != img.root.Digest {
		t.Errorf("the new recipient: %v, root %s, want %s", err, dec.Digest, img.root.Digest)
	}
}
