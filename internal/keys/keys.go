package keys

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/containers/ocicrypt"
	"github.com/containers/ocicrypt/config"
	"github.com/containers/ocicrypt/config/pkcs11config"
	"github.com/containers/ocicrypt/crypto/pkcs11"
	"github.com/containers/ocicrypt/utils"
	"github.com/go-jose/go-jose/v4"
)

// Options carries what key parsing needs beyond the strings themselves.
type Options struct {
	GPGHomedir string // for pgp: recipients ("" = gpg default)
	GPGVersion string // "v1", "v2" or "" (guess)
}

// Sentinel errors, for callers that must tell failures apart with errors.Is.
var (
	// ErrNoRecipients means EncryptConfig was given no recipients.
	ErrNoRecipients = errors.New("no recipients given")
	// ErrUnknownScheme means a recipient lacks a known "scheme:" prefix.
	ErrUnknownScheme = errors.New("unknown recipient scheme")
	// ErrGPGNotFound means pgp: recipients were given but no gpg binary is in PATH.
	ErrGPGNotFound = errors.New("pgp recipients need gpg, which was not found in PATH")
	// ErrNotPrivateKey means a key file holds nothing usable for decryption.
	ErrNotPrivateKey = errors.New("not a private key")
	// ErrUnsupportedKey means a key file holds a private key in a format
	// ocicrypt cannot use (encrypted PKCS#8).
	ErrUnsupportedKey = errors.New("unsupported key format")
	// ErrWrongPassword means a key is encrypted and its password is missing or wrong.
	ErrWrongPassword = errors.New("wrong or missing password")
	// ErrNotPublicKey means a jwe: or pkcs11: recipient file is not a public key.
	ErrNotPublicKey = errors.New("not a public key")
	// ErrNotCertificate means a pkcs7 recipient file is not an x509 certificate.
	ErrNotCertificate = errors.New("not an x509 certificate")
	// ErrUnknownProvider means a provider: name is not in the ocicrypt key
	// provider config (OCICRYPT_KEYPROVIDER_CONFIG).
	ErrUnknownProvider = errors.New("key provider not configured")
)

// EncryptConfig builds the config for encrypting to recipients. keys
// (optional) are private keys of a current recipient, used to unwrap the
// layer key when adding recipients to already-encrypted layers;
// decRecipients are x509 certs needed with pkcs7 keys.
func EncryptConfig(recipients, keys, decRecipients []string, opts Options) (*config.EncryptConfig, error) {
	if len(recipients) == 0 {
		return nil, ErrNoRecipients
	}
	rs, err := parseRecipients(recipients)
	if err != nil {
		return nil, err
	}

	var b builder
	if len(rs.gpg) > 0 {
		ring, err := gpgPubRing(opts)
		if err != nil {
			return nil, err
		}
		b.add(config.EncryptWithGpg(rs.gpg, ring))
	}
	if len(rs.x509s) > 0 {
		b.add(config.EncryptWithPkcs7(rs.x509s))
	}
	if len(rs.pubKeys) > 0 {
		b.add(config.EncryptWithJwe(rs.pubKeys))
	}
	if len(rs.p11Pub) > 0 || len(rs.p11Yaml) > 0 {
		if err := preparePKCS11Encryption(); err != nil {
			return nil, err
		}
		// Only pkcs11 yamls talk to a module; plain public keys need no config.
		var p11 *pkcs11.Pkcs11Config
		if len(rs.p11Yaml) > 0 {
			if p11, err = pkcs11Config(); err != nil {
				return nil, err
			}
		}
		b.add(config.EncryptWithPkcs11(p11, rs.p11Pub, rs.p11Yaml))
	}
	if len(rs.providers) > 0 {
		b.add(config.EncryptWithKeyProvider(rs.providers))
	}
	if b.err != nil {
		return nil, b.err
	}
	ec := config.CombineCryptoConfigs(b.ccs).EncryptConfig

	if len(keys) > 0 || len(decRecipients) > 0 {
		dc, err := DecryptConfig(keys, decRecipients, opts)
		if err != nil {
			return nil, err
		}
		ec.AttachDecryptConfig(dc)
	}
	return ec, nil
}

// DecryptConfig builds the config for decrypting with keys (+ decRecipients
// certs for pkcs7). opts is accepted for symmetry with EncryptConfig; gpg
// keys are read from the given secret keyring files, not from gpg.
func DecryptConfig(keys, decRecipients []string, _ Options) (*config.DecryptConfig, error) {
	var ks keySet
	for _, k := range keys {
		if err := ks.addArg(k); err != nil {
			return nil, err
		}
	}
	for _, r := range decRecipients {
		if err := ks.addDecRecipient(r); err != nil {
			return nil, err
		}
	}
	if err := checkPKCS11Keys(ks.p11Yamls); err != nil {
		return nil, err
	}
	return ks.config()
}

// recipientSet sorts recipients by the ocicrypt parameter they feed.
type recipientSet struct {
	gpg, pubKeys, x509s, p11Pub, p11Yaml, providers [][]byte
}

func parseRecipients(recipients []string) (*recipientSet, error) {
	var rs recipientSet
	for _, r := range recipients {
		scheme, value, ok := strings.Cut(r, ":")
		if !ok {
			return nil, fmt.Errorf("%w in %q: missing \"scheme:\" prefix (want jwe, pkcs7, pgp, pkcs11 or provider)", ErrUnknownScheme, r)
		}
		switch scheme {
		case "pgp", "provider", "jwe", "pkcs7", "pkcs11":
		default:
			return nil, fmt.Errorf("%w %q in %q (want jwe, pkcs7, pgp, pkcs11 or provider)", ErrUnknownScheme, scheme, r)
		}
		if value == "" {
			return nil, fmt.Errorf("recipient %q: nothing after %q", r, scheme+":")
		}
		switch scheme {
		case "pgp":
			rs.gpg = append(rs.gpg, []byte(value))
		case "provider":
			if err := checkProvider(value); err != nil {
				return nil, fmt.Errorf("%s: %w", r, err)
			}
			rs.providers = append(rs.providers, []byte(value))
		default: // jwe, pkcs7, pkcs11: a file
			data, err := os.ReadFile(value)
			if err != nil {
				return nil, err
			}
			switch {
			case scheme == "pkcs7" && utils.IsCertificate(data):
				rs.x509s = append(rs.x509s, data)
			case scheme == "pkcs7":
				return nil, fmt.Errorf("%s: %w", r, ErrNotCertificate)
			case scheme == "pkcs11" && utils.IsPkcs11PublicKey(data):
				rs.p11Yaml = append(rs.p11Yaml, data)
			// IsPublicKey also accepts pkcs11 yaml, which jwe cannot use.
			case !utils.IsPublicKey(data) || utils.IsPkcs11PublicKey(data):
				return nil, fmt.Errorf("%s: %w", r, ErrNotPublicKey)
			case scheme == "pkcs11":
				rs.p11Pub = append(rs.p11Pub, data)
			default:
				rs.pubKeys = append(rs.pubKeys, jwkToPKIX(data))
			}
		}
	}
	return &rs, nil
}

// jwkToPKIX rewrites a public JWK that lacks "alg" as PKIX PEM, because
// ocicrypt picks RSA-OAEP for every such JWK, which fails for EC keys; for
// PKIX keys it picks the algorithm by key type.
func jwkToPKIX(data []byte) []byte {
	var jwk jose.JSONWebKey
	if jwk.UnmarshalJSON(data) != nil || jwk.Algorithm != "" {
		return data
	}
	der, err := x509.MarshalPKIXPublicKey(jwk.Key)
	if err != nil {
		return data
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// checkProvider catches a misspelt or unconfigured provider now, rather than
// as ocicrypt's vague "no wrapped keys produced by encryption" later.
func checkProvider(spec string) error {
	name, _, _ := strings.Cut(spec, ":")
	if ocicrypt.GetKeyWrapper("provider."+name) == nil {
		return ErrUnknownProvider
	}
	return nil
}

// gpgPubRing exports the public keyring that pgp: recipients are looked up in.
func gpgPubRing(opts Options) ([]byte, error) {
	// ocicrypt's v2 client runs "gpg2" and its v1 client "gpg"; guessing
	// tries both. Checking first turns a missing binary into a clear error
	// instead of an exec failure or a silently dropped recipient.
	var bins []string
	switch opts.GPGVersion {
	case "v1":
		bins = []string{"gpg"}
	case "v2":
		bins = []string{"gpg2"}
	case "":
		bins = []string{"gpg2", "gpg"}
	default:
		return nil, fmt.Errorf("invalid gpg version %q (want v1 or v2)", opts.GPGVersion)
	}
	found := false
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err == nil {
			found = true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("%w (looked for %s)", ErrGPGNotFound, strings.Join(bins, ", "))
	}
	client, err := ocicrypt.NewGPGClient(opts.GPGVersion, opts.GPGHomedir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGPGNotFound, err)
	}
	ring, err := client.ReadGPGPubRingFile()
	if err != nil {
		return nil, fmt.Errorf("reading gpg public keyring: %w", err)
	}
	return ring, nil
}

func pkcs11Config() (*pkcs11.Pkcs11Config, error) {
	c, err := pkcs11config.GetUserPkcs11Config()
	if err != nil {
		return nil, fmt.Errorf("loading pkcs11 config: %w", err)
	}
	return c, nil
}

// builder collects ocicrypt crypto configs, keeping the first error.
type builder struct {
	ccs []config.CryptoConfig
	err error
}

func (b *builder) add(cc config.CryptoConfig, err error) {
	if b.err != nil {
		return
	}
	if err != nil {
		b.err = err
		return
	}
	b.ccs = append(b.ccs, cc)
}

// combined returns the merged decrypt config; CombineCryptoConfigs always
// returns non-nil maps, which AttachDecryptConfig relies on.
func (b *builder) combined() (*config.DecryptConfig, error) {
	if b.err != nil {
		return nil, b.err
	}
	return config.CombineCryptoConfigs(b.ccs).DecryptConfig, nil
}
