package keys

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/containers/ocicrypt/config"
	"github.com/containers/ocicrypt/utils"
	"github.com/youmark/pkcs8"
)

// keySet sorts private keys by the ocicrypt parameter they feed.
type keySet struct {
	privKeys, privPwds [][]byte
	gpgKeys, gpgPwds   [][]byte
	p11Yamls           [][]byte
	x509s              [][]byte
	providers          [][]byte
}

// addArg adds a --key argument: provider:NAME[:PARAMS] or FILE[:PASSWORD-SPEC].
func (ks *keySet) addArg(arg string) error {
	if spec, ok := strings.CutPrefix(arg, "provider:"); ok {
		if err := checkProvider(spec); err != nil {
			return fmt.Errorf("%s: %w", arg, err)
		}
		ks.providers = append(ks.providers, []byte(spec))
		return nil
	}
	path, pwSpec, hasPw := splitKeyArg(arg)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var pw []byte
	if hasPw {
		if pw, err = readPassword(pwSpec); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	k, err := classify(data, pw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if k.kind == notKey {
		return fmt.Errorf("%s: %w", path, ErrNotPrivateKey)
	}
	ks.add(k)
	return nil
}

// addDecRecipient adds a pkcs7:FILE (or plain FILE) certificate, which
// pkcs7 decryption needs alongside the private key.
func (ks *keySet) addDecRecipient(r string) error {
	data, err := os.ReadFile(strings.TrimPrefix(r, "pkcs7:"))
	if err != nil {
		return err
	}
	if !utils.IsCertificate(data) {
		return fmt.Errorf("%s: %w", r, ErrNotCertificate)
	}
	ks.x509s = append(ks.x509s, data)
	return nil
}

func (ks *keySet) add(k key) {
	switch k.kind {
	case privKey:
		ks.privKeys = append(ks.privKeys, k.data)
		ks.privPwds = append(ks.privPwds, k.pw)
	case gpgKey:
		ks.gpgKeys = append(ks.gpgKeys, k.data)
		ks.gpgPwds = append(ks.gpgPwds, k.pw)
	case pkcs11Key:
		ks.p11Yamls = append(ks.p11Yamls, k.data)
	case certificate:
		ks.x509s = append(ks.x509s, k.data)
	}
}

func (ks *keySet) config() (*config.DecryptConfig, error) {
	var b builder
	if len(ks.gpgKeys) > 0 {
		b.add(config.DecryptWithGpgPrivKeys(ks.gpgKeys, ks.gpgPwds))
	}
	if len(ks.x509s) > 0 {
		b.add(config.DecryptWithX509s(ks.x509s))
	}
	if len(ks.privKeys) > 0 {
		b.add(config.DecryptWithPrivKeys(ks.privKeys, ks.privPwds))
	}
	if len(ks.p11Yamls) > 0 {
		p11, err := pkcs11Config()
		if err != nil {
			return nil, err
		}
		b.add(config.DecryptWithPkcs11Yaml(p11, ks.p11Yamls))
	}
	if len(ks.providers) > 0 {
		b.add(config.DecryptWithKeyProvider(ks.providers))
	}
	return b.combined()
}

// splitKeyArg splits FILE[:PASSWORD-SPEC]. Both file names and passwords
// may contain ':', so the file is the whole argument if that exists, else
// the shortest prefix before a ':' that exists. If nothing exists, the part
// before the first ':' is returned so that the open error names a file and
// never echoes a password.
func splitKeyArg(arg string) (path, pwSpec string, hasPw bool) {
	if exists(arg) {
		return arg, "", false
	}
	for i := range len(arg) {
		if arg[i] == ':' && exists(arg[:i]) {
			return arg[:i], arg[i+1:], true
		}
	}
	path, _, _ = strings.Cut(arg, ":")
	return path, "", false
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readPassword resolves pass=PW, file=PWFILE, fd=N or a literal password.
// Errors never quote spec, which may be the password itself.
func readPassword(spec string) ([]byte, error) {
	if pw, ok := strings.CutPrefix(spec, "pass="); ok {
		return []byte(pw), nil
	}
	if name, ok := strings.CutPrefix(spec, "file="); ok {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading password: %w", err)
		}
		return trimNewline(data), nil
	}
	if fdStr, ok := strings.CutPrefix(spec, "fd="); ok {
		fd, err := strconv.Atoi(fdStr)
		if err != nil || fd < 0 {
			return nil, errors.New("invalid password file descriptor (want fd=NUMBER)")
		}
		f := os.NewFile(uintptr(fd), "fd "+fdStr)
		defer f.Close()
		data, err := io.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("reading password: %w", err)
		}
		return trimNewline(data), nil
	}
	return []byte(spec), nil
}

// trimNewline drops the one line ending that echo and editors add.
func trimNewline(b []byte) []byte {
	if c, ok := bytes.CutSuffix(b, []byte("\r\n")); ok {
		return c
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

type kind int

const (
	notKey kind = iota
	privKey
	pkcs11Key
	gpgKey
	certificate
)

// key is a classified key file: data and pw are what ocicrypt gets.
type key struct {
	kind     kind
	data, pw []byte
}

// classify works out what a key file holds. A nil pw means no password was
// given. Errors are about the key being unusable (wrong password,
// unsupported format), never about it not being a key: that is notKey.
func classify(data, pw []byte) (key, error) {
	// ocicrypt's ParsePrivateKey would also accept pkcs11 yaml, so test first.
	if utils.IsPkcs11PrivateKey(data) {
		return key{kind: pkcs11Key, data: data}, nil
	}
	block := FirstPEMBlock(data)
	if block != nil && block.Type == "ENCRYPTED PRIVATE KEY" {
		return decryptPKCS8(block, pw)
	}
	if block != nil && block.Type == "EC PRIVATE KEY" {
		return sec1ToPKCS8(block, pw)
	}
	_, err := utils.ParsePrivateKey(data, pw, "key")
	switch {
	case err == nil:
		return key{kind: privKey, data: data, pw: pw}, nil
	// A wrong password can still pass DecryptPEMBlock's padding check and
	// yield garbage, so any failure on an encrypted block is a password error.
	case utils.IsPasswordError(err) || isEncrypted(block):
		return key{}, ErrWrongPassword
	}
	if ring, ok := gpgSecretRing(data); ok {
		if err := checkGPGPassword(ring, pw); err != nil {
			return key{}, err
		}
		return key{kind: gpgKey, data: ring.data, pw: pw}, nil
	}
	if utils.IsCertificate(data) {
		return key{kind: certificate, data: data}, nil
	}
	return key{kind: notKey}, nil
}

// FirstPEMBlock returns the first PEM block of data, skipping the EC
// PARAMETERS block that openssl ecparam puts before the key, which would
// otherwise hide the key from ocicrypt.
func FirstPEMBlock(data []byte) *pem.Block {
	for {
		block, rest := pem.Decode(data)
		if block == nil || block.Type != "EC PARAMETERS" {
			return block
		}
		data = rest
	}
}

func isEncrypted(block *pem.Block) bool {
	if block == nil {
		return false
	}
	_, ok := block.Headers["DEK-Info"]
	return ok
}

// sec1ToPKCS8 rewrites a SEC1 EC key as unencrypted PKCS#8 PEM: ocicrypt
// parses SEC1 only as bare DER, not in PEM and not encrypted.
func sec1ToPKCS8(block *pem.Block, pw []byte) (key, error) {
	der := block.Bytes
	if isEncrypted(block) {
		if pw == nil {
			return key{}, ErrWrongPassword
		}
		var err error
		// Legacy PEM encryption is insecure but still what openssl ec -aes256 writes.
		//lint:ignore SA1019 reading legacy keys is the point
		der, err = x509.DecryptPEMBlock(block, pw)
		if err != nil {
			return key{}, ErrWrongPassword
		}
	}
	ec, err := x509.ParseECPrivateKey(der)
	if err != nil {
		if isEncrypted(block) {
			return key{}, ErrWrongPassword
		}
		return key{kind: notKey}, nil
	}
	p8, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		return key{}, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	}
	return key{kind: privKey, data: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})}, nil
}

// decryptPKCS8 opens an encrypted PKCS#8 key (what openssl genpkey -aes256
// and most current tools write), which ocicrypt cannot read, and hands it
// on unencrypted; it never leaves memory.
func decryptPKCS8(block *pem.Block, pw []byte) (key, error) {
	if pw == nil {
		return key{}, ErrWrongPassword
	}
	priv, err := pkcs8.ParsePKCS8PrivateKey(block.Bytes, pw)
	if err != nil {
		return key{}, ErrWrongPassword
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return key{}, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	}
	return key{kind: privKey, data: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}, nil
}

type gpgRing struct {
	data     []byte // binary keyring, the only form ocicrypt reads
	entities openpgp.EntityList
}

// gpgSecretRing accepts binary or armored keyrings holding at least one
// secret key; a public keyring would parse too but cannot decrypt.
func gpgSecretRing(data []byte) (*gpgRing, bool) {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
		block, err := armor.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, false
		}
		if data, err = io.ReadAll(block.Body); err != nil {
			return nil, false
		}
	}
	entities, err := openpgp.ReadKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, false
	}
	for _, e := range entities {
		if e.PrivateKey != nil {
			return &gpgRing{data: data, entities: entities}, true
		}
	}
	return nil, false
}

// checkGPGPassword fails early on a missing or wrong passphrase, which
// ocicrypt would only notice (and report vaguely) when decrypting.
func checkGPGPassword(ring *gpgRing, pw []byte) error {
	for _, e := range ring.entities {
		if !gpgEncrypted(e) {
			continue
		}
		if pw == nil || e.DecryptPrivateKeys(pw) != nil {
			return ErrWrongPassword
		}
	}
	return nil
}

func gpgEncrypted(e *openpgp.Entity) bool {
	locked := func(k *packet.PrivateKey) bool { return k != nil && !k.Dummy() && k.Encrypted }
	if locked(e.PrivateKey) {
		return true
	}
	for _, sub := range e.Subkeys {
		if locked(sub.PrivateKey) {
			return true
		}
	}
	return false
}
