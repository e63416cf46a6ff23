package image

import (
	"regexp"
	"strings"
	"sync"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// DefaultTag is the tag a name without one gets.
const DefaultTag = "latest"

// The reference grammar of the distribution project, restricted to lower
// case because names are normalized before they are checked.
var (
	// pathComponent: "busybox", "my_app", "a.b", "x--y".
	pathComponent = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	// domain: "localhost:5000", "registry.example.com".
	domainComponent = `(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])`
	domain          = domainComponent + `(?:\.` + domainComponent + `)*(?::[0-9]+)?`
	// Compiled on first use: every cfs process, container inits included,
	// would otherwise pay ~0.5 ms at start-up for them.
	repoRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:` + domain + `/)?` + pathComponent + `(?:/` + pathComponent + `)*$`)
	})
	tagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9_][a-z0-9_.-]{0,127}$`) })
)

// maxNameLen bounds the repository part, as the distribution spec does.
const maxNameLen = 255

// NormalizeName returns the canonical "repository:tag" form of name: lower
// case, with ":latest" added when no tag is given. It returns an ErrInvalid
// error naming the input when the name is malformed.
func NormalizeName(name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		return "", errdefs.Invalidf("image name is empty")
	}
	if strings.Contains(n, "@") {
		return "", errdefs.Invalidf("image name %q: digest references are not supported here", name)
	}
	repo, tag := n, DefaultTag
	// The tag separator is the last colon after the last slash: a colon
	// before a slash is a registry port ("localhost:5000/app").
	if i := strings.LastIndexByte(n, ':'); i > strings.LastIndexByte(n, '/') {
		repo, tag = n[:i], n[i+1:]
	}
	if len(repo) > maxNameLen {
		return "", errdefs.Invalidf("image name %q: longer than %d characters", name, maxNameLen)
	}
	if !repoRE().MatchString(repo) {
		return "", errdefs.Invalidf("image name %q: invalid repository name (allowed: a-z, 0-9, '.', '_', '-', '/' separators)", name)
	}
	if !tagRE().MatchString(tag) {
		return "", errdefs.Invalidf("image name %q: invalid tag %q", name, tag)
	}
	return repo + ":" + tag, nil
}

// isHexPrefix reports whether s could be (a prefix of) an image ID.
func isHexPrefix(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
