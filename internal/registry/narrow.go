package registry

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Narrow returns the manifest of root for platform: root itself when it is
// a manifest, else the first manifest of its index that matches. Pushing
// one platform pushes this manifest, as a registry refuses an index whose
// other manifests it does not have.
func Narrow(ctx context.Context, cs content.Provider, root ocispec.Descriptor, platform ocispec.Platform) (ocispec.Descriptor, error) {
	if !images.IsIndexType(root.MediaType) {
		return root, nil
	}
	blob, err := content.ReadBlob(ctx, cs, root)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(blob, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("index %s: %w", root.Digest, err)
	}
	matcher := platforms.NewMatcher(platform)
	for _, m := range idx.Manifests {
		if m.Platform != nil && matcher.Match(*m.Platform) {
			if images.IsIndexType(m.MediaType) {
				return Narrow(ctx, cs, m, platform)
			}
			return m, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("the image has no %s manifest", platforms.Format(platform))
}
