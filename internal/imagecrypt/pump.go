package imagecrypt

import (
	"io"
	"sync/atomic"
)

// copyBuffer is the size of the chunks layer data moves in: large enough
// that the cipher, not the copy loop, sets the pace.
const copyBuffer = 1 << 20

// pump copies src to dst. With spare cores (async), dst's writes, which
// hash and store the blob, run on a second goroutine while the next chunk
// is read and ciphered; chunks move between the two without being copied.
func pump(dst io.Writer, src io.Reader, async bool) error {
	if !async {
		_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, copyBuffer))
		return err
	}
	const depth = 3
	free := make(chan []byte, depth)
	full := make(chan []byte, depth)
	for range depth {
		free <- make([]byte, copyBuffer)
	}
	writeErr := make(chan error, 1)
	var failed atomic.Bool
	go func() {
		var err error
		for chunk := range full {
			if err == nil {
				if _, err = dst.Write(chunk); err != nil {
					failed.Store(true)
				}
			}
			free <- chunk[:cap(chunk)]
		}
		writeErr <- err
	}()
	var readErr error
	for !failed.Load() {
		buf := <-free
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			full <- buf[:n]
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	close(full)
	if err := <-writeErr; readErr == nil {
		return err
	}
	return readErr
}
