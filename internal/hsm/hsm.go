package hsm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// Defaults for Init and List.
const (
	DefaultTokenLabel = "imgcrypt"
	DefaultKeyLabel   = "imgcrypt"
	DefaultBits       = 3072
)

// SoftHSMConfEnv names SoftHSM's configuration file; SoftHSM reads it when
// the module is initialized.
const SoftHSMConfEnv = "SOFTHSM2_CONF"

// Sentinel errors, for callers that must tell failures apart with errors.Is.
var (
	// ErrNeedsCgo means this imgcrypt was built without cgo, which loading
	// a PKCS#11 module needs.
	ErrNeedsCgo = errors.New("PKCS#11 needs imgcrypt built with cgo (this one was built with CGO_ENABLED=0)")
	// ErrNoModule means the PKCS#11 module was not found or cannot be loaded.
	ErrNoModule = errors.New("no PKCS#11 module")
	// ErrWrongPIN means the token refused the PIN.
	ErrWrongPIN = errors.New("wrong PIN")
	// ErrNoToken means no token has the label asked for.
	ErrNoToken = errors.New("no such token")
	// ErrExists means Init would replace a token, key or file without Force.
	ErrExists = errors.New("already exists")
)

// InitOptions say which token and key Init creates and where its files go.
// PINs are secrets: never print an InitOptions value.
type InitOptions struct {
	Module     string // module path; "" finds SoftHSM in the usual places
	TokenLabel string // default DefaultTokenLabel
	KeyLabel   string // default DefaultKeyLabel
	PIN        string // the token's user PIN
	SOPIN      string // security officer PIN for a new token; "" uses PIN
	Bits       int    // RSA modulus size, default DefaultBits
	Dir        string // where the files (and SoftHSM's tokens) go; default DefaultDir
	Force      bool   // re-initialize an existing token and overwrite files
}

// InitResult says what Init created and where.
type InitResult struct {
	TokenLabel   string
	KeyLabel     string
	Bits         int
	Module       string // the module's path
	SoftHSMConf  string // SoftHSM configuration in use ("" when not SoftHSM)
	Serial       string // the token's serial number (SoftHSM renumbers slots, so not the slot)
	TokenCreated bool   // false when the key was added to an existing token
	KeyID        []byte // CKA_ID of both halves of the key pair
	KeyFile      string // pkcs11 key yaml: --key FILE, or --recipient pkcs11:FILE
	PublicKey    string // public key PEM: --recipient pkcs11:FILE
	PINFile      string // the user PIN, which the key yaml names by pin-source
	OcicryptConf string // OCICRYPT_CONFIG file allowing the module
}

// ListOptions say which module List asks and which token it logs in to.
// PIN is a secret: never print a ListOptions value.
type ListOptions struct {
	Module     string // as for InitOptions
	Dir        string // where Init put SoftHSM's configuration; default DefaultDir
	TokenLabel string // token whose objects to list; "" = the only initialized one
	PIN        string // user PIN of that token
}

// Token describes the token in one slot.
type Token struct {
	Slot         uint
	Label        string
	Manufacturer string
	Model        string
	Serial       string
	Initialized  bool
}

// Object describes one object in a token, never its secret parts.
type Object struct {
	Class   string // private, public, secret, certificate, data or a number
	Label   string
	ID      []byte
	KeyType string // RSA, EC, AES, ... for keys; "" otherwise
	Bits    int    // key size, 0 when unknown
}

// Listing is what List found.
type Listing struct {
	Module  string
	Tokens  []Token
	Token   *Token   // the token whose objects are listed, nil when there is none
	Objects []Object // sorted by label, then class
}

// softHSMCandidates are where distributions install SoftHSM's module.
func softHSMCandidates() []string {
	paths := []string{"/usr/lib/softhsm/libsofthsm2.so"} // Debian, Ubuntu
	if triplet := debianTriplet(); triplet != "" {
		paths = append(paths, "/usr/lib/"+triplet+"/softhsm/libsofthsm2.so")
	}
	return append(paths,
		"/usr/lib64/pkcs11/libsofthsm2.so", // Fedora, RHEL
		"/usr/lib/pkcs11/libsofthsm2.so",   // Arch
		"/usr/lib64/softhsm/libsofthsm.so", // RHEL 7
		"/usr/local/lib/softhsm/libsofthsm2.so",
		"/opt/homebrew/lib/softhsm/libsofthsm2.so", // macOS
	)
}

// debianTriplet is the multiarch directory name for this architecture.
func debianTriplet() string {
	arch := map[string]string{
		"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386",
		"ppc64le": "powerpc64le", "riscv64": "riscv64", "s390x": "s390x",
	}[runtime.GOARCH]
	if arch == "" || runtime.GOOS != "linux" {
		return ""
	}
	if arch == "arm" {
		return "arm-linux-gnueabihf"
	}
	return arch + "-linux-gnu"
}

// FindModule returns the absolute path of module, or of SoftHSM's module
// in the usual places when module is "".
func FindModule(module string) (string, error) {
	if module == "" {
		for _, p := range softHSMCandidates() {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p, nil
			}
		}
		return "", fmt.Errorf("%w: SoftHSM is not installed in the usual places (Debian: apt-get install softhsm2); give the module with --module", ErrNoModule)
	}
	abs, err := filepath.Abs(module)
	if err != nil {
		return "", fmt.Errorf("%w %s: %w", ErrNoModule, module, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("%w %s: no such file", ErrNoModule, abs)
	case err != nil:
		return "", fmt.Errorf("%w %s: %w", ErrNoModule, abs, err)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%w %s: not a file", ErrNoModule, abs)
	}
	return abs, nil
}

// IsSoftHSM reports whether module is SoftHSM's, by its file name.
func IsSoftHSM(module string) bool {
	return strings.Contains(strings.ToLower(filepath.Base(module)), "softhsm")
}

// DefaultDir is where Init writes its files unless told otherwise:
// $XDG_CONFIG_HOME/imgcrypt/hsm, else ~/.config/imgcrypt/hsm.
func DefaultDir() (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the default hsm directory: %w", err)
	}
	return filepath.Join(base, "imgcrypt", "hsm"), nil
}

// labelRE is what Init accepts as a token or key label: the labels name
// files, so no separators, spaces or leading dots.
var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks the labels and key size (as defaulted), so that a caller
// can reject bad flags before asking for a PIN.
func (o InitOptions) Validate() error {
	return o.labelsAndSize().check()
}

// labelsAndSize returns o with default labels and size.
func (o InitOptions) labelsAndSize() InitOptions {
	if o.TokenLabel == "" {
		o.TokenLabel = DefaultTokenLabel
	}
	if o.KeyLabel == "" {
		o.KeyLabel = DefaultKeyLabel
	}
	if o.Bits == 0 {
		o.Bits = DefaultBits
	}
	return o
}

func (o InitOptions) check() error {
	switch {
	case !labelRE.MatchString(o.TokenLabel) || len(o.TokenLabel) > 32:
		return fmt.Errorf("invalid token label %q: want 1 to 32 letters, digits, '.', '_' or '-'", o.TokenLabel)
	case !labelRE.MatchString(o.KeyLabel) || len(o.KeyLabel) > 64:
		return fmt.Errorf("invalid key label %q: want 1 to 64 letters, digits, '.', '_' or '-'", o.KeyLabel)
	case o.Bits < 2048 || o.Bits > 8192 || o.Bits%8 != 0:
		// ocicrypt wraps about 200 bytes of JSON with OAEP: RSA-2048 holds
		// 214 with SHA-1 (the hash imgcrypt uses), 190 with SHA-256.
		return fmt.Errorf("invalid key size %d: want 2048 to 8192 bits, a multiple of 8", o.Bits)
	}
	return nil
}

// withDefaults fills in defaults and checks the options, before anything
// is loaded or written.
func (o InitOptions) withDefaults() (InitOptions, error) {
	o = o.labelsAndSize()
	if err := o.check(); err != nil {
		return o, err
	}
	if o.PIN == "" {
		return o, errors.New("empty PIN")
	}
	if o.SOPIN == "" {
		o.SOPIN = o.PIN
	}
	if o.Dir == "" {
		dir, err := DefaultDir()
		if err != nil {
			return o, err
		}
		o.Dir = dir
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, fmt.Errorf("hsm directory %s: %w", o.Dir, err)
	}
	o.Dir = dir
	return o, nil
}

// softHSMConf is the SoftHSM configuration a command uses: $SOFTHSM2_CONF
// when set (it must exist), else dir/softhsm2.conf when it exists or create
// is true (then it is written, with its token directory beside it), else
// "" for SoftHSM's own default.
func softHSMConf(dir string, create bool) (string, error) {
	if env := os.Getenv(SoftHSMConfEnv); env != "" {
		if _, err := os.Stat(env); err != nil {
			return "", fmt.Errorf("$%s names %s: %w", SoftHSMConfEnv, env, err)
		}
		return env, nil
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if _, err := os.Stat(conf); err == nil || !create {
		if err != nil {
			return "", nil
		}
		return conf, nil
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return "", fmt.Errorf("creating SoftHSM's token directory: %w", err)
	}
	if err := writeFile(conf, softHSMConfig(tokens), 0o600); err != nil {
		return "", fmt.Errorf("writing SoftHSM's configuration: %w", err)
	}
	return conf, nil
}
