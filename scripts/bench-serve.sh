#!/usr/bin/env bash
# Benchmark of `ferry serve`, each figure next to a reference measured in the same run:
#   1. ingest of a 1 GiB checkpoint archive over loopback (curl -T) vs `openssl dgst -sha256` of the same file,
#      with the service's peak RSS after a 1 GiB and after a 3 GiB ingest (memory must stay flat);
#   2. download throughput (curl -o /dev/null) vs nginx serving the same file;
#   3. list latency with 100,000 catalogued checkpoints at 64 connections (wrk) vs nginx serving the same JSON,
#      cached (one URL) and uncached (a parameter the list ignores, new on every request), plain and with q=;
#   4. every documented filter x sort x order alone (best of 3 each; the slowest is reported), the web page,
#      /healthz and random 64 KiB Range requests, each beside nginx serving the same bytes; the service's VmHWM
#      after all that load.
# The 1 GiB archive is a real Podman checkpoint when the runtime lab is set up (scripts/bench-archive.sh).
# BENCH_SUMMARY=FILE appends this run's rows of the summary table (`make bench` prints it).
# Usage: scripts/bench-serve.sh   (needs curl, openssl, nginx, wrk, python3; `make bench` installs them)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product ferry 2>&1 | grep -E "error" && exit 1
ferry="$(swift build -c release --show-bin-path)/ferry"
work=$(mktemp -d)
port=18480
nginx_port=18481
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "making 1 GiB and 3 GiB checkpoint archives..." >&2
scripts/bench-archive.sh 1024 "$work/big1.tar"
kind=$(cat "$work/big1.tar.kind")
big1_bytes=$(stat -c %s "$work/big1.tar")
scripts/make-big-archive.sh 3072 "$work/big3.tar"

start_server() {
  "$ferry" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --max-upload-size 8G 2>"$work/serve.log" &
  server_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "ferry serve did not start" >&2; cat "$work/serve.log" >&2; exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }
hwm() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$server_pid/status"; }
seconds() { local start=$1 end=$2; awk "BEGIN{printf \"%.2f\", ($end - $start) / 1e9}"; }

# 1. Ingest.
cat "$work/big1.tar" >/dev/null
start=$(date +%s%N); openssl dgst -sha256 "$work/big1.tar" >/dev/null; end=$(date +%s%N)
t_sha=$(seconds "$start" "$end")
# The durability floor: copying the file and fsyncing the copy (what an acknowledged ingest must also do).
start=$(date +%s%N); cp "$work/big1.tar" "$work/copy.tar"; sync "$work/copy.tar"; end=$(date +%s%N)
t_copy=$(seconds "$start" "$end")
rm -f "$work/copy.tar"
start_server
start=$(date +%s%N)
curl -sS -f -T "$work/big1.tar" -X POST -H 'Content-Type: application/x-tar' "http://127.0.0.1:$port/api/v1/checkpoints" -o "$work/ingest.json"
end=$(date +%s%N)
t_ingest=$(seconds "$start" "$end")
rss_1g=$(hwm)
curl -sS -f -T "$work/big3.tar" -X POST -H 'Content-Type: application/x-tar' "http://127.0.0.1:$port/api/v1/checkpoints" -o /dev/null
rss_3g=$(hwm)
id=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['checkpoint']['id'])" "$work/ingest.json")

# 2. Download, against nginx serving the stored file.
mkdir -p "$work/www"
cp "$work/big1.tar" "$work/www/big1.tar"
chmod 0755 "$work" "$work/www" && chmod 0644 "$work/www/big1.tar"   # nginx workers run as www-data
cat >"$work/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
  }
}
EOF
nginx -c "$work/nginx.conf" -p "$work"
best() {  # best of 3 wall times of a curl download
  local best=""
  for _ in 1 2 3; do
    local t
    t=$(curl -sS -f -o /dev/null -w '%{time_total}' "$1")
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  echo "$best"
}
t_ferry_dl=$(best "http://127.0.0.1:$port/api/v1/checkpoints/$id/archive")
t_nginx_dl=$(best "http://127.0.0.1:$nginx_port/big1.tar")
stop_server

# 3. List latency with 100k rows: the rows are copied from the real one straight into SQLite.
python3 scripts/bulk_rows.py "$work/data/catalog.sqlite" 100000
start_server
curl -sS -f "http://127.0.0.1:$port/api/v1/checkpoints?limit=50" -o "$work/www/list.json"
chmod 0644 "$work/www/list.json"
list_wrk=$(wrk -t2 -c64 -d10s --latency "http://127.0.0.1:$port/api/v1/checkpoints?limit=50")
nginx_wrk=$(wrk -t2 -c64 -d10s --latency "http://127.0.0.1:$nginx_port/list.json")
# Uncached: every request a new key of the list cache.
cat >"$work/uncached.lua" <<'LUA'
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", wrk.path .. "&_=" .. id .. "-" .. n)
end
LUA
list_uncached_wrk=$(wrk -t2 -c64 -d10s --latency -s "$work/uncached.lua" "http://127.0.0.1:$port/api/v1/checkpoints?limit=50")
q_wrk=$(wrk -t2 -c64 -d10s --latency "http://127.0.0.1:$port/api/v1/checkpoints?limit=50&q=counter")
q_uncached_wrk=$(wrk -t2 -c64 -d10s --latency -s "$work/uncached.lua" "http://127.0.0.1:$port/api/v1/checkpoints?limit=50&q=counter")
rps() { awk '/Requests\/sec/ {print int($2)}' <<<"$1"; }
p50() { awk '/ 50%/ {print $2}' <<<"$1"; }
p99() { awk '/ 99%/ {print $2}' <<<"$1"; }
total=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['total'])" "$work/www/list.json")

# 4. Filters alone (best of 5 single requests), /healthz and the page under load, random 64 KiB ranges of the
#    1 GiB archive, each beside nginx serving the same bytes.
alone() {  # uncached: a parameter the list ignores makes each request a new key of the list cache
  local best=9 t n
  for n in 1 2 3 4 5; do
    t=$(curl -sS -f -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/api/v1/checkpoints?$1&_=$RANDOM$n")
    best=$(awk "BEGIN{print ($t < $best) ? $t : $best}")
  done
  awk "BEGIN{printf \"%.1f ms\", $best * 1000}"
}
t_q=$(alone "limit=50&q=counter")
t_filter_sort=$(alone "limit=50&engine=Podman&sort=size")
# Every documented filter with every sort key, both ways: the slowest best-of-3.
slowest=0; slowest_query=""; combinations=0
for filter in "" "namespace=shop" "pod=counter" "container=bench-5" "engine=Podman" "node=node-a" \
              "image=localhost/busybox:test" "validation=clean" "uploaded_after=2026-01-01T00:00:30Z" \
              "uploaded_before=2026-01-01T00:00:30Z" "label=app=counter" "q=counter" "q=bench-77"; do
  for sort in uploaded created container namespace pod engine node image size; do
    for order in asc desc; do
      query="limit=50&sort=$sort&order=$order${filter:+&$filter}"
      best=9
      for n in 1 2 3; do
        t=$(curl -sS -f -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/api/v1/checkpoints?$query&_=$RANDOM$n")
        best=$(awk "BEGIN{print ($t < $best) ? $t : $best}")
      done
      combinations=$((combinations + 1))
      if awk "BEGIN{exit !($best > $slowest)}"; then slowest=$best; slowest_query=$query; fi
    done
  done
done
t_slowest=$(awk "BEGIN{printf \"%.1f ms\", $slowest * 1000}")
curl -sS -f "http://127.0.0.1:$port/" -o "$work/www/page.html"
echo '{"status":"ok"}' >"$work/www/healthz.json"
chmod 0644 "$work/www/page.html" "$work/www/healthz.json"
healthz_wrk=$(wrk -t2 -c64 -d10s --latency "http://127.0.0.1:$port/healthz")
nginx_healthz_wrk=$(wrk -t2 -c64 -d10s --latency "http://127.0.0.1:$nginx_port/healthz.json")
page_wrk=$(wrk -t2 -c64 -d10s --latency "http://127.0.0.1:$port/")
nginx_page_wrk=$(wrk -t2 -c64 -d10s --latency "http://127.0.0.1:$nginx_port/page.html")
cat >"$work/range.lua" <<LUA
math.randomseed(7)
request = function()
  local start = math.random(0, $big1_bytes - 65536)
  return wrk.format("GET", nil, {["Range"] = "bytes=" .. start .. "-" .. (start + 65535)})
end
LUA
range_wrk=$(wrk -t2 -c64 -d10s --latency -s "$work/range.lua" "http://127.0.0.1:$port/api/v1/checkpoints/$id/archive")
nginx_range_wrk=$(wrk -t2 -c64 -d10s --latency -s "$work/range.lua" "http://127.0.0.1:$nginx_port/big1.tar")
# What monitoring sees after the load: peak resident (file-mapped catalog pages included) and the heap's share.
list_hwm=$(hwm)
list_anon=$(awk '/RssAnon/ {print int($2/1024)}' "/proc/$server_pid/status")

mib=1024
echo
echo "ferry serve benchmark, $(nproc) cores, $(date -u +%Y-%m-%d)"
printf '%-58s %10s %10s\n' "measure" "ferry" "reference"
printf '%-58s %9ss %9ss  (openssl dgst -sha256)\n' "ingest 1 GiB over loopback vs hashing the file" "$t_ingest" "$t_sha"
printf '%-58s %10s %9ss  (cp + sync of the copy)\n' "  the same file copied and made durable" "" "$t_copy"
printf '%-58s %10s\n' "ingest throughput (MiB/s)" "$(awk "BEGIN{printf \"%d\", $mib / $t_ingest}")"
printf '%-58s %8s MiB %8s MiB\n' "service peak RSS after 1 GiB ingest, after 3 GiB more" "$rss_1g" "$rss_3g"
printf '%-58s %9ss %9ss  (nginx)\n' "download 1 GiB (curl -o /dev/null)" "$t_ferry_dl" "$t_nginx_dl"
printf '%-58s %10s %10s  (nginx, same JSON)\n' "GET /api/v1/checkpoints?limit=50 with $total rows (one URL: cached): req/s" "$(rps "$list_wrk")" "$(rps "$nginx_wrk")"
printf '%-58s %10s %10s\n' "  latency p50" "$(p50 "$list_wrk")" "$(p50 "$nginx_wrk")"
printf '%-58s %10s %10s\n' "  latency p99" "$(p99 "$list_wrk")" "$(p99 "$nginx_wrk")"
printf '%-58s %10s\n' "  uncached (a new URL each time): req/s" "$(rps "$list_uncached_wrk")"
printf '%-58s %10s\n' "  uncached latency p99" "$(p99 "$list_uncached_wrk")"
printf '%-58s %10s\n' "  ?limit=50&q=counter, one URL: req/s" "$(rps "$q_wrk")"
printf '%-58s %10s\n' "  ?limit=50&q=counter, uncached: req/s" "$(rps "$q_uncached_wrk")"
printf '%-58s %10s\n' "  ?limit=50&q=counter alone, uncached" "$t_q"
printf '%-58s %10s\n' "  ?limit=50&engine=Podman&sort=size alone, uncached" "$t_filter_sort"
printf '%-58s %10s  (%s)\n' "  slowest of $combinations filter x sort x order alone" "$t_slowest" "$slowest_query"
printf '%-58s %10s %10s  (nginx, same page)\n' "web page / at 64 connections: req/s" "$(rps "$page_wrk")" "$(rps "$nginx_page_wrk")"
printf '%-58s %10s %10s\n' "  latency p99" "$(p99 "$page_wrk")" "$(p99 "$nginx_page_wrk")"
printf '%-58s %10s %10s  (nginx, a static file)\n' "/healthz at 64 connections: req/s" "$(rps "$healthz_wrk")" "$(rps "$nginx_healthz_wrk")"
printf '%-58s %10s %10s  (nginx, same file)\n' "random 64 KiB Range of the 1 GiB archive, 64 connections: req/s" "$(rps "$range_wrk")" "$(rps "$nginx_range_wrk")"
printf '%-58s %10s %10s\n' "  latency p99" "$(p99 "$range_wrk")" "$(p99 "$nginx_range_wrk")"
printf '%-58s %8s MiB  (heap and stacks: %s MiB)\n' "service VmHWM after the list, page and Range load" "$list_hwm" "$list_anon"

summary=${BENCH_SUMMARY:-/dev/null}
{
  echo "| ingest 1 GiB $kind tar over loopback | $t_ingest s | \`openssl dgst -sha256\` $t_sha s; \`cp\` + \`sync\` of the copy $t_copy s |"
  echo "| service peak RSS after that ingest, after 3 GiB more | $rss_1g MiB, $rss_3g MiB | — |"
  echo "| \`GET /api/v1/checkpoints?limit=50\`, $total rows, 64 connections, one URL (cached) | $(rps "$list_wrk") req/s, p99 $(p99 "$list_wrk") | nginx, same JSON: $(rps "$nginx_wrk") req/s, p99 $(p99 "$nginx_wrk") |"
  echo "| the same, a new URL each request (uncached) | $(rps "$list_uncached_wrk") req/s, p99 $(p99 "$list_uncached_wrk") | — |"
  echo "| \`q=counter\` at 64 connections: one URL / uncached | $(rps "$q_wrk") / $(rps "$q_uncached_wrk") req/s | — |"
  echo "| \`q=counter\` alone, uncached | $t_q | — |"
  echo "| \`engine=Podman&sort=size\` alone, uncached | $t_filter_sort | — |"
  echo "| slowest of $combinations filter × sort × order alone, uncached | $t_slowest (\`$slowest_query\`) | — |"
  echo "| web page \`/\`, 64 connections | $(rps "$page_wrk") req/s, p99 $(p99 "$page_wrk") | nginx, same page: $(rps "$nginx_page_wrk") req/s |"
  echo "| \`/healthz\`, 64 connections | $(rps "$healthz_wrk") req/s | nginx, a static file: $(rps "$nginx_healthz_wrk") req/s |"
  echo "| random 64 KiB \`Range\` of the 1 GiB archive, 64 connections | $(rps "$range_wrk") req/s, p99 $(p99 "$range_wrk") | nginx, same file: $(rps "$nginx_range_wrk") req/s, p99 $(p99 "$nginx_range_wrk") |"
  echo "| 1 GiB download | $t_ferry_dl s | nginx $t_nginx_dl s |"
  echo "| service VmHWM after the list, page and Range load | $list_hwm MiB (heap and stacks $list_anon MiB) | — |"
} >>"$summary"
