//go:build cgo

package hsm_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
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

	"github.com/imgcrypt/imgcrypt/internal/hsm"
	"github.com/imgcrypt/imgcrypt/internal/keys"
)

const testPIN = "4321-test"

// softHSM skips the test unless SoftHSM is installed, and gives it a
// private SoftHSM configuration (none inherited) and directory.
func softHSM(t *testing.T) (module, dir string) {
	t.Helper()
	module, err := hsm.FindModule("")
	if err != nil {
		t.Skipf("needs SoftHSM: %v", err)
	}
	t.Setenv(hsm.SoftHSMConfEnv, "")
	t.Setenv("OCICRYPT_CONFIG", "")
	return module, t.TempDir()
}

func initKey(t *testing.T, o hsm.InitOptions) *hsm.InitResult {
	t.Helper()
	if o.PIN == "" {
		o.PIN = testPIN
	}
	if o.Bits == 0 {
		o.Bits = 2048 // fast
	}
	res, err := hsm.Init(context.Background(), o)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return res
}

func TestInitWritesFiles(t *testing.T) {
	_, dir := softHSM(t)
	res := initKey(t, hsm.InitOptions{Dir: dir})
	if !res.TokenCreated || res.SoftHSMConf != filepath.Join(dir, "softhsm2.conf") {
		t.Errorf("result: created %v, SoftHSM config %q", res.TokenCreated, res.SoftHSMConf)
	}
	for path, mode := range map[string]os.FileMode{
		res.KeyFile: 0o600, res.PINFile: 0o600, res.PublicKey: 0o644, res.OcicryptConf: 0o644,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), mode)
		}
	}
	if pin, _ := os.ReadFile(res.PINFile); string(pin) != testPIN {
		t.Error("PIN file does not hold exactly the PIN")
	}
	yaml, _ := os.ReadFile(res.KeyFile)
	if bytes.Contains(yaml, []byte(testPIN)) || bytes.Contains(yaml, []byte("pin-value")) {
		t.Errorf("key yaml holds the PIN:\n%s", yaml)
	}
	block, _ := pem.Decode(must(os.ReadFile(res.PublicKey)))
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatal("public key is not PEM")
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		t.Errorf("public key: %v", err)
	}
	// SoftHSM's environment is restored once Init is done.
	if v := os.Getenv(hsm.SoftHSMConfEnv); v != "" {
		t.Errorf("%s left set to %q", hsm.SoftHSMConfEnv, v)
	}
}

func TestInitNeverDestroys(t *testing.T) {
	_, dir := softHSM(t)
	first := initKey(t, hsm.InitOptions{Dir: dir})
	yaml := must(os.ReadFile(first.KeyFile))

	// Same labels: refused, nothing changed.
	_, err := hsm.Init(context.Background(), hsm.InitOptions{Dir: dir, PIN: testPIN, Bits: 2048})
	if !errors.Is(err, hsm.ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	if !bytes.Equal(must(os.ReadFile(first.KeyFile)), yaml) {
		t.Error("refused Init changed the key yaml")
	}
	// Files of the same key gone, key still in the token: refused too.
	os.Remove(first.KeyFile)
	os.Remove(first.PublicKey)
	_, err = hsm.Init(context.Background(), hsm.InitOptions{Dir: dir, PIN: testPIN, Bits: 2048})
	if !errors.Is(err, hsm.ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("Init over an existing key: %v, want ErrExists", err)
	}

	// Another key label: added beside the first, after checking the PIN.
	_, err = hsm.Init(context.Background(), hsm.InitOptions{Dir: dir, PIN: "wrong", KeyLabel: "second", Bits: 2048})
	if !errors.Is(err, hsm.ErrWrongPIN) {
		t.Fatalf("Init with a wrong PIN: %v, want ErrWrongPIN", err)
	}
	second := initKey(t, hsm.InitOptions{Dir: dir, KeyLabel: "second"})
	if second.TokenCreated || second.Serial != first.Serial || first.Serial == "" {
		t.Errorf("second key: created %v, token serial %q (first in %q)", second.TokenCreated, second.Serial, first.Serial)
	}
	l := list(t, hsm.ListOptions{Dir: dir, PIN: testPIN})
	if n := len(l.Objects); n != 4 {
		t.Errorf("token holds %d objects, want 4", n)
	}

	// --force re-initializes the token: only the new key is left.
	initKey(t, hsm.InitOptions{Dir: dir, Force: true})
	l = list(t, hsm.ListOptions{Dir: dir, PIN: testPIN})
	if n := len(l.Objects); n != 2 {
		t.Errorf("after Force the token holds %d objects, want 2", n)
	}
}

func list(t *testing.T, o hsm.ListOptions) *hsm.Listing {
	t.Helper()
	l, err := hsm.List(context.Background(), o)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return l
}

func TestList(t *testing.T) {
	module, dir := softHSM(t)
	res := initKey(t, hsm.InitOptions{Dir: dir, TokenLabel: "tok", KeyLabel: "k1", Bits: 3072})
	l := list(t, hsm.ListOptions{Dir: dir, PIN: testPIN})
	if l.Module != module || l.Token == nil || l.Token.Label != "tok" || l.Token.Serial != res.Serial {
		t.Fatalf("listing: module %q, token %+v", l.Module, l.Token)
	}
	if len(l.Objects) != 2 {
		t.Fatalf("objects: %+v", l.Objects)
	}
	for i, class := range []string{"private", "public"} {
		o := l.Objects[i]
		if o.Class != class || o.Label != "k1" || o.KeyType != "RSA" || o.Bits != 3072 || !bytes.Equal(o.ID, res.KeyID) {
			t.Errorf("object %d: %+v", i, o)
		}
	}
	if _, err := hsm.List(context.Background(), hsm.ListOptions{Dir: dir, PIN: "nope"}); !errors.Is(err, hsm.ErrWrongPIN) ||
		strings.Contains(err.Error(), "nope") {
		t.Errorf("wrong PIN: %v", err)
	}
	if _, err := hsm.List(context.Background(), hsm.ListOptions{Dir: dir, PIN: testPIN, TokenLabel: "other"}); !errors.Is(err, hsm.ErrNoToken) {
		t.Errorf("missing token: %v", err)
	}
	if _, err := hsm.List(context.Background(), hsm.ListOptions{Dir: dir, PIN: testPIN, Module: filepath.Join(dir, "no.so")}); !errors.Is(err, hsm.ErrNoModule) {
		t.Errorf("missing module: %v", err)
	}
	// Without Init's SoftHSM configuration SoftHSM's own tokens show, not ours.
	if l, err := hsm.List(context.Background(), hsm.ListOptions{Dir: t.TempDir(), PIN: testPIN}); err == nil && l.Token != nil && l.Token.Label == "tok" {
		t.Error("List found the token without its SoftHSM configuration")
	}
}

// TestPKCS11RoundTrip encrypts a layer for the token's key (as key yaml and
// as public key file) and decrypts it through the token, with imgcrypt's
// key parsing and the OAEP hash it chooses.
func TestPKCS11RoundTrip(t *testing.T) {
	_, dir := softHSM(t)
	res := initKey(t, hsm.InitOptions{Dir: dir})
	t.Setenv("OCICRYPT_CONFIG", res.OcicryptConf)
	t.Setenv("OCICRYPT_OAEP_HASHALG", "") // as for a user who never heard of it

	dc, err := keys.DecryptConfig([]string{res.KeyFile}, nil, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"pkcs11:" + res.KeyFile, "pkcs11:" + res.PublicKey} {
		ec, err := keys.EncryptConfig([]string{r}, nil, nil, keys.Options{})
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		data := []byte("a layer for the token: " + r)
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(len(data))}
		enc, ann := encrypt(t, ec, data, desc)
		desc.Annotations = ann
		if h := oaepHashes(t, ann); len(h) != 1 || h[0] != "sha1" {
			t.Errorf("%s: wrapped with OAEP hashes %q, want [sha1] (all SoftHSM decrypts)", r, h)
		}
		if got := decrypt(t, dc, enc, desc); !bytes.Equal(got, data) {
			t.Errorf("%s: decrypted %q", r, got)
		}
	}
	// A hash the user chose is kept (and SoftHSM cannot wrap with it).
	t.Setenv("OCICRYPT_OAEP_HASHALG", "sha256")
	if _, err := keys.EncryptConfig([]string{"pkcs11:" + res.PublicKey}, nil, nil, keys.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv("OCICRYPT_OAEP_HASHALG"); got != "sha256" {
		t.Errorf("OCICRYPT_OAEP_HASHALG = %q after EncryptConfig, want the user's sha256", got)
	}

	// The decoder's node key directory: the yaml is found there.
	keyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(keyDir, "hsm.yaml"), must(os.ReadFile(res.KeyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	nodeDC, err := keys.DirKeys(keyDir)
	if err != nil || len(nodeDC.Parameters["pkcs11-yamls"]) != 1 {
		t.Fatalf("DirKeys: %v, %d pkcs11 yamls", err, len(nodeDC.Parameters["pkcs11-yamls"]))
	}
}

// oaepHashes lists the OAEP hash recorded for each pkcs11 recipient.
func oaepHashes(t *testing.T, ann map[string]string) []string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(ann["org.opencontainers.image.enc.keys.pkcs11"])
	if err != nil {
		t.Fatal(err)
	}
	var blob struct {
		Recipients []struct{ Hash string } `json:"recipients"`
	}
	if err := json.Unmarshal(raw, &blob); err != nil {
		t.Fatal(err)
	}
	var hs []string
	for _, r := range blob.Recipients {
		hs = append(hs, r.Hash)
	}
	return hs
}

func encrypt(t *testing.T, ec *config.EncryptConfig, data []byte, desc ocispec.Descriptor) ([]byte, map[string]string) {
	t.Helper()
	r, fin, err := ocicrypt.EncryptLayer(ec, bytes.NewReader(data), desc)
	if err != nil {
		t.Fatal(err)
	}
	enc := must(io.ReadAll(r))
	ann, err := fin()
	if err != nil {
		t.Fatalf("wrapping the layer key: %v", err)
	}
	return enc, ann
}

func decrypt(t *testing.T, dc *config.DecryptConfig, enc []byte, desc ocispec.Descriptor) []byte {
	t.Helper()
	r, _, err := ocicrypt.DecryptLayer(dc, bytes.NewReader(enc), desc, false)
	if err != nil {
		t.Fatalf("DecryptLayer: %v", err)
	}
	return must(io.ReadAll(r))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
