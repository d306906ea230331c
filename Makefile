# gvp — build, run, test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

BIN       ?= bin/gvp
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG       := github.com/opengvp/gvp/internal/buildinfo
LDFLAGS   := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT) -X $(PKG).Date=$(DATE)
SERVICES_ENV := $(or $(GVP_SERVICES_DIR),/tmp/gvp-services)/env
TEST_TIMEOUT ?= 45m
FUZZTIME  ?= 10s

.PHONY: all build run test test-unit test-integration services services-down bench lint fuzz clean

all: build

## build: a static binary with version info in bin/gvp
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

## run: build and run every role in one process (gvp local) with embedded defaults
run: build
	$(BIN) local

## services: install (if missing) and start PostgreSQL, ActiveMQ, Consul and sipp for the tests
services:
	scripts/test-services.sh up

services-down:
	scripts/test-services.sh down

## test: every test (unit + integration) against real services started by scripts/
test: services
	set -a; . $(SERVICES_ENV); set +a; \
	go test -count=1 -timeout $(TEST_TIMEOUT) ./...

## test-unit: tests that need no external service (those that do skip outside CI)
test-unit:
	go test -count=1 -short ./...

test-integration: test

## bench: Go benchmarks (short) and the load scripts' summaries
bench:
	go test -run '^$$' -bench . -benchmem -benchtime 2s ./...

## lint: gofmt, go vet, staticcheck when it installs
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	@if command -v staticcheck >/dev/null || go install honnef.co/go/tools/cmd/staticcheck@v0.8.2 2>/dev/null; then \
		"$$(go env GOPATH)/bin/staticcheck" ./... || exit 1; \
	else echo "staticcheck unavailable; skipped"; fi

## fuzz: a short run of every Fuzz* target
fuzz:
	@for pkg in $$(go list ./...); do \
		for f in $$(go test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin gvp-data
