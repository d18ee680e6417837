#!/usr/bin/env bash
# Installs the Debian packages Ferry needs to build, run and test, if any are missing.
# apt-get needs root: run as root, or have sudo.
set -euo pipefail

# Usage: install-deps.sh [--test | --bench]
#   (none)   what building and running Ferry needs
#   --test   plus what the tests use
#   --bench  plus what the tests and the benchmarks use
packages=(
  pkg-config
  libarchive-dev libsqlite3-dev libmicrohttpd-dev   # the C libraries Ferry links
  libcurl4-openssl-dev                              # libcurl: the HTTP client (FoundationNetworking links it too)
  libpq-dev                                         # libpq: the PostgreSQL catalog (--catalog postgres://)
)
want_python_checker=no
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--bench" ]; then
  packages+=(
    gzip zstd xz-utils bzip2 tar                     # tests build compressed archives with these
    time                                             # /usr/bin/time: peak RSS in tests and benchmarks
    curl openssl                                     # HTTP and SHA-256 in the service tests
    chromium fonts-dejavu-core                       # the web page test runs a real headless browser
    python3                                          # the OpenAPI check (scripts/openapi_check.py)
    postgresql postgresql-contrib                    # the catalog suite runs on a real PostgreSQL too (pg_trgm)
    haproxy                                          # the load balancer in front of the replica tests' services
  )
  # kubectl reads the generated Pod manifests into its typed Pod (KubernetesRestoreTests); any kubectl will do.
  command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
  want_python_checker=yes
fi
if [ "${1:-}" = "--bench" ]; then
  packages+=(nginx-light wrk jq)                  # jq: scripts/bench-migrate.sh reads the API
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
install_python_checker() {
  [ "$want_python_checker" = yes ] || return 0
  # openapi-spec-validator is not packaged for Debian 12; it comes from PyPI when missing.
  # schemathesis fuzzes the live service against docs/openapi.yaml (the OpenAPI tests run it).
  python3 -c "import yaml, jsonschema, openapi_spec_validator, schemathesis" 2>/dev/null && return 0
  echo "install-deps: installing openapi-spec-validator and schemathesis from PyPI" >&2
  python3 -m pip install --quiet openapi-spec-validator pyyaml jsonschema schemathesis 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages openapi-spec-validator pyyaml jsonschema schemathesis
}
install_moto() {
  [ "$want_python_checker" = yes ] || return 0
  # moto's server mode is the real S3-compatible store the object-store tests start on loopback.
  python3 -c "import moto.server" 2>/dev/null && return 0
  echo "install-deps: installing moto[server] from PyPI" >&2
  python3 -m pip install --quiet 'moto[server]' 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages 'moto[server]'
}
if [ ${#missing[@]} -eq 0 ]; then
  install_python_checker
  install_moto
  exit 0
fi

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
install_python_checker
install_moto
