package image

import (
	"strings"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// DefaultTag is the tag a name without one gets.
const DefaultTag = "latest"

// The reference grammar of the distribution project, restricted to lower
// case because names are normalized before they are checked:
//
//	repository := [domain "/"] path-component ("/" path-component)*
//	path-component := [a-z0-9]+ (("." | "_" | "__" | "-"+) [a-z0-9]+)*
//	domain := domain-component ("." domain-component)* [":" [0-9]+]
//	domain-component := [a-z0-9] | [a-z0-9][a-z0-9-]*[a-z0-9]
//	tag := [a-z0-9_][a-z0-9_.-]{0,127}
//
// Checked by hand: every cfs run parses a name, and compiling the
// equivalent regular expressions costs more than the rest of the lookup
// (name_test.go checks both agree).

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// validPathComponent reports whether s is a path-component.
func validPathComponent(s string) bool {
	i := 0
	for {
		// An alphanumeric run.
		j := i
		for j < len(s) && isAlnum(s[j]) {
			j++
		}
		if j == i {
			return false
		}
		if j == len(s) {
			return true
		}
		// A separator: ".", "_", "__" or "-"+.
		k := j
		switch s[j] {
		case '.':
			k++
		case '_':
			k++
			if k < len(s) && s[k] == '_' {
				k++
			}
		case '-':
			for k < len(s) && s[k] == '-' {
				k++
			}
		default:
			return false
		}
		i = k
	}
}

// validDomain reports whether s is a domain (with an optional port).
func validDomain(s string) bool {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		port := s[i+1:]
		if port == "" {
			return false
		}
		for j := 0; j < len(port); j++ {
			if port[j] < '0' || port[j] > '9' {
				return false
			}
		}
		s = s[:i]
	}
	for _, c := range strings.Split(s, ".") {
		if c == "" || !isAlnum(c[0]) || !isAlnum(c[len(c)-1]) {
			return false
		}
		for j := 0; j < len(c); j++ {
			if !isAlnum(c[j]) && c[j] != '-' {
				return false
			}
		}
	}
	return true
}

// validRepository reports whether s is a repository name.
func validRepository(s string) bool {
	parts := strings.Split(s, "/")
	paths := parts
	if len(parts) > 1 && !validPathComponent(parts[0]) {
		if !validDomain(parts[0]) {
			return false
		}
		paths = parts[1:]
	}
	for _, p := range paths {
		if !validPathComponent(p) {
			return false
		}
	}
	return true
}

// validTag reports whether s is a tag.
func validTag(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

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
	if !validRepository(repo) {
		return "", errdefs.Invalidf("image name %q: invalid repository name (allowed: a-z, 0-9, '.', '_', '-', '/' separators)", name)
	}
	if !validTag(tag) {
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
