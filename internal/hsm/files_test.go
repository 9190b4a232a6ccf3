package hsm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containers/ocicrypt/config/pkcs11config"
	"github.com/containers/ocicrypt/crypto/pkcs11"
	"go.yaml.in/yaml/v3"
)

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "a dir;with&odd?chars", "tok.pin")
	if err := os.MkdirAll(filepath.Dir(pinFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pinFile, []byte("1234"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := []byte{0x00, 0xff, '/', ';', 'a'}
	uri := keyURI("/usr/lib/softhsm/libsofthsm2.so", "tok-1", "key.one", id, pinFile)
	data, err := keyFileYAML(uri, map[string]string{SoftHSMConfEnv: "/x/softhsm2.conf"}, "# comment\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# comment\n") {
		t.Errorf("key yaml does not start with its comment:\n%s", data)
	}
	f, err := pkcs11.ParsePkcs11KeyFile(data)
	if err != nil {
		t.Fatalf("ocicrypt cannot read the key yaml: %v\n%s", err, data)
	}
	u := f.Uri
	for attr, want := range map[string]string{"token": "tok-1", "object": "key.one", "id": string(id)} {
		if got, _ := u.GetPathAttribute(attr, false); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	if got, _ := u.GetQueryAttribute("module-path", false); got != "/usr/lib/softhsm/libsofthsm2.so" {
		t.Errorf("module-path = %q", got)
	}
	if _, ok := u.GetQueryAttribute("pin-value", false); ok {
		t.Error("the key yaml holds the PIN itself")
	}
	if pin, err := u.GetPIN(); err != nil || pin != "1234" {
		t.Errorf("GetPIN() = %q, %v; want the PIN file's contents", pin, err)
	}
	if got := u.GetEnvMap()[SoftHSMConfEnv]; got != "/x/softhsm2.conf" {
		t.Errorf("module env %s = %q", SoftHSMConfEnv, got)
	}
}

func TestOcicryptConfig(t *testing.T) {
	const mod = "/usr/lib/softhsm/libsofthsm2.so"
	fresh, changed, err := ocicryptConfig(nil, mod)
	if err != nil || !changed {
		t.Fatalf("ocicryptConfig(nil) = changed %v, %v", changed, err)
	}
	// Through ocicrypt's own loader, as OCICRYPT_CONFIG.
	path := filepath.Join(t.TempDir(), "ocicrypt.conf")
	if err := os.WriteFile(path, fresh, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OCICRYPT_CONFIG", path)
	c, err := pkcs11config.GetUserPkcs11Config()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.AllowedModulePaths) != 1 || c.AllowedModulePaths[0] != mod ||
		len(c.ModuleDirectories) != 1 || c.ModuleDirectories[0] != "/usr/lib/softhsm/" {
		t.Errorf("config = %+v", c)
	}

	// Allowing the same module again changes nothing; another is added.
	if _, changed, _ := ocicryptConfig(fresh, mod); changed {
		t.Error("allowing an allowed module changed the config")
	}
	merged, changed, err := ocicryptConfig(fresh, "/opt/hsm/lib/libvendor.so")
	if err != nil || !changed {
		t.Fatalf("merging: changed %v, %v", changed, err)
	}
	var got pkcs11config.OcicryptConfig
	if err := yaml.Unmarshal(merged, &got); err != nil {
		t.Fatal(err)
	}
	if n := len(got.Pkcs11Config.AllowedModulePaths); n != 2 {
		t.Errorf("merged config allows %d modules, want 2:\n%s", n, merged)
	}
	if _, _, err := ocicryptConfig([]byte("pkcs11: [unclosed"), mod); err == nil {
		t.Error("a broken config was accepted")
	}
}

func TestWithDefaults(t *testing.T) {
	o, err := InitOptions{PIN: "1234", Dir: "rel"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.TokenLabel != DefaultTokenLabel || o.KeyLabel != DefaultKeyLabel || o.Bits != DefaultBits ||
		o.SOPIN != "1234" || !filepath.IsAbs(o.Dir) {
		t.Errorf("defaults not applied: labels %q %q, bits %d, dir %q", o.TokenLabel, o.KeyLabel, o.Bits, o.Dir)
	}
	for name, bad := range map[string]InitOptions{
		"no PIN":        {},
		"token label /": {PIN: "1", TokenLabel: "a/b"},
		"long token":    {PIN: "1", TokenLabel: strings.Repeat("t", 33)},
		"key label dot": {PIN: "1", KeyLabel: ".hidden"},
		"small key":     {PIN: "1", Bits: 1024},
		"odd bits":      {PIN: "1", Bits: 3071},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), bad.PIN+"\"") && bad.PIN != "" {
			t.Errorf("%s: error quotes the PIN: %v", name, err)
		}
	}
}

func TestFindModule(t *testing.T) {
	if _, err := FindModule(filepath.Join(t.TempDir(), "nope.so")); !errors.Is(err, ErrNoModule) ||
		!strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing module: %v", err)
	}
	if _, err := FindModule(t.TempDir()); !errors.Is(err, ErrNoModule) {
		t.Errorf("directory as module: %v", err)
	}
	if !IsSoftHSM("/usr/lib/softhsm/libsofthsm2.so") || IsSoftHSM("/usr/lib/opensc-pkcs11.so") {
		t.Error("IsSoftHSM")
	}
}

func TestSoftHSMConf(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(SoftHSMConfEnv, "")
	if conf, err := softHSMConf(dir, false); err != nil || conf != "" {
		t.Errorf("without create: %q, %v", conf, err)
	}
	conf, err := softHSMConf(dir, true)
	if err != nil || conf != filepath.Join(dir, "softhsm2.conf") {
		t.Fatalf("create: %q, %v", conf, err)
	}
	data, _ := os.ReadFile(conf)
	if !strings.Contains(string(data), "directories.tokendir = "+filepath.Join(dir, "tokens")+"/") {
		t.Errorf("config:\n%s", data)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tokens")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("token directory: %v, %v", fi, err)
	}
	if again, err := softHSMConf(dir, false); err != nil || again != conf {
		t.Errorf("existing: %q, %v", again, err)
	}
	t.Setenv(SoftHSMConfEnv, filepath.Join(dir, "missing.conf"))
	if _, err := softHSMConf(dir, true); err == nil || !strings.Contains(err.Error(), "$SOFTHSM2_CONF names") {
		t.Errorf("missing $SOFTHSM2_CONF: %v", err)
	}
}

func TestWriteFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, %v; want 0600", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d files left, want 1", len(entries))
	}
}
