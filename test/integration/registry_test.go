package integration

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// needTools skips unless the Debian tools the registry tests drive are
// installed (scripts/setup.sh docker-registry skopeo).
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (install with: scripts/setup.sh docker-registry skopeo): %v", tool, err)
		}
	}
}

// testRegistry is Debian's docker-registry (distribution 2.8) serving on
// a free loopback port, with the fixture configs.
type testRegistry struct {
	addr       string
	dir        string
	logPath    string
	user, pass string
	cert       string // PEM of its self-signed certificate, with TLS
}

// startRegistry starts docker-registry as a plain background process and
// stops it by its PID when the test ends, failed or not.
func startRegistry(t *testing.T, auth, tls bool) *testRegistry {
	t.Helper()
	needTools(t, "docker-registry", "skopeo")
	fixtures := needShared(t, "fixtures")
	dir, err := os.MkdirTemp("", "cfs-registry-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := &testRegistry{dir: dir, logPath: filepath.Join(dir, "registry.log")}
	cfgName := "config.yml"
	if auth {
		r.user, r.pass = "cfs-user", "pa55-"+fmt.Sprint(time.Now().UnixNano()%1000)
		hash, err := bcrypt.GenerateFromPassword([]byte(r.pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(r.user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfgName = "config-auth.yml"
	}
	if tls {
		r.cert = writeSelfSigned(t, filepath.Join(dir, "tls"))
		cfgName = "config-tls.yml"
		if auth {
			cfgName = "config-tls-auth.yml"
		}
	}
	tmpl, err := os.ReadFile(filepath.Join(fixtures, "registry", cfgName))
	if err != nil {
		t.Fatal(err)
	}
	addrRE := regexp.MustCompile(`addr: 127\.0\.0\.1:\d+`)
	for attempt := 0; ; attempt++ {
		r.addr = freePort(t)
		cfg := addrRE.ReplaceAllString(strings.ReplaceAll(string(tmpl), "@DIR@", dir), "addr: "+r.addr)
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		logf, err := os.Create(r.logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("docker-registry", "serve", cfgPath)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("starting docker-registry: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		pid := cmd.Process.Pid
		t.Cleanup(func() {
			syscallKill(pid)
			<-exited
			logf.Close()
		})
		if waitListening(r.addr, exited) {
			return r
		}
		log, _ := os.ReadFile(r.logPath)
		if attempt == 2 {
			t.Fatalf("docker-registry did not start on %s:\n%s", r.addr, log)
		}
	}
}

func syscallKill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitListening waits for the registry's port, or its exit.
func waitListening(addr string, exited chan struct{}) bool {
	for i := 0; i < 200; i++ {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(25 * time.Millisecond)
	}
	return false
}

// writeSelfSigned makes a certificate for 127.0.0.1 (its own CA) and
// returns its PEM.
func writeSelfSigned(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "cfs test registry"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), []byte(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert
}

// skopeoCopy copies a fixture into the registry.
func (r *testRegistry) skopeoCopy(t *testing.T, src, dest string, extra ...string) {
	t.Helper()
	args := append([]string{"copy", "--quiet", "--dest-tls-verify=false"}, extra...)
	if r.user != "" {
		args = append(args, "--dest-creds", r.user+":"+r.pass)
	}
	args = append(args, src, "docker://"+r.addr+"/"+dest)
	if out, err := exec.Command("skopeo", args...).CombinedOutput(); err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// manifestDigest asks skopeo for the manifest the registry serves.
func (r *testRegistry) manifestDigest(t *testing.T, ref string) string {
	t.Helper()
	args := []string{"inspect", "--raw", "--tls-verify=false"}
	if r.user != "" {
		args = append(args, "--creds", r.user+":"+r.pass)
	}
	out, err := exec.Command("skopeo", append(args, "docker://"+r.addr+"/"+ref)...).Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v", ref, err)
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256(out))
}

// blobGets counts the blob downloads in the registry's access log, once
// it stops growing: a request's line is written after its response.
func (r *testRegistry) blobGets(t *testing.T) int {
	t.Helper()
	n := r.countBlobGets(t)
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		m := r.countBlobGets(t)
		if m == n {
			break
		}
		n = m
	}
	return n
}

func (r *testRegistry) countBlobGets(t *testing.T) int {
	t.Helper()
	f, err := os.Open(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "response completed") && strings.Contains(l, "http.request.method=GET") && strings.Contains(l, "/blobs/sha256:") {
			n++
		}
	}
	return n
}

const layeredID = "sha256:27add61bf79233ba2aaa42708330f0abf61834ee889a3c6d2fab8e6056354e19"

// checkLayeredContainer runs a container of img and compares what it sees
// with fixtures/layered-expected.txt and layered-config.json.
func checkLayeredContainer(t *testing.T, e *env, img string) {
	t.Helper()
	// The image's own entrypoint, cmd, user, workdir and env.
	if out := e.ok("run", "--rm", img); out != "hello\n" {
		t.Errorf("run %s: %q, want the image's cmd to print hello", img, out)
	}
	var cfg struct {
		Env        []string
		WorkingDir string
		User       string
	}
	data, err := os.ReadFile(needShared(t, "fixtures/layered-config.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(data, &cfg)
	out := e.ok("run", "--rm", img, `id -u; id -g; pwd; env`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || lines[0] != cfg.User || lines[1] != "0" || lines[2] != cfg.WorkingDir {
		t.Errorf("uid, gid, cwd: %q, want %s, 0, %s", lines, cfg.User, cfg.WorkingDir)
	}
	for _, kv := range cfg.Env {
		if !contains(lines, kv) {
			t.Errorf("env lacks %q: %q", kv, lines)
		}
	}

	// Every path, as root, with type, mode, owner, size, content and links.
	script := `find / -xdev -exec stat -c '%n|%F|%a|%u|%g|%s|%i|%h|%N' {} + ; echo ==; find / -xdev -type f -exec sha256sum {} +`
	out = e.ok("run", "--rm", "-u", "0", "--entrypoint", "/bin/sh", img, "-c", script)
	stats, sums, _ := strings.Cut(out, "==\n")
	sha := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(sums), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			sha[f[1]] = f[0]
		}
	}
	type node struct{ typ, mode, uid, gid, size, ino, nlink, link string }
	nodes := map[string]node{}
	inodes := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(stats), "\n") {
		f := strings.SplitN(l, "|", 9)
		if len(f) != 9 {
			t.Fatalf("bad stat line %q", l)
		}
		n := node{mode: f[2], uid: f[3], gid: f[4], size: f[5], ino: f[6], nlink: f[7], link: "-"}
		switch f[1] {
		case "directory":
			n.typ, n.size = "dir", "-"
		case "regular file", "regular empty file":
			n.typ = "file"
			if n.nlink != "1" {
				inodes[n.ino] = append(inodes[n.ino], f[0])
			}
		case "symbolic link":
			n.typ = "symlink"
			_, tgt, _ := strings.Cut(f[8], " -> ")
			n.link = strings.Trim(tgt, "'")
		default:
			n.typ = f[1]
		}
		nodes[f[0]] = n
	}
	got := map[string]string{}
	for p, n := range nodes {
		m := 0
		fmt.Sscanf(n.mode, "%o", &m)
		s, hl := "-", "-"
		if n.typ == "file" {
			s = sha[p]
			if g := inodes[n.ino]; len(g) > 1 {
				sort.Strings(g)
				hl = strings.Join(g, ",")
			}
		}
		got[p] = strings.Join([]string{n.typ, fmt.Sprintf("%04o", m), n.uid, n.gid, n.size, s, n.link, hl}, "\t")
	}
	want := map[string]string{}
	ef, err := os.Open(needShared(t, "fixtures/layered-expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	sc := bufio.NewScanner(ef)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			p, rest, _ := strings.Cut(l, "\t")
			want[p] = rest
		}
	}
	// The runtime mounts these (the fixture says so too): present, but
	// not the image's content; "/" is implementation-defined.
	injected := map[string]bool{"/": true, "/etc/hosts": true, "/etc/hostname": true, "/etc/resolv.conf": true, "/dev": true, "/proc": true, "/sys": true}
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: missing in the container", p)
		case !injected[p] && g != w:
			t.Errorf("%s:\n got  %s\n want %s", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok && !injected[p] {
			t.Errorf("%s: in the container, not in the image", p)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func imageField(t *testing.T, e *env, img, tmpl string) string {
	t.Helper()
	return strings.TrimSpace(e.ok("image", "inspect", "-f", tmpl, img))
}

// TestRegistryPlain: images skopeo puts in come back with cfs pull, keep
// their digests through cfs push, share their layers, and a second pull
// downloads nothing but the manifest.
func TestRegistryPlain(t *testing.T) {
	reg := startRegistry(t, false, false)
	fx := needShared(t, "fixtures")
	reg.skopeoCopy(t, "oci-archive:"+filepath.Join(fx, "layered-oci-layout.tar"), "layered:1")
	reg.skopeoCopy(t, "oci-archive:"+filepath.Join(fx, "layered-oci-zstd.tar"), "layered:zstd", "--preserve-digests")
	reg.skopeoCopy(t, "docker-archive:"+filepath.Join(fx, "layered-docker-archive.tar"), "layered:docker")
	e := newEnv(t)
	ref := reg.addr + "/layered:1"
	want := reg.manifestDigest(t, "layered:1")

	r := e.cfs("pull", ref)
	if r.code != 0 || strings.TrimSpace(r.stdout) != layeredID {
		t.Fatalf("pull: %s", r)
	}
	if !strings.Contains(r.stderr, "Pull complete") || !strings.Contains(r.stderr, "Digest: "+want) {
		t.Errorf("pull progress (not a terminal: one line per layer state):\n%s", r.stderr)
	}
	if got := imageField(t, e, ref, "{{.Manifest.Digest}}"); got != want {
		t.Errorf("pulled manifest %s, registry serves %s", got, want)
	}
	if got := imageField(t, e, ref, "{{index .RepoDigests 0}}"); got != reg.addr+"/layered@"+want {
		t.Errorf("RepoDigests %q", got)
	}
	checkLayeredContainer(t, e, ref)

	// Present layers cost nothing: not even the config is fetched again.
	gets := reg.blobGets(t)
	if gets < 5 {
		t.Errorf("the registry log shows %d blob downloads for the first pull, want 5 (config and 4 layers)", gets)
	}
	r = e.cfs("pull", ref)
	if r.code != 0 || !strings.Contains(r.stderr, "Already exists") || !strings.Contains(r.stderr, "Image is up to date") {
		t.Errorf("second pull: %s", r)
	}
	if n := reg.blobGets(t) - gets; n != 0 {
		t.Errorf("second pull downloaded %d blobs", n)
	}
	if q := e.ok("pull", "-q", ref); q != layeredID+"\n" {
		t.Errorf("pull -q prints %q", q)
	}

	// Other encodings of the same image: the same ID and the same four
	// unpacked layers (only the blobs are fetched), each its own digest.
	for _, tag := range []string{"zstd", "docker"} {
		ref := reg.addr + "/layered:" + tag
		if out := strings.TrimSpace(e.ok("pull", ref)); out != layeredID {
			t.Errorf("pull %s: ID %s", tag, out)
		}
		if got, want := imageField(t, e, ref, "{{.Manifest.Digest}}"), reg.manifestDigest(t, "layered:"+tag); got != want {
			t.Errorf("%s: manifest %s, registry %s", tag, got, want)
		}
	}
	if layers, _ := filepath.Glob(filepath.Join(e.root, "layers", "*")); len(layers) != 4 {
		t.Errorf("three encodings of one image: %d layer dirs, want 4 shared", len(layers))
	}
	checkLayeredContainer(t, e, reg.addr+"/layered:zstd")

	// cfs push: the same digest, under another name, as skopeo sees it.
	out := e.ok("push", ref, reg.addr+"/copy/layered:1")
	if strings.TrimSpace(out) != want || reg.manifestDigest(t, "copy/layered:1") != want {
		t.Errorf("push printed %q; registry has %s; want %s", out, reg.manifestDigest(t, "copy/layered:1"), want)
	}
	for _, tag := range []string{"zstd", "docker"} {
		d := imageField(t, e, reg.addr+"/layered:"+tag, "{{.Manifest.Digest}}")
		if out := strings.TrimSpace(e.ok("push", "-q", reg.addr+"/layered:"+tag, reg.addr+"/copy/layered:"+tag)); out != d {
			t.Errorf("push %s: %s, want %s", tag, out, d)
		}
	}

	// An image loaded here goes up with cfs push and comes back with cfs
	// pull into another store, byte for byte.
	e.ok("load", "-i", filepath.Join(fx, "busybox-docker-archive.tar"), "bb:1")
	local := imageField(t, e, "bb:1", "{{.Manifest.Digest}}")
	e.ok("tag", "bb:1", reg.addr+"/bb:1")
	if out := strings.TrimSpace(e.ok("push", reg.addr+"/bb:1")); out != local {
		t.Errorf("push bb: %s, want %s", out, local)
	}
	e2 := newEnv(t)
	id := strings.TrimSpace(e2.ok("pull", "-q", reg.addr+"/bb:1"))
	if id != imageField(t, e, "bb:1", "{{.Id}}") || imageField(t, e2, reg.addr+"/bb:1", "{{.Manifest.Digest}}") != local {
		t.Errorf("round trip of bb: ID %s", id)
	}
	if out := e2.ok("run", "--rm", reg.addr+"/bb:1", "echo", "round trip"); out != "round trip\n" {
		t.Errorf("run: %q", out)
	}
	// Pull by digest: untagged, same image.
	if out := strings.TrimSpace(e2.ok("pull", "-q", reg.addr+"/layered@"+want)); out != layeredID {
		t.Errorf("pull by digest: %s", out)
	}
	// A missing image is an error naming it.
	if r := e2.cfs("pull", reg.addr+"/nope:1"); r.code == 0 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("pull of a missing image: %s", r)
	}
}

// TestRegistryTLSAuth: basic auth over TLS with a self-signed certificate.
func TestRegistryTLSAuth(t *testing.T) {
	reg := startRegistry(t, true, true)
	fx := needShared(t, "fixtures")
	reg.skopeoCopy(t, "oci-archive:"+filepath.Join(fx, "layered-oci-layout.tar"), "layered:1")
	want := reg.manifestDigest(t, "layered:1")
	e := newEnv(t)
	ref := reg.addr + "/layered:1"

	// The certificate is not trusted yet.
	if r := e.cfs("pull", ref); r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("pull with an untrusted certificate: %s", r)
	}
	// No credentials: refused.
	if r := e.cfs("pull", "--tls-verify=false", ref); r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
		t.Errorf("pull without credentials: %s", r)
	}
	if r := e.cfsIn("wrong\n", "login", "--tls-verify=false", "-u", reg.user, "--password-stdin", reg.addr); r.code == 0 || !strings.Contains(r.stderr, "invalid username or password") {
		t.Errorf("login with a wrong password: %s", r)
	}
	if r := e.cfsIn(reg.pass+"\n", "login", "--tls-verify=false", "-u", reg.user, "--password-stdin", reg.addr); r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
		t.Fatalf("login: %s", r)
	}
	authFile := filepath.Join(e.root, "auth.json")
	st, err := os.Stat(authFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("auth file: %v %v", st, err)
	}
	var af struct{ Auths map[string]map[string]string }
	data, _ := os.ReadFile(authFile)
	if json.Unmarshal(data, &af); af.Auths[reg.addr]["auth"] == "" {
		t.Errorf("auth.json: %s", data)
	}
	// Logged in; TLS verification off.
	if out := strings.TrimSpace(e.ok("pull", "--tls-verify=false", ref)); out != layeredID {
		t.Errorf("pull: %s", out)
	}
	// Verification on, with the registry's CA in <root>/certs.d/<host:port>/.
	e.ok("rmi", ref)
	certs := filepath.Join(e.root, "certs.d", reg.addr)
	os.MkdirAll(certs, 0o755)
	if err := os.WriteFile(filepath.Join(certs, "ca.crt"), []byte(reg.cert), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := strings.TrimSpace(e.ok("pull", ref)); out != layeredID {
		t.Errorf("pull with a trusted CA: %s", out)
	}
	if got := imageField(t, e, ref, "{{.Manifest.Digest}}"); got != want {
		t.Errorf("manifest %s, want %s", got, want)
	}
	checkLayeredContainer(t, e, ref)
	// The insecure-registries list also turns verification off.
	os.RemoveAll(filepath.Join(e.root, "certs.d"))
	if r := e.cfs("pull", ref); r.code == 0 {
		t.Errorf("pull after removing the CA: %s", r)
	}
	os.WriteFile(filepath.Join(e.root, "registries.json"), []byte(`{"insecure-registries": ["`+reg.addr+`"]}`), 0o644)
	e.ok("pull", ref)

	// Push a loaded image, with its digest, and pull it elsewhere.
	e.ok("load", "-i", filepath.Join(fx, "busybox-oci-archive.tar"))
	local := imageField(t, e, "localhost/busybox:1.35", "{{.Manifest.Digest}}")
	if out := strings.TrimSpace(e.ok("push", "localhost/busybox:1.35", reg.addr+"/bb:1.35")); out != local {
		t.Errorf("push: %s, want %s", out, local)
	}
	if got := reg.manifestDigest(t, "bb:1.35"); got != local {
		t.Errorf("registry has %s, want %s", got, local)
	}
	e2 := newEnv(t)
	if r := e2.cfs("pull", "--tls-verify=false", reg.addr+"/bb:1.35"); r.code == 0 {
		t.Errorf("pull without login: %s", r)
	}
	e2.ok("pull", "--tls-verify=false", "--authfile", authFile, reg.addr+"/bb:1.35")
	if got := imageField(t, e2, reg.addr+"/bb:1.35", "{{.Manifest.Digest}}"); got != local {
		t.Errorf("pulled %s, want %s", got, local)
	}

	e.ok("logout", reg.addr)
	if r := e.cfs("logout", reg.addr); r.code == 0 || !strings.Contains(r.stderr, "not logged in") {
		t.Errorf("second logout: %s", r)
	}
	if r := e.cfs("push", "localhost/busybox:1.35", reg.addr+"/bb:again"); r.code == 0 {
		t.Errorf("push after logout: %s", r)
	}
	var cfg map[string]any
	json.Unmarshal([]byte(imageField(t, e, ref, "{{json .Config}}")), &cfg)
	if !reflect.DeepEqual(cfg["WorkingDir"], "/data") {
		t.Errorf("config %v", cfg)
	}
}
