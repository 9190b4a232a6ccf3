// Package keygen generates key pairs for image encryption, written in
// formats that package keys reads back: the public key as a jwe: recipient,
// the private key as a --key.
package keygen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/go-jose/go-jose/v4"

	"github.com/imgcrypt/imgcrypt/internal/keyfile"
)

// Options selects the kind of key pair. Bits applies only to rsa and Curve
// only to ec; the other is ignored.
type Options struct {
	Type  string // "rsa" (default) or "ec"
	Bits  int    // rsa modulus size: default 3072, minimum 2048
	Curve string // ec curve: "P-256" (default), "P-384" or "P-521"
	JWK   bool   // write JWK JSON instead of PEM
}

const (
	defaultBits = 3072
	minBits     = 2048
)

var curves = map[string]elliptic.Curve{
	"P-256": elliptic.P256(),
	"P-384": elliptic.P384(),
	"P-521": elliptic.P521(),
}

// Generate returns the private key (PKCS#8 PEM, or JWK JSON) and the public
// key (PKIX "PUBLIC KEY" PEM, or public JWK JSON). JWKs carry "alg" so that
// ocicrypt wraps with RSA-OAEP or ECDH-ES+A256KW as it does for PEM keys.
func Generate(opts Options) (private, public []byte, err error) {
	var (
		priv crypto.Signer
		alg  jose.KeyAlgorithm
	)
	switch opts.Type {
	case "", "rsa":
		bits := opts.Bits
		if bits == 0 {
			bits = defaultBits
		}
		if bits < minBits {
			return nil, nil, fmt.Errorf("rsa key size %d is too small (minimum %d)", bits, minBits)
		}
		priv, err = rsa.GenerateKey(rand.Reader, bits)
		alg = jose.RSA_OAEP
	case "ec":
		name := opts.Curve
		if name == "" {
			name = "P-256"
		}
		curve, ok := curves[name]
		if !ok {
			return nil, nil, fmt.Errorf("unknown ec curve %q (want P-256, P-384 or P-521)", opts.Curve)
		}
		priv, err = ecdsa.GenerateKey(curve, rand.Reader)
		alg = jose.ECDH_ES_A256KW
	default:
		return nil, nil, fmt.Errorf("unknown key type %q (want rsa or ec)", opts.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	if opts.JWK {
		return encodeJWK(priv, alg)
	}
	return encodePEM(priv)
}

func encodePEM(priv crypto.Signer) (private, public []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encoding public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

func encodeJWK(priv crypto.Signer, alg jose.KeyAlgorithm) (private, public []byte, err error) {
	jwk := jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "enc"}
	// The RFC 7638 thumbprint as key ID lets users tell keys apart.
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding private key: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	if private, err = jwk.MarshalJSON(); err != nil {
		return nil, nil, fmt.Errorf("encoding private key: %w", err)
	}
	if public, err = jwk.Public().MarshalJSON(); err != nil {
		return nil, nil, fmt.Errorf("encoding public key: %w", err)
	}
	return append(private, '\n'), append(public, '\n'), nil
}

// existsError keeps the message short while still matching fs.ErrExist.
type existsError struct{ path string }

func (e *existsError) Error() string { return e.path + " exists (use --force to overwrite)" }
func (e *existsError) Unwrap() error { return fs.ErrExist }

// WriteFiles writes private to path (mode 0600) and public to path+".pub"
// (mode 0644). Unless force is set it refuses, with an error wrapping
// fs.ErrExist, if either file exists. Each file is written to a temporary
// file in the same directory that is chmod-ed before any key byte is
// written, fsynced and then moved into place, so a crash never leaves a
// truncated key and the private key is never readable by others.
func WriteFiles(path string, private, public []byte, force bool) error {
	pubPath := path + ".pub"
	if !force {
		for _, p := range []string{path, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return &existsError{p}
			}
		}
	}
	if err := writeFile(path, private, 0o600, force); err != nil {
		return err
	}
	if err := writeFile(pubPath, public, 0o644, force); err != nil {
		// Leave no half pair: with force the old private key is gone
		// already, and the new one beside the old public key would be a
		// pair that does not match.
		os.Remove(path)
		return err
	}
	return nil
}

func writeFile(path string, data []byte, mode os.FileMode, force bool) error {
	err := keyfile.Write(path, data, mode, force)
	if !force && errors.Is(err, fs.ErrExist) {
		return &existsError{path}
	}
	return err
}
