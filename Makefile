# cached: a Nix binary cache server.
GO ?= go
FUZZTIME ?= 10s
# Tests that need the Nix client, MinIO, PostgreSQL, kustomize, Chromium, nginx
# or systemd-analyze fail instead of skipping.
export CACHED_REQUIRE_NIX ?= 1
export CACHED_REQUIRE_MINIO ?= 1
export CACHED_REQUIRE_POSTGRES ?= 1
export CACHED_REQUIRE_KUSTOMIZE ?= 1
export CACHED_REQUIRE_CHROMIUM ?= 1
export CACHED_REQUIRE_NGINX ?= 1
export CACHED_REQUIRE_SYSTEMD_ANALYZE ?= 1
# Where scripts/test-deps puts MinIO and kustomize; the tests look there too.
export CACHED_MINIO ?= $(HOME)/.cache/cached-ci/bin/minio
export CACHED_KUSTOMIZE ?= $(HOME)/.cache/cached-ci/bin/kustomize

.PHONY: all build static run test test-deps check unit fuzz bench bench-go clean

all: build

build:
	$(GO) build -o bin/cached ./cmd/cached

# A static binary, as the Dockerfile builds it: for a container without a C
# library (deploy/proxy-container).
static:
	CGO_ENABLED=1 $(GO) build -trimpath -tags netgo,osusergo,sqlite_omit_load_extension \
		-ldflags '-s -w -linkmode external -extldflags -static' -o bin/cached-static ./cmd/cached

# Serve on embedded defaults: ./cached-data, 127.0.0.1:8080.
run:
	$(GO) run ./cmd/cached serve

# Everything: dependencies, formatting and vet, all tests (the real Nix
# client included), and a short run of every fuzz target.
test: test-deps check unit fuzz

test-deps:
	scripts/test-deps

check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -timeout 20m ./...

fuzz:
	scripts/fuzz $(FUZZTIME)

# cached side by side with nginx serving a static cache, with each Nix
# client (needs root for nix-bin, nginx and wrk); writes bench/COMPARE.md.
# BENCHFLAGS adds options, such as -ncps PATH for ncps as a peer.
BENCHFLAGS ?=
bench:
	scripts/bench-deps
	$(GO) run ./bench/compare -out bench/COMPARE.md $(BENCHFLAGS)

# The Go benchmarks (codecs, handlers, catalogs, ingest).
bench-go:
	$(GO) test -run='^$$' -bench=. -benchtime=1s ./...

clean:
	rm -rf bin
