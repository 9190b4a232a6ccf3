package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/term"
)

// progressBar shows layer progress on a terminal, redrawn a few times a
// second; when output is not a terminal, or with --quiet, it shows nothing.
type progressBar struct {
	w       io.Writer
	verb    string
	enabled bool

	layers, bytes atomic.Int64
	doneLayers    atomic.Int64
	doneBytes     atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func newProgress(w io.Writer, verb string, quiet bool) *progressBar {
	p := &progressBar{w: w, verb: verb, stop: make(chan struct{})}
	if f, ok := w.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		p.enabled = true
	}
	return p
}

// Start implements imagecrypt.Progress.
func (p *progressBar) Start(layers int, bytes int64) {
	p.layers.Store(int64(layers))
	p.bytes.Store(bytes)
	if !p.enabled {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				p.draw()
				fmt.Fprintln(p.w)
				return
			case <-tick.C:
				p.draw()
			}
		}
	}()
}

// Add implements imagecrypt.Progress.
func (p *progressBar) Add(n int64) { p.doneBytes.Add(n) }

// LayerDone implements imagecrypt.Progress.
func (p *progressBar) LayerDone() { p.doneLayers.Add(1) }

// Finish stops the display; safe to call when it never started.
func (p *progressBar) Finish() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}

func (p *progressBar) draw() {
	total := p.bytes.Load()
	done := p.doneBytes.Load()
	if total <= 0 {
		// Transfers learn their size as they go: show what moved.
		fmt.Fprintf(p.w, "\r%s: %s\x1b[K", p.verb, humanBytes(done))
		return
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	fmt.Fprintf(p.w, "\r%s: %d/%d layers, %s / %s (%.0f%%)\x1b[K",
		p.verb, p.doneLayers.Load(), p.layers.Load(), humanBytes(done), humanBytes(total), pct)
}

// counted wraps cs so that every byte written to it or read from it
// counts as progress: how pull, push and copy show theirs.
func (p *progressBar) counted(cs content.Store) content.Store {
	if !p.enabled {
		return cs
	}
	return countingStore{Store: cs, add: p.Add}
}

type countingStore struct {
	content.Store
	add func(int64)
}

func (c countingStore) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	w, err := c.Store.Writer(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return countingWriter{Writer: w, add: c.add}, nil
}

func (c countingStore) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	ra, err := c.Store.ReaderAt(ctx, desc)
	if err != nil {
		return nil, err
	}
	return countingReaderAt{ReaderAt: ra, add: c.add}, nil
}

type countingWriter struct {
	content.Writer
	add func(int64)
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.add(int64(n))
	return n, err
}

type countingReaderAt struct {
	content.ReaderAt
	add func(int64)
}

func (r countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.ReaderAt.ReadAt(p, off)
	r.add(int64(n))
	return n, err
}

// humanBytes formats n with binary units, as ctr and nerdctl do.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
