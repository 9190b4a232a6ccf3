package decoder

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containers/ocicrypt"
	"github.com/containers/ocicrypt/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/imgcrypt/imgcrypt/internal/layercrypt"
)

type layer struct {
	plain, enc []byte
	desc       ocispec.Descriptor
	privPEM    []byte
}

func newLayer(t *testing.T) layer {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	ecc, err := config.EncryptWithJwe([][]byte{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})})
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 300000)
	rand.Read(plain)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(plain), Size: int64(len(plain))}
	r, fin, err := ocicrypt.EncryptLayer(ecc.EncryptConfig, bytes.NewReader(plain), desc)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := io.ReadAll(r)
	desc.Annotations, err = fin()
	if err != nil {
		t.Fatal(err)
	}
	desc.MediaType += "+encrypted"
	return layer{plain: plain, enc: enc, desc: desc,
		privPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})}
}

func payloadBytes(t *testing.T, p Payload) []byte {
	t.Helper()
	value, _ := json.Marshal(p)
	data, err := proto.Marshal(&anypb.Any{TypeUrl: PayloadTypeURL, Value: value})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestPayloadKeysDecrypt(t *testing.T) {
	l := newLayer(t)
	data := payloadBytes(t, Payload{
		DecryptConfig: config.DecryptConfig{Parameters: map[string][][]byte{"privkeys": {l.privPEM}, "privkeys-passwords": {{}}}},
		Descriptor:    l.desc,
	})
	p, err := ParsePayload(data)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Run(&out, bytes.NewReader(l.enc), p, Options{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), l.plain) {
		t.Error("decrypted layer differs")
	}
}

// The node-key model: the payload carries only the descriptor and the key
// sits in a directory beside files that are not keys.
func TestNodeKeysBesideOtherFiles(t *testing.T) {
	l := newLayer(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "README"), []byte("keys for this node"), 0o600)
	os.WriteFile(filepath.Join(dir, "node.pem"), l.privPEM, 0o600)
	p, err := ParsePayload(payloadBytes(t, Payload{Descriptor: l.desc}))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Run(&out, bytes.NewReader(l.enc), p, Options{KeyDirs: []string{dir}}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), l.plain) {
		t.Error("decrypted layer differs")
	}
}

func TestFailures(t *testing.T) {
	l := newLayer(t)
	other := newLayer(t)
	tampered := append([]byte{}, l.enc...)
	tampered[1000] ^= 1
	withKey := func(key []byte) *Payload {
		return &Payload{DecryptConfig: config.DecryptConfig{Parameters: map[string][][]byte{"privkeys": {key}, "privkeys-passwords": {{}}}}, Descriptor: l.desc}
	}
	for name, tt := range map[string]struct {
		payload *Payload
		input   []byte
		want    error
		msg     string
	}{
		"wrong key":      {withKey(other.privPEM), l.enc, layercrypt.ErrNoKey, "no key matches any recipient (it is encrypted for jwe); "},
		"no key":         {&Payload{Descriptor: l.desc}, l.enc, layercrypt.ErrNoKey, "--decryption-keys-path"},
		"tampered":       {withKey(l.privPEM), tampered, layercrypt.ErrTampered, "HMAC"},
		"plain desc":     {&Payload{Descriptor: ocispec.Descriptor{Digest: l.desc.Digest}}, l.enc, nil, "carries no wrapped keys"},
		"truncated data": {withKey(l.privPEM), l.enc[:len(l.enc)-10], layercrypt.ErrTampered, "HMAC"},
	} {
		t.Run(name, func(t *testing.T) {
			err := Run(io.Discard, bytes.NewReader(tt.input), tt.payload, Options{})
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tt.want, tt.msg)
			}
			if !strings.Contains(err.Error(), l.desc.Digest.String()) {
				t.Errorf("message does not name the layer: %v", err)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("message leaks key material: %v", err)
			}
		})
	}
}

func TestParsePayloadErrors(t *testing.T) {
	if _, err := ParsePayload(nil); !errors.Is(err, ErrNoPayload) {
		t.Errorf("empty payload: %v", err)
	}
	if !strings.Contains(ErrNoPayload.Error(), "use_local_image_pull") {
		t.Error("the no-payload message does not name the containerd 2.x fix")
	}
	wrongType, _ := proto.Marshal(&anypb.Any{TypeUrl: "example.com/Other", Value: []byte("{}")})
	if _, err := ParsePayload(wrongType); err == nil || !strings.Contains(err.Error(), "example.com/Other") {
		t.Errorf("wrong type: %v", err)
	}
	if _, err := ParsePayload([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Error("garbage payload accepted")
	}
}

// A file on fd 3 that is not a pipe (Go may hold a cgroup file there) is
// no payload; a pipe is read to its end.
func TestReadPayloadOnlyFromPipes(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "fd3")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("not a payload")
	f.Seek(0, 0)
	if data, err := readPayload(f); err != nil || data != nil {
		t.Errorf("regular file: got %q, %v; want no payload", data, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		w.Write(bytes.Repeat([]byte("p"), 200000)) // more than a pipe holds
		w.Close()
	}()
	if data, err := readPayload(r); err != nil || len(data) != 200000 {
		t.Errorf("pipe: got %d bytes, %v", len(data), err)
	}
}
