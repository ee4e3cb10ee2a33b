# lightsout Makefile. `make demo` and `make test` are the two set-up commands.
GO ?= go
BIN := bin/lightsout
STATICCHECK_VERSION := v0.7.0
export CGO_ENABLED := 0

.PHONY: build test unit deps bench fuzz lint vet demo clean

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/lightsout

deps:
	./testdata/tools/deps.sh

# The full suite: installs what integration tests need, then runs every test
# (a missing tool fails instead of skipping) and each fuzzer briefly.
test: deps build vet
	LIGHTSOUT_INTEGRATION=1 $(GO) test -count=1 -timeout 30m ./...
	$(MAKE) fuzz FUZZTIME=10000x

# Unit tests only (tests needing external tools skip when they are absent).
unit:
	$(GO) test ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

# FUZZTIME is a duration (30s) or an execution count (10000x). make test uses
# a count: a duration races Go 1.26's fuzz coordinator on a loaded machine
# and fails with a bare "context deadline exceeded" and no crasher
# (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 30s
fuzz:
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r grep -H -o '^func Fuzz[A-Za-z0-9_]*' | sed 's/:func /:/'); do \
		file=$${spec%%:*}; fn=$${spec##*:}; dir=$$(dirname $$file); \
		echo "fuzz $$dir $$fn"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$dir || exit 1; \
	done

# go vet and gofmt: cheap, part of `make test`.
vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: vet
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	"$$($(GO) env GOPATH)/bin/staticcheck" ./...

# MACHINE=qemu: the simulated server is a qemu VM that really boots lightsout's
# deploy ramdisk and then the deployed image (a few minutes under TCG).
MACHINE ?=
demo: build
	MACHINE=$(MACHINE) ./testdata/tools/demo.sh $(BIN)

clean:
	rm -rf bin
