# modemguard build, test and release targets. Only Go is needed for build,
# test, bench, fuzz, cross, lint and demo; test-system needs the Debian
# packages that .ci/run installs (mosquitto, nftables, iproute2,
# qemu-user-static) and root for the network namespace tests.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
DIST    := dist
CMDS    := modemguard modemsim
# `make fuzz` runs every FuzzX target in the tree for FUZZTIME each.
FUZZTIME ?= 10s

# Debian packages need a version that starts with a digit.
DEB_VERSION ?= 0.1.0~git$(shell git rev-parse --short HEAD 2>/dev/null || echo 0)
# v2.46 and later need modules the Go proxy does not serve.
NFPM := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.43.0

.PHONY: all build test test-system bench soak fuzz cross deb lint demo clean

all: lint test build

build:
	@mkdir -p bin
	$(foreach c,$(CMDS),$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/$(c) ./cmd/$(c) &&) true

# Unit and in-process tiers: simulator over pipes and ptys, embedded broker.
test:
	$(GO) test -race -count=1 ./...

# System tier: real Mosquitto, nftables in a throwaway network namespace,
# the arm64 binary under qemu-aarch64-static.
test-system:
	$(GO) test -tags system -count=1 -v -timeout 20m ./systemtest/...

# Runs the benchmarks that docs/benchmarks.md quotes and rewrites it with
# the machine they ran on (internal/benchdoc). The pyserial comparison needs
# Debian's python3-serial; the footprint uses mosquitto when installed.
# BENCHTIME is go test's -benchtime; IDLE the agent's idle CPU window.
BENCHTIME ?= 1s
IDLE      ?= 1m
bench: cross
	$(GO) run ./internal/benchdoc -out docs/benchmarks.md -dist $(DIST) -benchtime $(BENCHTIME) -idle $(IDLE)

# Long chaos runs (systemtest/soak_test.go, as root with the test-system
# packages): module faults in cycles for SOAK, then SIGKILLs of the outbox
# writer for a tenth of it. The short versions run in test-system.
SOAK         ?= 30m
SOAK_TIMEOUT ?= 3h
soak:
	MODEMGUARD_SOAK=1 MODEMGUARD_SOAK_DURATION=$(SOAK) $(GO) test -tags system -count=1 -v -timeout $(SOAK_TIMEOUT) -run '^TestSoak' ./systemtest/

fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		for name in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
			echo "fuzz $$(dirname $$f) $$name ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10x ./$$(dirname $$f); \
		done; \
	done

# Static binaries for the gateways: Raspberry Pi 3/4/5 (arm64), older Pis
# and other ARMv7 boards, and x86-64 boxes. The gateway build leaves the
# collector out (tag nocollector: no database drivers); the full build,
# with `modemguard collect`, is dist/modemguard-full-linux-*.
cross:
	@mkdir -p $(DIST)
	@set -e; for c in $(CMDS); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -tags nocollector -ldflags '$(LDFLAGS)' -o $(DIST)/$$c-linux-arm64 ./cmd/$$c; \
		CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -tags nocollector -ldflags '$(LDFLAGS)' -o $(DIST)/$$c-linux-armv7 ./cmd/$$c; \
		CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -tags nocollector -ldflags '$(LDFLAGS)' -o $(DIST)/$$c-linux-amd64 ./cmd/$$c; \
	done
	@set -e; for a in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/modemguard-full-linux-$$a ./cmd/modemguard; \
	done
	@ls -l $(DIST)

# Debian packages for the three architectures, from the static binaries:
# the agent, its systemd unit, an example config and policy.
deb: cross
	@set -e; for a in arm64:arm64 armv7:armhf amd64:amd64; do \
		goarch=$${a%%:*}; debarch=$${a##*:}; \
		sed -e "s|\$${ARCH}|$$debarch|; s|\$${VERSION}|$(DEB_VERSION)|; s|\$${BIN}|$(DIST)/modemguard-linux-$$goarch|" \
			packaging/nfpm.yaml > $(DIST)/nfpm-$$debarch.yaml; \
		$(GO) run $(NFPM) pkg --packager deb --config $(DIST)/nfpm-$$debarch.yaml --target $(DIST)/; \
	done
	@ls -l $(DIST)/*.deb

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags system ./systemtest/...
	$(GO) mod tidy -diff

demo:
	$(GO) run ./cmd/modemguard demo

clean:
	rm -rf bin $(DIST)
