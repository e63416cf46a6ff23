package logs

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// ParseTime parses a --since or --until value the way Docker does: a Go
// duration ("10m", "1h30m") is that long before now; an RFC 3339 time,
// complete or cut short ("2024-05-01", "2024-05-01T12:00",
// "2024-05-01T12:00:00.5Z", "2024-05-01T12:00:00+02:00"), is in the local
// time zone unless it names one; anything else must be a Unix time in
// seconds with optional fraction ("1714564800", "1714564800.123"). The
// empty string is the zero time.
func ParseTime(value string, now time.Time) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(value); value != "0" && err == nil {
		return now.Add(-d), nil
	}
	// A zone is a Z, a "+hh:mm", or a "-hh:mm" after the date's two dashes.
	hasZone := strings.ContainsAny(value, "zZ+") || strings.Count(value, "-") == 3
	var layout string
	switch {
	case strings.Contains(value, "."):
		layout = "2006-01-02T15:04:05.999999999"
	case strings.Contains(value, "T"):
		colons := strings.Count(value, ":")
		if hasZone && !strings.ContainsAny(value, "zZ") && colons > 0 {
			colons-- // the zone's own colon
		}
		layout = [...]string{"2006-01-02T15", "2006-01-02T15:04", "2006-01-02T15:04:05"}[min(colons, 2)]
	default:
		layout = "2006-01-02"
	}
	var t time.Time
	var err error
	if hasZone {
		t, err = time.Parse(layout+"Z07:00", value)
	} else {
		t, err = time.ParseInLocation(layout, value, time.Local)
	}
	if err == nil {
		return t, nil
	}
	if strings.Contains(value, "-") {
		return time.Time{}, errdefs.Invalidf("invalid time %q: %v", value, err)
	}
	if t, ok := parseUnix(value); ok {
		return t, nil
	}
	return time.Time{}, errdefs.Invalidf("invalid time %q: want a duration (10m), an RFC 3339 time or a Unix timestamp", value)
}

// parseUnix parses "seconds[.fraction]".
func parseUnix(value string) (time.Time, bool) {
	secs, frac, _ := strings.Cut(value, ".")
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var ns int64
	if frac != "" {
		if len(frac) > 9 || strings.Trim(frac, "0123456789") != "" {
			return time.Time{}, false
		}
		n, _ := strconv.ParseInt(frac, 10, 64)
		ns = n * int64(math.Pow10(9-len(frac)))
	}
	return time.Unix(s, ns), true
}
