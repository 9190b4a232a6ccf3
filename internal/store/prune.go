package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// PruneResult reports what Prune deleted.
type PruneResult struct {
	// Blobs is the number of blob files deleted.
	Blobs int
	// Bytes is their total size; abandoned ingests are not counted.
	Bytes int64
}

// Prune deletes every blob not reachable from an entry of index.json, named
// or not, and discards abandoned partial writes. It waits until no other
// Layout on the directory is open, because a blob written by another command
// is unreferenced until that command updates the index. Tools that write the
// layout without imgcrypt's locks (skopeo, oras) must not run concurrently.
// Prune must not run concurrently with writes through l itself.
func (l *Layout) Prune(ctx context.Context) (res PruneResult, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gcLock == nil {
		return PruneResult{}, fmt.Errorf("prune %s: layout is closed", l.dir)
	}

	// Whether the exclusive lock was won, never held, or lost mid-attempt
	// (a failed conversion drops the old lock), go back to the shared lock
	// the rest of the Layout's lifetime relies on.
	defer func() {
		if lerr := flock(l.gcLock, unix.LOCK_SH); lerr != nil && err == nil {
			err = fmt.Errorf("prune %s: relock shared: %w", l.dir, lerr)
		}
	}()
	if err := lockExclusive(ctx, l.gcLock); err != nil {
		return PruneResult{}, fmt.Errorf("prune %s: %w", l.dir, err)
	}

	keep, err := l.reachable(ctx)
	if err != nil {
		return PruneResult{}, fmt.Errorf("prune %s: %w", l.dir, err)
	}
	if res, err = l.sweepBlobs(ctx, keep); err != nil {
		return res, fmt.Errorf("prune %s: %w", l.dir, err)
	}
	// Holding the exclusive lock means no writer is active, so every ingest
	// left behind belongs to a command that died.
	if err := removeContents(filepath.Join(l.dir, "ingest")); err != nil {
		return res, fmt.Errorf("prune %s: clear ingest: %w", l.dir, err)
	}
	// So does a temporary index.json a crash left (renameio names them
	// ".index.json" and digits).
	leftovers, _ := filepath.Glob(filepath.Join(l.dir, "."+indexFile+"[0-9]*"))
	for _, f := range leftovers {
		os.Remove(f)
	}
	return res, nil
}

// lockExclusive converts f's shared flock to an exclusive one, waiting for
// other open Layouts to close. It polls rather than blocking in flock(2) so
// that ctx can cancel the wait.
func lockExclusive(ctx context.Context, f *os.File) error {
	delay := 5 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("lock exclusively: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for other users of the layout: %w", ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// reachable returns the digests of every blob reachable from index.json.
func (l *Layout) reachable(ctx context.Context) (map[digest.Digest]bool, error) {
	ix, err := readIndex(l.dir)
	if err != nil {
		return nil, err
	}
	todo, err := ix.descriptors()
	if err != nil {
		return nil, err
	}
	seen := map[digest.Digest]bool{}
	for len(todo) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		children, err := l.children(d)
		if err != nil {
			return nil, err
		}
		todo = append(todo, children...)
	}
	return seen, nil
}

// children returns the descriptors a manifest or index refers to. A child
// blob that was never fetched is simply not there to keep, so a missing blob
// yields no children rather than an error. An unreadable one does fail: we
// cannot know what it would have kept alive.
func (l *Layout) children(d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	if !hasChildren(d.MediaType) || d.Digest.Validate() != nil {
		return nil, nil
	}
	data, err := os.ReadFile(l.blobPath(d.Digest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// One struct covers OCI and Docker manifests, indexes and manifest
	// lists, OCI artifact manifests and Docker schema1 manifests.
	var doc struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
		Blobs     []ocispec.Descriptor `json:"blobs"`
		Subject   *ocispec.Descriptor  `json:"subject"`
		FSLayers  []struct {
			BlobSum digest.Digest `json:"blobSum"`
		} `json:"fsLayers"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse %s %s: %w", d.MediaType, d.Digest, err)
	}
	out := append(append(doc.Layers, doc.Manifests...), doc.Blobs...)
	for _, p := range []*ocispec.Descriptor{doc.Config, doc.Subject} {
		if p != nil {
			out = append(out, *p)
		}
	}
	for _, fl := range doc.FSLayers {
		out = append(out, ocispec.Descriptor{Digest: fl.BlobSum})
	}
	return out, nil
}

func hasChildren(mediaType string) bool {
	switch mediaType {
	case images.MediaTypeDockerSchema1Manifest,
		"application/vnd.docker.distribution.manifest.v1+json",
		"application/vnd.oci.artifact.manifest.v1+json":
		return true
	}
	return images.IsManifestType(mediaType) || images.IsIndexType(mediaType)
}

func (l *Layout) blobPath(d digest.Digest) string {
	return filepath.Join(l.dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// sweepBlobs deletes blobs not in keep. Files whose names are not valid
// digests are left alone: they are not ours to judge.
func (l *Layout) sweepBlobs(ctx context.Context, keep map[digest.Digest]bool) (PruneResult, error) {
	var res PruneResult
	root := filepath.Join(l.dir, "blobs")
	algs, err := os.ReadDir(root)
	if err != nil {
		return res, err
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		files, err := os.ReadDir(filepath.Join(root, alg.Name()))
		if err != nil {
			return res, err
		}
		for _, f := range files {
			d := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), f.Name())
			if d.Validate() != nil || keep[d] {
				continue
			}
			info, err := f.Info()
			if err != nil {
				return res, err
			}
			if err := os.Remove(filepath.Join(root, alg.Name(), f.Name())); err != nil {
				return res, err
			}
			res.Blobs++
			res.Bytes += info.Size()
		}
	}
	return res, nil
}

// removeContents empties dir, tolerating its absence.
func removeContents(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
