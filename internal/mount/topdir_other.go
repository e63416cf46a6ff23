//go:build !linux

package mount

import "errors"

// MarkTopDir does nothing off Linux.
func MarkTopDir(dir string) {}

// IsTopDir: no inode flags off Linux.
func IsTopDir(dir string) (bool, error) { return false, errors.New("no inode flags") }
