package layercrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"
)

// ErrTampered means a layer's ciphertext does not match its HMAC: the blob
// is corrupt, truncated or was modified after encryption.
var ErrTampered = errors.New("encrypted layer data does not match its HMAC (corrupt, truncated or tampered with)")

// chunkSize is large enough that per-call overhead vanishes beside AES and
// HMAC, and small enough to stay in L2 cache between the two passes.
const chunkSize = 256 << 10

// Decrypt streams the plain layer from the ciphertext in src to dst and
// returns the number of bytes written. The HMAC is only known at the end, so
// dst has received all plaintext by the time ErrTampered is returned: callers
// must discard dst's content on any error.
func (k *LayerKey) Decrypt(dst io.Writer, src io.Reader) (int64, error) {
	block, err := aes.NewCipher(k.SymmetricKey)
	if err != nil {
		return 0, err
	}
	stream := cipher.NewCTR(block, k.Nonce)
	mac := hmac.New(sha256.New, k.SymmetricKey)
	buf := make([]byte, chunkSize)
	var written int64
	for {
		n, rerr := io.ReadFull(src, buf)
		if n > 0 {
			chunk := buf[:n]
			mac.Write(chunk)
			stream.XORKeyStream(chunk, chunk)
			if _, err := dst.Write(chunk); err != nil {
				return written, err
			}
			written += int64(n)
		}
		switch rerr {
		case nil:
			continue
		case io.EOF, io.ErrUnexpectedEOF:
			if !hmac.Equal(mac.Sum(nil), k.HMAC) {
				return written, ErrTampered
			}
			return written, nil
		default:
			return written, rerr
		}
	}
}
