package imagecrypt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Progress hears about layer work; its methods are called concurrently.
type Progress interface {
	// Start announces how many layers and bytes the operation will process.
	Start(layers int, bytes int64)
	// Add reports n more bytes processed.
	Add(n int64)
	// LayerDone reports one more layer finished.
	LayerDone()
}

// Options are shared by Encrypt and Decrypt.
type Options struct {
	Filter
	// Jobs bounds how many layers are processed at once; 0 means one per CPU.
	Jobs     int
	Progress Progress
}

// runTasks runs fn on every planned task, Jobs at a time; the first error
// cancels the rest. movesData tells the tasks that read their layer's data.
func (w *walker) runTasks(ctx context.Context, opts Options, movesData func(*task) bool,
	fn func(context.Context, *task, transformOptions) error) error {
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	// Only layers whose data is read count for progress and for cores:
	// adding recipients to an encrypted layer rewraps its key alone.
	var moving int
	var total int64
	for _, t := range w.order {
		if movesData(t) {
			moving++
			total += t.src.Size
		}
	}
	if opts.Progress != nil {
		opts.Progress.Start(len(w.order), total)
	}
	topts := transformOptions{progress: opts.Progress, async: jobs >= 2*moving}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, t := range w.order {
		g.Go(func() error {
			if err := fn(ctx, t, topts); err != nil {
				return err
			}
			if opts.Progress != nil {
				opts.Progress.LayerDone()
			}
			return nil
		})
	}
	return g.Wait()
}

// transform stores the blob that open makes from the blob of src and
// returns its descriptor: expected, with the digest of what was written.
// The work is always done, even when a blob of the expected digest is
// stored already: only reading the data to its end checks its HMAC, and a
// digest recorded by another tool may not be that of the data. Nothing is
// committed unless every byte was made and written, so a failure leaves no
// blob behind, only ingest data that Abort removes.
func transform(ctx context.Context, cs content.Store, src, expected ocispec.Descriptor, opts transformOptions,
	open func(io.Reader) (io.Reader, error)) (ocispec.Descriptor, error) {
	ra, err := cs.ReaderAt(ctx, src)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("reading %s: %w", src.Digest, err)
	}
	defer ra.Close()

	ref := fmt.Sprintf("imgcrypt-%s-%s", src.Digest.Encoded(), randomSuffix())
	w, err := content.OpenWriter(ctx, cs, content.WithRef(ref), content.WithDescriptor(ocispec.Descriptor{Size: expected.Size}))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	committed := false
	defer func() {
		if !committed {
			w.Close()
			cs.Abort(context.WithoutCancel(ctx), ref)
		}
	}()

	var r io.Reader = &contextReader{ctx: ctx, r: io.NewSectionReader(ra, 0, src.Size)}
	if opts.progress != nil {
		r = &progressReader{r: r, p: opts.progress}
	}
	out, err := open(r)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := pump(w, out, opts.async); err != nil {
		return ocispec.Descriptor{}, err
	}
	// Commit without an expected digest: the caller judges a mismatch (see
	// decryptLayer); content addressing keeps the blob honest either way.
	result := expected
	result.Digest = w.Digest()
	if err := w.Commit(ctx, result.Size, ""); err != nil && !errdefs.IsAlreadyExists(err) {
		return ocispec.Descriptor{}, fmt.Errorf("storing result: %w", err)
	}
	committed = true
	return result, nil
}

// transformOptions say how one layer's data is moved.
type transformOptions struct {
	progress Progress
	// async hashes and writes on a second goroutine: worth it when there
	// are more cores than layers to process.
	async bool
}

// contextReader stops a long copy as soon as its context is cancelled.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type progressReader struct {
	r io.Reader
	p Progress
}

func (pr *progressReader) Read(p []byte) (int, error) {
	n, err := pr.r.Read(p)
	pr.p.Add(int64(n))
	return n, err
}

func randomSuffix() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
