package hsm

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containers/ocicrypt/config/pkcs11config"
	"github.com/containers/ocicrypt/crypto/pkcs11"
	"github.com/google/renameio/v2"
	"go.yaml.in/yaml/v3"
)

// keyURI is the RFC 7512 URI of a key pair as ocicrypt reads it: the token
// by label (SoftHSM renumbers slots), the objects by label and ID, the
// module by path and the PIN by file, so that the key yaml holds no secret.
// go-pkcs11uri can format URIs too, but in random attribute order.
func keyURI(module, token, object string, id []byte, pinFile string) string {
	var b strings.Builder
	b.WriteString("pkcs11:token=" + escape(token, pathKeep))
	b.WriteString(";object=" + escape(object, pathKeep))
	b.WriteString(";id=")
	for _, c := range id { // RFC 7512: the id is always percent-encoded
		fmt.Fprintf(&b, "%%%02X", c)
	}
	b.WriteString("?module-path=" + escape(module, queryKeep))
	// The pin-source value is itself a URI, parsed after the outer one.
	pinURI := (&url.URL{Scheme: "file", Path: pinFile}).String()
	b.WriteString("&pin-source=" + escape(pinURI, queryKeep))
	return b.String()
}

// Characters that RFC 7512 lets stand unescaped in the path and query
// parts, besides letters and digits.
const (
	pathKeep  = "-._~:[]@!$'()*+,=&"
	queryKeep = "-._~:[]@!$'()*+,=/?|"
)

// escape percent-encodes every byte of s except letters, digits and keep.
func escape(s, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(keep, c) >= 0) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// keyFileYAML is the pkcs11 key yaml ocicrypt reads for both --key and
// pkcs11: recipients; env is set while ocicrypt uses the module (SoftHSM's
// configuration), so the file works without the caller's environment.
func keyFileYAML(uri string, env map[string]string, comment string) ([]byte, error) {
	var f pkcs11.Pkcs11KeyFile
	f.Pkcs11.Uri = uri
	f.Module.Env = env
	out, err := yaml.Marshal(&f)
	if err != nil {
		return nil, fmt.Errorf("encoding the key yaml: %w", err)
	}
	// ocicrypt must read back what we wrote.
	if _, err := pkcs11.ParsePkcs11KeyFile(out); err != nil {
		return nil, fmt.Errorf("encoding the key yaml: %w", err)
	}
	return append([]byte(comment), out...), nil
}

// ocicryptConfig returns the OCICRYPT_CONFIG file that allows module:
// existing (nil for none) with module's path and directory added where
// missing, and whether that changed anything.
func ocicryptConfig(existing []byte, module string) ([]byte, bool, error) {
	var c pkcs11config.OcicryptConfig
	if len(bytes.TrimSpace(existing)) > 0 {
		if err := yaml.Unmarshal(existing, &c); err != nil {
			return nil, false, fmt.Errorf("reading the ocicrypt config: %w", err)
		}
	}
	changed := existing == nil
	p := &c.Pkcs11Config
	if dir := filepath.Dir(module) + "/"; !slices.Contains(p.ModuleDirectories, dir) {
		p.ModuleDirectories = append(p.ModuleDirectories, dir)
		changed = true
	}
	if !slices.Contains(p.AllowedModulePaths, module) {
		p.AllowedModulePaths = append(p.AllowedModulePaths, module)
		changed = true
	}
	if !changed {
		return existing, false, nil
	}
	out, err := yaml.Marshal(&c)
	if err != nil {
		return nil, false, fmt.Errorf("encoding the ocicrypt config: %w", err)
	}
	header := "# ocicrypt configuration (OCICRYPT_CONFIG): the PKCS#11 modules ocicrypt may load.\n"
	return append([]byte(header), out...), true, nil
}

// softHSMConfig is a SoftHSM configuration keeping its tokens in tokenDir.
func softHSMConfig(tokenDir string) []byte {
	return []byte(fmt.Sprintf(`# SoftHSM configuration written by imgcrypt hsm init
directories.tokendir = %s/
objectstore.backend = file
log.level = ERROR
slots.removable = false
`, tokenDir))
}

// writeFile replaces path with data atomically, so that a reader never
// sees half a key file, with mode perm even when path existed with another
// (a PIN file must not keep a laxer mode).
func writeFile(path string, data []byte, perm os.FileMode) error {
	f, err := renameio.NewPendingFile(path, renameio.WithPermissions(perm))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}
