//go:build !cfs_lean

package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/trace"
)

// RegistryOptions says how to reach registries. The zero value verifies
// TLS with the system roots and reads credentials from no file.
type RegistryOptions struct {
	// AuthFile holds credentials in the containers-auth.json format
	// (`{"auths": {"host:port": {"auth": base64("user:pass")}}}`); the
	// user's Docker and containers files are read after it.
	AuthFile string
	// TLSVerify false skips certificate verification and allows plain
	// HTTP, for every registry.
	TLSVerify *bool
	// InsecureRegistries lists hosts ("host" or "host:port") treated as
	// if TLSVerify were false. Loopback registries may always fall back
	// to plain HTTP, as Docker allows.
	InsecureRegistries []string
	// CertDirs are searched for <dir>/<host:port>/*.crt: extra CA
	// certificates trusted for that registry (containers-certs.d layout).
	CertDirs []string
	// CertDir holds *.crt CA certificates trusted for every registry.
	CertDir string
	// Jobs bounds parallel layer transfers; 0 means 3.
	Jobs int
	// Retries is how many times a failed layer transfer is retried; 0
	// means 3, a negative value none.
	Retries int
	// Progress, when set, receives transfer events from any goroutine.
	Progress func(ProgressEvent)
	Tracer   *trace.Tracer
	Context  context.Context
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// ProgressEvent reports on one blob of a pull or push.
type ProgressEvent struct {
	ID      string // 12 hex digits of the blob's digest
	Status  ProgressStatus
	Current int64 // bytes transferred so far
	Total   int64 // blob size, 0 when unknown
	Err     error // with Retrying: the failure
}

// ProgressStatus is the state of one blob.
type ProgressStatus string

const (
	StatusWaiting       ProgressStatus = "Waiting"
	StatusExists        ProgressStatus = "Already exists"
	StatusDownloading   ProgressStatus = "Downloading"
	StatusVerifying     ProgressStatus = "Verifying"
	StatusPullComplete  ProgressStatus = "Pull complete"
	StatusRetrying      ProgressStatus = "Retrying"
	StatusPushing       ProgressStatus = "Pushing"
	StatusPushed        ProgressStatus = "Pushed"
	StatusLayerExists   ProgressStatus = "Layer already exists"
	StatusFailed        ProgressStatus = "Failed"
	StatusBlobOnly      ProgressStatus = "Downloading blob"
	defaultJobs                        = 3
	defaultRetries                     = 3
	defaultRetryBackoff                = 500 * time.Millisecond
)

// DefaultCertDirs are searched for per-registry CA certificates after the
// store's own certs.d.
var DefaultCertDirs = []string{"/etc/containers/certs.d", "/etc/docker/certs.d"}

// RegistriesConfig is <root>/registries.json.
type RegistriesConfig struct {
	InsecureRegistries []string `json:"insecure-registries"`
}

// ReadRegistriesConfig reads <root>/registries.json, which may be absent.
func ReadRegistriesConfig(root string) (*RegistriesConfig, error) {
	p := filepath.Join(root, "registries.json")
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &RegistriesConfig{}, nil
	}
	if err != nil {
		return nil, err
	}
	var c RegistriesConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, errdefs.Invalidf("parsing %s: %v", p, err)
	}
	return &c, nil
}

func (o *RegistryOptions) ctx() context.Context {
	if o.Context != nil {
		return o.Context
	}
	return context.Background()
}

func (o *RegistryOptions) jobs() int {
	if o.Jobs > 0 {
		return o.Jobs
	}
	return defaultJobs
}

func (o *RegistryOptions) retries() int {
	switch {
	case o.Retries < 0:
		return 0
	case o.Retries == 0:
		return defaultRetries
	}
	return o.Retries
}

func (o *RegistryOptions) progress(ev ProgressEvent) {
	if o.Progress != nil {
		o.Progress(ev)
	}
}

// insecure reports whether host may be reached without TLS verification.
func (o *RegistryOptions) insecure(host string) bool {
	if o.TLSVerify != nil && !*o.TLSVerify {
		return true
	}
	h := strings.ToLower(host)
	for _, r := range o.InsecureRegistries {
		r = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(r, "https://"), "http://"), "/"))
		if r == h {
			return true
		}
		// "host" covers every port of host.
		if hh, _, err := net.SplitHostPort(h); err == nil && hh == r {
			return true
		}
	}
	return false
}

// parseReference parses a registry reference ("name[:tag|@digest]",
// Docker Hub by default) with the registry's insecurity applied.
func (o *RegistryOptions) parseReference(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, errdefs.Invalidf("image reference %q: %v", ref, err)
	}
	if o.insecure(r.Context().RegistryStr()) {
		if r, err = name.ParseReference(ref, name.Insecure); err != nil {
			return nil, errdefs.Invalidf("image reference %q: %v", ref, err)
		}
	}
	return r, nil
}

// transport returns the HTTP transport for host: system roots plus the
// host's certs.d CAs, verification off when the host is insecure.
func (o *RegistryOptions) transport(host string) (http.RoundTripper, error) {
	if o.Transport != nil {
		return o.Transport, nil
	}
	base := remote.DefaultTransport.(*http.Transport).Clone()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.insecure(host) {
		cfg.InsecureSkipVerify = true
	} else {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		var files []string
		for _, dir := range o.CertDirs {
			f, _ := filepath.Glob(filepath.Join(dir, host, "*.crt"))
			files = append(files, f...)
		}
		if o.CertDir != "" {
			f, _ := filepath.Glob(filepath.Join(o.CertDir, "*.crt"))
			files = append(files, f...)
		}
		for _, f := range files {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("reading CA certificate %s: %w", f, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, errdefs.Invalidf("CA certificate %s: no PEM certificate in it", f)
			}
			o.Tracer.Step("registry", "trusting CA %s for %s", f, host)
		}
		if len(files) > 0 {
			cfg.RootCAs = pool
		}
	}
	base.TLSClientConfig = cfg
	return base, nil
}

// remoteOptions are the go-containerregistry options for a registry.
func (o *RegistryOptions) remoteOptions(host string) ([]remote.Option, error) {
	t, err := o.transport(host)
	if err != nil {
		return nil, err
	}
	return []remote.Option{
		remote.WithContext(o.ctx()),
		remote.WithTransport(t),
		remote.WithAuthFromKeychain(o.keychain()),
		remote.WithJobs(o.jobs()),
		remote.WithUserAgent("cfs"),
		remote.WithRetryBackoff(remote.Backoff{Duration: defaultRetryBackoff, Factor: 2, Jitter: 0.1, Steps: 3}),
	}, nil
}

func (o *RegistryOptions) keychain() authn.Keychain {
	if o.AuthFile == "" {
		return authn.DefaultKeychain
	}
	return authn.NewMultiKeychain(authFileKeychain{o.AuthFile}, authn.DefaultKeychain)
}

// defaultPlatform is the platform pulled when none is asked for.
func defaultPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// ParsePlatform parses "os/arch[/variant]" or "arch" (linux implied).
func ParsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return defaultPlatform(), nil
	}
	if !strings.Contains(s, "/") {
		s = "linux/" + s
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, errdefs.Invalidf("platform %q: want os/arch[/variant], like linux/amd64", s)
	}
	return *p, nil
}

// Login checks user and password against the registry (the OCI
// distribution handshake: basic or bearer-token auth) and stores them in
// o.AuthFile. It returns the normalized registry host.
func Login(registry, user, password string, o RegistryOptions) (string, error) {
	if o.AuthFile == "" {
		return "", errdefs.Invalidf("login: no auth file to store credentials in")
	}
	host, err := normalizeRegistryHost(registry)
	if err != nil {
		return "", err
	}
	if user == "" || password == "" {
		return "", errdefs.Invalidf("login %s: username and password are required", host)
	}
	opts := []name.Option{}
	if o.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return "", errdefs.Invalidf("registry %q: %v", registry, err)
	}
	t, err := o.transport(reg.RegistryStr())
	if err != nil {
		return "", err
	}
	ctx := o.ctx()
	ping, err := transport.Ping(ctx, reg, t)
	if err != nil {
		return "", fmt.Errorf("login %s: %w", host, err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	rt, err := transport.NewWithContext(ctx, reg, auth, t, nil)
	if err != nil {
		return "", fmt.Errorf("login %s: %w", host, classifyRegistryErr(err))
	}
	scheme := "https"
	if ping.Insecure {
		scheme = "http"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return "", fmt.Errorf("login %s: %w", host, classifyRegistryErr(err))
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", errdefs.Invalidf("login %s: invalid username or password (%s)", host, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login %s: registry answered %s", host, resp.Status)
	}
	if err := SetAuth(o.AuthFile, host, user, password); err != nil {
		return "", err
	}
	return host, nil
}

// classifyRegistryErr maps authentication failures to ErrInvalid so the
// CLI reports them as the user's error, not a crash.
func classifyRegistryErr(err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return categorized{errdefs.ErrInvalid, err}
		case http.StatusNotFound:
			return categorized{errdefs.ErrNotFound, err}
		}
	}
	return err
}

// categorized puts err in an errdefs category without changing its text.
type categorized struct{ cat, err error }

func (c categorized) Error() string   { return c.err.Error() }
func (c categorized) Unwrap() []error { return []error{c.cat, c.err} }
