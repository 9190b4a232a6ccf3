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
// cancels the rest.
func (w *walker) runTasks(ctx context.Context, opts Options, fn func(context.Context, *task) error) error {
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	if opts.Progress != nil {
		var total int64
		for _, t := range w.order {
			total += t.src.Size
		}
		opts.Progress.Start(len(w.order), total)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, t := range w.order {
		g.Go(func() error {
			if err := fn(ctx, t); err != nil {
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

// transform writes what fn produces from the blob of src into cs and
// returns the new blob's digest. Nothing is committed unless fn succeeds, so
// a failure leaves no blob behind (only ingest data that Abort removes).
func transform(ctx context.Context, cs content.Store, src ocispec.Descriptor, expected ocispec.Descriptor, progress Progress,
	fn func(dst io.Writer, src io.Reader) error) (ocispec.Descriptor, error) {
	ra, err := cs.ReaderAt(ctx, src)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("reading %s: %w", src.Digest, err)
	}
	defer ra.Close()

	ref := fmt.Sprintf("imgcrypt-%s-%s", src.Digest.Encoded(), randomSuffix())
	w, err := content.OpenWriter(ctx, cs, content.WithRef(ref), content.WithDescriptor(expected))
	if errdefs.IsAlreadyExists(err) {
		return expected, nil // content-addressed: the result is already stored
	}
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

	var r io.Reader = io.NewSectionReader(ra, 0, src.Size)
	r = &contextReader{ctx: ctx, r: r}
	if progress != nil {
		r = &progressReader{r: r, p: progress}
	}
	if err := fn(w, r); err != nil {
		return ocispec.Descriptor{}, err
	}
	out := expected
	if out.Digest == "" {
		out.Digest = w.Digest()
	}
	if err := w.Commit(ctx, out.Size, expected.Digest); err != nil && !errdefs.IsAlreadyExists(err) {
		return ocispec.Descriptor{}, fmt.Errorf("storing result: %w", err)
	}
	committed = true
	return out, nil
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

// copyBuffer is the copy size for layer data: large enough that the cipher,
// not the copy loop, sets the pace.
const copyBuffer = 1 << 20

func copyAll(dst io.Writer, src io.Reader) error {
	buf := make([]byte, copyBuffer)
	_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
	return err
}

func randomSuffix() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
