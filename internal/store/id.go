package store

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// NewID returns a random 64-character hex container ID.
func NewID() string {
	for {
		id := randomHex(32)
		// Like Docker, avoid IDs whose 12-character short form is all
		// digits: a user cannot tell it from a number (a pid, an index).
		if strings.Trim(id[:12], "0123456789") != "" {
			return id
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on supported platforms (crypto/rand docs)
	return hex.EncodeToString(b)
}

// isID reports whether s is a full container ID.
func isID(s string) bool { return len(s) == 64 && isHex(s) }

// IsID reports whether s is a full container ID (64 lowercase hex digits).
func IsID(s string) bool { return isID(s) }

// isHex reports whether s is non-empty lowercase hex, the only form an ID or
// an ID prefix takes.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
