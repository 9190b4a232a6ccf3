package layercrypt

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"testing"

	"github.com/containers/ocicrypt"
	"github.com/containers/ocicrypt/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// encryptWithOcicrypt encrypts plain as ocicrypt does for a jwe recipient and
// returns the ciphertext, its annotated descriptor and a matching DecryptConfig.
func encryptWithOcicrypt(t testing.TB, plain []byte) ([]byte, ocispec.Descriptor, *config.DecryptConfig) {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})
	ecc, err := config.EncryptWithJwe([][]byte{pubPEM})
	if err != nil {
		t.Fatal(err)
	}
	dcc, err := config.DecryptWithPrivKeys([][]byte{privPEM}, [][]byte{nil})
	if err != nil {
		t.Fatal(err)
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(plain), Size: int64(len(plain))}
	r, fin, err := ocicrypt.EncryptLayer(ecc.EncryptConfig, bytes.NewReader(plain), desc)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	annotations, err := fin()
	if err != nil {
		t.Fatal(err)
	}
	desc.Annotations = annotations
	return enc, desc, dcc.DecryptConfig
}

func TestDecryptMatchesOcicrypt(t *testing.T) {
	for _, size := range []int{0, 1, 15, chunkSize - 1, chunkSize, 3*chunkSize + 7, pipelineChunk*pipelineDepth*2 + 5} {
		plain := make([]byte, size)
		rand.Read(plain)
		enc, desc, dc := encryptWithOcicrypt(t, plain)

		want, _, err := ocicrypt.DecryptLayer(dc, bytes.NewReader(enc), desc, false)
		if err != nil {
			t.Fatal(err)
		}
		wantPlain, err := io.ReadAll(want)
		if err != nil {
			t.Fatal(err)
		}

		key, err := Unwrap(dc, desc)
		if err != nil {
			t.Fatalf("size %d: unwrap: %v", size, err)
		}
		if key.Digest != digest.FromBytes(plain).String() {
			t.Errorf("size %d: digest %s, want %s", size, key.Digest, digest.FromBytes(plain))
		}
		for name, decrypt := range map[string]func(io.Writer, io.Reader) (int64, error){
			"Decrypt": key.Decrypt, "DecryptPipelined": key.DecryptPipelined,
		} {
			var got bytes.Buffer
			n, err := decrypt(&got, bytes.NewReader(enc))
			if err != nil {
				t.Fatalf("size %d: %s: %v", size, name, err)
			}
			if n != int64(size) || !bytes.Equal(got.Bytes(), wantPlain) || !bytes.Equal(got.Bytes(), plain) {
				t.Errorf("size %d: %s output differs from ocicrypt's", size, name)
			}
		}
	}
}

func TestDecryptDetectsTampering(t *testing.T) {
	plain := make([]byte, 100000)
	rand.Read(plain)
	enc, desc, dc := encryptWithOcicrypt(t, plain)
	key, err := Unwrap(dc, desc)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"flipped":   append(append([]byte{}, enc[:500]...), append([]byte{enc[500] ^ 1}, enc[501:]...)...),
		"truncated": enc[:len(enc)-1],
		"extended":  append(append([]byte{}, enc...), 0),
	} {
		if _, err := key.Decrypt(io.Discard, bytes.NewReader(bad)); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: got %v, want ErrTampered", name, err)
		}
		if _, err := key.DecryptPipelined(io.Discard, bytes.NewReader(bad)); !errors.Is(err, ErrTampered) {
			t.Errorf("%s, pipelined: got %v, want ErrTampered", name, err)
		}
	}
}

func TestUnwrapWithoutMatchingKey(t *testing.T) {
	_, desc, _ := encryptWithOcicrypt(t, []byte("layer"))
	_, _, otherDC := encryptWithOcicrypt(t, []byte("other"))
	for name, dc := range map[string]*config.DecryptConfig{"no keys": {}, "nil": nil, "other key": otherDC} {
		if _, err := Unwrap(dc, desc); !errors.Is(err, ErrNoKey) {
			t.Errorf("%s: got %v, want ErrNoKey", name, err)
		}
	}
	if got := Schemes(desc); len(got) != 1 || got[0] != "jwe" {
		t.Errorf("schemes %v, want [jwe]", got)
	}
	if !IsEncrypted(desc) || IsEncrypted(ocispec.Descriptor{}) {
		t.Error("IsEncrypted is wrong")
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

type failingReader struct {
	r     io.Reader
	after int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("connection reset")
	}
	f.after--
	return f.r.Read(p)
}

// Errors of either end stop the pipeline and are returned as they are,
// before any HMAC verdict.
func TestDecryptPipelinedPassesErrors(t *testing.T) {
	plain := make([]byte, pipelineChunk*pipelineDepth*3)
	rand.Read(plain)
	enc, desc, dc := encryptWithOcicrypt(t, plain)
	key, err := Unwrap(dc, desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := key.DecryptPipelined(&failingWriter{after: 2}, bytes.NewReader(enc)); err == nil || err.Error() != "disk full" {
		t.Errorf("write error: got %v", err)
	}
	if _, err := key.DecryptPipelined(io.Discard, &failingReader{r: bytes.NewReader(enc), after: 3}); err == nil || err.Error() != "connection reset" {
		t.Errorf("read error: got %v", err)
	}
}
