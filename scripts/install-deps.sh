#!/usr/bin/env bash
# Installs the Debian packages Ferry needs to build, run and test, if any are missing.
# apt-get needs root: run as root, or have sudo.
set -euo pipefail

packages=(
  pkg-config
  libarchive-dev libsqlite3-dev libmicrohttpd-dev   # the C libraries Ferry links
  gzip zstd xz-utils bzip2 tar                       # tests build compressed archives with these
  time                                               # /usr/bin/time -v for the benchmark's peak RSS
)
if [ "${1:-}" = "--bench" ]; then
  packages+=(openssl)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null 2>&1; then
  run=(sudo)
else
  echo "install-deps: missing ${missing[*]}; apt-get install needs root (run as root or install sudo)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${run[@]}" apt-get update -qq
"${run[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
