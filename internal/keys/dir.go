package keys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containers/ocicrypt/config"
)

// DirKeys loads every private key (PEM/DER/JWK/SEC1 EC, pkcs11 yaml, gpg
// secret keyring) and x509 certificate (for pkcs7) found directly in each
// dir. This is the Kubernetes node key directory that the containerd
// stream processor reads, so nobody is there to type a password: keys that
// need one are skipped, as are non-key files, subdirectories and unreadable
// files. A missing dir is not an error; one that cannot be read is.
func DirKeys(dirs ...string) (*config.DecryptConfig, error) {
	var ks keySet
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			// Stat rather than e.Type(): Kubernetes mounts secret files
			// as symlinks into a ..data directory.
			if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			if k, err := classify(data, nil); err == nil {
				ks.add(k)
			}
		}
	}
	// Without a pkcs11 config the yamls are unusable; drop them rather
	// than fail the whole directory.
	if len(ks.p11Yamls) > 0 {
		if _, err := pkcs11Config(); err != nil {
			ks.p11Yamls = nil
		}
	}
	return ks.config()
}
