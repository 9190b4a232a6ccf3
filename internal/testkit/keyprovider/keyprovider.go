// Package keyprovider is a tiny ocicrypt key provider for tests only. It
// speaks ocicrypt's "cmd" key provider protocol (one JSON request on stdin,
// one JSON answer on stdout) and wraps layer keys with AES-256-GCM under a
// key read from the file named by $IMGCRYPT_TEST_PROVIDER_KEY. That file
// holds 64 hex digits (32 bytes); surrounding whitespace is ignored.
//
// It offers no protection worth the name and must never ship in a binary.
// Tests use it by re-executing their own test binary as the provider: call
// RunIfProvider first thing in TestMain, then Register in each test.
package keyprovider

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containers/ocicrypt"
	kpconfig "github.com/containers/ocicrypt/config/keyprovider-config"
	"github.com/containers/ocicrypt/keywrap/keyprovider"
)

const (
	// KeyEnv names the environment variable holding the key file's path.
	KeyEnv = "IMGCRYPT_TEST_PROVIDER_KEY"
	// ReexecEnv, set to "1", makes RunIfProvider turn the process into the provider.
	ReexecEnv = "IMGCRYPT_TEST_PROVIDER_MAIN"
)

// Main serves one request from stdin to stdout and returns the exit code;
// failures are reported on stderr with a non-zero code.
func Main() int {
	if err := serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "test key provider: %v\n", err)
		return 1
	}
	return 0
}

func serve(in io.Reader, out io.Writer) error {
	key, err := LoadKey(os.Getenv(KeyEnv))
	if err != nil {
		return err
	}
	var req keyprovider.KeyProviderKeyWrapProtocolInput
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return fmt.Errorf("reading request: %w", err)
	}
	var resp keyprovider.KeyProviderKeyWrapProtocolOutput
	switch req.Operation {
	case keyprovider.OpKeyWrap:
		resp.KeyWrapResults.Annotation, err = Wrap(key, req.KeyWrapParams.OptsData)
	case keyprovider.OpKeyUnwrap:
		resp.KeyUnwrapResults.OptsData, err = Unwrap(key, req.KeyUnwrapParams.Annotation)
	default:
		err = fmt.Errorf("unknown operation %q", req.Operation)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", req.Operation, err)
	}
	return json.NewEncoder(out).Encode(resp)
}

// LoadKey reads a key file of 64 hex digits.
func LoadKey(path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%s is not set", KeyEnv)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s: want 64 hex digits", path)
	}
	return key, nil
}

// Wrap seals optsData under key; the result is the nonce followed by the
// AES-256-GCM ciphertext.
func Wrap(key, optsData []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, optsData, nil), nil
}

// Unwrap opens what Wrap sealed; it fails if key differs.
func Unwrap(key, annotation []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(annotation) < aead.NonceSize() {
		return nil, errors.New("annotation too short")
	}
	nonce, sealed := annotation[:aead.NonceSize()], annotation[aead.NonceSize():]
	return aead.Open(nil, nonce, sealed, nil)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// RunIfProvider exits the process after serving one provider request if
// the process was started by Register's provider config. Call it first in
// TestMain.
func RunIfProvider() {
	if os.Getenv(ReexecEnv) == "1" {
		os.Exit(Main())
	}
}

// Register makes ocicrypt use the running test binary as key provider name
// (so provider:name works as recipient and key) with a fresh random key,
// and returns the key file's path. The test binary's TestMain must call
// RunIfProvider. It sets environment variables, so tests using it cannot
// run in parallel.
func Register(tb testing.TB, name string) string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		tb.Fatal(err)
	}
	keyFile := filepath.Join(tb.TempDir(), "provider.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	// The provider inherits our environment; setting ReexecEnv here is
	// harmless because TestMain has already run.
	tb.Setenv(KeyEnv, keyFile)
	tb.Setenv(ReexecEnv, "1")
	attrs := kpconfig.KeyProviderAttrs{Command: &kpconfig.Command{Path: exe}}
	ocicrypt.RegisterKeyWrapper("provider."+name, keyprovider.NewKeyWrapper(name, attrs))
	return keyFile
}
