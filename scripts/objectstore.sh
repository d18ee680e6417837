#!/usr/bin/env bash
# A local S3-compatible object store for the scale-out configuration: moto's server mode on loopback.
#   scripts/objectstore.sh start [DIR]   start it (127.0.0.1:55433), create the bucket "ferry", print the settings
#   scripts/objectstore.sh stop [DIR]
# moto keeps objects in memory: this is for trying Ferry out and for tests, not for production data.
set -euo pipefail
cmd=${1:-start}
dir=${2:-.build/objectstore}
port=${FERRY_OBJECTSTORE_PORT:-55433}
mkdir -p "$dir"
case "$cmd" in
  start)
    python3 -c "import moto.server" 2>/dev/null || bash "$(dirname "$0")/install-deps.sh" --test >&2
    if ! curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1; then
      nohup python3 -m moto.server -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
      echo $! >"$dir/moto.pid"
      for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    curl -fs -X PUT "http://127.0.0.1:$port/ferry" >/dev/null || true
    cat <<SETTINGS
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=ferry AWS_SECRET_ACCESS_KEY=ferry
ferry serve --blobs s3://ferry/blobs --s3-endpoint http://127.0.0.1:$port
SETTINGS
    ;;
  stop)
    [ -f "$dir/moto.pid" ] && kill "$(cat "$dir/moto.pid")" 2>/dev/null || true
    rm -f "$dir/moto.pid"
    ;;
  *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
