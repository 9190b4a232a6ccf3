package daemon

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/platforms"
	ocicfg "github.com/containers/ocicrypt/config"
)

// PullOptions configure Pull.
type PullOptions struct {
	Resolver remotes.Resolver
	// Fetch selects the platforms to fetch; Platform is the one unpacked.
	Fetch       platforms.MatchComparer
	Platform    string
	Unpack      bool
	Snapshotter string
	// Decrypt holds the keys for encrypted layers; empty relies on the
	// stream processor's node keys.
	Decrypt *ocicfg.DecryptConfig
	// Authorize checks Decrypt against every encrypted layer before
	// unpacking, for a clear error instead of the decoder's.
	Authorize bool
}

// Pull fetches ref into the daemon and, if asked, unpacks it for
// opts.Platform with the decryption payload attached. The fetch happens
// under a lease, so a failed pull leaves nothing that outlives it.
func Pull(ctx context.Context, s *Store, ref string, opts PullOptions) (images.Image, error) {
	ctx, release, err := s.Lease(ctx)
	if err != nil {
		return images.Image{}, err
	}
	defer release()
	image, err := s.client.Pull(ctx, ref, containerd.WithResolver(opts.Resolver), containerd.WithPlatformMatcher(opts.Fetch))
	if err != nil {
		return images.Image{}, fmt.Errorf("pulling %s: %w", ref, err)
	}
	img := image.Metadata()
	if !opts.Unpack {
		return img, nil
	}
	if opts.Authorize {
		if err := Authorize(ctx, s.client, img, opts.Platform, opts.Decrypt); err != nil {
			return img, err
		}
	}
	return img, Unpack(ctx, s.client, img, opts.Platform, opts.Snapshotter, opts.Decrypt)
}
