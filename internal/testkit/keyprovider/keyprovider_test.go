package keyprovider_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containers/ocicrypt"
	kp "github.com/containers/ocicrypt/keywrap/keyprovider"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcrypt/imgcrypt/internal/keys"
	"github.com/imgcrypt/imgcrypt/internal/testkit/keyprovider"
)

func TestMain(m *testing.M) {
	keyprovider.RunIfProvider()
	os.Exit(m.Run())
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func writeKey(t *testing.T, path string, key []byte) {
	t.Helper()
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestWrapUnwrap(t *testing.T) {
	key, other := randomKey(t), randomKey(t)
	opts := []byte(`{"cipher":"AES_256_CTR_HMAC_SHA256"}`)
	sealed, err := keyprovider.Wrap(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := keyprovider.Unwrap(key, sealed); err != nil || !bytes.Equal(got, opts) {
		t.Fatalf("Unwrap = %q, %v", got, err)
	}
	if _, err := keyprovider.Unwrap(other, sealed); err == nil {
		t.Error("Unwrap with another key succeeded")
	}
	if _, err := keyprovider.Unwrap(key, sealed[:5]); err == nil {
		t.Error("Unwrap of a truncated annotation succeeded")
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("  "+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := keyprovider.LoadKey(good); err != nil || len(k) != 32 {
		t.Errorf("LoadKey(good) = %x, %v", k, err)
	}
	for name, content := range map[string]string{"short": "abcd", "nothex": strings.Repeat("zz", 32)} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := keyprovider.LoadKey(p); err == nil {
			t.Errorf("LoadKey(%s) succeeded", name)
		}
	}
}

// runProvider runs this test binary as the provider, as ocicrypt would.
func runProvider(t *testing.T, keyFile string, req kp.KeyProviderKeyWrapProtocolInput) (kp.KeyProviderKeyWrapProtocolOutput, string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), keyprovider.ReexecEnv+"=1", keyprovider.KeyEnv+"="+keyFile)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var resp kp.KeyProviderKeyWrapProtocolOutput
	if err == nil {
		if jerr := json.Unmarshal(out, &resp); jerr != nil {
			t.Fatalf("provider output %q: %v", out, jerr)
		}
	}
	return resp, stderr.String(), err
}

func TestProtocol(t *testing.T) {
	dir := t.TempDir()
	keyFile, otherFile := filepath.Join(dir, "key"), filepath.Join(dir, "other")
	writeKey(t, keyFile, randomKey(t))
	writeKey(t, otherFile, randomKey(t))
	opts := []byte("layer key options")

	wrapped, stderr, err := runProvider(t, keyFile, kp.KeyProviderKeyWrapProtocolInput{
		Operation:     kp.OpKeyWrap,
		KeyWrapParams: kp.KeyWrapParams{OptsData: opts},
	})
	if err != nil {
		t.Fatalf("keywrap: %v: %s", err, stderr)
	}
	unwrap := kp.KeyProviderKeyWrapProtocolInput{
		Operation:       kp.OpKeyUnwrap,
		KeyUnwrapParams: kp.KeyUnwrapParams{Annotation: wrapped.KeyWrapResults.Annotation},
	}
	unwrapped, stderr, err := runProvider(t, keyFile, unwrap)
	if err != nil || !bytes.Equal(unwrapped.KeyUnwrapResults.OptsData, opts) {
		t.Fatalf("keyunwrap = %q, %v: %s", unwrapped.KeyUnwrapResults.OptsData, err, stderr)
	}

	_, stderr, err = runProvider(t, otherFile, unwrap)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() == 0 {
		t.Errorf("keyunwrap with another key: err = %v, want non-zero exit", err)
	}
	if !strings.Contains(stderr, "keyunwrap") {
		t.Errorf("keyunwrap with another key: stderr = %q, want a message", stderr)
	}
}

// TestOcicryptRoundTrip drives the provider through ocicrypt and package
// keys, the way the image encryption code uses it.
func TestOcicryptRoundTrip(t *testing.T) {
	keyFile := keyprovider.Register(t, "testkp")

	ec, err := keys.EncryptConfig([]string{"provider:testkp"}, nil, nil, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("layer encrypted through the key provider")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(data), Size: int64(len(data))}
	r, fin, err := ocicrypt.EncryptLayer(ec, bytes.NewReader(data), desc)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Annotations, err = fin(); err != nil {
		t.Fatal(err)
	}
	if _, ok := desc.Annotations["org.opencontainers.image.enc.keys.provider.testkp"]; !ok {
		t.Fatalf("no provider annotation in %v", desc.Annotations)
	}

	dc, err := keys.DecryptConfig([]string{"provider:testkp"}, nil, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dr, _, err := ocicrypt.DecryptLayer(dc, bytes.NewReader(enc), desc, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(dr); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decrypted %q, %v", got, err)
	}

	writeKey(t, keyFile, randomKey(t))
	_, _, err = ocicrypt.DecryptLayer(dc, bytes.NewReader(enc), desc, false)
	if err == nil || !strings.Contains(err.Error(), "message authentication failed") {
		t.Errorf("decrypt with the wrong provider key: err = %v, want an authentication failure", err)
	}
}
