package keygen_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containers/ocicrypt"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcrypt/imgcrypt/internal/keygen"
	"github.com/imgcrypt/imgcrypt/internal/keys"
)

// TestRoundTrip checks that generated files work unchanged with package
// keys: PATH.pub as a jwe: recipient, PATH as a key.
func TestRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts keygen.Options
		alg  string // JWK "alg" expected in both files
	}{
		{"rsa", keygen.Options{Bits: 2048}, ""},
		{"rsa jwk", keygen.Options{Type: "rsa", Bits: 2048, JWK: true}, "RSA-OAEP"},
		{"ec", keygen.Options{Type: "ec"}, ""},
		{"ec P-384", keygen.Options{Type: "ec", Curve: "P-384"}, ""},
		{"ec P-521", keygen.Options{Type: "ec", Curve: "P-521"}, ""},
		{"ec jwk", keygen.Options{Type: "ec", JWK: true}, "ECDH-ES+A256KW"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			priv, pub, err := keygen.Generate(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tt.alg != "" {
				checkJWK(t, priv, tt.alg, true)
				checkJWK(t, pub, tt.alg, false)
			}
			path := filepath.Join(t.TempDir(), "key")
			if err := keygen.WriteFiles(path, priv, pub, false); err != nil {
				t.Fatal(err)
			}
			ec, err := keys.EncryptConfig([]string{"jwe:" + path + ".pub"}, nil, nil, keys.Options{})
			if err != nil {
				t.Fatal(err)
			}
			dc, err := keys.DecryptConfig([]string{path}, nil, keys.Options{})
			if err != nil {
				t.Fatal(err)
			}

			data := []byte("generated key round trip")
			desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(data), Size: int64(len(data))}
			r, fin, err := ocicrypt.EncryptLayer(ec, bytes.NewReader(data), desc)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Annotations, err = fin(); err != nil {
				t.Fatal(err)
			}
			dr, _, err := ocicrypt.DecryptLayer(dc, bytes.NewReader(enc), desc, false)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(dr); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("decrypted %q, %v; want %q", got, err, data)
			}
		})
	}
}

func checkJWK(t *testing.T, data []byte, alg string, private bool) {
	t.Helper()
	var jwk map[string]any
	if err := json.Unmarshal(data, &jwk); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if jwk["alg"] != alg {
		t.Errorf("alg = %v, want %s", jwk["alg"], alg)
	}
	if _, hasD := jwk["d"]; hasD != private {
		t.Errorf("private part present = %v, want %v", hasD, private)
	}
}

func TestDefaults(t *testing.T) {
	priv, pub, err := keygen.Generate(keygen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(priv)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("private key is not PKCS#8 PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if rk, ok := k.(*rsa.PrivateKey); !ok || rk.N.BitLen() != 3072 {
		t.Errorf("default key is %T, want 3072-bit RSA", k)
	}
	if block, _ := pem.Decode(pub); block == nil || block.Type != "PUBLIC KEY" {
		t.Errorf("public key is not PKIX PEM")
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, tt := range []struct {
		opts keygen.Options
		want string
	}{
		{keygen.Options{Bits: 1024}, "rsa key size 1024 is too small (minimum 2048)"},
		{keygen.Options{Type: "ec", Curve: "P-999"}, `unknown ec curve "P-999" (want P-256, P-384 or P-521)`},
		{keygen.Options{Type: "dsa"}, `unknown key type "dsa" (want rsa or ec)`},
	} {
		if _, _, err := keygen.Generate(tt.opts); err == nil || err.Error() != tt.want {
			t.Errorf("Generate(%+v) = %v, want %q", tt.opts, err, tt.want)
		}
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := keygen.WriteFiles(path, []byte("priv1"), []byte("pub1"), false); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{path: 0o600, path + ".pub": 0o644} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}

	err := keygen.WriteFiles(path, []byte("priv2"), []byte("pub2"), false)
	if !errors.Is(err, fs.ErrExist) || err.Error() != path+" exists (use --force to overwrite)" {
		t.Errorf("overwrite without force: err = %v", err)
	}
	assertContent(t, path, "priv1")

	// A lone .pub must also stop a new pair, or the pair would mismatch.
	lone := filepath.Join(dir, "lone")
	if err := os.WriteFile(lone+".pub", []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := keygen.WriteFiles(lone, []byte("p"), []byte("q"), false); !errors.Is(err, fs.ErrExist) || !strings.HasPrefix(err.Error(), lone+".pub exists") {
		t.Errorf("existing .pub: err = %v", err)
	}
	if _, err := os.Stat(lone); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("private key written although .pub existed")
	}

	if err := keygen.WriteFiles(path, []byte("priv2"), []byte("pub2"), true); err != nil {
		t.Fatalf("force: %v", err)
	}
	assertContent(t, path, "priv2")
	assertContent(t, path+".pub", "pub2")

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func assertContent(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s = %q, want %q", path, got, want)
	}
}
