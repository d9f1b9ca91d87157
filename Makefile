# invad: the commands README.md promises. Each target installs what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := test
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build test sanitize demo bench clean

deps:  ## install build, test and demo dependencies (Debian 12; idempotent)
	$(SUDO) scripts/install-deps.sh

build: deps  ## Release build (g++)
	cmake --preset release
	cmake --build --preset release

test: build  ## Release build, all tests (unit, integration, slow)
	ctest --preset release -j2

sanitize: deps  ## clang ASan+UBSan (unit|integration, not slow) + fuzzers 60 s each; TSan on core
	scripts/sanitize.sh

demo: build  ## demo data, train models/demo if absent (~7 min), evaluate, serve it and score the demo set with the CLI
	scripts/demo.sh

bench: build  ## core benchmarks -> docs/benchmarks.md tables (see bench/README.md)
	bench/run_core_bench.sh

clean:
	rm -rf build
