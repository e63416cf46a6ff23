// Package supervisor runs detached containers. One supervisor process per
// state root (started on demand by the first `cfs run -d` or `cfs start`,
// gone again once no container of that root runs) is the parent of every
// detached container's init: it copies their output into the log files
// and to attached clients (attach.go), holds their stdin open (-i),
// collects their exit status into the records and applies restart policies.
//
// Why one shared process rather than one per container (conmon, containerd's
// shim): a container costs the supervisor a few goroutines and buffers
// (tens of KiB) instead of a process (2–13 MiB). Nothing depends on it being
// up: every command but starting a container and attaching to one reads
// and changes the records directly, and a supervisor killed with -9 leaves
// containers running whose records `cfs ps` corrects (Engine.Refresh).
package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
)

// RunDir holds the supervisors' sockets and locks (volatile).
var RunDir = "/run/cfs"

// request is one call on the supervisor socket (one JSON line each way).
type request struct {
	Op   string          `json:"op"` // "run", "start", "adopt", "attach", "ping"
	ID   string          `json:"id,omitempty"`
	Pid  int             `json:"pid,omitempty"`
	Opts json.RawMessage `json:"opts,omitempty"` // run: the engine's run options
	// Attach (start) makes the connection an attach stream (attach.go),
	// joined before the program runs; "attach" always does.
	Attach bool `json:"attach,omitempty"`
	// Stdin: the client's input goes to the container's; StdinOnce: the
	// end of the client's input closes the container's stdin.
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
}

type response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Code is the exit code a front end reports for Error (125, 126, 127).
	Code int    `json:"code,omitempty"`
	Pid  int    `json:"pid,omitempty"`
	ID   string `json:"id,omitempty"`
}

// paths returns the socket and lock paths for a state root. They live
// under RunDir, named by a hash of the root: a unix socket path is limited
// to 108 bytes, and a root can be any directory.
// Files are the paths of root's supervisor's files in RunDir (socket, lock,
// its log, pid file), there while it runs.
func Files(root string) []string {
	sock, lock, pidfile := paths(root)
	return []string{sock, lock, lock + ".log", pidfile}
}

func paths(root string) (sock, lock, pidfile string) {
	h := sha256.Sum256([]byte(filepath.Clean(root)))
	base := filepath.Join(RunDir, "sup-"+hex.EncodeToString(h[:8]))
	return base + ".sock", base + ".lock", base + ".pid"
}
