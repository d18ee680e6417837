#!/usr/bin/env bash
# Benchmark of encryption at rest, every figure next to the same measurement with encryption off, in the same run:
#   1. ingest of a 1 GiB checkpoint archive over loopback (curl -T), encryption off / on with 64 KiB chunks (the
#      default) / on with 1 MiB chunks;
#   2. download throughput of the same archive (curl -o /dev/null, best of 3);
#   3. 200 random 64 KiB Range requests (sequential, one connection each), median latency;
# and, as the floor of what AES-256-GCM costs on this machine, `openssl speed -evp aes-256-gcm` on 64 KiB buffers.
# BENCH_SUMMARY=FILE appends this run's rows of the summary table (`make bench` prints it).
# Usage: scripts/bench-encryption.sh [SIZE_MIB]   (needs curl, openssl, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
swift build -c release --product ferry 2>&1 | grep -E "error" && exit 1
ferry="$(swift build -c release --show-bin-path)/ferry"
work=$(mktemp -d)
port=18490
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "making a $size_mib MiB checkpoint archive..." >&2
scripts/make-big-archive.sh "$size_mib" "$work/big.tar"
bytes=$(stat -c %s "$work/big.tar")
"$ferry" keygen -o "$work/key" >/dev/null

seconds() { awk "BEGIN{printf \"%.3f\", ($2 - $1) / 1e9}"; }
mbps() { awk "BEGIN{printf \"%.0f\", $bytes / 1048576 / $1}"; }
start_server() {
  rm -rf "$work/data"
  "$ferry" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --max-upload-size 8G "$@" 2>"$work/serve.log" &
  server_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "ferry serve did not start" >&2; cat "$work/serve.log" >&2; exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }

# mode label, then serve's extra arguments.
measure() {
  local label=$1; shift
  start_server "$@"
  cat "$work/big.tar" >/dev/null
  local start end
  start=$(date +%s%N)
  curl -sS -f -T "$work/big.tar" -X POST -H 'Content-Type: application/x-tar' "http://127.0.0.1:$port/api/v1/checkpoints" -o "$work/ingest.json"
  end=$(date +%s%N)
  local t_ingest; t_ingest=$(seconds "$start" "$end")
  local id; id=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['checkpoint']['id'])" "$work/ingest.json")
  local url="http://127.0.0.1:$port/api/v1/checkpoints/$id/archive"
  local best=999999
  for _ in 1 2 3; do
    start=$(date +%s%N); curl -sS -f -o /dev/null "$url"; end=$(date +%s%N)
    best=$(awk "BEGIN{t=($end - $start) / 1e9; print (t < $best) ? t : $best}")
  done
  # The download is the archive byte for byte (checked once, outside the timing).
  local got; got=$(curl -sS -f "$url" | openssl dgst -sha256 -r | cut -c1-64)
  [ "$got" = "$id" ] || { echo "$label: the download is not the archive" >&2; exit 1; }
  local range_ms
  range_ms=$(python3 - "$url" "$bytes" <<'PY'
import random, subprocess, sys, time
url, size = sys.argv[1], int(sys.argv[2])
random.seed(7)
times = []
for _ in range(200):
    first = random.randrange(0, size - 65536)
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-r", f"{first}-{first + 65535}", url], check=True)
    times.append(time.perf_counter() - start)
times.sort()
print(f"{times[len(times) // 2] * 1000:.1f}")
PY
)
  stop_server
  local stored; stored=$(du -sb "$work/data/blobs" | cut -f1)
  printf "| %-28s | %9s MiB/s | %9s MiB/s | %7s ms | %12s |\n" "$label" "$(mbps "$t_ingest")" "$(mbps "$best")" "$range_ms" "$stored" >>"$work/table"
}

echo "| mode | ingest | download | 64 KiB Range, median | blob bytes stored |" >"$work/table"
echo "| --- | --- | --- | --- | --- |" >>"$work/table"
measure "encryption off"
measure "encryption on, 64 KiB chunks" --encryption-key "$work/key"
measure "encryption on, 1 MiB chunks" --encryption-key "$work/key" --encryption-chunk-size 1048576

aes=$(openssl speed -evp aes-256-gcm -seconds 2 -bytes 65536 2>/dev/null | awk '/^AES-256-GCM|^aes-256-gcm/ {v=$NF; sub("k","",v); printf "%.0f", v * 1000 / 1048576}')
sha=$(openssl speed -evp sha256 -seconds 2 -bytes 65536 2>/dev/null | awk '/^sha256/ {v=$NF; sub("k","",v); printf "%.0f", v * 1000 / 1048576}')

echo
echo "Encryption at rest, $size_mib MiB archive ($bytes bytes), $(nproc) cores, $(date -u +%Y-%m-%d):"
echo
cat "$work/table"
echo
echo "Reference, same run: openssl speed -evp aes-256-gcm, 64 KiB buffers, one core: $aes MiB/s; sha256: $sha MiB/s"
if [ -n "${BENCH_SUMMARY:-}" ]; then
  off=$(sed -n 3p "$work/table" | awk -F'|' '{print $3 "/" $4}' | tr -s ' ')
  on=$(sed -n 4p "$work/table" | awk -F'|' '{print $3 "/" $4}' | tr -s ' ')
  echo "| ingest / download, encryption on (64 KiB chunks) | $on | encryption off: $off; openssl aes-256-gcm $aes MiB/s |" >>"$BENCH_SUMMARY"
fi
