package registry

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/semaphore"
)

// parallelBlobs bounds the blobs moved at once, as containerd does.
const parallelBlobs = 3

// Pull fetches ref's manifests for the platforms matcher accepts, and their
// configs and layers, into cs, and returns the root descriptor. Blobs are
// written through cs's ingests under a key per blob, so an interrupted pull
// run again resumes them; nothing names the image until the caller does.
func Pull(ctx context.Context, cs content.Store, ref string, matcher platforms.MatchComparer, opts Options) (ocispec.Descriptor, error) {
	resolver, err := opts.Resolver(ctx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	name, root, err := resolver.Resolve(ctx, ref)
	if errdefs.IsNotFound(err) {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w in the registry", ref, errdefs.ErrNotFound)
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolving %s: %w", ref, err)
	}
	fetcher, err := resolver.Fetcher(ctx, name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	children := images.LimitManifests(images.FilterPlatforms(images.ChildrenHandler(cs), matcher), matcher, 0)
	handler := images.Handlers(remotes.FetchHandler(cs, fetcher), children)
	if err := images.Dispatch(ctx, handler, semaphore.NewWeighted(parallelBlobs), root); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return root, nil
}

// Push uploads the image rooted at root, for the platforms matcher accepts,
// to ref. Blobs the registry already has are not uploaded again.
func Push(ctx context.Context, cs content.Store, root ocispec.Descriptor, ref string, matcher platforms.MatchComparer, opts Options) error {
	resolver, err := opts.Resolver(ctx)
	if err != nil {
		return err
	}
	pusher, err := resolver.Pusher(ctx, ref)
	if err != nil {
		return err
	}
	if err := remotes.PushContent(ctx, pusher, root, cs, semaphore.NewWeighted(parallelBlobs), matcher, nil); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
