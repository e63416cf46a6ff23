package mount

import "strings"

// OverlayLowers returns the lowerdir list of overlay mount data (top first).
func OverlayLowers(data string) []string {
	for _, o := range strings.Split(data, ",") {
		if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
			return strings.Split(v, ":")
		}
	}
	return nil
}

// WithOverlayLowers returns data with its lowerdir list replaced and extra
// options appended.
func WithOverlayLowers(data string, lowers []string, extra ...string) string {
	opts := strings.Split(data, ",")
	for i, o := range opts {
		if strings.HasPrefix(o, "lowerdir=") {
			opts[i] = "lowerdir=" + strings.Join(lowers, ":")
		}
	}
	return strings.Join(append(opts, extra...), ",")
}
