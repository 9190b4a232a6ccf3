package keys

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/containers/ocicrypt"
	"github.com/containers/ocicrypt/config"
	kpconfig "github.com/containers/ocicrypt/config/keyprovider-config"
	"github.com/containers/ocicrypt/keywrap/keyprovider"
	kppb "github.com/containers/ocicrypt/utils/keyprovider"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// DefaultProviderTimeout bounds every call to a key provider whose config
// entry sets no "timeout". ocicrypt itself sets none: a provider that never
// answers would hang encryption, decryption and the containerd decoder.
const DefaultProviderTimeout = 30 * time.Second

// maxProviderAnswer caps what a "cmd" provider may print (gRPC caps
// messages at 4 MiB by default); a real answer is a few hundred bytes.
const maxProviderAnswer = 4 << 20

// ErrProviderUnavailable is wrapped by errors that mean a key provider
// could not be asked: it could not be reached or started, gave no answer
// within its timeout, or answered something that is not the key provider
// protocol. It is not wrapped when a provider answered and refused.
var ErrProviderUnavailable = errors.New("key provider unavailable")

// ErrProviderConfig is wrapped by every error about a key provider config
// file's content.
var ErrProviderConfig = errors.New("invalid key provider config")

// reservedProviderNames are the keys ocicrypt's other key wrappers use in
// the same parameter maps as key providers: a provider so named would be
// invoked for (and handed) jwe, pkcs7, pgp or pkcs11 keys.
var reservedProviderNames = map[string]bool{
	"pubkeys": true, "privkeys": true, "privkeys-passwords": true,
	"x509s": true, "gpg-recipients": true, "gpg-pubkeyringfile": true,
	"gpg-privatekeys": true, "gpg-privatekeys-passwords": true,
	"pkcs11-pubkeys": true, "pkcs11-yamls": true, "pkcs11-config": true,
}

// providerFile is ocicrypt's key provider config (OcicryptConfig) plus an
// optional per-provider "timeout", which ocicrypt and containerd ignore.
type providerFile struct {
	KeyProviders map[string]providerEntry `json:"key-providers"`
}

type providerEntry struct {
	kpconfig.KeyProviderAttrs
	Timeout string `json:"timeout,omitempty"` // a Go duration, e.g. "10s"
}

func init() {
	registerEnvProviders(os.Getenv(kpconfig.ENVVARNAME))
}

// registerEnvProviders replaces the wrappers that ocicrypt's own init
// registered from $OCICRYPT_KEYPROVIDER_CONFIG by imgcrypt's, which bound
// each call and hand a provider only its own parameters. It is as lenient
// as ocicrypt (a missing or unreadable file registers nothing); an entry
// imgcrypt finds invalid is registered so that using it reports why.
func registerEnvProviders(path string) {
	if path == "" {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var f providerFile
	if json.Unmarshal(data, &f) != nil {
		return
	}
	for name, e := range f.KeyProviders {
		w, err := newProviderWrapper(name, e)
		if err != nil {
			w = &providerWrapper{name: name, cfgErr: fmt.Errorf("%s (%s): %w", kpconfig.ENVVARNAME, path, err)}
		}
		ocicrypt.RegisterKeyWrapper("provider."+name, w)
	}
}

// LoadProviderConfig reads a key provider config file (the JSON that
// OCICRYPT_KEYPROVIDER_CONFIG names: {"key-providers": {NAME: {"cmd":
// {"path": ..., "args": [...]}} or {"grpc": "HOST:PORT", "grpc-tls":
// {...}}}}, each entry optionally with "timeout": "10s") and registers its
// providers with ocicrypt, so that provider:NAME recipients and keys use
// them. A provider of the same name from OCICRYPT_KEYPROVIDER_CONFIG is
// replaced; others stay. Nothing is registered unless the whole file is
// valid. Unknown fields are refused, to catch misspellings.
//
// It changes ocicrypt's global registry without locking: call it before
// any encryption or decryption starts, from one goroutine.
func LoadProviderConfig(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading key provider config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f providerFile
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("%w %s: %w", ErrProviderConfig, path, err)
	}
	if len(f.KeyProviders) == 0 {
		return fmt.Errorf("%w %s: no providers under \"key-providers\"", ErrProviderConfig, path)
	}
	names := make([]string, 0, len(f.KeyProviders))
	for name := range f.KeyProviders {
		names = append(names, name)
	}
	sort.Strings(names) // report the first bad entry deterministically
	ws := make([]*providerWrapper, 0, len(names))
	for _, name := range names {
		w, err := newProviderWrapper(name, f.KeyProviders[name])
		if err != nil {
			return fmt.Errorf("%w %s: %w", ErrProviderConfig, path, err)
		}
		ws = append(ws, w)
	}
	for _, w := range ws {
		ocicrypt.RegisterKeyWrapper("provider."+w.name, w)
	}
	return nil
}

func newProviderWrapper(name string, e providerEntry) (*providerWrapper, error) {
	switch {
	case name == "":
		return nil, errors.New("empty provider name")
	case strings.ContainsFunc(name, func(r rune) bool { return r == ':' || r == ',' || unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return nil, fmt.Errorf("provider %q: name must not contain ':', ',' or spaces", name)
	case reservedProviderNames[name]:
		return nil, fmt.Errorf("provider %q: name is used by ocicrypt for other keys", name)
	case e.Command != nil && e.Grpc != "":
		return nil, fmt.Errorf("provider %q: has both \"cmd\" and \"grpc\"; want one", name)
	case e.Command == nil && e.Grpc == "":
		return nil, fmt.Errorf("provider %q: needs \"cmd\" or \"grpc\"", name)
	case e.Command != nil && e.Command.Path == "":
		return nil, fmt.Errorf("provider %q: \"cmd\" needs a \"path\"", name)
	case e.Command != nil && e.GrpcTLS != nil:
		return nil, fmt.Errorf("provider %q: \"grpc-tls\" needs \"grpc\"", name)
	}
	w := &providerWrapper{name: name, attrs: e.KeyProviderAttrs, timeout: DefaultProviderTimeout}
	if e.Timeout != "" {
		d, err := time.ParseDuration(e.Timeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("provider %q: timeout %q is not a positive duration such as \"10s\"", name, e.Timeout)
		}
		w.timeout = d
	}
	return w, nil
}

// ProviderError reports a failed call to a key provider. Its message is
// one line and never holds the request or the answer.
type ProviderError struct {
	Name string // the provider's name in the config
	Op   string // "keywrap" or "keyunwrap"
	// Unavailable is true if the provider could not be asked (see
	// ErrProviderUnavailable), false if it answered with an error.
	Unavailable bool
	Err         error
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("key provider %q: %s: %v", e.Name, e.Op, e.Err)
}

func (e *ProviderError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrProviderUnavailable) true for unavailability.
func (e *ProviderError) Is(target error) bool {
	return target == ErrProviderUnavailable && e.Unavailable
}

// providerWrapper is an ocicrypt key wrapper for one key provider. It
// speaks the same protocol as ocicrypt's keyprovider.NewKeyWrapper but
// bounds every call by a timeout and sends the provider only its own
// parameters, where ocicrypt's sends the whole configuration (every
// recipient's public key, the gpg public keyring and, when adding
// recipients or decrypting, every private key and password given).
type providerWrapper struct {
	name    string
	attrs   kpconfig.KeyProviderAttrs
	timeout time.Duration
	cfgErr  error // set when the entry is unusable; every call reports it
}

// GetAnnotationID is the layer annotation holding this provider's keys.
func (w *providerWrapper) GetAnnotationID() string {
	return "org.opencontainers.image.enc.keys.provider." + w.name
}

// WrapKeys asks the provider to wrap optsData if ec names it (a
// provider:NAME recipient); otherwise it does nothing. The request's ec
// holds only this provider's parameters.
func (w *providerWrapper) WrapKeys(ec *config.EncryptConfig, optsData []byte) ([]byte, error) {
	params, ok := ec.Parameters[w.name]
	if !ok {
		return nil, nil
	}
	in := keyprovider.KeyProviderKeyWrapProtocolInput{
		Operation: keyprovider.OpKeyWrap,
		KeyWrapParams: keyprovider.KeyWrapParams{
			Ec: &config.EncryptConfig{
				Parameters:    map[string][][]byte{w.name: params},
				DecryptConfig: config.DecryptConfig{Parameters: map[string][][]byte{}},
			},
			OptsData: optsData,
		},
	}
	out, err := w.call(in)
	if err != nil {
		return nil, err
	}
	if len(out.KeyWrapResults.Annotation) == 0 {
		return nil, w.errorf(in.Operation, true, "answer holds no wrapped key")
	}
	return out.KeyWrapResults.Annotation, nil
}

// UnwrapKey asks the provider to unwrap annotation. Like ocicrypt, it asks
// even when dc does not name the provider (the containerd decoder's node
// key model relies on that); the request's dc then holds no parameters,
// else only this provider's.
func (w *providerWrapper) UnwrapKey(dc *config.DecryptConfig, annotation []byte) ([]byte, error) {
	params := map[string][][]byte{}
	if dc != nil {
		if p, ok := dc.Parameters[w.name]; ok {
			params[w.name] = p
		}
	}
	in := keyprovider.KeyProviderKeyWrapProtocolInput{
		Operation: keyprovider.OpKeyUnwrap,
		KeyUnwrapParams: keyprovider.KeyUnwrapParams{
			Dc:         &config.DecryptConfig{Parameters: params},
			Annotation: annotation,
		},
	}
	out, err := w.call(in)
	if err != nil {
		return nil, err
	}
	if len(out.KeyUnwrapResults.OptsData) == 0 {
		return nil, w.errorf(in.Operation, true, "answer holds no layer key")
	}
	return out.KeyUnwrapResults.OptsData, nil
}

// NoPossibleKeys is false: a provider may unwrap without any parameter.
func (w *providerWrapper) NoPossibleKeys(map[string][][]byte) bool { return false }

// GetPrivateKeys is nil: providers hold their keys themselves.
func (w *providerWrapper) GetPrivateKeys(map[string][][]byte) [][]byte { return nil }

// GetKeyIdsFromPacket is nil: a provider's wrapped keys are opaque.
func (w *providerWrapper) GetKeyIdsFromPacket(string) ([]uint64, error) { return nil, nil }

// GetRecipients is nil: a provider's wrapped keys are opaque.
func (w *providerWrapper) GetRecipients(string) ([]string, error) { return nil, nil }

func (w *providerWrapper) errorf(op keyprovider.KeyProviderKeyWrapProtocolOperation, unavailable bool, format string, args ...any) error {
	return &ProviderError{Name: w.name, Op: string(op), Unavailable: unavailable, Err: fmt.Errorf(format, args...)}
}

// call sends one request and decodes the answer, within w.timeout.
func (w *providerWrapper) call(in keyprovider.KeyProviderKeyWrapProtocolInput) (*keyprovider.KeyProviderKeyWrapProtocolOutput, error) {
	if w.cfgErr != nil {
		return nil, w.errorf(in.Operation, true, "%w", w.cfgErr)
	}
	req, err := json.Marshal(in)
	if err != nil {
		return nil, w.errorf(in.Operation, false, "encoding request: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	var answer []byte
	if w.attrs.Command != nil {
		answer, err = w.runCommand(ctx, in.Operation, req)
	} else {
		answer, err = w.callGRPC(ctx, in.Operation, req)
	}
	if err != nil {
		return nil, err
	}
	var out keyprovider.KeyProviderKeyWrapProtocolOutput
	if err := json.Unmarshal(answer, &out); err != nil {
		// The answer may hold key material: never quote it.
		return nil, w.errorf(in.Operation, true, "malformed answer (%d bytes, not key provider protocol JSON)", len(answer))
	}
	return &out, nil
}

func (w *providerWrapper) runCommand(ctx context.Context, op keyprovider.KeyProviderKeyWrapProtocolOperation, req []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, w.attrs.Command.Path, w.attrs.Command.Args...)
	cmd.Stdin = bytes.NewReader(req)
	var stdout, stderr capBuffer
	stdout.limit, stderr.limit = maxProviderAnswer, 64<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A provider's children may hold its pipes open after it is killed.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return nil, w.errorf(op, true, "command %s: no answer within %v", w.attrs.Command.Path, w.timeout)
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission):
		return nil, w.errorf(op, true, "cannot run command: %w", err)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Exited() {
			return nil, w.errorf(op, false, "command %s failed (exit %d)%s", w.attrs.Command.Path, ee.ExitCode(), lastLine(stderr.Bytes()))
		}
		return nil, w.errorf(op, true, "command %s: %w", w.attrs.Command.Path, err)
	case stdout.overflow:
		return nil, w.errorf(op, true, "command %s: answer longer than %d bytes", w.attrs.Command.Path, maxProviderAnswer)
	}
	return stdout.Bytes(), nil
}

func (w *providerWrapper) callGRPC(ctx context.Context, op keyprovider.KeyProviderKeyWrapProtocolOperation, req []byte) ([]byte, error) {
	creds := insecure.NewCredentials()
	if w.attrs.GrpcTLS != nil {
		tc, err := grpcTLSConfig(w.attrs.GrpcTLS)
		if err != nil {
			return nil, w.errorf(op, true, "grpc %s: %w", w.attrs.Grpc, err)
		}
		creds = credentials.NewTLS(tc)
	}
	cc, err := grpc.NewClient(w.attrs.Grpc, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, w.errorf(op, true, "grpc %s: %w", w.attrs.Grpc, err)
	}
	defer cc.Close()
	client := kppb.NewKeyProviderServiceClient(cc)
	msg := &kppb.KeyProviderKeyWrapProtocolInput{KeyProviderKeyWrapProtocolInput: req}
	var out *kppb.KeyProviderKeyWrapProtocolOutput
	if op == keyprovider.OpKeyWrap {
		out, err = client.WrapKey(ctx, msg)
	} else {
		out, err = client.UnWrapKey(ctx, msg)
	}
	if err != nil {
		st := status.Convert(err)
		switch st.Code() {
		case codes.DeadlineExceeded:
			return nil, w.errorf(op, true, "grpc %s: no answer within %v", w.attrs.Grpc, w.timeout)
		case codes.Unavailable:
			return nil, w.errorf(op, true, "grpc %s: unavailable: %s", w.attrs.Grpc, lastPart(st.Message()))
		case codes.Unimplemented, codes.ResourceExhausted:
			return nil, w.errorf(op, true, "grpc %s: %s: %s", w.attrs.Grpc, st.Code(), oneLine(st.Message()))
		default:
			return nil, w.errorf(op, false, "grpc %s: provider error: %s", w.attrs.Grpc, oneLine(st.Message()))
		}
	}
	return out.GetKeyProviderKeyWrapProtocolOutput(), nil
}

// grpcTLSConfig builds the client TLS config as ocicrypt does.
func grpcTLSConfig(t *kpconfig.GrpcTLS) (*tls.Config, error) {
	var roots *x509.CertPool
	if t.RootCAFile != "" {
		pem, err := os.ReadFile(t.RootCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading root CA file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate in root CA file %s", t.RootCAFile)
		}
	} else {
		var err error
		if roots, err = x509.SystemCertPool(); err != nil {
			return nil, fmt.Errorf("reading system root CAs: %w", err)
		}
	}
	tc := &tls.Config{
		RootCAs:            roots,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// capBuffer keeps the first limit bytes written and notes any overflow.
type capBuffer struct {
	bytes.Buffer
	limit    int
	overflow bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); len(p) > room {
		b.overflow = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// lastLine returns ": " and the last non-empty line of a provider's stderr,
// made printable and short, or "" if there is none.
func lastLine(stderr []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	if l := oneLine(lines[len(lines)-1]); l != "" {
		return ": " + l
	}
	return ""
}

// lastPart keeps the innermost cause of a gRPC transport message, e.g.
// "connection refused" from `connection error: desc = "transport: Error
// while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`.
func lastPart(msg string) string {
	msg = strings.Trim(strings.TrimSpace(msg), `"`)
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		msg = msg[i+2:]
	}
	return oneLine(strings.Trim(msg, `"`))
}

// oneLine makes s printable on one line and at most 200 bytes long.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}
