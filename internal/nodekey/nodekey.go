// Package nodekey manages a node's decryption key directory, the one
// containerd's stream processor (ctd-decoder --decryption-keys-path) reads
// in the Kubernetes node-key model: it installs keys there safely and
// describes the keys it holds, without ever printing key material.
package nodekey

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/containers/ocicrypt/utils"
	"github.com/go-jose/go-jose/v4"

	"github.com/imgcrypt/imgcrypt/internal/keyfile"
	"github.com/imgcrypt/imgcrypt/internal/keys"
)

// DefaultDir is the key directory containerd's built-in ocicrypt stream
// processors pass to ctd-decoder.
const DefaultDir = "/etc/containerd/ocicrypt/keys"

// Errors for keys the decoder could not use, for errors.Is.
var (
	// ErrNeedsPassword means the key is protected by a password: the
	// decoder runs unattended and skips such keys.
	ErrNeedsPassword = errors.New("the key is protected by a password, which the decoder cannot ask for")
	// ErrPublicKey means the file holds a public key, not a private one.
	ErrPublicKey = errors.New("a public key: install the private key (images are encrypted to the public one)")
	// ErrNotKey means the file holds nothing the decoder can decrypt with.
	ErrNotKey = errors.New("not a private key, x509 certificate, pgp secret keyring or pkcs11 key yaml")
)

// Key describes one usable file of a key directory.
type Key struct {
	// Name is the file's name in the directory.
	Name string
	// Type is rsa-BITS, ec-CURVE, ed25519, x509-cert, pgp or pkcs11.
	Type string
	// Fingerprint is sha256: and the hex SHA-256 of the public key: of
	// its DER SubjectPublicKeyInfo for keys and certificates (what
	// 'openssl pkey -pubout -outform DER | sha256sum' prints), of the
	// primary key's public key packet for pgp keyrings. Empty for pkcs11
	// key yamls, which only point into a token.
	Fingerprint string
}

// Inspect says whether the decoder can use the file at path, and what it
// holds. A key the decoder would skip yields ErrNeedsPassword, ErrPublicKey
// or ErrNotKey (wrapped with the path).
func Inspect(path string) (Key, error) {
	k := Key{Name: filepath.Base(path)}
	// Classify with the same rules the decoder's key directory uses: a
	// key that needs a password fails to parse without one.
	arg := path
	if !filepath.IsAbs(arg) {
		arg = "." + string(filepath.Separator) + arg // never read as provider:NAME
	}
	if _, err := keys.DecryptConfig([]string{arg}, nil, keys.Options{}); err != nil {
		switch {
		case errors.Is(err, keys.ErrWrongPassword):
			return k, fmt.Errorf("%s: %w", path, ErrNeedsPassword)
		case errors.Is(err, keys.ErrNotPrivateKey):
			if data, rerr := os.ReadFile(path); rerr == nil && utils.IsPublicKey(data) {
				return k, fmt.Errorf("%s: %w", path, ErrPublicKey)
			}
			return k, fmt.Errorf("%s: %w", path, ErrNotKey)
		}
		return k, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return k, err
	}
	k.Type, k.Fingerprint = describe(data)
	return k, nil
}

// describe names the kind of an already classified key file and
// fingerprints its public key.
func describe(data []byte) (typ, fingerprint string) {
	if utils.IsPkcs11PrivateKey(data) {
		return "pkcs11", ""
	}
	if cert, err := utils.ParseCertificate(data, ""); err == nil {
		return "x509-cert", fingerprintOf(cert.RawSubjectPublicKeyInfo)
	}
	if pub := privatePublicKey(data); pub != nil {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return publicKeyType(pub), ""
		}
		return publicKeyType(pub), fingerprintOf(der)
	}
	if fp, ok := pgpFingerprint(data); ok {
		return "pgp", fp
	}
	return "private-key", ""
}

func fingerprintOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// privatePublicKey parses an unencrypted private key (PKCS#8, PKCS#1 or
// SEC1, as PEM or DER, or a JWK) and returns its public half.
func privatePublicKey(data []byte) crypto.PublicKey {
	der := data
	if block := keys.FirstPEMBlock(data); block != nil {
		der = block.Bytes
	}
	var priv any
	var err error
	if priv, err = x509.ParsePKCS8PrivateKey(der); err != nil {
		if priv, err = x509.ParsePKCS1PrivateKey(der); err != nil {
			priv, err = x509.ParseECPrivateKey(der)
		}
	}
	if err != nil {
		var jwk jose.JSONWebKey
		if jwk.UnmarshalJSON(data) != nil || jwk.IsPublic() {
			return nil
		}
		priv = jwk.Key
	}
	if s, ok := priv.(crypto.Signer); ok {
		return s.Public()
	}
	if d, ok := priv.(crypto.Decrypter); ok {
		return d.Public()
	}
	return nil
}

func publicKeyType(pub crypto.PublicKey) string {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", p.N.BitLen())
	case *ecdsa.PublicKey:
		return "ec-" + strings.ToLower(strings.ReplaceAll(p.Curve.Params().Name, "-", ""))
	case ed25519.PublicKey:
		return "ed25519"
	}
	return "private-key"
}

// pgpFingerprint hashes the serialized public key packet of the first
// secret key's primary key in a binary or armored keyring.
func pgpFingerprint(data []byte) (string, bool) {
	r := io.Reader(bytes.NewReader(data))
	if block, err := armor.Decode(bytes.NewReader(data)); err == nil {
		r = block.Body
	}
	entities, err := openpgp.ReadKeyRing(r)
	if err != nil {
		return "", false
	}
	for _, e := range entities {
		if e.PrivateKey == nil || e.PrimaryKey == nil {
			continue
		}
		var buf bytes.Buffer
		if err := e.PrimaryKey.Serialize(&buf); err != nil {
			return "", true
		}
		return fingerprintOf(buf.Bytes()), true
	}
	return "", false
}

// InstallOptions configure Install.
type InstallOptions struct {
	// Dir is the key directory (DefaultDir if empty).
	Dir string
	// Force replaces a different key of the same name.
	Force bool
}

// Installed is what Install did.
type Installed struct {
	Key
	// Path is where the key now is.
	Path string
	// Unchanged means the same key was already installed there.
	Unchanged bool
	// Tightened means the directory was accessible to group or others,
	// and is now mode 0700.
	Tightened bool
}

// ExistsError means a different key of that name is already installed.
type ExistsError struct{ Path string }

func (e *ExistsError) Error() string {
	return e.Path + " exists and holds another key (use --force to replace it)"
}

// Unwrap makes an ExistsError match fs.ErrExist.
func (e *ExistsError) Unwrap() error { return fs.ErrExist }

// Install copies the key file src into the key directory under its own
// name, after checking that the decoder can use it: keys that need a
// password and files that hold no key are refused. The directory is
// created mode 0700 (and tightened to it); the key is written mode 0600
// to a temporary file, synced and moved into place, so the decoder never
// reads half a key. The same key installed twice is not an error.
func Install(src string, opts InstallOptions) (*Installed, error) {
	dir := opts.Dir
	if dir == "" {
		dir = DefaultDir
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", src)
	}
	key, err := Inspect(src)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	res := &Installed{Key: key, Path: filepath.Join(dir, key.Name)}
	if res.Tightened, err = makeDir(dir); err != nil {
		return nil, err
	}
	if old, err := os.ReadFile(res.Path); err == nil && bytes.Equal(old, data) {
		res.Unchanged = true
		return res, os.Chmod(res.Path, 0o600)
	} else if err == nil && !opts.Force {
		return nil, &ExistsError{res.Path}
	}
	return res, writeAtomic(res.Path, data, opts.Force)
}

// makeDir creates dir mode 0700, or makes an existing one 0700, and
// reports whether it had to take permissions away.
func makeDir(dir string) (tightened bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s: not a directory", dir)
	}
	if fi.Mode().Perm() == 0o700 {
		return false, nil
	}
	return fi.Mode().Perm()&0o077 != 0, os.Chmod(dir, 0o700)
}

// writeAtomic writes the key so that it appears whole and 0600, and never
// over another file unless replace.
func writeAtomic(path string, data []byte, replace bool) error {
	err := keyfile.Write(path, data, 0o600, replace)
	if !replace && errors.Is(err, fs.ErrExist) {
		return &ExistsError{path}
	}
	return err
}

// Entry is one file of a key directory as List sees it.
type Entry struct {
	Key
	// Skipped says why the decoder ignores the file (nil if it uses it).
	Skipped error
	// Mode is the file's permission bits.
	Mode fs.FileMode
}

// List describes the regular files directly in dir (following symlinks,
// as Kubernetes secret volumes use them), in name order, as the decoder
// reads them: usable keys, and files it skips with the reason.
func List(dir string) ([]Entry, error) {
	if dir == "" {
		dir = DefaultDir
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		k, err := Inspect(path)
		k.Name = e.Name()
		out = append(out, Entry{Key: k, Skipped: err, Mode: fi.Mode().Perm()})
	}
	return out, nil
}
