//go:build !linux

package mount

// MarkTopDir does nothing off Linux.
func MarkTopDir(dir string) {}
