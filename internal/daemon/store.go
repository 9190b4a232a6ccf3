package daemon

import (
	"context"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store is a containerd daemon's content store and image service, in one
// namespace.
type Store struct {
	client *containerd.Client
}

// Open connects to the daemon at address; namespace scopes every call.
func Open(ctx context.Context, address, namespace string) (*Store, error) {
	client, err := containerd.New(address,
		containerd.WithDefaultNamespace(namespace),
		containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", address, err)
	}
	// New does not fail on a socket nobody listens on; ask the daemon once
	// so that the first error says what is wrong.
	if _, err := client.Version(ctx); err != nil {
		client.Close()
		// gRPC's own words name dial internals; say what the user can check.
		return nil, fmt.Errorf("containerd does not answer at %s: is it running, and is that its socket?", address)
	}
	return &Store{client: client}, nil
}

// Content returns the daemon's content store.
func (s *Store) Content() content.Store { return s.client.ContentStore() }

// Images returns the daemon's image service.
func (s *Store) Images() images.Store { return s.client.ImageService() }

// Client returns the containerd client, for pulling, unpacking and running.
func (s *Store) Client() *containerd.Client { return s.client }

// Lease protects everything written under the returned context from the
// daemon's garbage collector until release is called: blobs of a command
// that fails or is killed are collected once their lease expires.
func (s *Store) Lease(ctx context.Context) (context.Context, func(), error) {
	ctx, done, err := s.client.WithLease(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("creating a lease: %w", err)
	}
	return ctx, func() { done(context.WithoutCancel(ctx)) }, nil
}

// Keep labels every index and manifest under target with its children, as
// containerd's own pull and import do, so that the garbage collector keeps
// what an image refers to once the lease that wrote it is gone.
func (s *Store) Keep(ctx context.Context, target ocispec.Descriptor) error {
	cs := s.client.ContentStore()
	// An image pulled for some platforms lacks the others' manifests:
	// there is nothing to label below those.
	children := images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if _, err := cs.Info(ctx, desc.Digest); errdefs.IsNotFound(err) {
			return nil, nil
		}
		return images.Children(ctx, cs, desc)
	})
	return images.Walk(ctx, images.SetChildrenLabels(cs, children), target)
}

// Close closes the connection.
func (s *Store) Close() error { return s.client.Close() }
