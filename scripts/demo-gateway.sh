#!/usr/bin/env bash
# Starts or stops the demo's gateway in the background; its pid and log live in the cluster dir.
#   scripts/demo-gateway.sh start DIR LISTEN DATABASE_URL   (DIR: where gateway.pid and gateway.log go)
#   scripts/demo-gateway.sh stop DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:?start|stop}
dir=${2:?cluster dir}
mkdir -p "$dir"
pidfile=$dir/gateway.pid
case "$cmd" in
stop)
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        kill -TERM "$(cat "$pidfile")"
        for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
    ;;
start)
    listen=${3:?listen address}
    url=${4:?database url}
    # The public URL is where the browser is, so that the gateway's cross-site check accepts
    # the forms it serves (POSTs must come from --public-url's origin).
    nohup "$ROOT/target/debug/linktoken-gateway" --listen "$listen" --database-url "$url" \
        --public-url "${LINKTOKEN_PUBLIC_URL:-http://$listen}" \
        >"$dir/gateway.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do
        grep -q "listening on" "$dir/gateway.log" 2>/dev/null && exit 0
        kill -0 "$(cat "$pidfile")" 2>/dev/null || break
        sleep 0.1
    done
    echo "demo-gateway: the gateway did not start:" >&2
    cat "$dir/gateway.log" >&2
    exit 1
    ;;
*) echo "usage: $0 start DIR LISTEN URL | stop DIR" >&2; exit 2 ;;
esac
