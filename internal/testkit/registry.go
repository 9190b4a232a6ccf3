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

	// With -tls: the CA's certificate (in $WORK), the server's certificate
	// and key (in dir), and the pool holding the CA, for the readiness
	// check.
	caFile, certFile, keyFile string
	caPool                    *x509.CertPool
	// With -mtls: the client certificate and key (in $WORK) the registry
	// asks for, and the same pair for the readiness check.
	clientCertFile, clientKeyFile string
	clientCert                    tls.Certificate
	// With -auth: the htpasswd file (in dir).
	htpasswd string
}

// registry start [-name N] [-tls|-mtls] [-auth USER:PASSWORD] starts a
// private registry on 127.0.0.1, sets $REGISTRY to its host:port and
// $REGISTRY_STORAGE to its storage directory (where uploads in progress
// show); registry stop [-name N] stops it (it is stopped at the end of the
// script anyway).
//
// It talks plain HTTP unless -tls is given: then it serves HTTPS with a
// certificate for 127.0.0.1 signed by a CA made for this registry alone,
// whose certificate is written to $WORK/registry-ca.pem (registry-N-ca.pem
// for a registry named N) and named by $REGISTRY_CA. -mtls is -tls with
// mutual TLS: the registry asks for a client certificate from that CA, and
// one is written to $WORK/registry-client.pem, its key to
// registry-client-key.pem (registry-N-client...), named by
// $REGISTRY_CLIENT_CERT and $REGISTRY_CLIENT_KEY. With -auth the registry
// asks for that user name and password (htpasswd basic authentication).
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	const usage = "usage: registry start [-name N] [-tls|-mtls] [-auth USER:PASSWORD] | registry stop [-name N]"
	if neg {
		ts.Fatalf("unsupported: ! registry")
	}
	if len(args) == 0 {
		ts.Fatalf("%s", usage)
	}
	fs := flag.NewFlagSet("registry "+args[0], flag.ContinueOnError)
	name := fs.String("name", "default", "name of the registry in this script")
	useTLS := fs.Bool("tls", false, "serve HTTPS with a certificate from a private CA")
	mutualTLS := fs.Bool("mtls", false, "like -tls, and ask clients for a certificate from that CA")
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
		startRegistry(ts, *name, *useTLS, *mutualTLS, user, pass)
	case "stop":
		if *useTLS || *mutualTLS || *userPass != "" {
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

func startRegistry(ts *testscript.TestScript, name string, useTLS, mutualTLS bool, user, pass string) {
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
	if useTLS || mutualTLS {
		prefix := "registry"
		if name != "default" {
			prefix = "registry-" + name
		}
		ts.Check(r.makeCertificates(ts.MkAbs(prefix), mutualTLS))
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
	ts.Setenv("REGISTRY_STORAGE", filepath.Join(dir, "storage"))
	if r.caFile != "" {
		ts.Setenv("REGISTRY_CA", r.caFile)
	}
	if r.clientCertFile != "" {
		ts.Setenv("REGISTRY_CLIENT_CERT", r.clientCertFile)
		ts.Setenv("REGISTRY_CLIENT_KEY", r.clientKeyFile)
	}
}

func (r *ociRegistry) scheme() string {
	if r.certFile != "" {
		return "https"
	}
	return "http"
}

// makeCertificates makes a CA, written to prefix-ca.pem, and a server
// certificate for 127.0.0.1 that it signs, kept with its key in r.dir.
// With clientAuth it also makes a client certificate from the same CA,
// written with its key to prefix-client.pem and prefix-client-key.pem, and
// the registry will ask for it.
func (r *ociRegistry) makeCertificates(prefix string, clientAuth bool) error {
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
	// issue signs a leaf certificate for tmpl and returns it and its key
	// in DER.
	issue := func(serial int64, tmpl *x509.Certificate) (cert, key []byte, err error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if cert, err = x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey); err != nil {
			return nil, nil, err
		}
		key, err = x509.MarshalPKCS8PrivateKey(k)
		return cert, key, err
	}
	writePEM := func(path, typ string, der []byte, mode os.FileMode) error {
		return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
	}

	srvDER, srvKeyDER, err := issue(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	})
	if err != nil {
		return err
	}
	r.caFile = prefix + "-ca.pem"
	r.certFile = filepath.Join(r.dir, "server.pem")
	r.keyFile = filepath.Join(r.dir, "server-key.pem")
	if err := writePEM(r.caFile, "CERTIFICATE", caDER, 0o644); err != nil {
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

	if clientAuth {
		cliDER, cliKeyDER, err := issue(3, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "imgcrypt test client"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return err
		}
		r.clientCertFile = prefix + "-client.pem"
		r.clientKeyFile = prefix + "-client-key.pem"
		if err := writePEM(r.clientCertFile, "CERTIFICATE", cliDER, 0o644); err != nil {
			return err
		}
		if err := writePEM(r.clientKeyFile, "PRIVATE KEY", cliKeyDER, 0o600); err != nil {
			return err
		}
		r.clientCert, err = tls.X509KeyPair(
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cliDER}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: cliKeyDER}))
		if err != nil {
			return err
		}
	}
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
		if r.clientCertFile != "" {
			config += fmt.Sprintf("    clientcas:\n      - %s\n", r.caFile)
		}
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
		if r.clientCertFile != "" {
			tr.TLSClientConfig.Certificates = []tls.Certificate{r.clientCert}
		}
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
