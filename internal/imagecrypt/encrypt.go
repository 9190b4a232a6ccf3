package imagecrypt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containers/ocicrypt"
	"github.com/containers/ocicrypt/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcrypt/imgcrypt/internal/layercrypt"
)

// NoKeyError reports a layer that none of the given keys can open.
type NoKeyError struct {
	Where   string   // "layer 2 of linux/arm64"
	Schemes []string // what the layer is encrypted for
	Detail  string   // why a PKCS#11 token did not unwrap, if one was asked
}

func (e *NoKeyError) Error() string {
	msg := fmt.Sprintf("no key matches any recipient of %s (it is encrypted for %s)", e.Where, strings.Join(e.Schemes, ", "))
	if e.Detail != "" {
		msg += "; the PKCS#11 token: " + e.Detail
	}
	return msg
}

// Unwrap lets errors.Is(err, layercrypt.ErrNoKey) find it.
func (e *NoKeyError) Unwrap() error { return layercrypt.ErrNoKey }

// EncryptOptions configure Encrypt.
type EncryptOptions struct {
	Options
	// Config names the recipients; its DecryptConfig holds keys of current
	// recipients, needed to add recipients to layers already encrypted.
	Config *config.EncryptConfig
	// ReplaceRecipients makes layers already encrypted end up encrypted for
	// exactly Config's recipients: their current wrapped keys are dropped.
	// The layer key and data stay, so a dropped recipient who kept a copy
	// of the layer key can still read the data; only new encryption stops
	// that.
	ReplaceRecipients bool
}

// Encrypt encrypts the selected layers of the image rooted at root and
// returns the new root. Layers already encrypted get the new recipients
// added without their data changing.
func Encrypt(ctx context.Context, cs content.Store, root ocispec.Descriptor, opts EncryptOptions) (ocispec.Descriptor, error) {
	if opts.Config == nil {
		return ocispec.Descriptor{}, errors.New("no recipients given")
	}
	w := newWalker(cs, opts.Filter, func(layer ocispec.Descriptor, explicit bool) (bool, error) {
		if !images.IsLayerType(layer.MediaType) {
			if explicit {
				return false, fmt.Errorf("not a layer (media type %q)", layer.MediaType)
			}
			return false, nil
		}
		return true, nil
	})
	tree, err := w.plan(ctx, root)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, t := range w.order {
		if !layercrypt.IsEncrypted(t.src) {
			continue
		}
		if _, err := layercrypt.Unwrap(&opts.Config.DecryptConfig, t.src); err != nil {
			if errors.Is(err, layercrypt.ErrNoKey) {
				return ocispec.Descriptor{}, fmt.Errorf("%s is already encrypted; to add recipients, pass --key with a private key of a current recipient: %w",
					t.where, &NoKeyError{Where: t.where, Schemes: layercrypt.Schemes(t.src), Detail: layercrypt.NoKeyDetail(err)})
			}
			return ocispec.Descriptor{}, fmt.Errorf("%s: %w", t.where, err)
		}
	}
	if len(w.order) > 0 {
		if err := checkRecipients(opts.Config); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	notEncrypted := func(t *task) bool { return !layercrypt.IsEncrypted(t.src) }
	err = w.runTasks(ctx, opts.Options, notEncrypted, func(ctx context.Context, t *task, topts transformOptions) error {
		out, err := encryptLayer(ctx, cs, t.src, opts.Config, opts.ReplaceRecipients, topts)
		if err != nil {
			return fmt.Errorf("%s: %w", t.where, err)
		}
		t.out = out
		return nil
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return w.assemble(ctx, tree)
}

// checkRecipients wraps a throwaway key for every recipient before any
// layer is read: ocicrypt wraps a layer's key only after all its data is
// encrypted, so a key provider that is down or a token that refuses would
// otherwise fail the command at the end of the work, not at its start.
func checkRecipients(ec *config.EncryptConfig) error {
	probe := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(nil)}
	r, finalize, err := ocicrypt.EncryptLayer(ec, bytes.NewReader(nil), probe)
	if err == nil {
		_, err = io.Copy(io.Discard, r)
	}
	if err == nil {
		_, err = finalize()
	}
	if err != nil {
		return fmt.Errorf("wrapping a layer key for the recipients: %w", err)
	}
	return nil
}

func encryptLayer(ctx context.Context, cs content.Store, src ocispec.Descriptor, ec *config.EncryptConfig, replace bool,
	topts transformOptions) (ocispec.Descriptor, error) {
	mediaType, err := encryptedType(src.MediaType)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if layercrypt.IsEncrypted(src) {
		// Only the wrapped keys change: the data and its digest stay.
		_, finalize, err := ocicrypt.EncryptLayer(ec, nil, src)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		out, err := withEncryption(src, mediaType, finalize)
		if err != nil || !replace {
			return out, err
		}
		return dropWrappedKeys(out, src), nil
	}
	var finalize ocicrypt.EncryptLayerFinalizer
	out, err := transform(ctx, cs, src, ocispec.Descriptor{MediaType: mediaType, Size: src.Size}, topts,
		func(plain io.Reader) (io.Reader, error) {
			r, fin, err := ocicrypt.EncryptLayer(ec, plain, src)
			finalize = fin
			return r, err
		})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	out.URLs, out.Platform, out.ArtifactType = src.URLs, src.Platform, src.ArtifactType
	out.Annotations = src.Annotations
	return withEncryption(out, mediaType, finalize)
}

// dropWrappedKeys removes from out every wrapped key that old already
// had: ocicrypt appends the new recipients' keys to the current ones.
func dropWrappedKeys(out, old ocispec.Descriptor) ocispec.Descriptor {
	annotations := maps.Clone(out.Annotations)
	for k, v := range annotations {
		if !strings.HasPrefix(k, layercrypt.KeysAnnotationPrefix) {
			continue
		}
		previous := map[string]bool{}
		for _, b := range strings.Split(old.Annotations[k], ",") {
			previous[b] = true
		}
		var kept []string
		for _, b := range strings.Split(v, ",") {
			if !previous[b] {
				kept = append(kept, b)
			}
		}
		if len(kept) == 0 {
			delete(annotations, k)
		} else {
			annotations[k] = strings.Join(kept, ",")
		}
	}
	out.Annotations = annotations
	return out
}

func withEncryption(desc ocispec.Descriptor, mediaType string, finalize ocicrypt.EncryptLayerFinalizer) (ocispec.Descriptor, error) {
	annotations, err := finalize()
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("wrapping the layer key: %w", err)
	}
	merged := ocicrypt.FilterOutAnnotations(desc.Annotations)
	maps.Copy(merged, annotations)
	desc.MediaType = mediaType
	desc.Annotations = merged
	return desc, nil
}
