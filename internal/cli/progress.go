package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

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
	if !p.enabled || layers == 0 {
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
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	fmt.Fprintf(p.w, "\r%s: %d/%d layers, %s / %s (%.0f%%)\x1b[K",
		p.verb, p.doneLayers.Load(), p.layers.Load(), humanBytes(done), humanBytes(total), pct)
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
