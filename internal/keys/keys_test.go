package keys_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containers/ocicrypt"
	"github.com/containers/ocicrypt/config"
	"github.com/go-jose/go-jose/v4"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/youmark/pkcs8"

	"github.com/imgcrypt/imgcrypt/internal/keys"
)

var (
	rsaOnce sync.Once
	rsaPriv *rsa.PrivateKey
)

// testRSAKey shares one key across tests: RSA generation is slow.
func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsaPriv, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaPriv
}

func testECKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// must keeps fixture construction readable; these calls fail only on bugs.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func pkix8(k any) []byte   { return must(x509.MarshalPKCS8PrivateKey(k)) }
func pkixPub(k any) []byte { return must(x509.MarshalPKIXPublicKey(k)) }

func jwkJSON(k any, alg string) []byte {
	return must((&jose.JSONWebKey{Key: k, Algorithm: alg}).MarshalJSON())
}

// legacyEncrypt writes the old OpenSSL "Proc-Type: 4,ENCRYPTED" PEM format.
func legacyEncrypt(t *testing.T, typ string, der []byte, pw string) []byte {
	t.Helper()
	//lint:ignore SA1019 testing that we read legacy keys
	block, err := x509.EncryptPEMBlock(rand.Reader, typ, der, []byte(pw), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

// roundTrip encrypts a layer with ec and checks dc decrypts it.
func roundTrip(t *testing.T, ec *config.EncryptConfig, dc *config.DecryptConfig) {
	t.Helper()
	data := []byte("layer contents, not very random")
	desc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayerGzip,
		Digest:    digest.FromBytes(data),
		Size:      int64(len(data)),
	}
	desc.Annotations = encryptLayer(t, ec, data, desc)
	if got := decryptLayer(t, dc, desc); !bytes.Equal(got, data) {
		t.Fatalf("decrypted %q, want %q", got, data)
	}
}

var encrypted = map[digest.Digest][]byte{}

func encryptLayer(t *testing.T, ec *config.EncryptConfig, data []byte, desc ocispec.Descriptor) map[string]string {
	t.Helper()
	r, fin, err := ocicrypt.EncryptLayer(ec, bytes.NewReader(data), desc)
	if err != nil {
		t.Fatalf("EncryptLayer: %v", err)
	}
	if r != nil {
		encrypted[desc.Digest] = must(io.ReadAll(r))
	}
	ann, err := fin()
	if err != nil {
		t.Fatalf("EncryptLayer finalizer: %v", err)
	}
	return ann
}

func decryptLayer(t *testing.T, dc *config.DecryptConfig, desc ocispec.Descriptor) []byte {
	t.Helper()
	r, _, err := ocicrypt.DecryptLayer(dc, bytes.NewReader(encrypted[desc.Digest]), desc, false)
	if err != nil {
		t.Fatalf("DecryptLayer: %v", err)
	}
	return must(io.ReadAll(r))
}

func encCfg(t *testing.T, recipients ...string) *config.EncryptConfig {
	t.Helper()
	ec, err := keys.EncryptConfig(recipients, nil, nil, keys.Options{})
	if err != nil {
		t.Fatalf("EncryptConfig(%q): %v", recipients, err)
	}
	return ec
}

func decCfg(t *testing.T, keyArgs ...string) *config.DecryptConfig {
	t.Helper()
	dc, err := keys.DecryptConfig(keyArgs, nil, keys.Options{})
	if err != nil {
		t.Fatalf("DecryptConfig(%q): %v", keyArgs, err)
	}
	return dc
}

func TestKeyFormatsRoundTrip(t *testing.T) {
	rk := testRSAKey(t)
	ek := testECKey(t, elliptic.P256())
	e384 := testECKey(t, elliptic.P384())
	ecParams := pemBytes("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})

	tests := []struct {
		name      string
		priv, pub []byte
	}{
		{"rsa pkcs1 pem", pemBytes("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), pemBytes("PUBLIC KEY", pkixPub(&rk.PublicKey))},
		{"rsa pkcs8 pem", pemBytes("PRIVATE KEY", pkix8(rk)), pemBytes("PUBLIC KEY", pkixPub(&rk.PublicKey))},
		{"rsa pkcs1 der", x509.MarshalPKCS1PrivateKey(rk), pkixPub(&rk.PublicKey)},
		{"rsa pkcs8 der", pkix8(rk), pkixPub(&rk.PublicKey)},
		{"rsa jwk", jwkJSON(rk, "RSA-OAEP"), jwkJSON(&rk.PublicKey, "RSA-OAEP")},
		{"ec sec1 pem", pemBytes("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(ek))), pemBytes("PUBLIC KEY", pkixPub(&ek.PublicKey))},
		{"ec sec1 pem after params", append(ecParams, pemBytes("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(ek)))...), pemBytes("PUBLIC KEY", pkixPub(&ek.PublicKey))},
		{"ec sec1 der", must(x509.MarshalECPrivateKey(ek)), pkixPub(&ek.PublicKey)},
		{"ec p384 pkcs8 pem", pemBytes("PRIVATE KEY", pkix8(e384)), pemBytes("PUBLIC KEY", pkixPub(&e384.PublicKey))},
		{"ec jwk", jwkJSON(ek, "ECDH-ES+A256KW"), jwkJSON(&ek.PublicKey, "ECDH-ES+A256KW")},
		// ocicrypt alone would wrap for an alg-less EC JWK with RSA-OAEP and fail.
		{"ec jwk without alg", jwkJSON(ek, ""), jwkJSON(&ek.PublicKey, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			priv := writeFile(t, dir, "key", tt.priv)
			pub := writeFile(t, dir, "key.pub", tt.pub)
			roundTrip(t, encCfg(t, "jwe:"+pub), decCfg(t, priv))
		})
	}
}

// TestPasswords covers fault 1: upstream splits "FILE:PASSWORD" at every
// ':' and so loses passwords that contain one.
func TestPasswords(t *testing.T) {
	const pw = "s3cr:et:with colons"
	dir := t.TempDir()
	rk := testRSAKey(t)
	ek := testECKey(t, elliptic.P256())
	rsaFile := writeFile(t, dir, "rsa.pem", legacyEncrypt(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk), pw))
	ecFile := writeFile(t, dir, "ec.pem", legacyEncrypt(t, "EC PRIVATE KEY", must(x509.MarshalECPrivateKey(ek)), pw))
	rsaPub := writeFile(t, dir, "rsa.pub", pemBytes("PUBLIC KEY", pkixPub(&rk.PublicKey)))
	ecPub := writeFile(t, dir, "ec.pub", pemBytes("PUBLIC KEY", pkixPub(&ek.PublicKey)))
	pwFile := writeFile(t, dir, "pw", []byte(pw+"\n"))
	p8File := writeFile(t, dir, "p8.pem", pemBytes("ENCRYPTED PRIVATE KEY", must(pkcs8.MarshalPrivateKey(ek, []byte(pw), nil))))
	// A file name with a colon, to show the longest existing name wins.
	colonFile := writeFile(t, dir, "odd:name.pem", legacyEncrypt(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk), pw))

	for _, tt := range []struct{ name, arg, pub string }{
		{"literal", rsaFile + ":" + pw, rsaPub},
		{"pass=", rsaFile + ":pass=" + pw, rsaPub},
		{"file=", rsaFile + ":file=" + pwFile, rsaPub},
		{"ec literal", ecFile + ":" + pw, ecPub},
		{"encrypted pkcs8", p8File + ":" + pw, ecPub},
		{"colon in file name", colonFile + ":pass=" + pw, rsaPub},
	} {
		t.Run(tt.name, func(t *testing.T) {
			roundTrip(t, encCfg(t, "jwe:"+tt.pub), decCfg(t, tt.arg))
		})
	}

	t.Run("fd= reads more than 64 bytes", func(t *testing.T) {
		long := strings.Repeat("x:", 60)
		f := writeFile(t, t.TempDir(), "long.pem", legacyEncrypt(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk), long))
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteString(long + "\n"); err != nil {
			t.Fatal(err)
		}
		w.Close()
		// Hand over a duplicate: DecryptConfig closes the fd it is given.
		fd, err := syscall.Dup(int(r.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		roundTrip(t, encCfg(t, "jwe:"+rsaPub), decCfg(t, f+":fd="+strconv.Itoa(fd)))
	})

	for _, tt := range []struct{ name, arg string }{
		{"missing", rsaFile},
		{"wrong", rsaFile + ":wrong-hunter2"},
		{"wrong pass=", rsaFile + ":pass=wrong-hunter2"},
		{"ec missing", ecFile},
		{"ec wrong", ecFile + ":wrong-hunter2"},
		{"encrypted pkcs8 missing", p8File},
		{"encrypted pkcs8 wrong", p8File + ":wrong-hunter2"},
	} {
		t.Run(tt.name+" password", func(t *testing.T) {
			_, err := keys.DecryptConfig([]string{tt.arg}, nil, keys.Options{})
			if !errors.Is(err, keys.ErrWrongPassword) {
				t.Fatalf("err = %v, want ErrWrongPassword", err)
			}
			want := filepath.Base(tt.arg[:strings.Index(tt.arg, ".pem")+4]) + ": wrong or missing password"
			if !strings.HasSuffix(err.Error(), want) {
				t.Errorf("err = %q, want suffix %q", err, want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %q", err)
			}
		})
	}
}

func TestKeyErrors(t *testing.T) {
	dir := t.TempDir()
	junk := writeFile(t, dir, "junk.pem", []byte("SECRETJUNK not a key at all"))
	pub := writeFile(t, dir, "pub.pem", pemBytes("PUBLIC KEY", pkixPub(&testRSAKey(t).PublicKey)))
	p8enc := writeFile(t, dir, "p8enc.pem", pemBytes("ENCRYPTED PRIVATE KEY", []byte("SECRETJUNK")))
	missing := filepath.Join(dir, "missing.pem")

	for _, tt := range []struct {
		name, arg string
		want      error
		msg       string
	}{
		{"junk", junk, keys.ErrNotPrivateKey, junk + ": not a private key"},
		{"junk with password", junk + ":hunter2", keys.ErrNotPrivateKey, junk + ": not a private key"},
		{"public key", pub, keys.ErrNotPrivateKey, pub + ": not a private key"},
		{"missing", missing, fs.ErrNotExist, "open " + missing + ": no such file or directory"},
		{"missing with password", missing + ":hunter2", fs.ErrNotExist, "open " + missing + ": no such file or directory"},
		{"junk encrypted pkcs8", p8enc + ":hunter2", keys.ErrWrongPassword, p8enc + ": wrong or missing password"},
		{"bad fd", pub + ":fd=hunter2", nil, pub + ": invalid password file descriptor"},
		{"missing password file", pub + ":file=" + missing, fs.ErrNotExist, pub + ": reading password: open " + missing},
		{"unknown provider", "provider:nosuchprovider", keys.ErrUnknownProvider, "provider:nosuchprovider: key provider not configured"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keys.DecryptConfig([]string{tt.arg}, nil, keys.Options{})
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.msg) {
				t.Errorf("err = %q, want prefix %q", err, tt.msg)
			}
			for _, secret := range []string{"SECRETJUNK", "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks %q: %q", secret, err)
				}
			}
		})
	}
}

func TestRecipientErrors(t *testing.T) {
	dir := t.TempDir()
	junk := writeFile(t, dir, "junk", []byte("SECRETJUNK"))
	priv := writeFile(t, dir, "priv.pem", pemBytes("PRIVATE KEY", pkix8(testRSAKey(t))))
	missing := filepath.Join(dir, "missing")

	for _, tt := range []struct {
		name, recipient string
		want            error
		msg             string
	}{
		{"jwe junk", "jwe:" + junk, keys.ErrNotPublicKey, "jwe:" + junk + ": not a public key"},
		{"jwe private key", "jwe:" + priv, keys.ErrNotPublicKey, "jwe:" + priv + ": not a public key"},
		{"pkcs7 junk", "pkcs7:" + junk, keys.ErrNotCertificate, "pkcs7:" + junk + ": not an x509 certificate"},
		{"pkcs11 junk", "pkcs11:" + junk, keys.ErrNotPublicKey, "pkcs11:" + junk + ": not a public key"},
		{"jwe missing", "jwe:" + missing, fs.ErrNotExist, "open " + missing + ": no such file or directory"},
		{"unknown scheme", "foo:bar", keys.ErrUnknownScheme, `unknown recipient scheme "foo" in "foo:bar" (want jwe, pkcs7, pgp, pkcs11 or provider)`},
		{"no scheme", "key.pub", keys.ErrUnknownScheme, `unknown recipient scheme in "key.pub"`},
		{"empty value", "jwe:", nil, `recipient "jwe:"`},
		{"unknown scheme, empty value", "foo:", keys.ErrUnknownScheme, `unknown recipient scheme "foo"`},
		{"unknown provider", "provider:nosuch:params", keys.ErrUnknownProvider, "provider:nosuch:params: key provider not configured"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keys.EncryptConfig([]string{tt.recipient}, nil, nil, keys.Options{})
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.msg) {
				t.Errorf("err = %q, want prefix %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "SECRETJUNK") {
				t.Errorf("error leaks file contents: %q", err)
			}
		})
	}

	if _, err := keys.EncryptConfig(nil, nil, nil, keys.Options{}); !errors.Is(err, keys.ErrNoRecipients) {
		t.Errorf("no recipients: err = %v, want ErrNoRecipients", err)
	}
}

func selfSignedCert(t *testing.T, k *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "imgcrypt test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageKeyEncipherment,
	}
	return pemBytes("CERTIFICATE", must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)))
}

func TestPkcs7RoundTrip(t *testing.T) {
	dir := t.TempDir()
	k := testRSAKey(t)
	cert := writeFile(t, dir, "cert.pem", selfSignedCert(t, k))
	priv := writeFile(t, dir, "key.pem", pemBytes("PRIVATE KEY", pkix8(k)))

	dc, err := keys.DecryptConfig([]string{priv}, []string{"pkcs7:" + cert}, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, encCfg(t, "pkcs7:"+cert), dc)
}

// TestAddRecipient re-wraps an encrypted layer's key for a new recipient,
// which needs the current recipient's key attached to the EncryptConfig.
func TestAddRecipient(t *testing.T) {
	dir := t.TempDir()
	a, b := testRSAKey(t), testECKey(t, elliptic.P256())
	aPriv := writeFile(t, dir, "a.pem", pemBytes("PRIVATE KEY", pkix8(a)))
	aPub := writeFile(t, dir, "a.pub", pemBytes("PUBLIC KEY", pkixPub(&a.PublicKey)))
	bPriv := writeFile(t, dir, "b.pem", pemBytes("PRIVATE KEY", pkix8(b)))
	bPub := writeFile(t, dir, "b.pub", pemBytes("PUBLIC KEY", pkixPub(&b.PublicKey)))

	data := []byte("add recipient layer")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(len(data))}
	desc.Annotations = encryptLayer(t, encCfg(t, "jwe:"+aPub), data, desc)

	ec, err := keys.EncryptConfig([]string{"jwe:" + bPub}, []string{aPriv}, nil, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	desc.Annotations = encryptLayer(t, ec, nil, desc)
	for _, k := range []string{aPriv, bPriv} {
		if got := decryptLayer(t, decCfg(t, k), desc); !bytes.Equal(got, data) {
			t.Errorf("decrypt with %s: got %q", filepath.Base(k), got)
		}
	}
}

func TestDirKeys(t *testing.T) {
	dir := t.TempDir()
	good := testECKey(t, elliptic.P256())
	other := testRSAKey(t)
	writeFile(t, dir, "node.pem", pemBytes("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(good))))
	writeFile(t, dir, "README", []byte("keys for the node\n"))
	writeFile(t, dir, "locked.pem", legacyEncrypt(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(other), "pw"))
	writeFile(t, dir, "cert.pem", selfSignedCert(t, other))
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, sub, "nested.pem", pemBytes("PRIVATE KEY", pkix8(other)))
	// Kubernetes secret volumes present files as symlinks.
	linked := filepath.Join(t.TempDir(), "linked.pem")
	if err := os.WriteFile(linked, pemBytes("PRIVATE KEY", pkix8(testECKey(t, elliptic.P384()))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(linked, filepath.Join(dir, "linked.pem")); err != nil {
		t.Fatal(err)
	}

	dc, err := keys.DirKeys(dir, filepath.Join(dir, "does-not-exist"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(dc.Parameters["privkeys"]); n != 2 {
		t.Errorf("loaded %d private keys, want 2 (node.pem, linked.pem)", n)
	}
	if n := len(dc.Parameters["x509s"]); n != 1 {
		t.Errorf("loaded %d certificates, want 1", n)
	}
	pub := writeFile(t, t.TempDir(), "node.pub", pemBytes("PUBLIC KEY", pkixPub(&good.PublicKey)))
	roundTrip(t, encCfg(t, "jwe:"+pub), dc)

	empty, err := keys.DirKeys(filepath.Join(dir, "nope"))
	if err != nil || empty == nil || len(empty.Parameters) != 0 {
		t.Errorf("DirKeys(missing) = %v, %v; want empty config", empty, err)
	}
	if _, err := keys.DirKeys(filepath.Join(dir, "README")); err == nil {
		t.Error("DirKeys(a file): no error")
	}
}

func TestGPGMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := keys.EncryptConfig([]string{"pgp:someone@example.com"}, nil, nil, keys.Options{})
	if !errors.Is(err, keys.ErrGPGNotFound) {
		t.Fatalf("err = %v, want ErrGPGNotFound", err)
	}
}

func TestGPGRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not in PATH")
	}
	// gpg-agent's socket path must stay short, so avoid deep temp dirs.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	t.Setenv("GNUPGHOME", home)
	gpgPW := func(pw string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", pw}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %s: %v\n%s", args, err, stderr.Bytes())
		}
		return out
	}
	gpg := func(args ...string) []byte { return gpgPW("", args...) }
	gpg("--quick-gen-key", "Test <test@example.com>", "default", "default", "never")
	keyDir := t.TempDir()
	secret := writeFile(t, keyDir, "secret.gpg", gpg("--export-secret-keys", "test@example.com"))
	armored := writeFile(t, t.TempDir(), "secret.asc", gpg("--armor", "--export-secret-keys", "test@example.com"))
	// future-default (ed25519/cv25519) generates much faster than RSA.
	gpgPW("hunter2", "--quick-gen-key", "Locked <locked@example.com>", "future-default", "default", "never")
	locked := writeFile(t, keyDir, "locked.gpg", gpgPW("hunter2", "--export-secret-keys", "locked@example.com"))

	ec, err := keys.EncryptConfig([]string{"pgp:test@example.com"}, nil, nil, keys.Options{GPGHomedir: home})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ec, decCfg(t, secret))
	roundTrip(t, ec, decCfg(t, armored))

	for _, arg := range []string{locked, locked + ":wrong"} {
		if _, err := keys.DecryptConfig([]string{arg}, nil, keys.Options{}); !errors.Is(err, keys.ErrWrongPassword) {
			t.Errorf("DecryptConfig(%s): err = %v, want ErrWrongPassword", filepath.Base(arg), err)
		}
	}
	lockedEC, err := keys.EncryptConfig([]string{"pgp:locked@example.com"}, nil, nil, keys.Options{GPGHomedir: home})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, lockedEC, decCfg(t, locked+":hunter2"))

	dc, err := keys.DirKeys(keyDir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(dc.Parameters["gpg-privatekeys"]); n != 1 {
		t.Errorf("DirKeys loaded %d gpg keyrings, want 1 (the locked one skipped)", n)
	}
	roundTrip(t, ec, dc)
}
