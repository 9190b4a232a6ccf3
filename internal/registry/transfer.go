package registry

import (
	"context"
	"fmt"
	"strings"

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

// Pull fetches ref's manifests for the platforms in want (every platform
// when want is empty), and their configs and layers, into cs, and returns
// the root descriptor. Blobs are
// written through cs's ingests under a key per blob, so an interrupted pull
// run again resumes them; nothing names the image until the caller does.
func Pull(ctx context.Context, cs content.Store, ref string, want []ocispec.Platform, opts Options) (ocispec.Descriptor, error) {
	matcher := platforms.All
	if len(want) > 0 {
		matcher = platforms.Ordered(want...)
	}
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
	if _, err := images.Config(ctx, cs, root, matcher); err != nil {
		var wanted, have []string
		for _, p := range want {
			wanted = append(wanted, platforms.Format(p))
		}
		all, _ := images.Platforms(ctx, cs, root)
		for _, p := range all {
			have = append(have, platforms.Format(p))
		}
		return ocispec.Descriptor{}, fmt.Errorf("%s has no %s manifest (it has %s)", ref, strings.Join(wanted, " or "), strings.Join(have, ", "))
	}
	return root, nil
}

// Push uploads the whole image rooted at root to ref. Blobs the registry
// already has are not uploaded again, so a push run again after an
// interruption sends only what is missing. Every blob must be in cs: a
// registry refuses an index whose manifests it lacks (Narrow picks one).
func Push(ctx context.Context, cs content.Store, root ocispec.Descriptor, ref string, opts Options) error {
	if err := checkComplete(ctx, cs, root); err != nil {
		return err
	}
	resolver, err := opts.Resolver(ctx)
	if err != nil {
		return err
	}
	pusher, err := resolver.Pusher(ctx, ref)
	if err != nil {
		return err
	}
	if err := remotes.PushContent(ctx, pusher, root, cs, semaphore.NewWeighted(parallelBlobs), platforms.All, nil); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

// checkComplete fails with a clear message when part of the image, such
// as another platform's manifest, was never fetched into cs.
func checkComplete(ctx context.Context, cs content.Store, root ocispec.Descriptor) error {
	check := images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if _, err := cs.Info(ctx, desc.Digest); err != nil {
			what := desc.Digest.String()
			if desc.Platform != nil {
				what = "the " + platforms.Format(*desc.Platform) + " manifest"
			}
			return nil, fmt.Errorf("the store lacks %s of this image (pulled for other platforms only?): push one platform with --platform, or pull it with --all-platforms first", what)
		}
		return nil, nil
	})
	return images.Walk(ctx, images.Handlers(check, images.ChildrenHandler(cs)), root)
}
