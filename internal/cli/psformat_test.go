package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
	"github.com/cfs-org/cfs/internal/store"
)

var psNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func psRecord(id, name, status string, created time.Duration, mod func(*store.Record)) *store.Record {
	r := &store.Record{
		ID: strings.Repeat(id, 64/len(id)), Name: name, Image: "busybox", ImageID: "sha256:" + strings.Repeat("b", 64),
		Command: []string{"sleep", "60"}, Created: psNow.Add(-created),
		State: store.State{Status: status, Running: status == "running" || status == "paused", Paused: status == "paused"},
		Extra: json.RawMessage(`{"NetworkMode":"none","Binds":["/srv/data:/data:ro"]}`),
	}
	if r.State.Running {
		r.State.StartedAt = r.Created
	}
	if status == "exited" {
		r.State.StartedAt, r.State.FinishedAt = r.Created, psNow.Add(-time.Minute)
	}
	if mod != nil {
		mod(r)
	}
	return r
}

func psFixture() []*store.Record {
	return []*store.Record{
		psRecord("a1", "web", "running", time.Minute, func(r *store.Record) {
			r.Labels = map[string]string{"env": "prod", "tier": "front"}
			r.Extra = json.RawMessage(`{"NetworkMode":"host"}`)
		}),
		psRecord("b2", "worker", "exited", time.Hour, func(r *store.Record) {
			r.State.ExitCode = 3
			r.Labels = map[string]string{"env": "prod"}
			r.Image, r.ImageID = "app:v1", "sha256:"+strings.Repeat("c", 64)
		}),
		psRecord("c3", "db", "exited", 2*time.Hour, nil),
		psRecord("d4", "webcache", "paused", 3*time.Hour, func(r *store.Record) { r.Labels = map[string]string{"env": "dev"} }),
		psRecord("e5", "fresh", "created", 4*time.Hour, nil),
	}
}

func TestPsFilters(t *testing.T) {
	recs := psFixture()
	byName := map[string]*store.Record{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	images := []*image.Image{
		{Name: "busybox:latest", ID: digest.Digest("sha256:" + strings.Repeat("b", 64)), Layers: []string{"/l/1"}},
		{Name: "app:v1", ID: digest.Digest("sha256:" + strings.Repeat("c", 64)), Layers: []string{"/l/1", "/l/2"}},
		{Name: "other:latest", ID: digest.Digest("sha256:" + strings.Repeat("d", 64)), Layers: []string{"/l/3"}},
	}
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{nil, "web worker db webcache fresh"},
		{[]string{"name=web"}, "web webcache"},
		{[]string{"name=^web$"}, "web"},
		{[]string{"name=/web"}, "web webcache"},
		{[]string{"name=web", "name=db"}, "web db webcache"},
		{[]string{"id=" + strings.Repeat("b2", 3)}, "worker"},
		{[]string{"status=exited"}, "worker db"},
		{[]string{"status=exited", "status=paused"}, "worker db webcache"},
		{[]string{"STATUS=created"}, "fresh"},
		{[]string{"exited=3"}, "worker"},
		{[]string{"exited=0"}, "db"},
		{[]string{"label=env"}, "web worker webcache"},
		{[]string{"label=env=prod"}, "web worker"},
		{[]string{"label=env=prod", "label=tier"}, "web"},
		{[]string{"label=env=prod", "status=exited"}, "worker"},
		{[]string{"ancestor=busybox"}, "web worker db webcache fresh"}, // app:v1 is built on busybox
		{[]string{"ancestor=app:v1"}, "worker"},
		{[]string{"ancestor=cccc"}, "worker"},
		{[]string{"ancestor=other"}, ""},
		{[]string{"ancestor=gone"}, ""},
		{[]string{"network=host"}, "web"},
		{[]string{"volume=/data"}, "worker db webcache fresh"},
		{[]string{"volume=/srv/data"}, "worker db webcache fresh"},
	} {
		pf, err := parsePsFilters(tc.filters)
		if err != nil {
			t.Errorf("%v: %v", tc.filters, err)
			continue
		}
		q := &psQuery{filters: pf}
		if vs := pf["ancestor"]; vs != nil {
			q.ancestors = ancestorIDs(images, vs)
			q.ancestorNames = map[string]bool{}
			for _, v := range vs {
				q.ancestorNames[normalizeImageName(v)] = true
			}
		}
		var got []string
		for _, r := range recs {
			if q.match(r) {
				got = append(got, r.Name)
			}
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%v: got %q, want %q", tc.filters, strings.Join(got, " "), tc.want)
		}
	}
	// before and since name containers; ps resolves them.
	q := &psQuery{filters: psFilters{}, before: byName["db"]}
	var got []string
	for _, r := range recs {
		if q.match(r) {
			got = append(got, r.Name)
		}
	}
	if strings.Join(got, " ") != "webcache fresh" {
		t.Errorf("before=db: %v", got)
	}
	q = &psQuery{filters: psFilters{}, since: byName["db"]}
	got = nil
	for _, r := range recs {
		if q.match(r) {
			got = append(got, r.Name)
		}
	}
	if strings.Join(got, " ") != "web worker" || !q.showsStopped() {
		t.Errorf("since=db: %v", got)
	}
}

func TestPsFilterErrors(t *testing.T) {
	for _, f := range []string{"status=sleeping", "exited=x", "color=red", "name"} {
		_, err := parsePsFilters([]string{f})
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", f, err)
		}
	}
	if _, err := parsePsFilters([]string{"status=sleeping"}); err == nil || !strings.Contains(err.Error(), "invalid filter 'status=sleeping'") {
		t.Errorf("status message: %v", err)
	}
}

func psOutput(t *testing.T, format string, size bool, trunc bool) string {
	t.Helper()
	p, err := newPsPrinter(format, size)
	if err != nil {
		t.Fatal(err)
	}
	var rows []*psRow
	for _, r := range psFixture()[:2] {
		rows = append(rows, newPsRow(r, psNow, trunc, psSize{RW: 1500, RootFS: 4_300_000}))
	}
	var b bytes.Buffer
	if err := p.print(&b, rows); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPsFormat(t *testing.T) {
	web := strings.Repeat("a1", 6)
	for _, tc := range []struct {
		name, format string
		size, trunc  bool
		want         string
	}{
		{"default table", "", false, true,
			"CONTAINER ID   IMAGE     COMMAND      CREATED              STATUS" + strings.Repeat(" ", 26) + "PORTS     NAMES\n" +
				web + "   busybox   \"sleep 60\"   About a minute ago   Up About a minute" + strings.Repeat(" ", 25) + "web\n" +
				strings.Repeat("b2", 6) + "   app:v1    \"sleep 60\"   About an hour ago    Exited (3) About a minute ago             worker\n"},
		{"template without header", "{{.Names}}: {{.State}} {{.Label \"env\"}}", false, true,
			"web: running prod\nworker: exited prod\n"},
		{"table template with escapes", `table {{.ID}}\t{{.Labels}}\t{{.Label "com.example.tier-name"}}`, false, true,
			"CONTAINER ID   LABELS                tier name\n" + web + "   env=prod,tier=front   \n" +
				strings.Repeat("b2", 6) + "   env=prod              \n"},
		{"functions", `{{upper .Names}} {{json .Names}} {{truncate .ID 4}} {{join (split .Status " ") "_"}}`, false, true,
			"WEB \"web\" a1a1 Up_About_a_minute\nWORKER \"worker\" b2b2 Exited_(3)_About_a_minute_ago\n"},
		{"no-trunc", "{{.ID}} {{.Mounts}} {{.Networks}}", false, false,
			strings.Repeat("a1", 32) + "  host\n" + strings.Repeat("b2", 32) + " /srv/data none\n"},
		{"size", "{{.Size}}", false, true, "1.5kB (virtual 4.3MB)\n1.5kB (virtual 4.3MB)\n"},
		{"default with size", "", true, true, ""},
		{"created at", "{{.CreatedAt}}|{{.RunningFor}}|{{.Command}}", false, true,
			psNow.Add(-time.Minute).Local().Format("2006-01-02 15:04:05 -0700 MST") + "|About a minute ago|\"sleep 60\"\n" +
				psNow.Add(-time.Hour).Local().Format("2006-01-02 15:04:05 -0700 MST") + "|About an hour ago|\"sleep 60\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := psOutput(t, tc.format, tc.size, tc.trunc)
			if tc.name == "default with size" {
				if !strings.HasPrefix(got, "CONTAINER ID") || !strings.Contains(strings.Split(got, "\n")[0], "NAMES     SIZE") ||
					!strings.Contains(got, "1.5kB (virtual 4.3MB)") {
					t.Errorf("got:\n%s", got)
				}
				return
			}
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestPsFormatJSON(t *testing.T) {
	out := psOutput(t, "json", false, true)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one object per line:\n%s", out)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ID": strings.Repeat("a1", 6), "Names": "web", "State": "running", "Image": "busybox",
		"Command": `"sleep 60"`, "Labels": "env=prod,tier=front", "Networks": "host", "Status": "Up About a minute",
		"RunningFor": "About a minute ago", "LocalVolumes": "0", "Ports": "", "Mounts": "", "Size": "1.5kB (virtual 4.3MB)"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if !strings.HasPrefix(lines[0], `{"Command":`) {
		t.Errorf("keys not sorted as Docker's: %s", lines[0])
	}
	if _, err := newPsPrinter("{{.Nope", false); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad template: %v", err)
	}
	p, _ := newPsPrinter("{{.Nope}}", false)
	if err := p.print(&bytes.Buffer{}, []*psRow{newPsRow(psFixture()[0], psNow, true, psSize{})}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("unknown field: %v", err)
	}
}

func TestEllipsis(t *testing.T) {
	if got := ellipsis("sh -c 'echo héllo wörld; sleep 1'", 20); got != "sh -c 'echo héllo w…" {
		t.Errorf("got %q", got)
	}
	if got := ellipsis("short", 20); got != "short" {
		t.Errorf("got %q", got)
	}
}
