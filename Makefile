# cfs: build, demo, tests, benchmarks. Every target that needs Debian
# packages installs them first (scripts/setup.sh), so a fresh machine needs
# only Go and root.
GO      ?= go
BIN     := bin/cfs
export CGO_ENABLED := 0
# encoding/json on its v2 implementation (same v1 API and behaviour): the
# first decode of a runtime spec in a process, which every cfs and container
# init pays, takes half the time (0.45 ms instead of 1.05). Everything make
# builds and tests uses it; `make GOEXPERIMENT= ...` turns it off, and a
# plain `go build ./cmd/cfs` builds the same program without it.
export GOEXPERIMENT ?= jsonv2

.PHONY: all build demo test test-oci test-unit test-integration test-v2 bench bench-v2 clean

all: build

# bin/cfs is a lean front end carrying two programs it runs when needed:
# - the lean container init (cmd/cfs-init, see internal/initbin), with its
#   SHA-256 linked in: containers' inits then skip the engine's package
#   initializers;
# - the full cfs (internal/fullbin): the same program without the cfs_lean
#   tag, to which the front end hands pull, push, login, logout, import,
#   load, save and commit: their registry client, TLS and
#   compressors would cost every other command about 1 ms to initialise.
# A plain `go build ./cmd/cfs` builds the full program alone; its inits
# are cfs itself.
INITBIN := internal/initbin/payload
FULLBIN := internal/fullbin/payload
LDFLAGS  = -s -w -X github.com/cfs-org/cfs/internal/initbin.Stamp=$$(cat $(INITBIN)/cfs-init.sha256)
build:
	$(GO) build -trimpath -ldflags '-s -w' -o $(INITBIN)/cfs-init ./cmd/cfs-init
	sha256sum $(INITBIN)/cfs-init | cut -c1-64 >$(INITBIN)/cfs-init.sha256
	$(GO) build -trimpath -buildvcs=auto -ldflags "$(LDFLAGS)" -o $(FULLBIN)/cfs-full ./cmd/cfs
	$(GO) build -tags cfs_lean -trimpath -buildvcs=auto -ldflags "$(LDFLAGS)" -o $(BIN).link ./cmd/cfs
	@# Put in place as install(1) would, by a copy: the linker writes its
	@# output through a shared mapping, which leaves the binary in the page
	@# cache in 4 KiB pages, and each process that starts from it then
	@# faults in more of them. Started from a copy, a cfs process takes
	@# about 0.6 ms less CPU on the development VM (perf stat).
	cp $(BIN).link $(BIN).new && mv -f $(BIN).new $(BIN) && rm -f $(BIN).link
	ln -sf cfs bin/cfs-runtime

# The main job: a container from the built-in busybox image.
demo: build
	scripts/setup.sh
	./$(BIN) run --rm busybox sh -c 'echo "hello from container $$(hostname): pid $$$$, $$(id)"; cat /proc/self/cgroup | head -3'

# The whole suite: unit tests, integration tests as root with real
# containers (ending with a leak check), the OCI runtime's conformance suite
# and real clients (containerd, CRI with crictl, Podman), and the cgroup v2
# VM tests.
test: build
	scripts/setup.sh docker-registry skopeo containerd podman
	$(GO) vet ./...
	$(GO) vet -tags cfs_lean ./cmd/cfs
	CFS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 ./...
	test/oci/conformance.sh
	test/oci/clients.sh
	$(MAKE) test-v2

# The OCI runtime alone: the runtime-tools conformance suite and real
# clients (containerd, its CRI plugin with crictl, Podman).
test-oci: build
	scripts/setup.sh containerd podman
	test/oci/conformance.sh
	test/oci/clients.sh

test-unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /test/)

test-integration: build
	scripts/setup.sh docker-registry skopeo
	CFS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -v ./test/integration/

bench: build
	scripts/setup.sh runc crun docker-registry
	bench/run.sh
	bench/detached.sh
	bench/images/run.sh

# What limits add to a container start on a pure cgroup v2 kernel (the VM;
# TCG times are not comparable with the host's, the ratio is).
bench-v2: build v2vm-setup
	test/v2vm/run -t 240 -f bin/cfs -f bench/v2-limits.sh -- /payload/v2-limits.sh

clean:
	rm -rf bin

-include test/v2vm/Makefile.fragment
