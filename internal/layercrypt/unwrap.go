package layercrypt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/containers/ocicrypt"
	"github.com/containers/ocicrypt/blockcipher"
	"github.com/containers/ocicrypt/config"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcrypt/imgcrypt/internal/keys"
)

// PubOptsAnnotation holds the public cipher options of an encrypted layer.
const PubOptsAnnotation = "org.opencontainers.image.enc.pubopts"

// KeysAnnotationPrefix starts every annotation that carries wrapped keys.
const KeysAnnotationPrefix = "org.opencontainers.image.enc.keys."

// ErrNoKey is wrapped by every error that means none of the given keys
// unwraps a layer's key.
var ErrNoKey = errors.New("no key matches any recipient")

// noKeyError is ErrNoKey with what a key store said when asked: a token
// that refuses its PIN also "has no matching key", and the user should
// learn why.
type noKeyError struct{ detail string }

func (e *noKeyError) Error() string        { return ErrNoKey.Error() }
func (e *noKeyError) Is(target error) bool { return target == ErrNoKey }

// tokenDetail says why a PKCS#11 token did not unwrap. ocicrypt's own
// message quotes the key's pkcs11 URI, which may hold a pin-value, so it is
// never passed on; its wording only tells the two cases apart.
func tokenDetail(err error) string {
	if strings.Contains(err.Error(), "log in") {
		return "it refused the login (a wrong PIN, or the token is not there)"
	}
	return "none of its keys opens the layer key"
}

// NoKeyDetail returns why a PKCS#11 token asked to unwrap failed, or ""
// when none was asked.
func NoKeyDetail(err error) string {
	var nk *noKeyError
	if errors.As(err, &nk) {
		return nk.detail
	}
	return ""
}

// LayerKey is what decrypting one layer needs once its key is unwrapped.
type LayerKey struct {
	SymmetricKey []byte
	Nonce        []byte
	HMAC         []byte
	// Digest is the digest of the plain layer, as recorded by the encrypter.
	Digest string
}

// IsEncrypted reports whether desc carries wrapped layer keys.
func IsEncrypted(desc ocispec.Descriptor) bool {
	for k := range desc.Annotations {
		if strings.HasPrefix(k, KeysAnnotationPrefix) {
			return true
		}
	}
	return false
}

// Schemes lists the key-wrapping schemes (jwe, pkcs7, pgp, ...) desc was
// encrypted for, sorted.
func Schemes(desc ocispec.Descriptor) []string {
	var schemes []string
	for scheme := range ocicrypt.GetWrappedKeysMap(desc) {
		schemes = append(schemes, scheme)
	}
	sort.Strings(schemes)
	return schemes
}

// Recipients lists the recipients of desc as ocicrypt's key wrappers name
// them (the scheme in brackets where it names none), except that pgp key
// IDs always have 16 hex digits: ocicrypt drops leading zeros, and gpg
// cannot look up the shortened ID.
func Recipients(desc ocispec.Descriptor) []string {
	var out []string
	for _, scheme := range Schemes(desc) {
		wrapped := ocicrypt.GetWrappedKeysMap(desc)[scheme]
		kw := ocicrypt.GetKeyWrapper(scheme)
		if scheme == "pgp" {
			if ids, err := kw.GetKeyIdsFromPacket(wrapped); err == nil {
				for _, id := range ids {
					out = append(out, fmt.Sprintf("0x%016x", id))
				}
				continue
			}
		}
		rs, err := kw.GetRecipients(wrapped)
		if err != nil {
			out = append(out, "["+scheme+"]")
			continue
		}
		out = append(out, rs...)
	}
	return out
}

// Unwrap finds a key in dc that unwraps the layer key of desc. An error
// wraps ErrNoKey when no key fits; it never carries key material.
func Unwrap(dc *config.DecryptConfig, desc ocispec.Descriptor) (*LayerKey, error) {
	wrapped := ocicrypt.GetWrappedKeysMap(desc)
	if len(wrapped) == 0 {
		return nil, errors.New("layer is not encrypted")
	}
	params := map[string][][]byte{}
	if dc != nil && dc.Parameters != nil {
		params = dc.Parameters
	}
	cfg := &config.DecryptConfig{Parameters: params}
	// A key provider that could not be asked is not a key that does not
	// fit: if nothing else opens the layer, that is the error to report.
	var unavailable, token error
	for _, scheme := range Schemes(desc) {
		kw := ocicrypt.GetKeyWrapper(scheme)
		if kw == nil || kw.NoPossibleKeys(params) {
			continue
		}
		for _, b64 := range strings.Split(wrapped[scheme], ",") {
			blob, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return nil, fmt.Errorf("malformed %s key annotation: %w", scheme, err)
			}
			opts, err := kw.UnwrapKey(cfg, blob)
			if errors.Is(err, keys.ErrProviderUnavailable) && unavailable == nil {
				unavailable = err
			}
			if err != nil && scheme == "pkcs11" && token == nil {
				token = err
			}
			if err != nil || opts == nil {
				continue
			}
			return layerKey(opts, desc)
		}
	}
	if unavailable != nil {
		return nil, unavailable
	}
	if token != nil {
		return nil, &noKeyError{detail: tokenDetail(token)}
	}
	return nil, ErrNoKey
}

func layerKey(privOpts []byte, desc ocispec.Descriptor) (*LayerKey, error) {
	var priv blockcipher.PrivateLayerBlockCipherOptions
	if err := json.Unmarshal(privOpts, &priv); err != nil {
		return nil, fmt.Errorf("malformed unwrapped layer options: %w", err)
	}
	var pub blockcipher.PublicLayerBlockCipherOptions
	if s := desc.Annotations[PubOptsAnnotation]; s != "" {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("malformed %s annotation: %w", PubOptsAnnotation, err)
		}
		if err := json.Unmarshal(raw, &pub); err != nil {
			return nil, fmt.Errorf("malformed %s annotation: %w", PubOptsAnnotation, err)
		}
	}
	if pub.CipherType != "" && pub.CipherType != blockcipher.AES256CTR {
		return nil, fmt.Errorf("unsupported layer cipher %q", pub.CipherType)
	}
	if len(pub.Hmac) == 0 {
		return nil, errors.New("layer has no HMAC to verify")
	}
	if len(priv.SymmetricKey) != 32 {
		return nil, fmt.Errorf("layer key is %d bytes, want 32", len(priv.SymmetricKey))
	}
	nonce := priv.CipherOptions["nonce"]
	if len(nonce) != 16 {
		return nil, fmt.Errorf("layer nonce is %d bytes, want 16", len(nonce))
	}
	return &LayerKey{
		SymmetricKey: priv.SymmetricKey,
		Nonce:        nonce,
		HMAC:         pub.Hmac,
		Digest:       priv.Digest.String(),
	}, nil
}
