//go:build !cfs_lean

package image

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// authFile is the containers-auth.json format (containers-auth.json(5)),
// which is also the "auths" part of Docker's config.json.
type authFile struct {
	Auths map[string]authEntry `json:"auths"`
	// Other keys (credHelpers, ...) are kept as they are.
	Rest map[string]json.RawMessage `json:"-"`
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// dockerHubKeys are the names Docker Hub credentials go by.
var dockerHubKeys = []string{"docker.io", "index.docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"}

func readAuthFile(path string) (*authFile, error) {
	af := &authFile{Auths: map[string]authEntry{}, Rest: map[string]json.RawMessage{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return af, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading auth file: %w", err)
	}
	if err := json.Unmarshal(data, &af.Rest); err != nil {
		return nil, errdefs.Invalidf("auth file %s: %v", path, err)
	}
	if raw, ok := af.Rest["auths"]; ok {
		if err := json.Unmarshal(raw, &af.Auths); err != nil {
			return nil, errdefs.Invalidf("auth file %s: auths: %v", path, err)
		}
		delete(af.Rest, "auths")
	}
	if af.Auths == nil {
		af.Auths = map[string]authEntry{}
	}
	return af, nil
}

func (af *authFile) write(path string) error {
	out := map[string]any{}
	for k, v := range af.Rest {
		out[k] = v
	}
	out["auths"] = af.Auths
	data, err := json.MarshalIndent(out, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing auth file: %w", err)
	}
	// Credentials: readable by the owner only, replaced atomically.
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-auth-")
	if err != nil {
		return fmt.Errorf("writing auth file: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing auth file %s: %w", path, err)
	}
	return nil
}

// normalizeRegistryHost turns "https://host:port/v2/" or "docker.io" into
// the key credentials are stored under.
func normalizeRegistryHost(s string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(s))
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	if i := strings.IndexByte(h, '/'); i >= 0 {
		h = h[:i]
	}
	if h == "" {
		return "", errdefs.Invalidf("registry name is empty")
	}
	for _, k := range dockerHubKeys {
		if strings.TrimPrefix(strings.TrimSuffix(k, "/v1/"), "https://") == h {
			return "docker.io", nil
		}
	}
	if _, err := name.NewRegistry(h); err != nil {
		return "", errdefs.Invalidf("registry %q: %v", s, err)
	}
	return h, nil
}

// SetAuth stores user and password for registry in the auth file.
func SetAuth(path, registry, user, password string) error {
	host, err := normalizeRegistryHost(registry)
	if err != nil {
		return err
	}
	af, err := readAuthFile(path)
	if err != nil {
		return err
	}
	af.Auths[host] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	return af.write(path)
}

// RemoveAuth forgets the credentials of registry ("" with all: every
// registry). It returns ErrNotFound when there were none.
func RemoveAuth(path, registry string, all bool) error {
	af, err := readAuthFile(path)
	if err != nil {
		return err
	}
	if all {
		af.Auths = map[string]authEntry{}
		return af.write(path)
	}
	host, err := normalizeRegistryHost(registry)
	if err != nil {
		return err
	}
	keys := []string{host}
	if host == "docker.io" {
		keys = dockerHubKeys
	}
	found := false
	for _, k := range keys {
		if _, ok := af.Auths[k]; ok {
			delete(af.Auths, k)
			found = true
		}
	}
	if !found {
		return errdefs.NotFoundf("not logged in to %s", host)
	}
	return af.write(path)
}

// AuthRegistries lists the registries the auth file has credentials for.
func AuthRegistries(path string) ([]string, error) {
	af, err := readAuthFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range af.Auths {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// lookupAuth returns the credentials stored for host, if any.
func lookupAuth(path, host string) (*authn.AuthConfig, error) {
	af, err := readAuthFile(path)
	if err != nil {
		return nil, err
	}
	keys := []string{host}
	if host == name.DefaultRegistry || host == "docker.io" {
		keys = dockerHubKeys
	}
	for _, k := range keys {
		e, ok := af.Auths[k]
		if !ok {
			continue
		}
		cfg := &authn.AuthConfig{IdentityToken: e.IdentityToken}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, errdefs.Invalidf("auth file %s: credentials of %s are not base64: %v", path, k, err)
			}
			u, p, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, errdefs.Invalidf("auth file %s: credentials of %s are not user:password", path, k)
			}
			cfg.Username, cfg.Password = u, p
		}
		return cfg, nil
	}
	return nil, nil
}

// authFileKeychain resolves credentials from one containers-auth.json
// file; it implements authn.Keychain.
type authFileKeychain struct{ path string }

// Resolve implements authn.Keychain.
func (k authFileKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	cfg, err := lookupAuth(k.path, target.RegistryStr())
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(*cfg), nil
}
