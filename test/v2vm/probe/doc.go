// Package probe is the smoke test of the cgroup-v2 VM harness (test/v2vm). Its
// tests run only inside the VM (test/v2vm/run sets CFS_V2VM=1 and mounts a pure
// cgroup2 hierarchy at /sys/fs/cgroup); everywhere else they skip, so `go test
// ./...` on a host neither fails nor writes into the host's cgroups.
package probe
