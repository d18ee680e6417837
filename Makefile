# The two commands of the README: `make run` and `make test`. Both install missing Debian packages first.
SWIFT ?= swift

.PHONY: deps build run test bench clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

# Ferry's main job on its embedded defaults: the service on 127.0.0.1:8080, data in ./ferry-data, no tokens.
run: build
	$$($(SWIFT) build -c release --show-bin-path)/ferry serve

# The runtime lab (Podman + CRIU, ../shared/lab beside the clone, as CI has it) is set up first, so the real-runtime
# tests run; without it they are skipped, and say so.
test:
	@scripts/install-deps.sh --test
	@if [ -f ../shared/lab/setup.sh ]; then bash ../shared/lab/setup.sh; \
	else echo "LAB SKIPPED: ../shared/lab not found; real-runtime tests will be skipped"; fi
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench:
	@scripts/install-deps.sh --bench
	scripts/bench-inspect.sh
	scripts/bench-serve.sh
	scripts/bench-migrate.sh

clean:
	rm -rf .build
