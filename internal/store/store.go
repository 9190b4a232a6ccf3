package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"
)

const (
	layoutFile    = "oci-layout"
	indexFile     = "index.json"
	indexLockFile = ".imgcrypt-index.lock"
	gcLockFile    = ".imgcrypt-gc.lock"

	layoutContent = `{"imageLayoutVersion":"1.0.0"}`
	emptyIndex    = `{"schemaVersion":2,"manifests":[]}`
)

// Layout is an open OCI image layout. It keeps a shared lock on the layout
// until Close so that a Prune in another process cannot delete blobs this
// process is still writing or has written but not yet referenced.
type Layout struct {
	dir     string
	content content.Store

	mu     sync.Mutex // serialises Prune and Close on gcLock
	gcLock *os.File
}

// Open opens the OCI image layout at dir, creating the directory, the
// oci-layout file and an empty index.json if they are missing.
func Open(dir string) (*Layout, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("create image layout %s: %w", dir, err)
	}
	// Initialise under the index lock so that concurrent Opens of a fresh
	// directory cannot clobber an index another one has already written to.
	err := withIndexLock(dir, func() error {
		if err := createIfMissing(dir, layoutFile, layoutContent); err != nil {
			return err
		}
		return createIfMissing(dir, indexFile, emptyIndex)
	})
	if err != nil {
		return nil, fmt.Errorf("initialise image layout %s: %w", dir, err)
	}

	gcLock, err := os.OpenFile(filepath.Join(dir, gcLockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open gc lock: %w", err)
	}
	if err := flock(gcLock, unix.LOCK_SH); err != nil {
		gcLock.Close()
		return nil, fmt.Errorf("lock image layout %s: %w", dir, err)
	}

	cs, err := local.NewStore(dir)
	if err != nil {
		gcLock.Close()
		return nil, fmt.Errorf("open content store %s: %w", dir, err)
	}
	return &Layout{dir: dir, content: cs, gcLock: gcLock}, nil
}

// Dir returns the layout's directory.
func (l *Layout) Dir() string { return l.dir }

// Content returns the layout's blob store. Blobs live at blobs/<alg>/<hex>
// as the OCI layout requires; in-progress writes are staged under ingest and
// only renamed into blobs once their digest has been verified.
func (l *Layout) Content() content.Store { return l.content }

// Images returns the layout's image records, kept in index.json.
func (l *Layout) Images() images.Store { return imageStore{dir: l.dir} }

// Close releases the layout's lock, allowing Prune in other processes to
// proceed. It is safe to call more than once.
func (l *Layout) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gcLock == nil {
		return nil
	}
	// Closing the only descriptor of the open file description releases
	// its flock.
	err := l.gcLock.Close()
	l.gcLock = nil
	if err != nil {
		return fmt.Errorf("close image layout %s: %w", l.dir, err)
	}
	return nil
}

// withIndexLock runs fn while holding an exclusive lock on the layout's
// index lock file. Each call opens its own descriptor so that goroutines of
// one process exclude each other just as separate processes do.
func withIndexLock(dir string, fn func() error) error {
	f, err := os.OpenFile(filepath.Join(dir, indexLockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open index lock: %w", err)
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock index: %w", err)
	}
	return fn()
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func createIfMissing(dir, name, data string) error {
	_, err := os.Stat(filepath.Join(dir, name))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return writeFileAtomic(dir, name, []byte(data))
}

// writeFileAtomic replaces dir/name so that readers see either the old or
// the new contents, never a partial file, even across a crash; other tools
// and users must be able to read it.
func writeFileAtomic(dir, name string, data []byte) error {
	if err := renameio.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		return err
	}
	// renameio syncs the file, not the rename: make that durable too.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
