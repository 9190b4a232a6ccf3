package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	kp "github.com/containers/ocicrypt/keywrap/keyprovider"
	kppb "github.com/containers/ocicrypt/utils/keyprovider"
	"github.com/rogpeppe/go-internal/testscript"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/imgcrypt/imgcrypt/internal/testkit/keyprovider"
)

// SlowProviderDelay is how long a GRPCProvider in "slow" mode takes to
// answer, unless the caller gives up first: far beyond any timeout a test
// sets, yet short enough that an unbounded client fails a test rather
// than hanging it.
const SlowProviderDelay = 60 * time.Second

// Modes of GRPCProvider.
const (
	ProviderOK      = "ok"      // wrap and unwrap with AES-GCM
	ProviderSlow    = "slow"    // answer after SlowProviderDelay or when the caller gives up
	ProviderGarbage = "garbage" // answer junk bytes instead of protocol JSON
)

// GRPCProvider is a test key provider speaking ocicrypt's gRPC key provider
// protocol (utils/keyprovider's KeyProviderService) on 127.0.0.1. It wraps
// layer keys like the "cmd" test provider (testkit/keyprovider), under the
// key in KeyFile, read afresh on each call. It logs one line per call:
// the operation, the names (never the values) of the parameters it was
// sent, the deadline the caller set, and the result.
type GRPCProvider struct {
	Addr    string // 127.0.0.1:PORT
	KeyFile string
	Mode    string

	kppb.UnimplementedKeyProviderServiceServer
	srv      *grpc.Server
	stopOnce sync.Once
	quit     chan struct{}
	mu       sync.Mutex
	log      io.Writer
	calls    []ProviderCall
}

// ProviderCall is what a GRPCProvider saw of one call.
type ProviderCall struct {
	Op string // "keywrap" or "keyunwrap"
	// Parameter names in the request: ec.Parameters, ec.DecryptConfig's
	// and dc.Parameters.
	EcParams, EcDecryptParams, DcParams []string
	Deadline                            time.Duration // as the call arrived, rounded up; 0 if none
	Result                              string        // "ok", "garbage", "error: ...", "gave up: ..."
}

func (c ProviderCall) String() string {
	dl := "none"
	if c.Deadline > 0 {
		dl = c.Deadline.String()
	}
	return fmt.Sprintf("%s ec=[%s] ec.dc=[%s] dc=[%s] deadline=%s result=%s", c.Op,
		strings.Join(c.EcParams, ","), strings.Join(c.EcDecryptParams, ","), strings.Join(c.DcParams, ","), dl, c.Result)
}

// StartGRPCProvider serves on a free port of 127.0.0.1 until Stop. Calls
// are logged to log if it is not nil.
func StartGRPCProvider(keyFile, mode string, log io.Writer) (*GRPCProvider, error) {
	switch mode {
	case ProviderOK, ProviderSlow, ProviderGarbage:
	default:
		return nil, fmt.Errorf("unknown key provider mode %q (want ok, slow or garbage)", mode)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &GRPCProvider{Addr: l.Addr().String(), KeyFile: keyFile, Mode: mode, quit: make(chan struct{}), log: log}
	p.srv = grpc.NewServer(grpc.WaitForHandlers(true))
	kppb.RegisterKeyProviderServiceServer(p.srv, p)
	go func() { _ = p.srv.Serve(l) }() // returns when Stop closes the listener
	return p, nil
}

// Stop closes the server and waits for its handlers; it may be called
// more than once.
func (p *GRPCProvider) Stop() {
	p.stopOnce.Do(func() {
		close(p.quit)
		p.srv.Stop() // with WaitForHandlers: every call is logged when it returns
	})
}

// Calls returns what the provider saw so far.
func (p *GRPCProvider) Calls() []ProviderCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProviderCall(nil), p.calls...)
}

// WrapKey implements the KeyProviderService.
func (p *GRPCProvider) WrapKey(ctx context.Context, in *kppb.KeyProviderKeyWrapProtocolInput) (*kppb.KeyProviderKeyWrapProtocolOutput, error) {
	return p.serve(ctx, kp.OpKeyWrap, in)
}

// UnWrapKey implements the KeyProviderService.
func (p *GRPCProvider) UnWrapKey(ctx context.Context, in *kppb.KeyProviderKeyWrapProtocolInput) (*kppb.KeyProviderKeyWrapProtocolOutput, error) {
	return p.serve(ctx, kp.OpKeyUnwrap, in)
}

func (p *GRPCProvider) serve(ctx context.Context, method kp.KeyProviderKeyWrapProtocolOperation, in *kppb.KeyProviderKeyWrapProtocolInput) (*kppb.KeyProviderKeyWrapProtocolOutput, error) {
	call := ProviderCall{Op: string(method)}
	if dl, ok := ctx.Deadline(); ok {
		call.Deadline = roundUpDeadline(time.Until(dl))
	}
	out, err := p.answer(ctx, method, in.GetKeyProviderKeyWrapProtocolInput(), &call)
	switch {
	case err != nil && call.Result == "":
		call.Result = "error: " + err.Error()
	case call.Result == "":
		call.Result = "ok"
	}
	p.record(call)
	if err != nil {
		return nil, err
	}
	return &kppb.KeyProviderKeyWrapProtocolOutput{KeyProviderKeyWrapProtocolOutput: out}, nil
}

func (p *GRPCProvider) answer(ctx context.Context, method kp.KeyProviderKeyWrapProtocolOperation, raw []byte, call *ProviderCall) ([]byte, error) {
	var req kp.KeyProviderKeyWrapProtocolInput
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "request is not protocol JSON")
	}
	if req.Operation != method {
		return nil, status.Errorf(codes.InvalidArgument, "op %q sent to the %s method", req.Operation, method)
	}
	if ec := req.KeyWrapParams.Ec; ec != nil {
		call.EcParams = paramNames(ec.Parameters)
		call.EcDecryptParams = paramNames(ec.DecryptConfig.Parameters)
	}
	if dc := req.KeyUnwrapParams.Dc; dc != nil {
		call.DcParams = paramNames(dc.Parameters)
	}
	switch p.Mode {
	case ProviderSlow:
		select {
		case <-time.After(SlowProviderDelay):
		case <-ctx.Done():
			call.Result = "gave up: " + ctx.Err().Error()
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-p.quit:
			call.Result = "gave up: provider stopped"
			return nil, status.Error(codes.Unavailable, "provider stopped")
		}
	case ProviderGarbage:
		junk := make([]byte, 48)
		rand.Read(junk)
		junk[0] = 0xff // never valid JSON
		call.Result = "garbage"
		return junk, nil
	}
	key, err := keyprovider.LoadKey(p.KeyFile)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	var resp kp.KeyProviderKeyWrapProtocolOutput
	if method == kp.OpKeyWrap {
		resp.KeyWrapResults.Annotation, err = keyprovider.Wrap(key, req.KeyWrapParams.OptsData)
	} else {
		resp.KeyUnwrapResults.OptsData, err = keyprovider.Unwrap(key, req.KeyUnwrapParams.Annotation)
	}
	if err != nil {
		// gRPC's default code (Unknown): the provider answered and refused.
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return json.Marshal(resp)
}

func (p *GRPCProvider) record(c ProviderCall) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, c)
	if p.log != nil {
		fmt.Fprintln(p.log, c.String())
	}
}

// roundUpDeadline rounds what is left of a caller's deadline up to whole
// seconds (to 100ms below one second), so that the timeout the caller set
// shows however long the call took to arrive.
func roundUpDeadline(d time.Duration) time.Duration {
	unit := time.Second
	if d < time.Second {
		unit = 100 * time.Millisecond
	}
	return max((d+unit-1)/unit*unit, unit)
}

func paramNames(m map[string][][]byte) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// keyprovider start [-name N] [-key FILE] [-mode ok|slow|garbage] [-timeout D]
// starts a GRPCProvider named N (default gkp) and writes $WORK/kp-N.json,
// an ocicrypt key provider config naming it (with "timeout": D if given),
// whose path it puts in $KEYPROVIDER_CONFIG_N; $KEYPROVIDER_ADDR_N is its
// address. Its key file is FILE, else $WORK/kp-N.key (made with a random
// key if missing, so a restarted provider keeps its key). Calls are
// logged to $WORK/kp-N.log. keyprovider stop [-name N] stops it (the
// address then refuses connections); the script's end stops it too.
func cmdKeyProvider(ts *testscript.TestScript, neg bool, args []string) {
	const usage = "usage: keyprovider start [-name N] [-key FILE] [-mode ok|slow|garbage] [-timeout D] | keyprovider stop [-name N]"
	if neg || len(args) == 0 {
		ts.Fatalf("%s", usage)
	}
	fs := flag.NewFlagSet("keyprovider "+args[0], flag.ContinueOnError)
	name := fs.String("name", "gkp", "provider name")
	keyFile := fs.String("key", "", "file of 64 hex digits")
	mode := fs.String("mode", ProviderOK, "ok, slow or garbage")
	timeout := fs.String("timeout", "", "\"timeout\" for the config entry")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		ts.Fatalf("%s", usage)
	}
	if strings.Trim(*name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
		ts.Fatalf("keyprovider: name %q: want letters, digits and _", *name)
	}
	switch args[0] {
	case "start":
		startGRPCProvider(ts, *name, *keyFile, *mode, *timeout)
	case "stop":
		p, _ := takeService(ts, "keyprovider", *name).(*GRPCProvider)
		if p == nil {
			ts.Fatalf("keyprovider %s is not running", *name)
		}
		p.Stop()
	default:
		ts.Fatalf("%s", usage)
	}
}

func startGRPCProvider(ts *testscript.TestScript, name, keyFile, mode, timeout string) {
	if keyFile == "" {
		keyFile = ts.MkAbs("kp-" + name + ".key")
		if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
			key := make([]byte, 32)
			rand.Read(key)
			ts.Check(os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600))
		}
	} else {
		keyFile = ts.MkAbs(keyFile)
	}
	logFile, err := os.OpenFile(ts.MkAbs("kp-"+name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	ts.Check(err)
	p, err := StartGRPCProvider(keyFile, mode, logFile)
	if err != nil {
		logFile.Close()
		ts.Fatalf("keyprovider %s: %v", name, err)
	}
	if !putService(ts, "keyprovider", name, p) {
		p.Stop()
		logFile.Close()
		ts.Fatalf("keyprovider %s is already running", name)
	}
	ts.Defer(func() {
		if takeService(ts, "keyprovider", name) == p {
			p.Stop()
		}
		logFile.Close()
	})
	entry := map[string]any{"grpc": p.Addr}
	if timeout != "" {
		entry["timeout"] = timeout
	}
	cfg, err := json.Marshal(map[string]any{"key-providers": map[string]any{name: entry}})
	ts.Check(err)
	cfgPath := filepath.Join(ts.Getenv("WORK"), "kp-"+name+".json")
	ts.Check(os.WriteFile(cfgPath, append(cfg, '\n'), 0o644))
	ts.Setenv("KEYPROVIDER_CONFIG_"+name, cfgPath)
	ts.Setenv("KEYPROVIDER_ADDR_"+name, p.Addr)
	ts.Logf("keyprovider %s: grpc %s, mode %s, key %s, config %s", name, p.Addr, mode, keyFile, cfgPath)
}
