package testkit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/bcrypt"
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

	// With -tls: the server's certificate and key (in dir), and the pool
	// holding the CA that signed them, for the readiness check.
	certFile, keyFile string
	caPool            *x509.CertPool
	// With -auth: the htpasswd file (in dir).
	htpasswd string
}

// registry start [-name N] [-tls] [-auth USER:PASSWORD] starts a private
// registry on 127.0.0.1 and sets $REGISTRY to its host:port; registry stop
// [-name N] stops it (it is stopped at the end of the script anyway).
//
// It talks plain HTTP unless -tls is given: then it serves HTTPS with a
// certificate for 127.0.0.1 signed by a CA made for this registry alone,
// whose certificate is written to $WORK/registry-ca.pem (registry-N-ca.pem
// for a registry named N) and named by $REGISTRY_CA. With -auth it asks for
// that user name and password (htpasswd basic authentication; pair it with
// -tls unless the test is about plain HTTP).
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	const usage = "usage: registry start [-name N] [-tls] [-auth USER:PASSWORD] | registry stop [-name N]"
	if neg {
		ts.Fatalf("unsupported: ! registry")
	}
	if len(args) == 0 {
		ts.Fatalf("%s", usage)
	}
	fs := flag.NewFlagSet("registry "+args[0], flag.ContinueOnError)
	name := fs.String("name", "default", "name of the registry in this script")
	useTLS := fs.Bool("tls", false, "serve HTTPS with a certificate from a private CA")
	userPass := fs.String("auth", "", "USER:PASSWORD the registry asks for")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		ts.Fatalf("%s", usage)
	}
	switch args[0] {
	case "start":
		var user, pass string
		if *userPass != "" {
			var ok bool
			user, pass, ok = strings.Cut(*userPass, ":")
			if !ok || user == "" || pass == "" {
				ts.Fatalf("registry start: -auth wants USER:PASSWORD")
			}
		}
		startRegistry(ts, *name, *useTLS, user, pass)
	case "stop":
		if *useTLS || *userPass != "" {
			ts.Fatalf("%s", usage)
		}
		r, _ := takeService(ts, "registry", *name).(*ociRegistry)
		if r == nil {
			ts.Fatalf("registry %s is not running", *name)
		}
		r.stop()
	default:
		ts.Fatalf("%s", usage)
	}
}

func startRegistry(ts *testscript.TestScript, name string, useTLS bool, user, pass string) {
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
	var caPath string
	if useTLS {
		caPath = "registry-ca.pem"
		if name != "default" {
			caPath = "registry-" + name + "-ca.pem"
		}
		caPath = ts.MkAbs(caPath)
		ts.Check(r.makeCertificates(caPath))
	}
	if user != "" {
		ts.Check(r.writeHtpasswd(user, pass))
	}
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
	ts.Logf("registry %s: %s://%s, storage %s, log %s", name, r.scheme(), r.host, dir, r.proc.logPath)
	ts.Setenv("REGISTRY", r.host)
	if useTLS {
		ts.Setenv("REGISTRY_CA", caPath)
	}
}

func (r *ociRegistry) scheme() string {
	if r.certFile != "" {
		return "https"
	}
	return "http"
}

// makeCertificates makes a CA (its certificate written to caPath) and a
// server certificate for 127.0.0.1 that it signs, with the server's key
// and certificate in r.dir.
func (r *ociRegistry) makeCertificates(caPath string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imgcrypt test registry CA " + r.name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	srvKeyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return err
	}
	writePEM := func(path, typ string, der []byte, mode os.FileMode) error {
		return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
	}
	r.certFile = filepath.Join(r.dir, "server.pem")
	r.keyFile = filepath.Join(r.dir, "server-key.pem")
	if err := writePEM(caPath, "CERTIFICATE", caDER, 0o644); err != nil {
		return err
	}
	if err := writePEM(r.certFile, "CERTIFICATE", srvDER, 0o644); err != nil {
		return err
	}
	if err := writePEM(r.keyFile, "PRIVATE KEY", srvKeyDER, 0o600); err != nil {
		return err
	}
	r.caPool = x509.NewCertPool()
	r.caPool.AddCert(caCert)
	return nil
}

// writeHtpasswd writes the htpasswd file with user's bcrypt hash, the
// only kind docker-registry accepts.
func (r *ociRegistry) writeHtpasswd(user, pass string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		return err
	}
	r.htpasswd = filepath.Join(r.dir, "htpasswd")
	return os.WriteFile(r.htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600)
}

// start writes the configuration for a fresh port, starts the registry and
// waits until GET /v2/ answers 200 (401 when it asks for a password).
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
	if r.certFile != "" {
		config += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", r.certFile, r.keyFile)
	}
	if r.htpasswd != "" {
		config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: imgcrypt-test\n    path: %s\n", r.htpasswd)
	}
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
	url := r.scheme() + "://" + r.host + "/v2/"
	tr := &http.Transport{Proxy: nil}
	if r.caPool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: r.caPool, MinVersion: tls.VersionTLS12}
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: tr}
	defer tr.CloseIdleConnections()
	err = r.proc.waitReady("registry "+r.name, func() error {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && (r.htpasswd == "" || resp.StatusCode != http.StatusUnauthorized) {
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
