package cli

import (
	"errors"
	"testing"
	"time"

	"github.com/cfs-org/cfs/internal/errdefs"
)

func TestLogReadOptions(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		tail, since, until string
		wantTail           int
		wantSince          time.Time
		wantUntil          time.Time
		bad                bool
	}{
		{tail: "all", wantTail: -1},
		{tail: "", wantTail: -1},
		{tail: "0", wantTail: 0},
		{tail: "10", wantTail: 10},
		{tail: "-5", wantTail: -1},
		{tail: "ten", bad: true},
		{tail: "all", since: "10m", until: "1714564800", wantTail: -1, wantSince: now.Add(-10 * time.Minute), wantUntil: time.Unix(1714564800, 0)},
		{tail: "all", since: "2024-05-01T11:00:00Z", wantTail: -1, wantSince: now.Add(-time.Hour)},
		{tail: "all", since: "soon", bad: true},
		{tail: "all", until: "2024-99-01", bad: true},
	} {
		o, err := logReadOptions(tc.tail, tc.since, tc.until, now)
		if tc.bad {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("%+v: %v, want ErrInvalid", tc, err)
			}
			continue
		}
		if err != nil || o.Tail != tc.wantTail || !o.Since.Equal(tc.wantSince) || !o.Until.Equal(tc.wantUntil) || !o.Stdout || !o.Stderr {
			t.Errorf("%+v: got %+v, %v", tc, o, err)
		}
	}
}
