#!/usr/bin/env bash
# Benchmark of `ferry migrate` against the manual pipeline it automates, on the runtime lab (two Podman stores on
# this machine, as LabCluster in Tests/FerryTestSupport sets them up), measured in the same run and alternated:
#   manual: podman(A) container checkpoint --export=F --compress=zstd C; cp F G; podman(B) container restore --import=G
#   ferry:  ferry migrate --container C --from node-a --to node-b --wait   (checkpoint, push to the catalog, preflight,
#           the target downloading while the source uploads (cut-through), digest check, restore; the service and both
#           agents are real processes on loopback)
# each round moving a live counter container A->B and back B->A, so every round starts on node-a. Between moves (not
# timed) the exited source container is removed, because a restore refuses a name and ID still present, and the
# script waits until the source node's heartbeat no longer lists it, or ferry's preflight would refuse the move back.
#
# Usage: scripts/bench-migrate.sh [--rounds N] [--idle S] [--memory MIB] [--compare-cut-through] [--skip-build]
#   (ROUNDS=N works too; default 10). --compare-cut-through: each round also moves with --no-cut-through.
#   --memory MIB: the container's pid 1 also holds MIB of memory (random bytes, base64-encoded: about as compressible
#   as a real heap), so each move checkpoints, ships and restores that much. BENCH_SUMMARY=FILE appends the summary row.
#   --idle S: seconds both nodes stay quiet before every move, manual or ferry (default 2), as a node is before a
#   migration in real use; with 0 each move starts right after the previous one's clean-up.
# Needs root and the lab: bash ../shared/lab/setup.sh. Prints per-round times, min and median per direction, the
# ratio ferry/manual, and a markdown table for the README. Everything it creates is removed on exit (trap); if the
# script is killed outright, the next lab test run sweeps up after it (the run manifest below).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

rounds=${ROUNDS:-10}
idle=2
memory=0
build=1
compare=0
while (($#)); do
  case $1 in
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    --rounds=*) rounds=${1#--rounds=}; shift ;;
    --idle) idle=${2:?--idle needs seconds}; shift 2 ;;
    --memory) memory=${2:?--memory needs MiB}; shift 2 ;;
    --skip-build) build=0; shift ;;
    --compare-cut-through) compare=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench-migrate: unknown argument $1" >&2; exit 64 ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench-migrate: --rounds must be a positive number" >&2; exit 64; }
[[ $memory =~ ^[0-9]+$ ]] || { echo "bench-migrate: --memory must be a number of MiB" >&2; exit 64; }

lab=${FERRY_LAB_DIR:-../shared/lab}
[[ $(id -u) == 0 ]] || { echo "bench-migrate: run as root (Podman stores under /var/lib and /run)" >&2; exit 1; }
bash "$lab/setup.sh" --check >/dev/null || { echo "bench-migrate: the runtime lab is not set up (bash $lab/setup.sh)" >&2; exit 1; }

if ((build)); then
  echo "building ferry (release)..." >&2
  swift build -c release --product ferry >&2
fi
ferry="$(swift build -c release --show-bin-path)/ferry"
[[ -x $ferry ]] || { echo "bench-migrate: no $ferry (run without --skip-build)" >&2; exit 1; }

image=localhost/busybox:test
container=lab-bench
run=bench$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
rundir=/run/ferry-lab-$run
work=$(mktemp -d /tmp/ferry-bench-migrate-XXXXXX)
admin=lab-admin-token-0123456789abcdef
pids=()

node_dir() { echo "/var/lib/ferry-lab-$run-$1"; }
node_runroot() { echo "/run/ferry-lab-$run-$1"; }
podman_on() { local node=$1; shift; "$(node_dir "$node")/bin/podman" "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
api() { curl -sS --max-time 10 -H "Authorization: Bearer $admin" "http://127.0.0.1:$port$1"; }

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for node in node-a node-b; do
    local dir root runroot
    dir=$(node_dir "$node"); root=$dir/storage; runroot=$(node_runroot "$node")
    if [[ -x $dir/bin/podman ]]; then
      "$dir/bin/podman" rm -af -t 0 >/dev/null 2>&1 || true
      "$dir/bin/podman" rmi -af >/dev/null 2>&1 || true
    fi
    # Whatever is still mounted below the store, deepest first, then the directories.
    awk -v a="$dir" -v b="$runroot" '$5 == a || index($5, a "/") == 1 || $5 == b || index($5, b "/") == 1 { print length($5), $5 }' \
      /proc/self/mountinfo | sort -rn | cut -d' ' -f2- | while read -r mountpoint; do umount -l "$mountpoint" || true; done
    rm -rf "$dir" "$runroot"
  done
  if ((status != 0)) && [[ -d $work/logs ]]; then
    for log in "$work"/logs/*.log; do echo "--- $log" >&2; tail -20 "$log" >&2; done
  fi
  rm -rf "$work" "$rundir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The run manifest (LabRun's format): a lab test run after a killed benchmark removes what it lists.
mkdir -p "$rundir/pids" "$work/logs" "$work/scratch"
{
  echo "owner $$"
  echo "temp $work"
  for node in node-a node-b; do echo "store $node $(node_dir "$node") $(node_runroot "$node")"; done
} >"$rundir/manifest"

# The image, saved once from the default store (the cache LabCluster uses), loaded into each node's store.
image_id=$(podman image inspect --format '{{.Id}}' "$image")
cache=/var/lib/ferry-lab-cache/localhost-busybox-test-${image_id:0:12}.tar
if [[ ! -f $cache ]]; then
  mkdir -p /var/lib/ferry-lab-cache
  podman save -q -o "$cache.$$.partial" "$image" && mv "$cache.$$.partial" "$cache"
fi
for node in node-a node-b; do
  dir=$(node_dir "$node")
  mkdir -p "$dir/bin" "$dir/agent"
  # Each node gets its own runc root: restores keep the container ID, and a shared /run/runc lets one store reach
  # the other's container of the same ID.
  printf '#!/bin/sh\nexec /usr/bin/podman --root %s/storage --runroot %s --runtime-flag root=%s/runc "$@"\n' \
    "$dir" "$(node_runroot "$node")" "$(node_runroot "$node")" >"$dir/bin/podman"
  chmod 0755 "$dir/bin/podman"
  podman_on "$node" load -q -i "$cache" >/dev/null
done

# The service and both agents.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
printf 'admin %s bench\nnode lab-node-a-token-0123456789abcdef node-a\nnode lab-node-b-token-0123456789abcdef node-b\n' \
  "$admin" >"$work/tokens"
chmod 600 "$work/tokens"
"$ferry" serve --listen "127.0.0.1:$port" --data-dir "$work/service" --tokens "$work/tokens" --node-timeout 15 \
  --migrations-dir migrations --web-root web >/dev/null 2>"$work/logs/service.log" &
pids+=($!); echo "process $!" >>"$rundir/manifest"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
for node in node-a node-b; do
  PATH="$(node_dir "$node")/bin:$PATH" "$ferry" agent --server "http://127.0.0.1:$port" --node "$node" \
    --token "lab-$node-token-0123456789abcdef" --listen "127.0.0.1:$(free_port)" --driver podman \
    --work-dir "$(node_dir "$node")/agent" --heartbeat 1 >/dev/null 2>"$work/logs/$node.log" &
  pids+=($!); echo "process $!" >>"$rundir/manifest"
done
for _ in $(seq 300); do
  up=$(api /api/v1/nodes 2>/dev/null | jq '[.items[] | select(.up)] | length' 2>/dev/null || echo 0)
  [[ $up == 2 ]] && break; sleep 0.1
done
[[ $up == 2 ]] || { echo "bench-migrate: the agents did not register" >&2; exit 1; }

# Checks that the container runs on `node` and counts on from at least `previous`; prints the count.
check_running() {
  local node=$1 previous=$2 count=""
  # With --memory the first count comes once the memory is filled (about 10 s per GiB here).
  for _ in $(seq $((100 + memory))); do
    count=$(podman_on "$node" exec "$container" cat /tmp/count 2>/dev/null || true)
    [[ -n $count ]] && break; sleep 0.1
  done
  [[ -n $count && $count -ge $previous ]] || { echo "bench-migrate: $container on $node counts '$count', was $previous" >&2; exit 1; }
  echo "$count"
}

hold=""
((memory > 0)) && hold="x=\$(head -c $((memory * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 0); "
podman_on node-a run -d --name "$container" --conmon-pidfile "$rundir/pids/$container.conmon.pid" \
  --pidfile "$rundir/pids/$container.pid" "$image" sh -c "${hold}"'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done' >/dev/null
last=$(check_running node-a 1)

manual_move() {
  local from=$1 to=$2 start middle end archive=$work/scratch/manual.tar.zst copy=$work/scratch/manual-copy.tar.zst
  rm -f "$archive" "$copy"
  start=$(now)
  podman_on "$from" container checkpoint --export="$archive" --compress=zstd "$container" >/dev/null
  middle=$(now)
  cp "$archive" "$copy"
  podman_on "$to" container restore --import="$copy" >/dev/null
  end=$(now)
  # The two steps on their own, to set against ferry's checkpoint and restore phases.
  echo "$(elapsed "$start" "$middle") $(elapsed "$middle" "$end")" >>"$work/scratch/manual-steps"
  elapsed "$start" "$end"
}

ferry_move() {
  local from=$1 to=$2 start end
  start=$(now)
  "$ferry" migrate --server "http://127.0.0.1:$port" --token "$admin" --container "$container" --from "$from" --to "$to" \
    --wait --timeout 120 --json "${@:3}" >"$work/scratch/migrate.json" 2>"$work/scratch/migrate.err" \
    || { echo "bench-migrate: ferry migrate $from -> $to failed:" >&2; cat "$work/scratch/migrate.err" >&2; exit 1; }
  end=$(now)
  elapsed "$start" "$end"
}

# The last migration as the service recorded it: created_at to finished_at (what `--wait` adds is its 0.5 s poll).
service_time() {
  python3 -c 'import datetime, json, sys
m = json.load(open(sys.argv[1]))
t = lambda s: datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
print("%.3f" % (t(m["finished_at"]) - t(m["created_at"])).total_seconds())' "$work/scratch/migrate.json"
}

# After a move (untimed): the container counts on at the target; the source's exited copy is removed so that the next
# move back can restore the same name and ID (ferry removes it itself after a success); then both nodes stay quiet
# for $idle seconds.
settle() {
  local from=$1 to=$2
  last=$(check_running "$to" "$last")
  podman_on "$from" rm -f -t 0 "$container" >/dev/null 2>&1 || true
  sleep "$idle"
}

declare -a manual_ab manual_ba ferry_ab ferry_ba service_ab service_ba plain_ab plain_ba
echo "rounds: $rounds, idle $idle s before each move (container $container, $(podman --version), criu $(criu --version | awk '/Version/{print $2}'))" >&2
for round in $(seq "$rounds"); do
  t=$(manual_move node-a node-b); settle node-a node-b; manual_ab+=("$t")
  t=$(manual_move node-b node-a); settle node-b node-a; manual_ba+=("$t")
  t=$(ferry_move node-a node-b); service_ab+=("$(service_time)"); settle node-a node-b; ferry_ab+=("$t")
  t=$(ferry_move node-b node-a); service_ba+=("$(service_time)"); settle node-b node-a; ferry_ba+=("$t")
  if ((compare)); then
    ferry_move node-a node-b --no-cut-through >/dev/null; plain_ab+=("$(service_time)"); settle node-a node-b
    ferry_move node-b node-a --no-cut-through >/dev/null; plain_ba+=("$(service_time)"); settle node-b node-a
    printf 'round %d without cut-through (service): A->B %s s, B->A %s s\n' "$round" "${plain_ab[-1]}" "${plain_ba[-1]}"
  fi
  printf 'round %d: manual A->B %s s, B->A %s s; ferry A->B %s s (service %s s), B->A %s s (service %s s); count %s\n' \
    "$round" "${manual_ab[-1]}" "${manual_ba[-1]}" "${ferry_ab[-1]}" "${service_ab[-1]}" "${ferry_ba[-1]}" "${service_ba[-1]}" "$last"
done

# Where ferry's time goes: the median of each recorded phase over every migration of the run, and the events of the
# last one (each with the clock of the node that reported it).
echo >&2
echo "phases (median over $((rounds * 2)) migrations with cut-through, ms):" >&2
api "/api/v1/migrations?limit=$((rounds * 4))" | jq -r '[.items[] | select(.options.cut_through != false) | .phases[]] | group_by(.name)[]
  | "\(.[0].name) \(map(.duration_ms // 0) | sort | .[length / 2 | floor])"' | sed 's/^/  /' >&2
last_id=$(api "/api/v1/migrations?limit=$((rounds * 4))" | jq -r '[.items[] | select(.options.cut_through != false)][0].id')
printf 'manual steps (median, ms): checkpoint %.0f, cp + restore %.0f\n' \
  "$(cut -d' ' -f1 "$work/scratch/manual-steps" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] * 1000 }')" \
  "$(cut -d' ' -f2 "$work/scratch/manual-steps" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] * 1000 }')" >&2
echo "events of $last_id:" >&2
api "/api/v1/migrations/$last_id" | jq -r '.events[] | "  \(.at) \(.state): \(.message)"' >&2
api "/api/v1/migrations/$last_id" | jq -r '.phases[] | "  phase \(.name) \(.node // "service") \(.started_at // "-") .. \(.ended_at // "-") \(.duration_ms) ms"' >&2

stat_min() { printf '%s\n' "$@" | sort -g | head -1; }
stat_median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v f="$1" -v m="$2" 'BEGIN { printf "%.2f", f / m }'; }

mab_min=$(stat_min "${manual_ab[@]}"); mab_med=$(stat_median "${manual_ab[@]}")
mba_min=$(stat_min "${manual_ba[@]}"); mba_med=$(stat_median "${manual_ba[@]}")
fab_min=$(stat_min "${ferry_ab[@]}"); fab_med=$(stat_median "${ferry_ab[@]}")
fba_min=$(stat_min "${ferry_ba[@]}"); fba_med=$(stat_median "${ferry_ba[@]}")
sab_min=$(stat_min "${service_ab[@]}"); sab_med=$(stat_median "${service_ab[@]}")
sba_min=$(stat_min "${service_ba[@]}"); sba_med=$(stat_median "${service_ba[@]}")
size=$(stat -c %s "$work/scratch/manual.tar.zst")

echo
printf 'manual A->B: min %s s, median %s s\n' "$mab_min" "$mab_med"
printf 'manual B->A: min %s s, median %s s\n' "$mba_min" "$mba_med"
printf 'ferry  A->B: min %s s, median %s s\n' "$fab_min" "$fab_med"
printf 'ferry  B->A: min %s s, median %s s\n' "$fba_min" "$fba_med"
printf 'service-side (created_at -> finished_at) A->B: min %s s, median %s s; B->A: min %s s, median %s s\n' \
  "$sab_min" "$sab_med" "$sba_min" "$sba_med"
printf 'ferry/manual (median): A->B %s×, B->A %s×; (min): A->B %s×, B->A %s×\n' \
  "$(ratio "$fab_med" "$mab_med")" "$(ratio "$fba_med" "$mba_med")" "$(ratio "$fab_min" "$mab_min")" "$(ratio "$fba_min" "$mba_min")"
echo
echo "Moving a live busybox counter between two Podman stores on one machine ($rounds rounds, $(date -u +%Y-%m-%d), checkpoint archive $((size / 1024)) KiB zstd):"
echo
echo "| path | direction | min | median | ferry/manual (median) |"
echo "| --- | --- | --- | --- | --- |"
echo "| manual: \`podman container checkpoint --export --compress=zstd\` + \`cp\` + \`podman container restore --import\` | A→B | ${mab_min} s | ${mab_med} s | — |"
echo "| manual | B→A | ${mba_min} s | ${mba_med} s | — |"
echo "| \`ferry migrate --container C --from A --to B --wait\` | A→B | ${fab_min} s | ${fab_med} s | $(ratio "$fab_med" "$mab_med")× |"
echo "| \`ferry migrate\` | B→A | ${fba_min} s | ${fba_med} s | $(ratio "$fba_med" "$mba_med")× |"
echo "| the same migrations as the service recorded them (\`created_at\` → \`finished_at\`) | A→B | ${sab_min} s | ${sab_med} s | $(ratio "$sab_med" "$mab_med")× |"
echo "| (service-side) | B→A | ${sba_min} s | ${sba_med} s | $(ratio "$sba_med" "$mba_med")× |"

# The summary row: the container is stopped for the whole manual pipeline, and for a ferry migration from its
# checkpoint to its restore (the service-side time less the preflight, while it still runs).
preflight_ms=$(api "/api/v1/migrations?limit=$((rounds * 4))" | jq '[.items[] | select(.options.cut_through != false) | .phases[] | select(.name == "preflight") | .duration_ms // 0] | sort | .[length / 2 | floor]')
what="live busybox counter"
((memory > 0)) && what="container holding $memory MiB"
manual_med=$(stat_median "${manual_ab[@]}" "${manual_ba[@]}")
service_med=$(stat_median "${service_ab[@]}" "${service_ba[@]}")
downtime=$(awk -v s="$service_med" -v p="$preflight_ms" 'BEGIN { printf "%.3f", s - p / 1000 }')
size_text="$((size / 1024)) KiB"
((size >= 10 * 1048576)) && size_text="$((size / 1048576)) MiB"
echo "| migration of a $what ($size_text zstd archive), median of $((rounds * 2)): downtime (checkpoint → restored) | ${downtime} s ($(ratio "$downtime" "$manual_med")× manual) | manual \`checkpoint --export\` + \`cp\` + \`restore --import\`: ${manual_med} s |" \
  >>"${BENCH_SUMMARY:-/dev/null}"
if ((compare)); then
  plain_med=$(stat_median "${plain_ab[@]}" "${plain_ba[@]}")
  plain_downtime=$(awk -v s="$plain_med" -v p="$preflight_ms" 'BEGIN { printf "%.3f", s - p / 1000 }')
  echo "without cut-through (--no-cut-through), service-side median of $((rounds * 2)): ${plain_med} s; downtime ${plain_downtime} s ($(ratio "$plain_downtime" "$manual_med")× manual)"
  echo "| the same without cut-through (\`--no-cut-through\`) | ${plain_downtime} s ($(ratio "$plain_downtime" "$manual_med")× manual) | with cut-through: ${downtime} s |" \
    >>"${BENCH_SUMMARY:-/dev/null}"
fi
