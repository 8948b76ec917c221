#!/usr/bin/env bash
# Real-browser tests: a database with the example app (sql/examples/flows.sql), the gateway on a
# free loopback port, the mailer delivering to an SMTP sink (mails in $OUT/browser-mail), then `node --test` driving Debian's headless Chromium via playwright-core.
# Expects PGHOST/PGPORT of a running test cluster (tests/run-all.sh provides them) and
# target/debug/linktoken-gateway built. Screenshots: $OUT/screenshots. Stops the gateway it
# started, by pid.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/target/test-output}
PGBIN=/usr/lib/postgresql/15/bin
DB=linktoken_browser
GW_DIR=$OUT/browser-gateway
cd "$ROOT"

psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
PGOPTIONS="-c client_min_messages=warning" psql_q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
PGOPTIONS="-c client_min_messages=warning" psql_q -d "$DB" -f sql/deploy.sql
psql_q -d "$DB" -c "ALTER DATABASE $DB SET log_min_error_statement = panic"
PGOPTIONS="-c client_min_messages=warning" psql_q -d "$DB" -o /dev/null -f sql/examples/flows.sql

(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cargo build -q -p linktoken-integration --bin smtp-sink
scripts/demo-gateway.sh start "$GW_DIR" "127.0.0.1:$PORT" \
    "host=127.0.0.1 port=$PGPORT user=linktoken_web dbname=$DB"
trap '"$ROOT"/scripts/demo-gateway.sh stop "$GW_DIR"; mkdir -p "$OUT/gateway-logs"; for l in gateway mailer smtp-sink; do cp "$GW_DIR/$l.log" "$OUT/gateway-logs/browser-$l.log" 2>/dev/null || true; done' EXIT
# The mailer and an SMTP sink whose mails (MAIL_SPOOL/<n>.eml) the tests read; a fresh key pair.
MAIL_SPOOL=$OUT/browser-mail/mail-spool
rm -rf "$MAIL_SPOOL" "$GW_DIR/mailer.key" "$GW_DIR/mailer.key.pub"
scripts/demo-gateway.sh mail "$GW_DIR" "$MAIL_SPOOL" \
    "host=127.0.0.1 port=$PGPORT user=linktoken_mail dbname=$DB" "http://127.0.0.1:$PORT"
psql_q -d "$DB" -o /dev/null -v key="$(cat "$GW_DIR/mailer.key.pub")" \
    <<<"SELECT linktoken.set_mailer_key(decode(:'key', 'hex'))"

cd tests/browser
LINKTOKEN_BASE_URL="http://127.0.0.1:$PORT" SCREENSHOT_DIR="$OUT/screenshots" MAIL_SPOOL="$MAIL_SPOOL" PGDATABASE=$DB PGUSER=postgres \
    timeout 300 node --test --test-reporter=spec
