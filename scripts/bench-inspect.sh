#!/usr/bin/env bash
# Benchmark: `ferry inspect --all` and `ferry memparse --search` on a checkpoint archive holding 1 GiB of memory
# pages, next to checkpointctl, `cat`, `zstd -dc`, `tar -tf` and `openssl dgst -sha256` of the same file, measured in
# the same run (warm page cache, best of N runs).
#
# The archive (scripts/bench-archive.sh) is a real Podman checkpoint of a container holding SIZE_MIB of memory when
# the runtime lab is set up, else the synthetic one of scripts/make-big-archive.sh (said so in the output).
# BENCH_SUMMARY=FILE appends this run's rows of the summary table (`make bench` prints it).
#
# Usage: scripts/bench-inspect.sh [SIZE_MIB]   (default 1024; needs python3, openssl, zstd, GNU time)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
runs=${RUNS:-5}

swift build -c release --product ferry 2>&1 | grep -E "error|warning: unre" && exit 1
ferry="$(swift build -c release --show-bin-path)/ferry"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scripts/bench-archive.sh "$size_mib" "$work/big.tar"
kind=$(cat "$work/big.tar.kind")
zstd -q -T0 -3 "$work/big.tar" -o "$work/big.tar.zst"
archive_mib=$(( $(stat -c %s "$work/big.tar") / 1048576 ))

# best wall time (s) and peak RSS (KiB) of a command over $runs runs
measure() {
  local best="" rss=0 seconds kib
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null 2>&1
    read -r seconds kib <"$work/time.txt"
    if [ -z "$best" ] || awk "BEGIN{exit !($seconds < $best)}"; then best=$seconds; fi
    [ "$kib" -gt "$rss" ] && rss=$kib
  done
  echo "$best $rss"
}

cat "$work/big.tar" "$work/big.tar.zst" >/dev/null   # warm the page cache
read -r t_inspect m_inspect < <(measure "$ferry" inspect --all "$work/big.tar")
read -r t_tar m_tar < <(measure tar -tf "$work/big.tar")
read -r t_sha m_sha < <(measure openssl dgst -sha256 "$work/big.tar")
read -r t_zinspect m_zinspect < <(measure "$ferry" inspect --all "$work/big.tar.zst")
read -r t_zcat m_zcat < <(measure zstd -dcq "$work/big.tar.zst")

ratio() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }
echo "archive ($kind): ${archive_mib} MiB uncompressed tar ($(( $(stat -c %s "$work/big.tar.zst") / 1048576 )) MiB as .tar.zst), best of $runs warm runs, $(nproc) cores"
printf '%-40s %9s %14s %12s\n' "command" "time (s)" "vs sha256" "peak RSS"
printf '%-40s %9s %14s %9s MiB\n' "ferry inspect --all big.tar" "$t_inspect" "$(ratio "$t_inspect" "$t_sha")" "$((m_inspect / 1024))"
printf '%-40s %9s %14s %9s MiB\n' "tar -tf big.tar" "$t_tar" "$(ratio "$t_tar" "$t_sha")" "$((m_tar / 1024))"
printf '%-40s %9s %14s %9s MiB\n' "openssl dgst -sha256 big.tar" "$t_sha" "1.00" "$((m_sha / 1024))"
printf '%-40s %9s %14s %9s MiB\n' "ferry inspect --all big.tar.zst" "$t_zinspect" "$(ratio "$t_zinspect" "$t_sha")" "$((m_zinspect / 1024))"
printf '%-40s %9s %14s %9s MiB\n' "zstd -dc big.tar.zst" "$t_zcat" "$(ratio "$t_zcat" "$t_sha")" "$((m_zcat / 1024))"

# The inspection must still be right on the grown archive: the environment lies behind the 1 GiB.
"$ferry" inspect --ps-tree-env --format json "$work/big.tar" | grep -q '"SECRET_TOKEN": "hunter2"' \
  || { echo "bench: inspect of the big archive lost the environment" >&2; exit 1; }

# Memory search (`memparse --search`, a literal) and checkpointctl beside it, with `cat` as the floor: all read the
# same GiB. checkpointctl is the lab's (`../shared/lab/setup.sh` installs it); without it its rows say so.
read -r t_cat m_cat < <(measure cat "$work/big.tar")
read -r t_search m_search < <(measure "$ferry" memparse --pid 1 --search SECRET_TOKEN --context 10 "$work/big.tar")
printf '%-40s %9s %14s %9s MiB\n' "cat big.tar" "$t_cat" "$(ratio "$t_cat" "$t_sha")" "$((m_cat / 1024))"
printf '%-40s %9s %14s %9s MiB\n' "ferry memparse --search big.tar" "$t_search" "$(ratio "$t_search" "$t_sha")" "$((m_search / 1024))"
if command -v checkpointctl >/dev/null 2>&1; then
  read -r t_cc_search m_cc_search < <(measure checkpointctl memparse --pid 1 --search SECRET_TOKEN --context 10 "$work/big.tar")
  read -r t_cc_inspect m_cc_inspect < <(measure checkpointctl inspect --all "$work/big.tar")
  read -r t_cc_zinspect m_cc_zinspect < <(measure checkpointctl inspect --all "$work/big.tar.zst")
  printf '%-40s %9s %14s %9s MiB\n' "checkpointctl memparse --search big.tar" "$t_cc_search" "$(ratio "$t_cc_search" "$t_sha")" "$((m_cc_search / 1024))"
  printf '%-40s %9s %14s %9s MiB\n' "checkpointctl inspect --all big.tar" "$t_cc_inspect" "$(ratio "$t_cc_inspect" "$t_sha")" "$((m_cc_inspect / 1024))"
  printf '%-40s %9s %14s %9s MiB\n' "checkpointctl inspect --all big.tar.zst" "$t_cc_zinspect" "$(ratio "$t_cc_zinspect" "$t_sha")" "$((m_cc_zinspect / 1024))"
  echo "ferry memparse --search is $(ratio "$t_search" "$t_cc_search")x checkpointctl's time, $(ratio "$t_search" "$t_cat")x cat's"
  # Both must find the same match.
  diff <("$ferry" memparse --pid 1 --search SECRET_TOKEN --context 10 "$work/big.tar") \
       <(checkpointctl memparse --pid 1 --search SECRET_TOKEN --context 10 "$work/big.tar") >/dev/null \
    || { echo "bench: ferry and checkpointctl memparse --search disagree on the big archive" >&2; exit 1; }
else
  echo "checkpointctl: not installed (run ../shared/lab/setup.sh); its rows are missing"
  t_cc_search="(no checkpointctl)"; t_cc_inspect="(no checkpointctl)"; t_cc_zinspect="(no checkpointctl)"
fi

summary=${BENCH_SUMMARY:-/dev/null}
{
  echo "| \`inspect --all\`, $archive_mib MiB $kind tar | $t_inspect s | \`cat\` $t_cat s; checkpointctl $t_cc_inspect s |"
  echo "| \`inspect --all\`, the same as tar.zst | $t_zinspect s | \`zstd -dc\` $t_zcat s; checkpointctl $t_cc_zinspect s |"
  echo "| \`memparse --pid 1 --search SECRET_TOKEN\`, $archive_mib MiB $kind tar | $t_search s | checkpointctl $t_cc_search s; \`cat\` $t_cat s |"
} >>"$summary"
