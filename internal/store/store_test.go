package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func openT(t *testing.T, dir string) *Layout {
	t.Helper()
	l, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func writeBlob(t *testing.T, l *Layout, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := content.WriteBlob(context.Background(), l.Content(), desc.Digest.String(), bytes.NewReader(data), desc); err != nil {
		t.Fatalf("WriteBlob: %v", err)
	}
	return desc
}

func writeJSONBlob(t *testing.T, l *Layout, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return writeBlob(t, l, mediaType, data)
}

// writeImage stores a config, a layer and a manifest naming them.
func writeImage(t *testing.T, l *Layout, seed string) (manifest, config, layer ocispec.Descriptor) {
	t.Helper()
	config = writeBlob(t, l, ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","seed":"`+seed+`"}`))
	layer = writeBlob(t, l, ocispec.MediaTypeImageLayerGzip, []byte("layer "+seed))
	manifest = writeJSONBlob(t, l, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
	})
	return manifest, config, layer
}

func blobExists(t *testing.T, l *Layout, d digest.Digest) bool {
	t.Helper()
	_, err := l.Content().Info(context.Background(), d)
	if err != nil && !errdefs.IsNotFound(err) {
		t.Fatalf("Info %s: %v", d, err)
	}
	return err == nil
}

func target(data string) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    digest.FromString(data),
		Size:      int64(len(data)),
	}
}

func TestOpenCreatesLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	l := openT(t, dir)
	if l.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", l.Dir(), dir)
	}

	layout, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil {
		t.Fatal(err)
	}
	var lv ocispec.ImageLayout
	if err := json.Unmarshal(layout, &lv); err != nil || lv.Version != ocispec.ImageLayoutVersion {
		t.Errorf("oci-layout = %s (%v), want version %s", layout, err, ocispec.ImageLayoutVersion)
	}
	var ix ocispec.Index
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ix); err != nil || ix.SchemaVersion != 2 || ix.Manifests == nil || len(ix.Manifests) != 0 {
		t.Errorf("index.json = %s (%v), want empty schemaVersion 2 index", data, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "blobs", "sha256")); err != nil || !fi.IsDir() {
		t.Errorf("blobs/sha256 missing: %v", err)
	}

	// Reopening must not reset what is already there.
	ctx := context.Background()
	if _, err := l.Images().Create(ctx, images.Image{Name: "keep", Target: target("keep")}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	l2 := openT(t, dir)
	if _, err := l2.Images().Get(ctx, "keep"); err != nil {
		t.Errorf("image lost on reopen: %v", err)
	}
}

func TestImageLifecycle(t *testing.T) {
	ctx := context.Background()
	is := openT(t, t.TempDir()).Images()

	first := target("first")
	first.Annotations = map[string]string{"com.example.note": "x"}
	first.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64"}
	got, err := is.Create(ctx, images.Image{Name: "docker.io/library/alpine:latest", Target: first})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !reflect.DeepEqual(got.Target, first) {
		t.Errorf("Create returned target %+v, want %+v", got.Target, first)
	}
	if _, err := is.Create(ctx, images.Image{Name: "latest", Target: target("second")}); err != nil {
		t.Fatalf("Create: %v", err)
	}

	got, err = is.Get(ctx, "docker.io/library/alpine:latest")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Name != "docker.io/library/alpine:latest" || !reflect.DeepEqual(got.Target, first) {
		t.Errorf("Get = %+v, want target %+v without ref.name", got, first)
	}

	_, err = is.Create(ctx, images.Image{Name: "latest", Target: target("dup")})
	if !errdefs.IsAlreadyExists(err) || err.Error() != `image "latest" already exists` {
		t.Errorf("duplicate Create error = %v, want already exists", err)
	}

	list, err := is.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var names []string
	for _, img := range list {
		names = append(names, img.Name)
	}
	if want := []string{"docker.io/library/alpine:latest", "latest"}; !reflect.DeepEqual(names, want) {
		t.Errorf("List names = %v, want %v", names, want)
	}

	updated := target("updated")
	if _, err := is.Update(ctx, images.Image{Name: "latest", Target: updated}, "target"); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got, _ := is.Get(ctx, "latest"); got.Target.Digest != updated.Digest {
		t.Errorf("after Update target = %s, want %s", got.Target.Digest, updated.Digest)
	}
	if _, err := is.Update(ctx, images.Image{Name: "latest", Target: target("ignored")}, "labels"); err != nil {
		t.Fatalf("Update labels: %v", err)
	}
	if got, _ := is.Get(ctx, "latest"); got.Target.Digest != updated.Digest {
		t.Errorf("Update of labels only changed the target to %s", got.Target.Digest)
	}
	if _, err := is.Update(ctx, images.Image{Name: "missing", Target: updated}); !errdefs.IsNotFound(err) {
		t.Errorf("Update missing error = %v, want not found", err)
	}

	if err := is.Delete(ctx, "latest", images.DeleteTarget(&first)); !errdefs.IsNotFound(err) {
		t.Errorf("Delete with stale target error = %v, want not found", err)
	}
	if err := is.Delete(ctx, "latest"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = is.Get(ctx, "latest")
	if !errdefs.IsNotFound(err) || err.Error() != `image "latest" not found` {
		t.Errorf("Get after Delete error = %v, want not found", err)
	}
	if err := is.Delete(ctx, "latest"); !errdefs.IsNotFound(err) {
		t.Errorf("second Delete error = %v, want not found", err)
	}
	if list, _ := is.List(ctx); len(list) != 1 || list[0].Name != "docker.io/library/alpine:latest" {
		t.Errorf("List after Delete = %+v", list)
	}

	for _, name := range []string{"", "bad\nname"} {
		if _, err := is.Create(ctx, images.Image{Name: name, Target: target("x")}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Create(%q) error = %v, want invalid argument", name, err)
		}
	}
	if _, err := is.Get(ctx, ""); !errdefs.IsNotFound(err) {
		t.Errorf("Get(\"\") error = %v, want not found", err)
	}
}

func TestRewritePreservesUnknownContent(t *testing.T) {
	dir := t.TempDir()
	unnamed := `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest.FromString("u").String() +
		`","size":1,"platform":{"os":"linux","architecture":"s390x"},"annotations":{"a":"b"},"x-extra":{"keep":[1,2]}}`
	original := `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "annotations": {"org.example.owner": "someone"},
  "x-custom": [true, null, "z"],
  "manifests": [` + unnamed + `]
}`
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	is := openT(t, dir).Images()
	if _, err := is.Create(ctx, images.Image{Name: "new", Target: target("new")}); err != nil {
		t.Fatal(err)
	}
	if err := is.Delete(ctx, "new"); err != nil {
		t.Fatal(err)
	}
	if list, err := is.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("List = %+v, %v; unnamed entries must not be listed", list, err)
	}

	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal([]byte(original), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("index.json after rewrite:\n%s\nwant the semantic equivalent of:\n%s", data, original)
	}
}

func TestReadsForeignLayout(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	blob := func(data []byte) digest.Digest {
		d := digest.FromBytes(data)
		write(filepath.Join("blobs", "sha256", d.Encoded()), data)
		return d
	}
	config := []byte(`{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		blob(config).String() + `","size":` + fmt.Sprint(len(config)) + `},"layers":[]}`)
	md := blob(manifest)
	write("oci-layout", []byte(`{"imageLayoutVersion": "1.0.0"}`))
	write("index.json", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"`+
		md.String()+`","size":`+fmt.Sprint(len(manifest))+`,"platform":{"architecture":"arm64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}`))

	ctx := context.Background()
	l := openT(t, dir)
	img, err := l.Images().Get(ctx, "latest")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	wantTarget := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    md,
		Size:      int64(len(manifest)),
		Platform:  &ocispec.Platform{Architecture: "arm64", OS: "linux"},
	}
	if !reflect.DeepEqual(img.Target, wantTarget) {
		t.Errorf("Target = %+v, want %+v", img.Target, wantTarget)
	}
	got, err := content.ReadBlob(ctx, l.Content(), img.Target)
	if err != nil || string(got) != string(manifest) {
		t.Errorf("ReadBlob = %q, %v; want the manifest", got, err)
	}
	children, err := images.Children(ctx, l.Content(), img.Target)
	if err != nil || len(children) != 1 || children[0].Digest != digest.FromBytes(config) {
		t.Errorf("Children = %+v, %v; want the config", children, err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh")
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A Layout per goroutine gives each its own lock descriptors,
			// so the flocks contend exactly as between processes.
			l, err := Open(dir)
			if err != nil {
				errs <- err
				return
			}
			defer l.Close()
			name := fmt.Sprintf("image-%d", i)
			if _, err := l.Images().Create(context.Background(), images.Image{Name: name, Target: target(name)}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("writer: %v", err)
	}

	list, err := openT(t, dir).Images().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, img := range list {
		seen[img.Name] = true
	}
	for i := range n {
		if name := fmt.Sprintf("image-%d", i); !seen[name] {
			t.Errorf("%s lost; index has %d images", name, len(list))
		}
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openT(t, dir)

	manifest, config, layer := writeImage(t, l, "named")
	if _, err := l.Images().Create(ctx, images.Image{Name: "named", Target: manifest}); err != nil {
		t.Fatal(err)
	}

	// An unnamed index entry keeps its tree alive too, through a nested
	// index; its manifest's layer was never fetched, which is not an error.
	subManifest, subConfig, subLayer := writeImage(t, l, "unnamed")
	if err := l.Content().Delete(ctx, subLayer.Digest); err != nil {
		t.Fatal(err)
	}
	nested := writeJSONBlob(t, l, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{subManifest},
	})
	ix, err := readIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(nested)
	ix.manifests = append(ix.manifests, raw)
	if err := ix.write(dir); err != nil {
		t.Fatal(err)
	}

	orphan := writeBlob(t, l, "application/octet-stream", []byte("nobody refers to me"))
	w, err := content.OpenWriter(ctx, l.Content(), content.WithRef("abandoned"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if entries, _ := os.ReadDir(filepath.Join(dir, "ingest")); len(entries) == 0 {
		t.Fatal("test setup: expected an abandoned ingest")
	}
	// What a crash in the middle of rewriting index.json leaves.
	leftover := filepath.Join(dir, ".index.json8675309")
	if err := os.WriteFile(leftover, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}

	res, err := l.Prune(ctx)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if res != (PruneResult{Blobs: 1, Bytes: orphan.Size}) {
		t.Errorf("Prune = %+v, want only the orphan (%d bytes)", res, orphan.Size)
	}
	if blobExists(t, l, orphan.Digest) {
		t.Error("orphan blob survived")
	}
	for _, d := range []ocispec.Descriptor{manifest, config, layer, nested, subManifest, subConfig} {
		if !blobExists(t, l, d.Digest) {
			t.Errorf("referenced blob %s (%s) deleted", d.Digest, d.MediaType)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "ingest")); len(entries) != 0 {
		t.Errorf("ingest not cleared: %d entries left", len(entries))
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("temporary index.json left by a crash survived: %v", err)
	}

	// Deleting the name makes its whole tree garbage.
	if err := l.Images().Delete(ctx, "named"); err != nil {
		t.Fatal(err)
	}
	res, err = l.Prune(ctx)
	if err != nil {
		t.Fatalf("second Prune: %v", err)
	}
	if want := (PruneResult{Blobs: 3, Bytes: manifest.Size + config.Size + layer.Size}); res != want {
		t.Errorf("second Prune = %+v, want %+v", res, want)
	}
	if !blobExists(t, l, subManifest.Digest) {
		t.Error("blob under the unnamed entry deleted")
	}
}

func TestPruneWaitsForOtherLayouts(t *testing.T) {
	dir := t.TempDir()
	pruner := openT(t, dir)
	other := openT(t, dir)

	done := make(chan error, 1)
	go func() {
		_, err := pruner.Prune(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Prune finished (err %v) while another Layout was open", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Prune still blocked after the other Layout closed")
	}

	// After pruning, the pruner is back to a shared lock, which still
	// holds off a Prune elsewhere; that one gives up when its ctx expires.
	third := openT(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := third.Prune(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Prune with the pruner still open: err = %v, want deadline exceeded", err)
	}
	// A cancelled Prune must still hold its shared lock afterwards.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := pruner.Prune(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Prune after a cancelled Prune elsewhere: err = %v, want deadline exceeded", err)
	}
}
