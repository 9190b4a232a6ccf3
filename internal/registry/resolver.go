package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

// Options say how to reach registries, with the names nerdctl and skopeo
// users know.
type Options struct {
	PlainHTTP bool   // talk HTTP, not HTTPS
	Insecure  bool   // accept any TLS certificate
	CAFile    string // trust this CA besides the system's
	CertFile  string // client certificate, for mutual TLS
	KeyFile   string // its key
	HostsDir  string // containerd's hosts.toml directory layout
	// Username and Password override the stored credentials.
	Username, Password string
}

// ErrCertKeyPair means only one of a client certificate and its key was given.
var ErrCertKeyPair = errors.New("--cert-file and --key-file go together")

// Validate checks the options that only make sense together.
func (o Options) Validate() error {
	if (o.CertFile == "") != (o.KeyFile == "") {
		return ErrCertKeyPair
	}
	return nil
}

// Resolver builds containerd's docker resolver for these options.
func (o Options) Resolver(ctx context.Context) (remotes.Resolver, error) {
	tlsConfig, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	creds, err := o.credentials()
	if err != nil {
		return nil, err
	}
	hostOpts := config.HostOptions{
		DefaultTLS:  tlsConfig,
		Credentials: creds,
	}
	// containerd would try plain HTTP and skip TLS verification for
	// localhost on its own; a scheme stated here keeps verification on
	// everywhere unless the user asks otherwise.
	hostOpts.DefaultScheme = "https"
	if o.PlainHTTP {
		hostOpts.DefaultScheme = "http"
	}
	if o.HostsDir != "" {
		hostOpts.HostDir = config.HostDirFromRoot(o.HostsDir)
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: config.ConfigureHosts(ctx, hostOpts)}), nil
}

func (o Options) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure} //nolint:gosec // only with --insecure
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading --ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// credentials answers containerd's per-host credential question from the
// options or from the docker configuration ($DOCKER_CONFIG, credential
// helpers), as every container tool does.
func (o Options) credentials() (func(string) (string, string, error), error) {
	if o.Username != "" {
		user, pass := o.Username, o.Password
		return func(string) (string, string, error) { return user, pass, nil }, nil
	}
	store, err := CredentialStore()
	if err != nil {
		return nil, err
	}
	return func(host string) (string, string, error) {
		if host == "registry-1.docker.io" {
			host = "docker.io"
		}
		cred, err := store.Get(context.Background(), credentials.ServerAddressFromHostname(host))
		if err != nil {
			return "", "", fmt.Errorf("reading credentials for %s: %w", host, err)
		}
		if cred.RefreshToken != "" {
			return "", cred.RefreshToken, nil
		}
		return cred.Username, cred.Password, nil
	}, nil
}

// CredentialStore is the docker configuration's credential store.
func CredentialStore() (credentials.Store, error) {
	store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{
		AllowPlaintextPut:        true,
		DetectDefaultNativeStore: true,
	})
	if err != nil {
		return nil, fmt.Errorf("reading the docker configuration: %w", err)
	}
	return store, nil
}

// HTTPClient is an HTTP client with the options' TLS settings.
func (o Options) HTTPClient() (*http.Client, error) {
	cfg, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}, nil
}
