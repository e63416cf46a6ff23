package main

import (
	"fmt"
	"os/exec"
	"syscall"
)

const floorChildArg = "__floor-child"

// floor is the cost floor of any container start: re-execute this binary
// (as a runtime re-executes itself as init) into new mount, pid, uts, ipc,
// network and cgroup namespaces, and wait for it to exit. No rootfs, no
// cgroup, no mounts.
func floor() error {
	cmd := exec.Command("/proc/self/exe", floorChildArg)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET | syscall.CLONE_NEWCGROUP,
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("re-exec into new namespaces: %w", err)
	}
	return nil
}
