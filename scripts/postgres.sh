#!/usr/bin/env bash
# A PostgreSQL server for Ferry's scale-out catalog, on loopback, in a directory of its own: Debian's postgresql
# packages (installed when missing), a private cluster (initdb), a role and a database named ferry.
#
# Usage: scripts/postgres.sh start [DIR] [PORT]   starts it (creating it first) and prints the --catalog URL
#        scripts/postgres.sh stop  [DIR]
#        scripts/postgres.sh url   [DIR] [PORT]
# DIR defaults to ./ferry-postgres, PORT to 55432. The password is made once and kept in DIR/password (0600).
set -euo pipefail
command=${1:-start}
dir=$(realpath -m "${2:-ferry-postgres}")
port=${3:-55432}

need_packages() {
  local missing=()
  for package in postgresql postgresql-contrib; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "postgres.sh: installing ${missing[*]}" >&2
  local run=()
  [ "$(id -u)" -eq 0 ] || run=(sudo)
  DEBIAN_FRONTEND=noninteractive "${run[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${run[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

bin=""
find_bin() {
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$bin" ] || { echo "postgres.sh: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 1; }
}

# The server refuses to run as root: as root, the cluster belongs to the postgres user.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url() { echo "postgres://ferry:$(cat "$dir/password")@127.0.0.1:$port/ferry"; }

case "$command" in
  start)
    need_packages
    find_bin
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      mkdir -p "$dir/data"
      [ -f "$dir/password" ] || (umask 077; openssl rand -hex 16 > "$dir/password")
      if [ "$(id -u)" -eq 0 ]; then chown -R postgres "$dir"; chmod 0700 "$dir"; fi
      as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=scram-sha-256 --pwfile="$dir/password" \
        -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c max_connections=200 -c fsync=on" >/dev/null
    fi
    password=$(cat "$dir/password")
    export PGPASSWORD=$password
    psql=(psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'ferry'")" != 1 ]; then
      "${psql[@]}" -c "CREATE ROLE ferry LOGIN CREATEDB PASSWORD '$password'"
    fi
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'ferry'")" != 1 ]; then
      "${psql[@]}" -c "CREATE DATABASE ferry OWNER ferry"
    fi
    url
    ;;
  stop)
    find_bin
    [ -f "$dir/data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  url)
    url
    ;;
  *)
    echo "usage: $0 start|stop|url [DIR] [PORT]" >&2
    exit 2
    ;;
esac
