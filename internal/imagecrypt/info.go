package imagecrypt

import (
	"context"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcrypt/imgcrypt/internal/layercrypt"
)

// LayerInfo describes one layer of one platform of an image.
type LayerInfo struct {
	Index      int           `json:"index"`
	Digest     digest.Digest `json:"digest"`
	Platform   string        `json:"platform"`
	Size       int64         `json:"size"`
	MediaType  string        `json:"mediaType"`
	Encryption []string      `json:"encryption"`
	Recipients []string      `json:"recipients"`
	// Descriptor is the layer's descriptor as its manifest has it.
	Descriptor ocispec.Descriptor `json:"-"`
}

// Layers describes the selected layers of every selected platform.
func Layers(ctx context.Context, cs content.Store, root ocispec.Descriptor, filter Filter) ([]LayerInfo, error) {
	w := newWalker(cs, filter, func(ocispec.Descriptor, bool) (bool, error) { return true, nil })
	if _, err := w.plan(ctx, root); err != nil {
		return nil, err
	}
	out := []LayerInfo{}
	for _, m := range w.manifests {
		for i, t := range m.tasks {
			if t == nil {
				continue
			}
			layer := m.layers[i]
			info := LayerInfo{Index: i, Digest: layer.Digest, Platform: m.platform, Size: layer.Size, MediaType: layer.MediaType,
				Encryption: []string{}, Recipients: []string{}, Descriptor: layer}
			if layercrypt.IsEncrypted(layer) {
				info.Encryption = layercrypt.Schemes(layer)
				info.Recipients = layercrypt.Recipients(layer)
			}
			out = append(out, info)
		}
	}
	return out, nil
}
