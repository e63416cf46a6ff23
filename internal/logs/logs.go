// Package logs keeps a container's output on disk in Docker's json-file
// format and reads it back: one JSON object per line,
//
//	{"log":"hello\n","stream":"stdout","time":"2024-05-01T12:00:00.123456789Z"}
//
// in <container dir>/container.log. When the file would grow past
// Options.MaxSize it is rotated: container.log becomes container.log.1,
// .1 becomes .2 and so on, and the oldest beyond Options.MaxFile is
// removed (the highest number is the oldest, as with Docker).
//
// A line longer than MaxEntrySize is stored as several entries, all but the
// last without a trailing newline ("partial" entries, as Docker does).
// Output that is not UTF-8 cannot be represented in JSON strings: invalid
// bytes are stored as U+FFFD, as in Docker.
//
// The files are the only state: logs stay readable after the container
// exited and after cfs itself restarted, and any number of readers can
// follow a file while one Writer appends to it.
package logs

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// FileName is the live log file in a container's directory; rotated files
// are FileName + ".1" (newest) to ".N" (oldest).
const FileName = "container.log"

// Stream names, as stored in each entry.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// MaxEntrySize is the most text one entry holds (Docker's copier buffer):
// a longer line is split into partial entries.
const MaxEntrySize = 16 * 1024

// Defaults. Docker's json-file driver keeps everything by default, which
// fills disks; its "local" driver keeps 5 files of 20 MB, and so do we.
const (
	DefaultMaxSize = 20 << 20
	DefaultMaxFile = 5
)

// Options bound the disk space a container's log takes.
type Options struct {
	// MaxSize is the size in bytes at which the live file is rotated;
	// 0 means never rotate.
	MaxSize int64 `json:"MaxSize"`
	// MaxFile is how many files are kept, the live one included (>= 1).
	// With 1 the live file is truncated instead of rotated.
	MaxFile int `json:"MaxFile"`
}

// DefaultOptions returns the options used when the user gives none.
func DefaultOptions() Options {
	return Options{MaxSize: DefaultMaxSize, MaxFile: DefaultMaxFile}
}

// ParseOptions parses --log-opt values: each is "key=value" or several of
// them separated by commas ("max-size=10m,max-file=3"). The keys are
// Docker's json-file ones: max-size (bytes with an optional k, m or g
// suffix, binary multiples as in Docker; -1 for no limit) and max-file (a
// count >= 1, only meaningful with a size limit). Unset keys keep their
// defaults. A bad option is an ErrInvalid naming it.
func ParseOptions(args []string) (Options, error) {
	o := DefaultOptions()
	sizeSet, fileSet := false, false
	for _, arg := range args {
		for _, kv := range strings.Split(arg, ",") {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return Options{}, errdefs.Invalidf("invalid log option %q: want key=value", kv)
			}
			switch k = strings.TrimSpace(k); k {
			case "max-size":
				n, err := ParseSize(v)
				if err != nil {
					return Options{}, errdefs.Invalidf("invalid log option max-size=%s: %v", v, err)
				}
				o.MaxSize, sizeSet = n, true
			case "max-file":
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil || n < 1 {
					return Options{}, errdefs.Invalidf("invalid log option max-file=%s: want a number >= 1", v)
				}
				o.MaxFile, fileSet = n, true
			default:
				return Options{}, errdefs.Invalidf("unknown log option %q (known: max-size, max-file)", k)
			}
		}
	}
	if sizeSet && fileSet && o.MaxSize == 0 && o.MaxFile > 1 {
		return Options{}, errdefs.Invalidf("invalid log option max-file=%d: it needs max-size", o.MaxFile)
	}
	return o, nil
}

// ParseSize parses a size such as 500k, 10m, 1g or 1024 (bytes), with
// binary multiples and an optional trailing "b" or "ib", as Docker's
// max-size does. -1 means no limit and returns 0.
func ParseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "-1" {
		return 0, nil
	}
	num := strings.TrimRight(s, "kmgtpib ")
	unit := strings.TrimSpace(s[len(num):])
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "b"), "i")
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[unit]
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || strings.Trim(num, "0123456789.") != "" || f*mult > 1<<62 {
		return 0, fmt.Errorf("want a size such as 500k, 10m or 1g")
	}
	n := int64(f * mult)
	if n < 1 {
		return 0, fmt.Errorf("want a size of at least 1 byte")
	}
	return n, nil
}

// Config returns the options as Docker shows them in inspect's
// HostConfig.LogConfig.Config.
func (o Options) Config() map[string]string {
	m := map[string]string{"max-file": strconv.Itoa(o.MaxFile)}
	if o.MaxSize > 0 {
		m["max-size"] = strconv.FormatInt(o.MaxSize, 10)
	} else {
		m["max-size"] = "-1"
	}
	return m
}
