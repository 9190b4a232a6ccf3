package keys

import (
	"fmt"
	"os"

	"github.com/imgcrypt/imgcrypt/internal/hsm"
)

// oaepHashEnv is the only way to choose the OAEP hash with which ocicrypt
// wraps layer keys for pkcs11 recipients: crypto/pkcs11/pkcs11helpers.go
// reads it in rsaPublicEncryptOAEP (public key files) and publicEncryptOAEP
// (key yamls, encrypting on the token), and uses sha256 when it is unset.
const oaepHashEnv = "OCICRYPT_OAEP_HASHALG"

// preparePKCS11Encryption readies ocicrypt for pkcs11 recipients: it fails
// clearly on a build without cgo (where ocicrypt's pkcs11 code is a stub
// that fails later, and vaguely), and makes SHA-1 the OAEP hash unless
// the user chose one.
//
// Why SHA-1, and for every pkcs11 recipient rather than only SoftHSM's:
// SoftHSM (2.6, Debian 12's) decrypts OAEP only with SHA-1, and many real
// tokens offer nothing else either; a recipient given as a public key file
// does not say which token will decrypt, so the hash must be one every
// token takes. OAEP's security does not rest on its hash's collision
// resistance: RSA-OAEP with SHA-1 is what JWE's "RSA-OAEP" (imgcrypt's jwe
// scheme for RSA keys) uses too. Decryption needs no setting: each wrapped
// key records its hash ("hash" in the pkcs11 blob), and ocicrypt decrypts
// with that one. A user whose token wants SHA-256 sets the variable to
// sha256 and it is kept.
func preparePKCS11Encryption() error {
	if !hsm.Supported {
		return fmt.Errorf("pkcs11 recipients: %w", hsm.ErrNeedsCgo)
	}
	if os.Getenv(oaepHashEnv) == "" {
		if err := os.Setenv(oaepHashEnv, "sha1"); err != nil {
			return fmt.Errorf("setting %s: %w", oaepHashEnv, err)
		}
	}
	return nil
}

// checkPKCS11Keys fails clearly when pkcs11 key yamls are given to a build
// without cgo, which cannot load their module.
func checkPKCS11Keys(yamls [][]byte) error {
	if len(yamls) > 0 && !hsm.Supported {
		return fmt.Errorf("pkcs11 keys: %w", hsm.ErrNeedsCgo)
	}
	return nil
}
