package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
	"github.com/cfs-org/cfs/internal/store"
)

// The pure half of `cfs ps`: Docker's --filter and --format, without the
// engine, so that they are unit-tested without root.

// psFilterKeys are the --filter keys cfs understands (Docker's, less those
// for features cfs lacks: health, publish, expose, isolation, is-task).
var psFilterKeys = map[string]bool{
	"id": true, "name": true, "label": true, "status": true, "exited": true,
	"ancestor": true, "before": true, "since": true, "network": true, "volume": true,
}

// Docker's State.Status values, the valid status= filters.
var psStatuses = map[string]bool{
	store.StatusCreated: true, store.StatusRestarting: true, store.StatusRunning: true, "removing": true,
	store.StatusPaused: true, store.StatusExited: true, store.StatusDead: true,
}

// psFilters are parsed --filter flags: values of one key are alternatives
// (any may match), different keys must all match; label values must all
// match (Docker's rules).
type psFilters map[string][]string

// parsePsFilters parses "key=value" flags. Keys are case-insensitive;
// unknown keys, and values that cannot match anything (status=foo,
// exited=x), are ErrInvalid as in Docker.
func parsePsFilters(args []string) (psFilters, error) {
	f := psFilters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, errdefs.Invalidf("bad format of filter %q (expected name=value)", a)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !psFilterKeys[k] {
			return nil, errdefs.Invalidf("invalid filter '%s'", k)
		}
		switch k {
		case "status":
			if !psStatuses[v] {
				return nil, errdefs.Invalidf("invalid filter 'status=%s': want one of created, restarting, running, removing, paused, exited, dead", v)
			}
		case "exited":
			if _, err := strconv.Atoi(v); err != nil {
				return nil, errdefs.Invalidf("invalid filter 'exited=%s': want an exit code", v)
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// psConfig is what ps needs from the engine's part of a record.
type psConfig struct {
	Network string   `json:"NetworkMode"`
	Binds   []string `json:"Binds"`
}

func psConfigOf(r *store.Record) psConfig {
	var c psConfig
	json.Unmarshal(r.Extra, &c)
	return c
}

// psQuery is a resolved filter set: references to other containers and
// images are looked up once, by the caller.
type psQuery struct {
	filters psFilters
	// before and since are the records the before= and since= filters
	// name (the last of each, as Docker).
	before, since *store.Record
	// ancestors holds the image IDs that ancestor= filters resolved to,
	// their descendants included, and ancestorNames the normalized names
	// given (for containers whose image is gone).
	ancestors     map[string]bool
	ancestorNames map[string]bool
}

// showsStopped reports whether the query lists stopped containers without
// -a: Docker's status, before and since filters imply it.
func (q *psQuery) showsStopped() bool {
	return len(q.filters["status"]) > 0 || q.before != nil || q.since != nil
}

// match applies every filter to a refreshed record.
func (q *psQuery) match(r *store.Record) bool {
	f := q.filters
	if vs := f["id"]; vs != nil && !anyMatch(vs, r.ID) {
		return false
	}
	if vs := f["name"]; vs != nil && !anyMatch(vs, r.Name) && !anyMatch(vs, "/"+r.Name) {
		return false
	}
	for _, l := range f["label"] {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := r.Labels[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	if vs := f["status"]; vs != nil && !contains(vs, r.State.Status) {
		return false
	}
	if vs := f["exited"]; vs != nil {
		if r.State.Running || r.State.Status != store.StatusExited || !contains(vs, strconv.Itoa(r.State.ExitCode)) {
			return false
		}
	}
	if q.before != nil && !createdBefore(r, q.before) {
		return false
	}
	if q.since != nil && !createdBefore(q.since, r) {
		return false
	}
	if f["ancestor"] != nil && !q.ancestors[r.ImageID] && !q.ancestorNames[normalizeImageName(r.Image)] {
		return false
	}
	cfg := psConfigOf(r)
	if vs := f["network"]; vs != nil && !contains(vs, cfg.Network) {
		return false
	}
	if vs := f["volume"]; vs != nil {
		found := false
		for _, b := range cfg.Binds {
			src, dst := bindParts(b)
			found = found || contains(vs, src) || contains(vs, dst)
		}
		if !found {
			return false
		}
	}
	return true
}

// createdBefore orders containers as ps lists them (newest first).
func createdBefore(a, b *store.Record) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.ID < b.ID
}

// anyMatch is Docker's filters.Match: an exact match, or an unanchored
// regular expression (invalid ones match nothing).
func anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if p == s {
			return true
		}
		if re, err := regexp.Compile(p); err == nil && re.MatchString(s) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// normalizeImageName adds ":latest" and lower-cases, so that "busybox" and
// "BusyBox:latest" compare equal; IDs pass through.
func normalizeImageName(n string) string {
	n = strings.ToLower(strings.TrimSpace(n))
	if n == "" || strings.HasPrefix(n, "sha256:") {
		return n
	}
	if i := strings.LastIndexByte(n, ':'); i <= strings.LastIndexByte(n, '/') {
		n += ":latest"
	}
	return n
}

// bindParts splits "/host:/ctr[:ro]".
func bindParts(b string) (src, dst string) {
	parts := strings.SplitN(b, ":", 3)
	if len(parts) < 2 {
		return b, b
	}
	return parts[0], parts[1]
}

// psSize is a container's disk use, for -s and .Size.
type psSize struct {
	RW, RootFS int64 // the writable layer; the image's layers plus it
}

// psRow is one container for --format, with Docker's field names, so that
// `docker ps --format` templates work unchanged.
type psRow struct {
	r     *store.Record
	cfg   psConfig
	now   time.Time
	trunc bool
	size  psSize
}

func newPsRow(r *store.Record, now time.Time, trunc bool, size psSize) *psRow {
	return &psRow{r: r, cfg: psConfigOf(r), now: now, trunc: trunc, size: size}
}

// ID is the container ID, short unless --no-trunc.
func (p *psRow) ID() string { return shortID(p.r.ID, !p.trunc) }

// Image is the image as the user named it.
func (p *psRow) Image() string {
	if p.r.Image != "" {
		return p.r.Image
	}
	id := strings.TrimPrefix(p.r.ImageID, "sha256:")
	if p.trunc && len(id) > 12 {
		id = id[:12]
	}
	return id
}

// Command is the quoted command line, cut at 20 characters unless
// --no-trunc.
func (p *psRow) Command() string {
	c := strings.Join(p.r.Command, " ")
	if p.trunc {
		c = ellipsis(c, 20)
	}
	return strconv.Quote(c)
}

// CreatedAt is the creation time as Go prints a time.Time (Docker's).
func (p *psRow) CreatedAt() string {
	return p.r.Created.Local().Truncate(time.Second).Format("2006-01-02 15:04:05 -0700 MST")
}

// RunningFor is how long ago the container was created.
func (p *psRow) RunningFor() string { return humanDuration(p.now.Sub(p.r.Created)) + " ago" }

// Ports is empty: cfs does not publish ports yet.
func (p *psRow) Ports() string { return "" }

// State is the one-word state: created, running, paused, exited, dead.
func (p *psRow) State() string { return p.r.State.Status }

// Status is the sentence: "Up 5 minutes", "Exited (0) 2 hours ago".
func (p *psRow) Status() string { return statusText(p.r, p.now) }

// Size is the writable layer's size, and with the image's "(virtual ...)".
func (p *psRow) Size() string {
	s := humanSize(p.size.RW)
	if p.size.RootFS > 0 {
		s += " (virtual " + humanSize(p.size.RootFS) + ")"
	}
	return s
}

// Names is the container's name.
func (p *psRow) Names() string { return p.r.Name }

// Labels lists the labels as k=v, sorted, comma-separated.
func (p *psRow) Labels() string {
	keys := make([]string, 0, len(p.r.Labels))
	for k := range p.r.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + p.r.Labels[k]
	}
	return strings.Join(keys, ",")
}

// Label is one label's value.
func (p *psRow) Label(name string) string { return p.r.Labels[name] }

// Mounts lists the host paths bind-mounted in (volume names, in Docker).
func (p *psRow) Mounts() string {
	var out []string
	for _, b := range p.cfg.Binds {
		src, _ := bindParts(b)
		if p.trunc {
			src = ellipsis(src, 15)
		}
		out = append(out, src)
	}
	return strings.Join(out, ",")
}

// Networks is the network mode: none, host, bridge.
func (p *psRow) Networks() string { return p.cfg.Network }

// LocalVolumes counts named volumes: cfs has only bind mounts.
func (p *psRow) LocalVolumes() string { return "0" }

// MarshalJSON implements json.Marshaler: --format json and {{json .}}
// print every field, keys sorted as Docker's do.
func (p *psRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"ID": p.ID(), "Image": p.Image(), "Command": p.Command(), "CreatedAt": p.CreatedAt(),
		"RunningFor": p.RunningFor(), "Ports": p.Ports(), "State": p.State(), "Status": p.Status(),
		"Size": p.Size(), "Names": p.Names(), "Labels": p.Labels(), "Mounts": p.Mounts(),
		"Networks": p.Networks(), "LocalVolumes": p.LocalVolumes(),
	})
}

// psHeader answers the same template as psRow with column titles.
type psHeader struct{}

func (psHeader) ID() string           { return "CONTAINER ID" }
func (psHeader) Image() string        { return "IMAGE" }
func (psHeader) Command() string      { return "COMMAND" }
func (psHeader) CreatedAt() string    { return "CREATED AT" }
func (psHeader) RunningFor() string   { return "CREATED" }
func (psHeader) Ports() string        { return "PORTS" }
func (psHeader) State() string        { return "STATE" }
func (psHeader) Status() string       { return "STATUS" }
func (psHeader) Size() string         { return "SIZE" }
func (psHeader) Names() string        { return "NAMES" }
func (psHeader) Labels() string       { return "LABELS" }
func (psHeader) Mounts() string       { return "MOUNTS" }
func (psHeader) Networks() string     { return "NETWORKS" }
func (psHeader) LocalVolumes() string { return "LOCAL VOLUMES" }

// Label's title is the key's last dotted part, as Docker's.
func (psHeader) Label(name string) string {
	parts := strings.Split(name, ".")
	return strings.NewReplacer("-", " ", "_", " ").Replace(parts[len(parts)-1])
}

// MarshalJSON implements json.Marshaler ({{json .}} in a table header).
func (psHeader) MarshalJSON() ([]byte, error) { return []byte(`"JSON"`), nil }

const (
	psDefaultFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	psSizeColumn    = "\t{{.Size}}"
)

// psPrinter prints rows in a --format.
type psPrinter struct {
	tmpl  *template.Template
	table bool
	// UsesSize says the format shows sizes, which are costly: ps
	// computes them only then (as Docker does).
	UsesSize bool
}

// newPsPrinter parses a --format: "" or "table" (Docker's columns, with
// SIZE when size), "json" (one object per line), "table TEMPLATE" (with a
// header line, columns aligned on tabs) or a bare TEMPLATE (no header).
// Docker's `\t` and `\n` escapes are understood.
func newPsPrinter(format string, size bool) (*psPrinter, error) {
	format = strings.TrimSpace(format)
	switch format {
	case "", "table":
		format = psDefaultFormat
		if size {
			format += psSizeColumn
		}
	case "json":
		format = "{{json .}}"
	}
	p := &psPrinter{}
	if rest, ok := strings.CutPrefix(format, "table"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		p.table, format = true, strings.Trim(rest, " ")
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := template.New("ps").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, errdefs.Invalidf("--format: %v", err)
	}
	p.tmpl = t
	p.UsesSize = size || strings.Contains(format, ".Size") || strings.Contains(format, "json .")
	return p, nil
}

// templateFuncs are Docker's template functions.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		err := enc.Encode(v)
		return strings.TrimSpace(b.String()), err
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		r, n := utf8.DecodeRuneInString(s)
		return strings.ToUpper(string(r)) + s[n:]
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"truncate": func(s string, n int) string { return ellipsisCut(s, n) },
	"println":  func(args ...any) string { return fmt.Sprintln(args...) },
}

// print writes the rows; a table gets its header even without rows, as
// Docker's does.
func (p *psPrinter) print(w io.Writer, rows []*psRow) error {
	out := w
	var tw *tabwriter.Writer
	if p.table {
		// Docker's formatter: minimum width 10, padding 3.
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		if err := p.tmpl.Execute(out, psHeader{}); err != nil {
			return errdefs.Invalidf("--format: %v", err)
		}
		fmt.Fprintln(out)
	}
	var buf bytes.Buffer
	for _, r := range rows {
		buf.Reset()
		if err := p.tmpl.Execute(&buf, r); err != nil {
			return errdefs.Invalidf("--format: %v", err)
		}
		buf.WriteByte('\n')
		if _, err := out.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// ellipsis is Docker's Ellipsis: at most n characters, the last one "…"
// when cut.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// ellipsisCut is the truncate template function: the first n characters.
func ellipsisCut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// ancestorIDs resolves ancestor= values against the image list: the
// images named (by name or ID prefix) and every image built on one of
// them, that is whose layers start with all of its layers.
func ancestorIDs(images []*image.Image, values []string) map[string]bool {
	ids := map[string]bool{}
	for _, v := range values {
		name := normalizeImageName(v)
		hex := strings.TrimPrefix(strings.ToLower(v), "sha256:")
		for _, a := range images {
			if a.Name != name && !(len(hex) >= 4 && strings.HasPrefix(a.ID.Encoded(), hex)) {
				continue
			}
			ids[a.ID.String()] = true
			if len(a.Layers) == 0 {
				continue
			}
			for _, d := range images {
				if len(d.Layers) >= len(a.Layers) && slices.Equal(d.Layers[:len(a.Layers)], a.Layers) {
					ids[d.ID.String()] = true
				}
			}
		}
	}
	return ids
}
