package nodekey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every encoding of one key gets the same type and fingerprint.
func TestInspectFormats(t *testing.T) {
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(ec)
	p8, _ := x509.MarshalPKCS8PrivateKey(ec)
	jwk, _ := jose.JSONWebKey{Key: ec}.MarshalJSON()
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	files := map[string][]byte{
		"sec1.pem":   append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...),
		"pkcs8.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		"pkcs8.der":  p8,
		"key.jwk":    jwk,
		"sec1.der":   sec1,
		"second.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
	}
	var want string
	for name, data := range files {
		k, err := Inspect(write(t, dir, name, data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k.Type != "ec-p256" || !strings.HasPrefix(k.Fingerprint, "sha256:") || len(k.Fingerprint) != 71 {
			t.Errorf("%s: got %+v", name, k)
		}
		if want == "" {
			want = k.Fingerprint
		} else if k.Fingerprint != want {
			t.Errorf("%s: fingerprint %s, others %s", name, k.Fingerprint, want)
		}
	}
}

func TestInspectRefuses(t *testing.T) {
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 legacy encrypted PEM is what the test needs
	locked, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), []byte("pw"), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	for name, tc := range map[string]struct {
		data []byte
		want error
	}{
		"locked.pem": {pem.EncodeToMemory(locked), ErrNeedsPassword},
		"pub.pem":    {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), ErrPublicKey},
		"README":     {[]byte("not a key\n"), ErrNotKey},
	} {
		_, err := Inspect(write(t, dir, name, tc.data))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: error mentions the password: %v", name, err)
		}
	}
}

func TestInstall(t *testing.T) {
	src, dir := t.TempDir(), filepath.Join(t.TempDir(), "keys")
	newKey := func(name string) string {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return write(t, src, name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	first := newKey("node")
	res, err := Install(first, InstallOptions{Dir: dir})
	if err != nil || res.Unchanged || res.Type != "ec-p384" || res.Path != filepath.Join(dir, "node") {
		t.Fatalf("first install: %+v, %v", res, err)
	}
	for path, want := range map[string]fs.FileMode{dir: 0o700, res.Path: 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode().Perm(), err, want)
		}
	}
	if res, err := Install(first, InstallOptions{Dir: dir}); err != nil || !res.Unchanged {
		t.Errorf("second install: %+v, %v", res, err)
	}

	other := filepath.Join(t.TempDir(), "node")
	if err := os.Rename(newKey("tmp"), other); err != nil {
		t.Fatal(err)
	}
	var exists *ExistsError
	if _, err := Install(other, InstallOptions{Dir: dir}); !errors.As(err, &exists) || !errors.Is(err, fs.ErrExist) {
		t.Errorf("different key, no force: %v", err)
	}
	if res, err := Install(other, InstallOptions{Dir: dir, Force: true}); err != nil || res.Unchanged {
		t.Errorf("different key, force: %+v, %v", res, err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "node"))
	want, _ := os.ReadFile(other)
	if string(got) != string(want) {
		t.Error("--force did not replace the key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key", len(entries))
	}

	entries2, err := List(dir)
	if err != nil || len(entries2) != 1 || entries2[0].Name != "node" || entries2[0].Skipped != nil {
		t.Errorf("List: %+v, %v", entries2, err)
	}
}
