#!/usr/bin/env bash
# Writes the benchmarks' big checkpoint archive (plain tar) to OUTPUT and says on stderr which kind it made:
#   - with the runtime lab set up (root, ../shared/lab/setup.sh --check): a real one, `podman container checkpoint
#     --export` of a busybox container whose pid 1 holds SIZE_MIB of memory (random bytes, base64-encoded: about as
#     compressible as real heaps) and has SECRET_TOKEN=hunter2 in its environment;
#   - otherwise the synthetic one of scripts/make-big-archive.sh (the shipped counter checkpoint with its pid 1 grown
#     by SIZE_MIB of pages), announced loudly.
# OUTPUT.kind gets one word, "real" or "synthetic", for the benchmark tables.
# Usage: scripts/bench-archive.sh SIZE_MIB OUTPUT.tar
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=$1
output=$2
lab=${FERRY_LAB_DIR:-../shared/lab}
image=localhost/busybox:test

if [[ $(id -u) == 0 ]] && [[ -f $lab/setup.sh ]] && bash "$lab/setup.sh" --check >/dev/null 2>&1; then
  name=ferry-bench-memory-$$
  trap 'podman rm -f -t 0 "$name" >/dev/null 2>&1 || true' EXIT
  random_bytes=$((size_mib * 1024 * 1024 * 3 / 4))   # base64 makes 4 bytes of 3
  podman run -d --name "$name" -e SECRET_TOKEN=hunter2 "$image" sh -c \
    "x=\$(head -c $random_bytes /dev/urandom | base64 -w 0); echo ready > /tmp/ready; while true; do sleep 1; done" >/dev/null
  for _ in $(seq 300); do podman exec "$name" cat /tmp/ready >/dev/null 2>&1 && break; sleep 0.5; done
  podman exec "$name" cat /tmp/ready >/dev/null
  pid=$(podman inspect -f '{{.State.Pid}}' "$name")
  rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status")
  podman container checkpoint --export="$output" --compress=none "$name" >/dev/null
  echo real >"$output.kind"
  echo "bench archive: a real Podman checkpoint of a container whose pid 1 had $rss MiB resident" >&2
else
  scripts/make-big-archive.sh "$size_mib" "$output"
  echo synthetic >"$output.kind"
  echo "BENCH: the runtime lab is not set up (or not root): the archive is SYNTHETIC (scripts/make-big-archive.sh)," \
    "not a real Podman checkpoint" >&2
fi
