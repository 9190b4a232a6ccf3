package layercrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"sync"
	"sync/atomic"
)

// pipelineChunk and pipelineDepth size the stream processor's pipeline:
// chunks about the size of a grown pipe, and enough of them in flight that
// no stage waits on another's buffer.
const (
	pipelineChunk = 512 << 10
	pipelineDepth = 8
)

// DecryptPipelined does what Decrypt does, with reading, authenticating
// (HMAC) and deciphering-and-writing each on its own goroutine, chunk by
// chunk in order. HMAC-SHA256 costs four times what AES-CTR does, so with
// a spare core the stream runs at the HMAC's pace instead of the sum of
// all stages. As with Decrypt, dst has received all plaintext by the time
// ErrTampered is returned.
func (k *LayerKey) DecryptPipelined(dst io.Writer, src io.Reader) (int64, error) {
	block, err := aes.NewCipher(k.SymmetricKey)
	if err != nil {
		return 0, err
	}
	stream := cipher.NewCTR(block, k.Nonce)
	mac := hmac.New(sha256.New, k.SymmetricKey)

	free := make(chan []byte, pipelineDepth)
	for range pipelineDepth {
		free <- make([]byte, pipelineChunk)
	}
	toMAC := make(chan []byte, pipelineDepth)
	toWrite := make(chan []byte, pipelineDepth)
	var stop atomic.Bool // a stage failed: the reader stops feeding
	var readErr, writeErr error
	var written int64
	var wg sync.WaitGroup
	wg.Add(3)

	go func() { // read
		defer wg.Done()
		defer close(toMAC)
		for !stop.Load() {
			buf := <-free
			n, err := io.ReadFull(src, buf)
			if n > 0 {
				toMAC <- buf[:n]
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if err != nil {
				readErr = err
				stop.Store(true)
				return
			}
		}
	}()
	go func() { // authenticate the ciphertext
		defer wg.Done()
		defer close(toWrite)
		for chunk := range toMAC {
			mac.Write(chunk)
			toWrite <- chunk
		}
	}()
	go func() { // decipher in place and write
		defer wg.Done()
		for chunk := range toWrite {
			if writeErr == nil {
				stream.XORKeyStream(chunk, chunk)
				var n int
				n, writeErr = dst.Write(chunk)
				written += int64(n)
				if writeErr != nil {
					stop.Store(true)
				}
			}
			free <- chunk[:cap(chunk)]
		}
	}()
	wg.Wait()

	switch {
	case readErr != nil:
		return written, readErr
	case writeErr != nil:
		return written, writeErr
	case !hmac.Equal(mac.Sum(nil), k.HMAC):
		return written, ErrTampered
	}
	return written, nil
}
