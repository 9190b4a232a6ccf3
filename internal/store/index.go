package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// index is index.json decoded just enough to edit its manifests while
// carrying everything else, including fields of entries we never touch,
// through a rewrite unchanged: other tools share this file.
type index struct {
	fields    map[string]json.RawMessage // top-level fields other than "manifests"
	manifests []json.RawMessage
}

func readIndex(dir string) (*index, error) {
	data, err := os.ReadFile(filepath.Join(dir, indexFile))
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	ix := &index{}
	if err := json.Unmarshal(data, &ix.fields); err != nil {
		return nil, fmt.Errorf("parse index: %w", err)
	}
	if raw, ok := ix.fields["manifests"]; ok {
		if err := json.Unmarshal(raw, &ix.manifests); err != nil {
			return nil, fmt.Errorf("parse index manifests: %w", err)
		}
		delete(ix.fields, "manifests")
	}
	return ix, nil
}

func (ix *index) write(dir string) error {
	manifests := ix.manifests
	if manifests == nil {
		manifests = []json.RawMessage{} // the spec requires an array, not null
	}
	m, err := json.Marshal(manifests)
	if err != nil {
		return err
	}
	top := make(map[string]json.RawMessage, len(ix.fields)+1)
	for k, v := range ix.fields {
		top[k] = v
	}
	top["manifests"] = m
	data, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		return fmt.Errorf("encode index: %w", err)
	}
	if err := writeFileAtomic(dir, indexFile, append(data, '\n')); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

// descriptors decodes every entry, named or not.
func (ix *index) descriptors() ([]ocispec.Descriptor, error) {
	descs := make([]ocispec.Descriptor, len(ix.manifests))
	for i, raw := range ix.manifests {
		if err := json.Unmarshal(raw, &descs[i]); err != nil {
			return nil, fmt.Errorf("parse index entry %d: %w", i, err)
		}
	}
	return descs, nil
}

// find returns the position of the entry named name, or -1.
func (ix *index) find(name string) (int, ocispec.Descriptor, error) {
	descs, err := ix.descriptors()
	if err != nil {
		return -1, ocispec.Descriptor{}, err
	}
	for i, d := range descs {
		if n, ok := d.Annotations[ocispec.AnnotationRefName]; ok && n == name {
			return i, d, nil
		}
	}
	return -1, ocispec.Descriptor{}, nil
}

// imageStore implements images.Store over index.json. It keeps no state in
// memory, so every call sees what other processes have written.
type imageStore struct {
	dir string
}

var _ images.Store = imageStore{}

func (s imageStore) Get(_ context.Context, name string) (images.Image, error) {
	ix, err := readIndex(s.dir)
	if err != nil {
		return images.Image{}, err
	}
	i, d, err := ix.find(name)
	if err != nil {
		return images.Image{}, err
	}
	if i < 0 {
		return images.Image{}, notFound(name)
	}
	return toImage(d), nil
}

// List returns every named image in index order. Filters are not supported.
func (s imageStore) List(_ context.Context, filters ...string) ([]images.Image, error) {
	if len(filters) > 0 {
		return nil, fmt.Errorf("list images with filters: %w", errdefs.ErrNotImplemented)
	}
	ix, err := readIndex(s.dir)
	if err != nil {
		return nil, err
	}
	descs, err := ix.descriptors()
	if err != nil {
		return nil, err
	}
	var imgs []images.Image
	for _, d := range descs {
		if _, ok := d.Annotations[ocispec.AnnotationRefName]; ok {
			imgs = append(imgs, toImage(d))
		}
	}
	return imgs, nil
}

func (s imageStore) Create(_ context.Context, img images.Image) (images.Image, error) {
	raw, entry, err := toEntry(img)
	if err != nil {
		return images.Image{}, err
	}
	err = s.modify(func(ix *index) error {
		i, _, err := ix.find(img.Name)
		if err != nil {
			return err
		}
		if i >= 0 {
			return fmt.Errorf("image %q %w", img.Name, errdefs.ErrAlreadyExists)
		}
		ix.manifests = append(ix.manifests, raw)
		return nil
	})
	if err != nil {
		return images.Image{}, err
	}
	return toImage(entry), nil
}

// Update replaces the image's target. Only the target is stored, so
// fieldpaths naming anything else are accepted and have no effect.
func (s imageStore) Update(ctx context.Context, img images.Image, fieldpaths ...string) (images.Image, error) {
	updateTarget := len(fieldpaths) == 0
	for _, p := range fieldpaths {
		if p == "target" || strings.HasPrefix(p, "target.") {
			updateTarget = true
		}
	}
	if !updateTarget {
		return s.Get(ctx, img.Name)
	}
	raw, entry, err := toEntry(img)
	if err != nil {
		return images.Image{}, err
	}
	err = s.modify(func(ix *index) error {
		i, _, err := ix.find(img.Name)
		if err != nil {
			return err
		}
		if i < 0 {
			return notFound(img.Name)
		}
		ix.manifests[i] = raw
		return nil
	})
	if err != nil {
		return images.Image{}, err
	}
	return toImage(entry), nil
}

// Delete removes the image's entry from the index. Its blobs stay until
// Prune finds them unreferenced.
func (s imageStore) Delete(ctx context.Context, name string, opts ...images.DeleteOpt) error {
	var options images.DeleteOptions
	for _, opt := range opts {
		if err := opt(ctx, &options); err != nil {
			return err
		}
	}
	return s.modify(func(ix *index) error {
		i, d, err := ix.find(name)
		if err != nil {
			return err
		}
		if i < 0 {
			return notFound(name)
		}
		// Same contract as containerd's own store: a delete conditioned on a
		// target must not remove an image that has since been retagged.
		if t := options.Target; t != nil && t.Digest != "" && t.Digest != d.Digest {
			return fmt.Errorf("image %q has target %s, not %s: %w", name, d.Digest, t.Digest, errdefs.ErrNotFound)
		}
		ix.manifests = append(ix.manifests[:i], ix.manifests[i+1:]...)
		return nil
	})
}

// modify applies fn to a freshly read index under the index lock, so
// concurrent writers of different images never lose each other's changes.
func (s imageStore) modify(fn func(*index) error) error {
	return withIndexLock(s.dir, func() error {
		ix, err := readIndex(s.dir)
		if err != nil {
			return err
		}
		if err := fn(ix); err != nil {
			return err
		}
		return ix.write(s.dir)
	})
}

func notFound(name string) error {
	return fmt.Errorf("image %q %w", name, errdefs.ErrNotFound)
}

func toImage(d ocispec.Descriptor) images.Image {
	name := d.Annotations[ocispec.AnnotationRefName]
	if len(d.Annotations) == 1 {
		d.Annotations = nil
	} else {
		anns := make(map[string]string, len(d.Annotations)-1)
		for k, v := range d.Annotations {
			if k != ocispec.AnnotationRefName {
				anns[k] = v
			}
		}
		d.Annotations = anns
	}
	return images.Image{Name: name, Target: d}
}

// toEntry encodes img as an index entry, its target annotated with its
// name, and returns the entry both encoded and as a descriptor.
func toEntry(img images.Image) (json.RawMessage, ocispec.Descriptor, error) {
	if err := validate(img); err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	d := img.Target
	anns := make(map[string]string, len(d.Annotations)+1)
	for k, v := range d.Annotations {
		anns[k] = v
	}
	anns[ocispec.AnnotationRefName] = img.Name
	d.Annotations = anns
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("encode image %q: %w", img.Name, err)
	}
	return raw, d, nil
}

func validate(img images.Image) error {
	if img.Name == "" {
		return fmt.Errorf("image name must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	if strings.ContainsAny(img.Name, "\r\n") {
		return fmt.Errorf("image name %q must not contain a newline: %w", img.Name, errdefs.ErrInvalidArgument)
	}
	if err := img.Target.Digest.Validate(); err != nil {
		return fmt.Errorf("image %q target digest: %w: %w", img.Name, err, errdefs.ErrInvalidArgument)
	}
	if img.Target.MediaType == "" {
		return fmt.Errorf("image %q target has no media type: %w", img.Name, errdefs.ErrInvalidArgument)
	}
	return nil
}
