package layercrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
)

// ErrTampered means a layer's ciphertext does not match its HMAC: the blob
// is corrupt, truncated or was modified after encryption.
var ErrTampered = errors.New("encrypted layer data does not match its HMAC (corrupt, truncated or tampered with)")

// decryptReader turns a ciphertext stream into plaintext in place, one
// caller buffer at a time, and checks the HMAC when the ciphertext ends.
type decryptReader struct {
	src    io.Reader
	stream cipher.Stream
	mac    hash.Hash
	want   []byte
	err    error
}

// NewReader returns a reader of the plain layer decrypted from the
// ciphertext in src. The HMAC is only known at the end, so the reader
// returns ErrTampered after all plaintext: callers must discard what they
// read on any error.
func (k *LayerKey) NewReader(src io.Reader) (io.Reader, error) {
	block, err := aes.NewCipher(k.SymmetricKey)
	if err != nil {
		return nil, err
	}
	return &decryptReader{
		src:    src,
		stream: cipher.NewCTR(block, k.Nonce),
		mac:    hmac.New(sha256.New, k.SymmetricKey),
		want:   k.HMAC,
	}, nil
}

func (d *decryptReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.src.Read(p)
	if n > 0 {
		d.mac.Write(p[:n])
		d.stream.XORKeyStream(p[:n], p[:n])
	}
	switch {
	case err == io.EOF:
		if !hmac.Equal(d.mac.Sum(nil), d.want) {
			err = ErrTampered
		}
		d.err = err
	case err != nil:
		d.err = err
	}
	return n, err
}

// Decrypt streams the plain layer from the ciphertext in src to dst in
// large chunks and returns the number of bytes written. As with NewReader,
// dst has received all plaintext by the time ErrTampered is returned.
func (k *LayerKey) Decrypt(dst io.Writer, src io.Reader) (int64, error) {
	r, err := k.NewReader(src)
	if err != nil {
		return 0, err
	}
	return io.CopyBuffer(dst, struct{ io.Reader }{r}, make([]byte, chunkSize))
}

// chunkSize is large enough that per-call overhead vanishes beside AES and
// HMAC, and small enough to stay in L2 cache between the two passes.
const chunkSize = 256 << 10
