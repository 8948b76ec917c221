#!/usr/bin/env bash
# The demo's and the browser tests' gateway, mailer and SMTP sink, in the background
# (scripts/background.sh: pid and log files in DIR).
#   scripts/demo-gateway.sh start DIR LISTEN DATABASE_URL      the gateway (DIR/gateway.log)
#   scripts/demo-gateway.sh mail DIR SPOOL MAILER_DATABASE_URL PUBLIC_URL
#       an SMTP sink writing each mail to SPOOL/<n>.eml (DIR/smtp-sink.log), a mailer key pair
#       (DIR/mailer.key, made once; print its public key with `cat DIR/mailer.key.pub`) and the
#       mailer delivering to the sink (DIR/mailer.log). The database must have the key set.
#   scripts/demo-gateway.sh stop DIR                            stops all three
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BG=$ROOT/scripts/background.sh
BIN=$ROOT/target/debug
cmd=${1:?start|mail|stop}
dir=${2:?directory}
case "$cmd" in
stop)
    for name in mailer smtp-sink gateway; do "$BG" stop "$dir" "$name"; done
    ;;
start)
    listen=${3:?listen address}
    url=${4:?database url}
    # The public URL is where the browser is, so that the gateway's cross-site check accepts
    # the forms it serves (POSTs must come from --public-url's origin).
    "$BG" start "$dir" gateway "listening on" "$BIN/linktoken-gateway" --listen "$listen" \
        --database-url "$url" --public-url "${LINKTOKEN_PUBLIC_URL:-http://$listen}" >/dev/null
    ;;
mail)
    spool=${3:?spool directory}
    url=${4:?mailer database url}
    public=${5:?public url}
    mkdir -p "$spool"
    [ -f "$dir/mailer.key" ] || "$BIN/linktoken-gateway" mailer keygen --key-file "$dir/mailer.key" >/dev/null
    smtp=$("$BG" start "$dir" smtp-sink "listening on smtp://" "$BIN/smtp-sink" --spool "$spool")
    "$BG" start "$dir" mailer "mailer running" "$BIN/linktoken-gateway" mailer --database-url "$url" \
        --key-file "$dir/mailer.key" --smtp-url "${smtp##* }" --from "linktoken demo <demo@example.org>" \
        --public-url "$public" --poll-interval 1s --backoff-base 2s >/dev/null
    ;;
*) echo "usage: $0 start DIR LISTEN URL | mail DIR SPOOL URL PUBLIC_URL | stop DIR" >&2; exit 2 ;;
esac
