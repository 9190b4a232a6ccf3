package imagecrypt

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containers/ocicrypt"
	"github.com/containers/ocicrypt/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcrypt/imgcrypt/internal/layercrypt"
)

// DecryptOptions configure Decrypt.
type DecryptOptions struct {
	Options
	Config *config.DecryptConfig
}

// Decrypt decrypts the selected encrypted layers of the image rooted at root
// and returns the new root. Every selected layer's key is unwrapped before
// any data is read, so a missing key fails fast and writes nothing.
func Decrypt(ctx context.Context, cs content.Store, root ocispec.Descriptor, opts DecryptOptions) (ocispec.Descriptor, error) {
	w := newWalker(cs, opts.Filter, func(layer ocispec.Descriptor, _ bool) (bool, error) {
		return layercrypt.IsEncrypted(layer), nil
	})
	tree, err := w.plan(ctx, root)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	keys := make(map[*task]*layercrypt.LayerKey, len(w.order))
	for _, t := range w.order {
		key, err := layercrypt.Unwrap(opts.Config, t.src)
		if errors.Is(err, layercrypt.ErrNoKey) {
			return ocispec.Descriptor{}, &NoKeyError{Where: t.where, Schemes: layercrypt.Schemes(t.src), Detail: layercrypt.NoKeyDetail(err)}
		}
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("%s: %w", t.where, err)
		}
		keys[t] = key
	}
	every := func(*task) bool { return true }
	err = w.runTasks(ctx, opts.Options, every, func(ctx context.Context, t *task, topts transformOptions) error {
		out, err := decryptLayer(ctx, cs, t.src, keys[t], topts)
		if err != nil {
			return fmt.Errorf("%s (%s): %w", t.where, t.src.Digest, err)
		}
		t.out = out
		return nil
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return w.assemble(ctx, tree)
}

func decryptLayer(ctx context.Context, cs content.Store, src ocispec.Descriptor, key *layercrypt.LayerKey, topts transformOptions) (ocispec.Descriptor, error) {
	plainDigest, err := digest.Parse(key.Digest)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("the layer key records no valid digest: %w", err)
	}
	expected := ocispec.Descriptor{
		MediaType:    plainType(src.MediaType),
		Digest:       plainDigest,
		Size:         src.Size,
		URLs:         src.URLs,
		Platform:     src.Platform,
		ArtifactType: src.ArtifactType,
		Annotations:  ocicrypt.FilterOutAnnotations(src.Annotations),
	}
	if len(expected.Annotations) == 0 {
		expected.Annotations = nil
	}
	out, err := transform(ctx, cs, src, expected, topts, key.NewReader)
	if err != nil || out.Digest == plainDigest {
		return out, err
	}
	// skopeo compresses an uncompressed layer before encrypting it, yet
	// records the uncompressed digest. The HMAC has vouched for the data, so
	// a compressed result keeps its true digest; an uncompressed one has no
	// such excuse.
	if !isCompressedType(out.MediaType) {
		return ocispec.Descriptor{}, fmt.Errorf("decrypted data has digest %s, but the layer key records %s", out.Digest, plainDigest)
	}
	return out, nil
}
