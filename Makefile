# imgcrypt — run 'make' (or 'make help') to list the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
MODULE  := github.com/imgcrypt/imgcrypt
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X $(MODULE)/internal/cli.version=$(VERSION)

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(DESTDIR)$(PREFIX)/bin

TEST_TIMEOUT ?= 60m
BENCHTIME    ?= 1s
BENCH_COUNT  ?= 5
BENCH_OUT    ?= .cache/bench.txt

# Tools the targets install for themselves live here, out of the user's GOBIN.
TOOLBIN             ?= $(CURDIR)/.cache/bin
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK         := $(TOOLBIN)/staticcheck

.PHONY: help build install uninstall test test-unit bench bench-registry lint demo clean

##@ General

help: ## Show this help
	@if [ -t 1 ]; then c='\033[36m' b='\033[1m' r='\033[0m'; else c= b= r=; fi; \
	awk -v c="$$c" -v b="$$b" -v r="$$r" 'BEGIN { FS = ":.*## "; printf "Usage:\n  make %s<target>%s [VAR=value]\n", c, r } \
		/^[a-zA-Z0-9_-]+:.*## / { printf "  %s%-12s%s %s\n", c, $$1, r, $$2 } \
		/^##@/ { printf "\n%s%s%s\n", b, substr($$0, 5), r }' $(MAKEFILE_LIST)

demo: build ## Encrypt and decrypt the sample image on a throwaway store (no root, no daemon)
	bash hack/demo.sh

##@ Build

build: ## Build bin/imgcrypt and its bin/ctd-decoder symlink
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/imgcrypt .
	ln -sfn imgcrypt bin/ctd-decoder

install: build ## Install imgcrypt and the ctd-decoder symlink in DESTDIR/PREFIX/bin (PREFIX=/usr/local)
	install -d "$(BINDIR)"
	install -m 0755 bin/imgcrypt "$(BINDIR)/imgcrypt"
	ln -sfn imgcrypt "$(BINDIR)/ctd-decoder"

uninstall: ## Remove what install put in DESTDIR/PREFIX/bin
	rm -f "$(BINDIR)/imgcrypt"
	if [ "$$(readlink "$(BINDIR)/ctd-decoder" 2>/dev/null)" = imgcrypt ]; then rm -f "$(BINDIR)/ctd-decoder"; fi

clean: ## Remove build and benchmark output (keeps the tools in .cache/bin)
	rm -rf bin "$(BENCH_OUT)"

##@ Test

test: ## Install what the tests need (hack/test-deps.sh), then run every test
	bash hack/test-deps.sh
	IMGCRYPT_CONTAINERD2_BIN="$$(bash hack/test-deps.sh --containerd2-bin)" IMGCRYPT_CRICTL_BIN="$$(bash hack/test-deps.sh --crictl-bin)" $(GO) test -timeout $(TEST_TIMEOUT) ./...

test-unit: ## Run the package tests only, without installing anything
	$(GO) test -timeout 10m ./internal/...

bench: ## Run the benchmarks BENCH_COUNT=5 times; print medians and ratios to the baseline
	mkdir -p "$(dir $(BENCH_OUT))"
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count $(BENCH_COUNT) ./internal/bench/... | tee "$(BENCH_OUT)"
	bash hack/bench-report.sh "$(BENCH_OUT)"

bench-registry: ## Time push and pull of a 256 MiB encrypted image over loopback, beside skopeo
	bash hack/bench-registry.sh

lint: ## Check formatting (gofmt), go vet and staticcheck
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "gofmt: not formatted:"; echo "$$files"; exit 1; fi
	$(GO) vet ./...
	@"$(STATICCHECK)" -version 2>/dev/null | grep -qF "($(STATICCHECK_VERSION:v%=%))" || \
		{ echo "installing staticcheck $(STATICCHECK_VERSION) in $(TOOLBIN)"; \
		  GOBIN="$(TOOLBIN)" $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); }
	"$(STATICCHECK)" ./...
