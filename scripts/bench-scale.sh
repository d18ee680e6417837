#!/usr/bin/env bash
# What one replica sustains, on the embedded defaults (SQLite + local blobs) and on the scale-out configuration
# (PostgreSQL + an S3-compatible store), each figure beside a reference measured in the same run:
#   1. ingest of a 1 GiB checkpoint archive over loopback vs `openssl dgst -sha256` of the file, and on the object
#      store vs `curl -T` of the same file straight into the store (the store's own rate);
#   2. ingests per second of small real archives (2,000 distinct ones, 8 at a time) and what each costs the
#      catalog in bytes (database size before and after, over the count), extrapolated to 1M checkpoints;
#   3. 32 concurrent downloads of a 64 MiB archive: aggregate MiB/s vs nginx serving the file (local) or 32
#      concurrent GETs straight from the store (object store);
#   4. uncached list requests (`GET /api/v1/checkpoints?limit=50`, a new URL each time) with 100,000 rows at 64
#      connections (wrk), on one replica and on two at once;
#   5. heartbeats per second (POST /api/v1/nodes/NAME/heartbeat from 10,000 node names in turn, 64 connections),
#      on one replica and on two at once: what a fleet's agents cost the catalog's writer.
# The object store is moto's server mode (scripts/objectstore.sh): in-memory Python, much slower than a real one,
# which is why its own rate is measured beside Ferry's. docs/scale.md has the figures and what they mean.
# BENCH_SUMMARY=FILE appends this run's rows of the summary table.
# Usage: scripts/bench-scale.sh   (needs curl, openssl, nginx, wrk, python3, postgresql, moto; `make bench` installs them)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench >&2
swift build -c release --product ferry 2>&1 | grep -E "error" && exit 1
ferry="$(swift build -c release --show-bin-path)/ferry"
work=$(mktemp -d)
chmod 0755 "$work"   # PostgreSQL runs as postgres and nginx's workers as www-data
port=18580
port2=18581
nginx_port=18582
moto_port=18583
pg_port=18584
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  bash scripts/postgres.sh stop "$work/postgres" >/dev/null 2>&1 || true
  FERRY_OBJECTSTORE_PORT=$moto_port bash scripts/objectstore.sh stop "$work/moto" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
seconds() { awk "BEGIN{printf \"%.2f\", ($2 - $1) / 1e9}"; }
mibs() { awk "BEGIN{printf \"%d\", $1 / $2}"; }
rps() { awk '/Requests\/sec/ {print int($2)}' <<<"$1"; }
p99() { awk '/ 99%/ {print $2}' <<<"$1"; }

echo "making the archives..." >&2
scripts/bench-archive.sh 1024 "$work/big1.tar"
kind=$(cat "$work/big1.tar.kind")
scripts/make-big-archive.sh 64 "$work/mid64.tar"
python3 - "../shared/testdata/archives/podman-counter-none.tar" "$work/small" 2000 <<'PY'
# Distinct real archives: the shipped counter checkpoint with one small file of its own appended.
import io, os, sys, tarfile
source, directory, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(directory)
original = open(source, "rb").read()
for n in range(count):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(original)) as old, tarfile.open(fileobj=buffer, mode="w") as new:
        for member in old.getmembers():
            new.addfile(member, old.extractfile(member) if member.isfile() else None)
        note = f"bench {n}\n".encode()
        info = tarfile.TarInfo("bench-note.txt")
        info.size = len(note)
        new.addfile(info, io.BytesIO(note))
    open(f"{directory}/{n:05d}.tar", "wb").write(buffer.getvalue())
PY

echo "starting PostgreSQL and the object store..." >&2
pg_url=$(bash scripts/postgres.sh start "$work/postgres" "$pg_port" | tail -1)
FERRY_OBJECTSTORE_PORT=$moto_port bash scripts/objectstore.sh start "$work/moto" >/dev/null
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=ferry AWS_SECRET_ACCESS_KEY=ferry
s3="--blobs s3://ferry/bench --s3-endpoint http://127.0.0.1:$moto_port"

start_server() {  # PORT DATA ARGS…
  local listen=$1 data=$2
  shift 2
  "$ferry" serve --listen "127.0.0.1:$listen" --data-dir "$data" --max-upload-size 8G "$@" 2>>"$work/serve-$listen.log" &
  pids+=($!)
  server_pid=$!
  for _ in $(seq 6000); do curl -sf "http://127.0.0.1:$listen/healthz" >/dev/null && return; sleep 0.1; done
  echo "ferry serve did not start" >&2; cat "$work/serve-$listen.log" >&2; exit 1
}
stop_servers() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  pids=()
}
catalog_bytes() {  # embedded DATA | postgres
  if [ "$1" = postgres ]; then
    psql "$pg_url" -qtA -c "CHECKPOINT" >/dev/null 2>&1 || true
    psql "$pg_url" -qtA -c "SELECT pg_database_size(current_database())"
  else
    python3 -c "import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); db.execute('PRAGMA wal_checkpoint(TRUNCATE)'); print(db.execute('PRAGMA page_count').fetchone()[0]*db.execute('PRAGMA page_size').fetchone()[0])" "$1/catalog.sqlite"
  fi
}
bulk_rows() {  # embedded DATA | postgres: copies the first row to 100,000 rows in all, straight into the database
  if [ "$1" = postgres ]; then
    psql "$pg_url" -v ON_ERROR_STOP=1 -qtA >/dev/null <<'SQL'
DO $$
DECLARE columns text; projection text;
BEGIN
  SELECT string_agg(column_name, ',' ORDER BY ordinal_position) INTO columns
    FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'checkpoint';
  projection := regexp_replace(columns, '\mid\M', 'encode(sha256((''bulk'' || g)::bytea), ''hex'')');
  projection := regexp_replace(projection, '\mcontainer_name\M', '''bulk-'' || g');
  EXECUTE format('INSERT INTO checkpoint (%s) SELECT %s FROM (SELECT * FROM checkpoint LIMIT 1) c, '
                 'generate_series(1, 100000 - (SELECT count(*) FROM checkpoint)) g ON CONFLICT DO NOTHING', columns, projection);
  -- A placeholder statement per copied row, so the next start has nothing to sign (a real ingest writes one).
  INSERT INTO checkpoint_statement (checkpoint_id, chain_key, chain_index, statement_digest, envelope)
    SELECT c.id, 'bulk/' || c.id, 0, 'sha256:' || c.id, '{}' FROM checkpoint c
    WHERE NOT EXISTS (SELECT 1 FROM checkpoint_statement s WHERE s.checkpoint_id = c.id);
END $$;
ANALYZE checkpoint;
ANALYZE checkpoint_statement;
SQL
  else
    python3 scripts/bulk_rows.py "$1/catalog.sqlite" 100000
  fi
}
cat >"$work/heartbeat.lua" <<'LUA'
-- Heartbeats as agents send them (about 1 KiB of facts), from 10,000 node names in turn.
local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
local n = 0
local facts = '{"runtimes":["runc","crun"],"criu_version":40200,"kernel":"6.1.0-28-amd64","architecture":"amd64",' ..
  '"cgroup_version":2,"ips_in_use":["10.88.0.2","10.88.0.3","10.88.0.4","10.88.0.5"],' ..
  '"container_names":["web-1","web-2","worker-1","worker-2","cache","db-proxy","metrics","log-shipper"],' ..
  '"images":["docker.io/library/nginx:1.27","docker.io/library/redis:7","registry.example/app/worker:2.14.1"],' ..
  '"networks":["podman","backend"],"free_disk_bytes":812345678901,"mounts":["/var/lib/app","/srv/cache"]}'
request = function()
  n = n + 1
  local name = "bench-node-" .. ((n * 7 + id * 1009) % 10000)
  local body = '{"name":"' .. name .. '","agent_url":"http://10.0.' .. (n % 250) .. '.' .. (id % 250) .. ':8090",' ..
    '"driver":"podman","runtime_version":"4.3.1","free_disk_bytes":812345678901,"version":"bench","facts":' .. facts .. '}'
  return wrk.format("POST", "/api/v1/nodes/" .. name .. "/heartbeat", {["Content-Type"] = "application/json"}, body)
end
LUA
cat >"$work/uncached.lua" <<'LUA'
local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
local n = 0
request = function() n = n + 1; return wrk.format("GET", wrk.path .. "&_=" .. id .. "-" .. n) end
LUA
sign=(--aws-sigv4 "aws:amz:us-east-1:s3" --user ferry:ferry)   # requests straight to the store are signed, as Ferry's
concurrent_download() {  # URL [CURL ARGS…]: 32 at once; prints aggregate MiB/s
  local start end url=$1
  shift
  start=$(date +%s%N)
  seq 32 | xargs -P 32 -I{} curl -sS -f -o /dev/null "$@" "$url"
  end=$(date +%s%N)
  awk "BEGIN{printf \"%d\", 32 * 64 / (($end - $start) / 1e9)}"
}

# References that do not depend on the configuration.
cat "$work/big1.tar" >/dev/null
start=$(date +%s%N); openssl dgst -sha256 "$work/big1.tar" >/dev/null; end=$(date +%s%N)
t_sha=$(seconds "$start" "$end")
start=$(date +%s%N); curl -sS -f "${sign[@]}" -T "$work/big1.tar" "http://127.0.0.1:$moto_port/ferry/reference/big1.tar" -o /dev/null; end=$(date +%s%N)
t_moto_put=$(seconds "$start" "$end")
curl -sS -f "${sign[@]}" -T "$work/mid64.tar" "http://127.0.0.1:$moto_port/ferry/reference/mid64.tar" -o /dev/null
moto_get=$(concurrent_download "http://127.0.0.1:$moto_port/ferry/reference/mid64.tar" "${sign[@]}")
curl -sS -f "${sign[@]}" -X DELETE "http://127.0.0.1:$moto_port/ferry/reference/big1.tar" -o /dev/null
mkdir -p "$work/www" && cp "$work/mid64.tar" "$work/www/" && chmod 0755 "$work" "$work/www" && chmod 0644 "$work/www/mid64.tar"
cat >"$work/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http { access_log off; sendfile on; server { listen 127.0.0.1:$nginx_port; root $work/www; } }
EOF
nginx -c "$work/nginx.conf" -p "$work"
nginx_get=$(concurrent_download "http://127.0.0.1:$nginx_port/mid64.tar")

declare -A result
for config in embedded scaleout; do
  echo "measuring $config..." >&2
  data="$work/data-$config"
  if [ "$config" = embedded ]; then args=(); else args=(--catalog "$pg_url" $s3); fi
  start_server "$port" "$data" "${args[@]}"
  base="http://127.0.0.1:$port"
  # 1. One big ingest.
  start=$(date +%s%N)
  curl -sS -f -T "$work/big1.tar" -X POST -H 'Content-Type: application/x-tar' "$base/api/v1/checkpoints" -o /dev/null
  end=$(date +%s%N)
  result[$config.ingest]=$(seconds "$start" "$end")
  # 2. Small ingests, and their cost in the catalog.
  if [ "$config" = embedded ]; then before=$(catalog_bytes "$data"); else before=$(catalog_bytes postgres); fi
  start=$(date +%s%N)
  ls "$work/small"/*.tar | xargs -P 8 -I{} curl -sS -f -o /dev/null -X POST -H 'Content-Type: application/x-tar' \
    --data-binary @{} "$base/api/v1/checkpoints"
  end=$(date +%s%N)
  result[$config.small]=$(awk "BEGIN{printf \"%d\", 2000 / (($end - $start) / 1e9)}")
  count=$(curl -sS -f "$base/api/v1/checkpoints?limit=1" | python3 -c "import json,sys; print(json.load(sys.stdin)['total'])")
  [ "$count" -ge 2001 ] || { echo "only $count checkpoints catalogued" >&2; exit 1; }
  # 3. Concurrent downloads.
  id=$(curl -sS -f -X POST -H 'Content-Type: application/x-tar' --data-binary @"$work/mid64.tar" "$base/api/v1/checkpoints" \
       | python3 -c "import json,sys; print(json.load(sys.stdin)['checkpoint']['id'])")
  result[$config.download]=$(concurrent_download "$base/api/v1/checkpoints/$id/archive")
  stop_servers
  if [ "$config" = embedded ]; then after=$(catalog_bytes "$data"); else after=$(catalog_bytes postgres); fi
  result[$config.perrow]=$(( (after - before) / 2000 ))
  # 4. Lists with 100,000 rows, on one replica and on two at once.
  if [ "$config" = embedded ]; then bulk_rows "$data"; else bulk_rows postgres; fi
  start_server "$port" "$data" "${args[@]}"
  one=$(wrk -t2 -c64 -d10s --latency -s "$work/uncached.lua" "$base/api/v1/checkpoints?limit=50")
  result[$config.list]=$(rps "$one")
  result[$config.listp99]=$(p99 "$one")
  beats=$(wrk -t2 -c64 -d10s --latency -s "$work/heartbeat.lua" "$base")
  result[$config.beats]=$(rps "$beats")
  result[$config.beatsp99]=$(p99 "$beats")
  if [ "$config" = scaleout ]; then
    cp "$data/provenance-key" "$work/provenance-key"
    mkdir -p "$work/data-second" && chmod 700 "$work/data-second" && cp "$work/provenance-key" "$work/data-second/"
    start_server "$port2" "$work/data-second" "${args[@]}"
    wrk -t1 -c32 -d10s -s "$work/uncached.lua" "http://127.0.0.1:$port2/api/v1/checkpoints?limit=50" >"$work/second.wrk" &
    second=$!
    first=$(wrk -t1 -c32 -d10s -s "$work/uncached.lua" "$base/api/v1/checkpoints?limit=50")
    wait "$second"
    result[$config.list2]=$(( $(rps "$first") + $(rps "$(cat "$work/second.wrk")") ))
    wrk -t1 -c32 -d10s -s "$work/heartbeat.lua" "http://127.0.0.1:$port2" >"$work/second.wrk" &
    second=$!
    first=$(wrk -t1 -c32 -d10s -s "$work/heartbeat.lua" "$base")
    wait "$second"
    result[$config.beats2]=$(( $(rps "$first") + $(rps "$(cat "$work/second.wrk")") ))
  fi
  stop_servers
done

gib=1024
echo
echo "ferry scale benchmark, $(nproc) cores, $(date -u +%Y-%m-%d) ($kind 1 GiB archive)"
printf '%-62s %14s %14s  %s\n' "measure" "embedded" "scale-out" "reference, same run"
printf '%-62s %13ss %13ss  openssl dgst -sha256 %ss; curl -T into the store %ss\n' "ingest 1 GiB over loopback" \
  "${result[embedded.ingest]}" "${result[scaleout.ingest]}" "$t_sha" "$t_moto_put"
printf '%-62s %14s %14s  openssl %s MiB/s; store %s MiB/s\n' "  MiB/s" "$(mibs $gib "${result[embedded.ingest]}")" \
  "$(mibs $gib "${result[scaleout.ingest]}")" "$(mibs $gib "$t_sha")" "$(mibs $gib "$t_moto_put")"
printf '%-62s %14s %14s\n' "small real archives ingested per second (8 at a time)" "${result[embedded.small]}" "${result[scaleout.small]}"
printf '%-62s %14s %14s\n' "catalog bytes per checkpoint" "${result[embedded.perrow]}" "${result[scaleout.perrow]}"
printf '%-62s %13sG %13sG\n' "  extrapolated to 1M checkpoints" \
  "$(awk "BEGIN{printf \"%.1f\", ${result[embedded.perrow]} * 1e6 / 2^30}")" "$(awk "BEGIN{printf \"%.1f\", ${result[scaleout.perrow]} * 1e6 / 2^30}")"
printf '%-62s %14s %14s  nginx %s MiB/s; GETs from the store %s MiB/s\n' "32 concurrent 64 MiB downloads, aggregate MiB/s" \
  "${result[embedded.download]}" "${result[scaleout.download]}" "$nginx_get" "$moto_get"
printf '%-62s %14s %14s\n' "uncached list, 100,000 rows, 64 connections: req/s" "${result[embedded.list]}" "${result[scaleout.list]}"
printf '%-62s %14s %14s\n' "  latency p99" "${result[embedded.listp99]}" "${result[scaleout.listp99]}"
printf '%-62s %14s %14s\n' "  two replicas at once, 32 connections each: req/s in all" "—" "${result[scaleout.list2]}"
printf '%-62s %14s %14s\n' "heartbeats from 10,000 nodes, 64 connections: per second" "${result[embedded.beats]}" "${result[scaleout.beats]}"
printf '%-62s %14s %14s\n' "  latency p99" "${result[embedded.beatsp99]}" "${result[scaleout.beatsp99]}"
printf '%-62s %14s %14s\n' "  two replicas at once, 32 connections each: per second in all" "—" "${result[scaleout.beats2]}"

summary=${BENCH_SUMMARY:-/dev/null}
{
  echo "| ingest 1 GiB $kind tar, embedded / scale-out | ${result[embedded.ingest]} s / ${result[scaleout.ingest]} s | \`openssl dgst -sha256\` $t_sha s; \`curl -T\` into the store $t_moto_put s |"
  echo "| small real archives ingested per second, embedded / scale-out | ${result[embedded.small]} / ${result[scaleout.small]} | — |"
  echo "| catalog bytes per checkpoint, SQLite / PostgreSQL | ${result[embedded.perrow]} / ${result[scaleout.perrow]} | — |"
  echo "| 32 concurrent 64 MiB downloads, embedded / scale-out | ${result[embedded.download]} / ${result[scaleout.download]} MiB/s | nginx $nginx_get MiB/s; GETs from the store $moto_get MiB/s |"
  echo "| uncached list, 100,000 rows, 64 connections, SQLite / PostgreSQL / two PostgreSQL replicas | ${result[embedded.list]} / ${result[scaleout.list]} / ${result[scaleout.list2]} req/s | — |"
  echo "| heartbeats from 10,000 nodes, SQLite / PostgreSQL / two PostgreSQL replicas | ${result[embedded.beats]} / ${result[scaleout.beats]} / ${result[scaleout.beats2]} per s | — |"
} >>"$summary"
