//go:build !linux

package store

// MarkTopDir does nothing off Linux.
func MarkTopDir(dir string) {}
