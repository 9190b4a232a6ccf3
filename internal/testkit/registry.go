package testkit

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// debianRegistry is the CNCF distribution registry from Debian's
// docker-registry package.
const debianRegistry = "/usr/bin/docker-registry"

// registryCondition answers [registry]: the registry binary is installed.
func registryCondition() bool { return isExecutable(debianRegistry) }

// ociRegistry is one private registry started by a script.
type ociRegistry struct {
	name string
	dir  string // config and storage
	host string // 127.0.0.1:PORT
	proc *process
}

// registry start [-name N] starts a private plain-HTTP registry on
// 127.0.0.1 and sets $REGISTRY to its host:port; registry stop [-name N]
// stops it (it is stopped at the end of the script anyway).
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	const usage = "usage: registry start|stop [-name N]"
	if neg {
		ts.Fatalf("unsupported: ! registry")
	}
	if len(args) == 0 {
		ts.Fatalf("%s", usage)
	}
	fs := flag.NewFlagSet("registry "+args[0], flag.ContinueOnError)
	name := fs.String("name", "default", "name of the registry in this script")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		ts.Fatalf("%s", usage)
	}
	switch args[0] {
	case "start":
		startRegistry(ts, *name)
	case "stop":
		r, _ := takeService(ts, "registry", *name).(*ociRegistry)
		if r == nil {
			ts.Fatalf("registry %s is not running", *name)
		}
		r.stop()
	default:
		ts.Fatalf("%s", usage)
	}
}

func startRegistry(ts *testscript.TestScript, name string) {
	dir, err := os.MkdirTemp("", "reg")
	ts.Check(err)
	r := &ociRegistry{name: name, dir: dir}
	if !putService(ts, "registry", name, r) {
		os.Remove(dir)
		ts.Fatalf("registry %s is already running", name)
	}
	ts.Defer(func() {
		if takeService(ts, "registry", name) == r {
			r.stop()
		}
	})
	// The free port is only free until someone else takes it: when the
	// registry loses that race, try again on another.
	for attempt := 1; ; attempt++ {
		err := r.start(ts.MkAbs("registry-" + name + ".log"))
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			ts.Fatalf("registry %s: %v", name, err)
		}
	}
	ts.Logf("registry %s: http://%s, storage %s, log %s", name, r.host, dir, r.proc.logPath)
	ts.Setenv("REGISTRY", r.host)
}

// start writes the configuration for a fresh port, starts the registry and
// waits until GET /v2/ answers 200.
func (r *ociRegistry) start(logPath string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.host = l.Addr().String()
	l.Close()
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
`, filepath.Join(r.dir, "storage"), r.host)
	configPath := filepath.Join(r.dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(debianRegistry, "serve", configPath)
	// A clean environment: the registry reads REGISTRY_* variables as
	// configuration overrides.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + r.dir, "TMPDIR=" + r.dir}
	cmd.Dir = r.dir
	if r.proc, err = startProcess(cmd, logPath); err != nil {
		return err
	}
	url := "http://" + r.host + "/v2/"
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	err = r.proc.waitReady("registry "+r.name, func() error {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
	if err != nil {
		r.proc.stop(5 * time.Second)
		r.proc = nil
	}
	return err
}

func (r *ociRegistry) stop() {
	if r.proc != nil {
		r.proc.stop(10 * time.Second)
	}
	os.RemoveAll(r.dir)
}
