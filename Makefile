# The two commands of the README: `make run` and `make test`. Both install missing Debian packages first.
SWIFT ?= swift
SAMPLE ?= ../shared/testdata/archives/podman-counter-none.tar

.PHONY: deps build run test bench clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

# Ferry's main job on its embedded defaults: inspect a shipped checkpoint archive.
run: build
	$$($(SWIFT) build -c release --show-bin-path)/ferry inspect --all $(SAMPLE)

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: deps
	@scripts/install-deps.sh --bench
	scripts/bench-inspect.sh

clean:
	rm -rf .build
