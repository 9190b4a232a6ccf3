package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/daemon"
	"github.com/imgcrypt/imgcrypt/internal/store"
)

// imageStore is the pair every image command works on, blobs and names,
// whether an embedded store or a containerd daemon.
type imageStore interface {
	Content() content.Store
	Images() images.Store
	// Lease protects what is written under ctx until release; a daemon's
	// garbage collector removes it afterwards unless an image refers to it.
	Lease(ctx context.Context) (leased context.Context, release func(), err error)
	Close() error
}

// embeddedStore adapts the layout store, which needs no leases: prune
// waits for running commands instead.
type embeddedStore struct{ *store.Layout }

func (embeddedStore) Lease(ctx context.Context) (context.Context, func(), error) {
	return ctx, func() {}, nil
}

// globalOptions are the flags every image command shares.
type globalOptions struct {
	storeDir  string
	address   string
	namespace string
	quiet     bool

	keyProviderConfig string
}

func (g *globalOptions) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&g.storeDir, "store", "", "embedded store directory (default $IMGCRYPT_STORE, else $XDG_DATA_HOME/imgcrypt)")
	f.StringVarP(&g.address, "address", "a", "", "containerd socket: work on the daemon's store instead of the embedded one ($CONTAINERD_ADDRESS)")
	f.StringVar(&g.namespace, "namespace", envOr("CONTAINERD_NAMESPACE", "default"), "containerd namespace ($CONTAINERD_NAMESPACE)")
	f.BoolVarP(&g.quiet, "quiet", "q", false, "print no progress")
	f.StringVar(&g.keyProviderConfig, "keyprovider-config", "", "ocicrypt key provider config file, added to $OCICRYPT_KEYPROVIDER_CONFIG's")
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// daemonAddress is the containerd socket to work on, if any: --address,
// else $CONTAINERD_ADDRESS unless --store names the embedded store.
func (g *globalOptions) daemonAddress() string {
	if g.address != "" || g.storeDir != "" {
		return g.address
	}
	return os.Getenv("CONTAINERD_ADDRESS")
}

// daemonStore is a containerd daemon's store.
func (g *globalOptions) daemonStore(ctx context.Context, command string) (*daemon.Store, error) {
	if g.daemonAddress() == "" {
		return nil, fmt.Errorf("%s needs containerd: give its socket with --address or $CONTAINERD_ADDRESS", command)
	}
	return daemon.Open(ctx, g.daemonAddress(), g.namespace)
}

// errNoStore means the embedded store does not exist yet.
var errNoStore = errors.New("no image store")

// openStore opens the store the flags name. The embedded store is created
// only with create (by the commands that bring images in), so a mistyped
// --store never leaves a new directory behind.
func (g *globalOptions) openStore(ctx context.Context, create bool) (imageStore, error) {
	if addr := g.daemonAddress(); addr != "" {
		return daemon.Open(ctx, addr, g.namespace)
	}
	dir, err := g.storePath()
	if err != nil {
		return nil, err
	}
	if !create {
		if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
			return nil, fmt.Errorf("%w at %s (import or pull an image first)", errNoStore, dir)
		}
	}
	s, err := store.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", dir, err)
	}
	return embeddedStore{s}, nil
}

// openImage opens the store and finds name in it; the caller closes the
// store.
func (g *globalOptions) openImage(ctx context.Context, name string) (imageStore, images.Image, error) {
	s, err := g.openStore(ctx, false)
	if err != nil {
		return nil, images.Image{}, err
	}
	img, err := findImage(ctx, s.Images(), name)
	if err != nil {
		s.Close()
		return nil, images.Image{}, err
	}
	return s, img, nil
}

func (g *globalOptions) storePath() (string, error) {
	if g.storeDir != "" {
		return g.storeDir, nil
	}
	if dir := os.Getenv("IMGCRYPT_STORE"); dir != "" {
		return dir, nil
	}
	if dir := os.Getenv("XDG_DATA_HOME"); dir != "" {
		return filepath.Join(dir, "imgcrypt"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", errors.New("no store directory: set --store or $IMGCRYPT_STORE")
	}
	return filepath.Join(home, ".local", "share", "imgcrypt"), nil
}

// normalizeName turns a user's image name into the one stored, as
// containerd and nerdctl do: alpine becomes docker.io/library/alpine:latest.
func normalizeName(name string) (string, error) {
	named, err := reference.ParseDockerRef(name)
	if err != nil {
		return "", fmt.Errorf("invalid image name %q: %w", name, err)
	}
	return named.String(), nil
}

// findImage looks name up as given (a layout written by another tool may
// use short tags such as "latest"), then in its normalized form.
func findImage(ctx context.Context, is images.Store, name string) (images.Image, error) {
	img, err := is.Get(ctx, name)
	if err == nil || !errdefs.IsNotFound(err) {
		return img, err
	}
	if full, nerr := normalizeName(name); nerr == nil && full != name {
		if img, err2 := is.Get(ctx, full); err2 == nil {
			return img, nil
		}
	}
	return images.Image{}, fmt.Errorf("image %q not found in the store", name)
}

// targetName is the name a new or updated image is stored under: an
// existing name as it is, else the normalized form.
func targetName(ctx context.Context, is images.Store, name string) (string, error) {
	if _, err := is.Get(ctx, name); err == nil {
		return name, nil
	}
	return normalizeName(name)
}

// saveImage points name at img's target, creating or replacing the record.
// It is the single commit point of every command that writes an image.
func saveImage(ctx context.Context, s imageStore, img images.Image) error {
	if k, ok := s.(interface {
		Keep(context.Context, ocispec.Descriptor) error
	}); ok {
		if err := k.Keep(ctx, img.Target); err != nil {
			return fmt.Errorf("labelling %s for containerd's garbage collector: %w", img.Name, err)
		}
	}
	is := s.Images()
	if _, err := is.Update(ctx, img); err == nil {
		return nil
	} else if !errdefs.IsNotFound(err) {
		return err
	}
	_, err := is.Create(ctx, img)
	if errdefs.IsAlreadyExists(err) {
		_, err = is.Update(ctx, img)
	}
	return err
}
