package keys_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containers/ocicrypt"
	"github.com/containers/ocicrypt/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcrypt/imgcrypt/internal/keys"
	"github.com/imgcrypt/imgcrypt/internal/testkit"
	"github.com/imgcrypt/imgcrypt/internal/testkit/keyprovider"
)

// These tests change ocicrypt's global key wrapper registry: none may run
// in parallel, and each uses its own provider names.

func kpWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func providerKeyFile(t *testing.T) string {
	t.Helper()
	return kpWriteFile(t, "kp.key", fmt.Sprintf("%x\n", randomBytes(t, 32)))
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func startProvider(t *testing.T, keyFile, mode string) *testkit.GRPCProvider {
	t.Helper()
	p, err := testkit.StartGRPCProvider(keyFile, mode, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func loadConfig(t *testing.T, json string) {
	t.Helper()
	if err := keys.LoadProviderConfig(kpWriteFile(t, "kp.json", json)); err != nil {
		t.Fatal(err)
	}
}

// fullEncryptConfig is what ocicrypt hands every key wrapper when a user
// encrypts to provider:name and a jwe key while adding recipients with a
// private key: other recipients' keys and private keys included.
func fullEncryptConfig(name string) *config.EncryptConfig {
	return &config.EncryptConfig{
		Parameters: map[string][][]byte{name: {[]byte("Enabled")}, "pubkeys": {[]byte("PUBLIC")}},
		DecryptConfig: config.DecryptConfig{Parameters: map[string][][]byte{
			"privkeys": {[]byte("SECRET")}, "privkeys-passwords": {[]byte("PASSWORD")},
		}},
	}
}

func fullDecryptConfig(names ...string) *config.DecryptConfig {
	dc := &config.DecryptConfig{Parameters: map[string][][]byte{
		"privkeys": {[]byte("SECRET")}, "privkeys-passwords": {[]byte("PASSWORD")},
	}}
	for _, n := range names {
		dc.Parameters[n] = [][]byte{[]byte("Enabled")}
	}
	return dc
}

func oneLineNoSecrets(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	for _, s := range []string{"SECRET", "PASSWORD", "PUBLIC", "symkey", "panic", "goroutine"} {
		if strings.Contains(msg, s) {
			t.Errorf("error contains %q: %q", s, msg)
		}
	}
}

func TestLoadProviderConfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nosuch.json")
	err := keys.LoadProviderConfig(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: got %v", err)
	}

	for _, tc := range []struct{ name, json, want string }{
		{"not json", `{"key-providers":`, "unexpected EOF"},
		{"misspelt top level", `{"key-provider":{"a":{"grpc":"127.0.0.1:1"}}}`, "unknown field"},
		{"misspelt entry", `{"key-providers":{"a":{"gprc":"127.0.0.1:1"}}}`, "unknown field"},
		{"empty", `{}`, "no providers"},
		{"no kind", `{"key-providers":{"a":{}}}`, `"a": needs "cmd" or "grpc"`},
		{"both kinds", `{"key-providers":{"a":{"grpc":"x:1","cmd":{"path":"/bin/true"}}}}`, "both"},
		{"cmd without path", `{"key-providers":{"a":{"cmd":{"args":["x"]}}}}`, `needs a "path"`},
		{"tls for cmd", `{"key-providers":{"a":{"cmd":{"path":"/bin/true"},"grpc-tls":{}}}}`, `"grpc-tls" needs "grpc"`},
		{"reserved name", `{"key-providers":{"privkeys":{"grpc":"x:1"}}}`, "used by ocicrypt"},
		{"colon in name", `{"key-providers":{"a:b":{"grpc":"x:1"}}}`, "must not contain"},
		{"bad timeout", `{"key-providers":{"a":{"grpc":"x:1","timeout":"soon"}}}`, "positive duration"},
		{"zero timeout", `{"key-providers":{"a":{"grpc":"x:1","timeout":"0s"}}}`, "positive duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := kpWriteFile(t, "kp.json", tc.json)
			err := keys.LoadProviderConfig(path)
			if !errors.Is(err, keys.ErrProviderConfig) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v, want ErrProviderConfig naming the file and %q", err, tc.want)
			}
			oneLineNoSecrets(t, err)
		})
	}

	// A bad entry registers nothing, not even the good ones.
	err = keys.LoadProviderConfig(kpWriteFile(t, "kp.json",
		`{"key-providers":{"aaa_partial":{"grpc":"127.0.0.1:1"},"zzz_partial":{}}}`))
	if err == nil {
		t.Fatal("no error for a config with a bad entry")
	}
	if ocicrypt.GetKeyWrapper("provider.aaa_partial") != nil {
		t.Error("a config with a bad entry registered its good one")
	}
}

// A provider from a config file works through ocicrypt's own layer
// encryption and decryption, and sees only its own parameters.
func TestLoadProviderConfigRoundTrip(t *testing.T) {
	p := startProvider(t, providerKeyFile(t), testkit.ProviderOK)
	loadConfig(t, `{"key-providers":{"rt":{"grpc":"`+p.Addr+`"}}}`)
	if ocicrypt.GetKeyWrapper("provider.rt") == nil {
		t.Fatal("provider.rt not registered")
	}

	plain := []byte("layer data")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(plain), Size: int64(len(plain))}
	// Through the keys package, as the CLI builds it.
	ec, err := keys.EncryptConfig([]string{"provider:rt:some-key-id"}, nil, nil, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ec.DecryptConfig.Parameters["privkeys"] = [][]byte{[]byte("SECRET")} // as when adding recipients
	encR, fin, err := ocicrypt.EncryptLayer(ec, bytes.NewReader(plain), desc)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := io.ReadAll(encR)
	if err != nil {
		t.Fatal(err)
	}
	annotations, err := fin()
	if err != nil {
		t.Fatal(err)
	}
	if annotations["org.opencontainers.image.enc.keys.provider.rt"] == "" {
		t.Fatalf("no provider.rt annotation in %v", annotations)
	}
	desc.Annotations = annotations

	dc, err := keys.DecryptConfig([]string{"provider:rt"}, nil, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dc.Parameters["privkeys"] = [][]byte{[]byte("SECRET")}
	decR, _, err := ocicrypt.DecryptLayer(dc, bytes.NewReader(enc), desc, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(decR)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypted %q, %v", got, err)
	}

	calls := p.Calls()
	if len(calls) != 2 {
		t.Fatalf("calls: %v", calls)
	}
	want := []string{
		"keywrap ec=[rt] ec.dc=[] dc=[] deadline=30s result=ok",
		"keyunwrap ec=[] ec.dc=[] dc=[rt] deadline=30s result=ok",
	}
	for i, c := range calls {
		if c.String() != want[i] {
			t.Errorf("call %d: %s, want %s", i, c, want[i])
		}
	}
}

func TestProviderSeesOnlyItsParameters(t *testing.T) {
	p := startProvider(t, providerKeyFile(t), testkit.ProviderOK)
	loadConfig(t, `{"key-providers":{"own":{"grpc":"`+p.Addr+`"}}}`)
	kw := ocicrypt.GetKeyWrapper("provider.own")

	// Not named in ec: not asked.
	if out, err := kw.WrapKeys(fullEncryptConfig("other"), []byte(`{}`)); out != nil || err != nil {
		t.Fatalf("unnamed provider wrapped: %v, %v", out, err)
	}
	wrapped, err := kw.WrapKeys(fullEncryptConfig("own"), []byte(`{"k":1}`))
	if err != nil {
		t.Fatal(err)
	}
	// Named in dc, and not named (implicit use, as in the node key model).
	for _, dc := range []*config.DecryptConfig{fullDecryptConfig("own", "other"), fullDecryptConfig()} {
		out, err := kw.UnwrapKey(dc, wrapped)
		if err != nil || string(out) != `{"k":1}` {
			t.Fatalf("unwrap: %q, %v", out, err)
		}
	}
	var got []string
	for _, c := range p.Calls() {
		got = append(got, fmt.Sprintf("%s ec=%v ec.dc=%v dc=%v", c.Op, c.EcParams, c.EcDecryptParams, c.DcParams))
	}
	want := "keywrap ec=[own] ec.dc=[] dc=[]|keyunwrap ec=[] ec.dc=[] dc=[own]|keyunwrap ec=[] ec.dc=[] dc=[]"
	if strings.Join(got, "|") != want {
		t.Errorf("provider saw\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
}

func TestLoadProviderConfigOverrides(t *testing.T) {
	p1 := startProvider(t, providerKeyFile(t), testkit.ProviderOK)
	p2 := startProvider(t, providerKeyFile(t), testkit.ProviderOK)
	loadConfig(t, `{"key-providers":{"ovr":{"grpc":"`+p1.Addr+`"},"ovr_keep":{"grpc":"`+p1.Addr+`"}}}`)
	wrapped, err := ocicrypt.GetKeyWrapper("provider.ovr").WrapKeys(fullEncryptConfig("ovr"), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	loadConfig(t, `{"key-providers":{"ovr":{"grpc":"`+p2.Addr+`"}}}`)
	_, err = ocicrypt.GetKeyWrapper("provider.ovr").UnwrapKey(fullDecryptConfig("ovr"), wrapped)
	var pe *keys.ProviderError
	if !errors.As(err, &pe) || pe.Unavailable || errors.Is(err, keys.ErrProviderUnavailable) {
		t.Fatalf("unwrap with the other provider's key: %v, want a refusal", err)
	}
	if !strings.Contains(err.Error(), `key provider "ovr": keyunwrap: grpc `+p2.Addr+": provider error") {
		t.Errorf("message: %v", err)
	}
	oneLineNoSecrets(t, err)
	if len(p2.Calls()) != 1 {
		t.Errorf("second provider calls: %v", p2.Calls())
	}
	if ocicrypt.GetKeyWrapper("provider.ovr_keep") == nil {
		t.Error("a provider not in the second file was dropped")
	}
}

func TestProviderUnavailable(t *testing.T) {
	keyFile := providerKeyFile(t)
	down := startProvider(t, keyFile, testkit.ProviderOK)
	down.Stop()
	slow := startProvider(t, keyFile, testkit.ProviderSlow)
	garbage := startProvider(t, keyFile, testkit.ProviderGarbage)
	loadConfig(t, `{"key-providers":{
		"u_down":{"grpc":"`+down.Addr+`"},
		"u_slow":{"grpc":"`+slow.Addr+`","timeout":"300ms"},
		"u_garbage":{"grpc":"`+garbage.Addr+`"}}}`)
	for _, tc := range []struct{ name, want string }{
		{"u_down", "grpc " + down.Addr + ": unavailable: connection refused"},
		{"u_slow", "grpc " + slow.Addr + ": no answer within 300ms"},
		{"u_garbage", "malformed answer (48 bytes, not key provider protocol JSON)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kw := ocicrypt.GetKeyWrapper("provider." + tc.name)
			start := time.Now()
			_, werr := kw.WrapKeys(fullEncryptConfig(tc.name), []byte(`{}`))
			_, uerr := kw.UnwrapKey(fullDecryptConfig(tc.name), []byte("wrapped"))
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			for op, err := range map[string]error{"keywrap": werr, "keyunwrap": uerr} {
				want := fmt.Sprintf("key provider %q: %s: %s", tc.name, op, tc.want)
				if !errors.Is(err, keys.ErrProviderUnavailable) || err.Error() != want {
					t.Errorf("got %v\nwant %s (ErrProviderUnavailable)", err, want)
				}
				if err != nil {
					oneLineNoSecrets(t, err)
				}
			}
		})
	}
	for _, c := range slow.Calls() {
		if c.Deadline != 300*time.Millisecond || !strings.HasPrefix(c.Result, "gave up: context ") {
			t.Errorf("slow provider saw %s", c)
		}
	}
}

// The "cmd" kind: bounded, filtered, and a refusal told from a failure.
func TestProviderCommand(t *testing.T) {
	dir := t.TempDir()
	reqFile := filepath.Join(dir, "request.json")
	script := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	echo := script("echo.sh", `cat > `+reqFile+`; echo '{"keywrapresults":{"annotation":"d3JhcHBlZA=="},"keyunwrapresults":{"optsdata":"e30="}}'`)
	slow := script("slow.sh", "exec sleep 30")
	refuse := script("refuse.sh", "cat >/dev/null; echo 'first line' >&2; echo 'no such key id' >&2; exit 4")
	loadConfig(t, `{"key-providers":{
		"c_echo":{"cmd":{"path":"`+echo+`"}},
		"c_slow":{"cmd":{"path":"`+slow+`"},"timeout":"300ms"},
		"c_refuse":{"cmd":{"path":"`+refuse+`","args":["x"]}},
		"c_missing":{"cmd":{"path":"`+filepath.Join(dir, "nosuch")+`"}}}}`)

	kw := ocicrypt.GetKeyWrapper("provider.c_echo")
	if out, err := kw.WrapKeys(fullEncryptConfig("c_echo"), []byte(`{"symkey":"X"}`)); err != nil || string(out) != "wrapped" {
		t.Fatalf("wrap: %q, %v", out, err)
	}
	req, _ := os.ReadFile(reqFile)
	if bytes.Contains(req, []byte("privkeys")) || bytes.Contains(req, []byte("pubkeys")) || !bytes.Contains(req, []byte(`"c_echo"`)) {
		t.Errorf("cmd provider was sent %s", req)
	}
	if out, err := kw.UnwrapKey(fullDecryptConfig("c_echo"), []byte("wrapped")); err != nil || string(out) != "{}" {
		t.Fatalf("unwrap: %q, %v", out, err)
	}
	req, _ = os.ReadFile(reqFile)
	if bytes.Contains(req, []byte("privkeys")) || !bytes.Contains(req, []byte(`"dc":{"Parameters":{"c_echo":`)) {
		t.Errorf("cmd provider was sent %s", req)
	}

	start := time.Now()
	_, err := ocicrypt.GetKeyWrapper("provider.c_slow").WrapKeys(fullEncryptConfig("c_slow"), []byte(`{}`))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("slow command took %v", d)
	}
	if !errors.Is(err, keys.ErrProviderUnavailable) || !strings.HasSuffix(err.Error(), "no answer within 300ms") {
		t.Errorf("slow command: %v", err)
	}

	_, err = ocicrypt.GetKeyWrapper("provider.c_refuse").UnwrapKey(fullDecryptConfig(), []byte("w"))
	if errors.Is(err, keys.ErrProviderUnavailable) || !strings.HasSuffix(err.Error(), "failed (exit 4): no such key id") {
		t.Errorf("refusing command: %v", err)
	}

	_, err = ocicrypt.GetKeyWrapper("provider.c_missing").UnwrapKey(fullDecryptConfig(), []byte("w"))
	if !errors.Is(err, keys.ErrProviderUnavailable) || !strings.Contains(err.Error(), "cannot run command") {
		t.Errorf("missing command: %v", err)
	}
}

// Providers from $OCICRYPT_KEYPROVIDER_CONFIG (registered by ocicrypt's
// init) are replaced by bounded, filtering ones when the package loads.
// The check runs in a child process started with that variable set.
func TestEnvProvidersReplaced(t *testing.T) {
	if os.Getenv("IMGCRYPT_TEST_ENV_PROVIDERS") == "1" {
		start := time.Now()
		_, err := ocicrypt.GetKeyWrapper("provider.e_slow").WrapKeys(fullEncryptConfig("e_slow"), []byte(`{}`))
		if time.Since(start) > 5*time.Second || !strings.HasSuffix(fmt.Sprint(err), "no answer within 300ms") {
			t.Fatalf("env provider not bounded: %v after %v", err, time.Since(start))
		}
		_, err = ocicrypt.GetKeyWrapper("provider.e_bad").UnwrapKey(fullDecryptConfig(), []byte("w"))
		if !strings.Contains(fmt.Sprint(err), `provider "e_bad": needs "cmd" or "grpc"`) {
			t.Fatalf("invalid env entry: %v", err)
		}
		return
	}
	p := startProvider(t, providerKeyFile(t), testkit.ProviderSlow)
	cfg := kpWriteFile(t, "kp.json", `{"key-providers":{"e_slow":{"grpc":"`+p.Addr+`","timeout":"300ms"},"e_bad":{}}}`)
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnvProvidersReplaced$", "-test.count=1")
	cmd.Env = append(os.Environ(), "IMGCRYPT_TEST_ENV_PROVIDERS=1", "OCICRYPT_KEYPROVIDER_CONFIG="+cfg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if c := p.Calls(); len(c) != 1 || c[0].EcDecryptParams == nil || len(c[0].EcDecryptParams) != 0 || len(c[0].EcParams) != 1 {
		t.Errorf("env provider saw %v", c)
	}
}

// The test provider's own AES-GCM wrapping is what the gRPC one uses.
func TestGRPCProviderUsesTestKeyWrapping(t *testing.T) {
	keyFile := providerKeyFile(t)
	p := startProvider(t, keyFile, testkit.ProviderOK)
	loadConfig(t, `{"key-providers":{"aes":{"grpc":"`+p.Addr+`"}}}`)
	wrapped, err := ocicrypt.GetKeyWrapper("provider.aes").WrapKeys(fullEncryptConfig("aes"), []byte("opts"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := keyprovider.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := keyprovider.Unwrap(key, wrapped); err != nil || string(out) != "opts" {
		t.Fatalf("unwrap with the key file: %q, %v", out, err)
	}
}
