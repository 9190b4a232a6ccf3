// Package imagecopy copies an image from a registry or an OCI layout to a
// registry or an OCI layout, optionally transforming it (encrypting or
// decrypting) on the way. It works through a temporary store on disk, so
// memory stays flat whatever the image size, and it leaves the source as
// it was.
package imagecopy

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcrypt/imgcrypt/internal/registry"
	"github.com/imgcrypt/imgcrypt/internal/store"
)

// Endpoint is one side of a copy: an image in a registry, or a named
// image in an OCI layout directory.
type Endpoint struct {
	Layout string // the layout directory; "" for a registry
	Name   string // a registry reference, or the layout's image name
}

// ParseEndpoint reads "oci:DIR:NAME", "docker://REF" or a bare REF.
func ParseEndpoint(s string) (Endpoint, error) {
	if rest, ok := strings.CutPrefix(s, "oci:"); ok {
		dir, name, ok := strings.Cut(rest, ":")
		if !ok || dir == "" || name == "" {
			return Endpoint{}, fmt.Errorf("%q: want oci:DIR:NAME", s)
		}
		return Endpoint{Layout: dir, Name: name}, nil
	}
	ref := strings.TrimPrefix(s, "docker://")
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return Endpoint{}, fmt.Errorf("invalid image reference %q: %w", s, err)
	}
	return Endpoint{Name: named.String()}, nil
}

func (e Endpoint) String() string {
	if e.Layout != "" {
		return "oci:" + e.Layout + ":" + e.Name
	}
	return e.Name
}

// Transform rewrites the image rooted at root in cs and returns the new root.
type Transform func(ctx context.Context, cs content.Store, root ocispec.Descriptor) (ocispec.Descriptor, error)

// Options configure Copy.
type Options struct {
	Registry registry.Options
	// Platform, when set, copies only that platform's manifest; else the
	// whole image is copied.
	Platform  *ocispec.Platform
	Transform Transform // nil copies as is
	// TempDir holds the working store; "" uses the system's.
	TempDir string
}

// Copy copies src to dst and returns the root descriptor written.
func Copy(ctx context.Context, src, dst Endpoint, opts Options) (ocispec.Descriptor, error) {
	work, err := os.MkdirTemp(opts.TempDir, "imgcrypt-copy-")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer os.RemoveAll(work)
	ws, err := store.Open(work)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer ws.Close()
	cs := content.Store(ws.Content())

	var root ocispec.Descriptor
	if src.Layout != "" {
		ls, err := store.Open(src.Layout)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		defer ls.Close()
		img, err := ls.Images().Get(ctx, src.Name)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("%s: %w", src, err)
		}
		root = img.Target
		// Read from the source layout, write only to the working store.
		cs = overlay{Store: ws.Content(), lower: ls.Content()}
	} else {
		var want []ocispec.Platform
		if opts.Platform != nil {
			want = append(want, *opts.Platform)
		}
		if root, err = registry.Pull(ctx, cs, src.Name, want, opts.Registry); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	if opts.Platform != nil {
		if root, err = registry.Narrow(ctx, cs, root, *opts.Platform); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("%s: %w", src, err)
		}
	}

	if opts.Transform != nil {
		if root, err = opts.Transform(ctx, cs, root); err != nil {
			return ocispec.Descriptor{}, err
		}
	}

	if dst.Layout == "" {
		return root, registry.Push(ctx, cs, root, dst.Name, opts.Registry)
	}
	ds, err := store.Open(dst.Layout)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer ds.Close()
	if err := copyBlobs(ctx, cs, ds.Content(), root); err != nil {
		return ocispec.Descriptor{}, err
	}
	img := images.Image{Name: dst.Name, Target: root}
	_, err = ds.Images().Update(ctx, img)
	if errdefs.IsNotFound(err) {
		_, err = ds.Images().Create(ctx, img)
	}
	return root, err
}

// copyBlobs copies every blob of the image at root that dst lacks.
func copyBlobs(ctx context.Context, src content.Provider, dst content.Store, root ocispec.Descriptor) error {
	copyOne := images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if _, err := dst.Info(ctx, desc.Digest); err == nil {
			return nil, nil
		}
		ra, err := src.ReaderAt(ctx, desc)
		if err != nil {
			return nil, err
		}
		defer ra.Close()
		return nil, content.WriteBlob(ctx, dst, "copy-"+desc.Digest.String(), content.NewReader(ra), desc)
	})
	return images.Walk(ctx, images.Handlers(copyOne, images.ChildrenHandler(src)), root)
}

// overlay reads from the working store first, then from a read-only lower
// store, and writes only to the working store.
type overlay struct {
	content.Store
	lower content.InfoReaderProvider
}

func (o overlay) Info(ctx context.Context, d digest.Digest) (content.Info, error) {
	info, err := o.Store.Info(ctx, d)
	if errdefs.IsNotFound(err) {
		return o.lower.Info(ctx, d)
	}
	return info, err
}

func (o overlay) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	ra, err := o.Store.ReaderAt(ctx, desc)
	if errdefs.IsNotFound(err) {
		return o.lower.ReaderAt(ctx, desc)
	}
	return ra, err
}
