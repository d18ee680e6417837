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

# Each script prints its own table; the summary at the end puts every figure beside its reference.
bench:
	@scripts/install-deps.sh --bench
	@summary=$$(mktemp); trap 'rm -f $$summary' EXIT; \
	echo "| measure | ferry | reference, same run |" >$$summary; echo "| --- | --- | --- |" >>$$summary; \
	BENCH_SUMMARY=$$summary scripts/bench-inspect.sh && \
	BENCH_SUMMARY=$$summary scripts/bench-serve.sh && \
	BENCH_SUMMARY=$$summary scripts/bench-encryption.sh && \
	BENCH_SUMMARY=$$summary scripts/bench-migrate.sh --rounds 5 && \
	BENCH_SUMMARY=$$summary scripts/bench-migrate.sh --rounds 3 --memory 1024 --compare-cut-through --skip-build && \
	BENCH_SUMMARY=$$summary scripts/bench-scale.sh && \
	echo && echo "Summary ($$(nproc) cores, $$(date -u +%Y-%m-%d)):" && echo && cat $$summary

clean:
	rm -rf .build
