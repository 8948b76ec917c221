#!/usr/bin/env bash
# bench/http/run.sh - the gateway half of `make bench` (issue 5, section 3).
#
# Measures, in one run at one concurrency (BENCH_HTTP_CLIENTS keep-alive connections):
#   - the HTTP ceiling: bench/ceiling's constant-page hyper server, maximum rate;
#   - the gateway: GET /t/{token} (landing page) and POST /t/{token} (redemption, a fresh
#     token per request) at the maximum rate, then at 25/50/75 % of it (open loop);
#   - the database ceiling: pgbench -M prepared running the gateway's own per-POST
#     transaction (START TRANSACTION READ WRITE, the set_config prelude, gateway_redeem, COMMIT);
#   - the gateway's memory (VmRSS sampled every 0.2 s, VmHWM) and the CPU time per request of
#     the gateway, PostgreSQL and the load client.
# Writes bench/out/http.json, bench/out/http.md and bench/charts/http-*.svg.
#
# Database: uses PGHOST/PGPORT/PGUSER (a superuser) and BENCH_DB (with the linktoken extension
# installed) when PGPORT is set, as bench/run.sh does; otherwise starts its own throwaway
# cluster in .pgdata/bench-http and destroys it afterwards.
#
# Environment:
#   BENCH_HTTP_SECONDS  measured seconds per step (default 10; 10 steps + 1 s warm-up each, plus
#                       2 steps per extra run)
#   BENCH_HTTP_RUNS     consecutive runs of the GET pair (maximum rate, then half of that rate,
#                       open loop), each judged against the p99 target (default 3; the first is
#                       part of the full sequence)
#   BENCH_HTTP_BIN_DIR  take the gateway and load programs from here instead of building them
#   BENCH_HTTP_CLIENTS  connections of the load client, gateway pool size, pgbench clients (default 8)
#   BENCH_HTTP_OHA      1 (default): also cross-check the ceiling and GET maximum with oha
#                       (installed with `cargo install oha --locked` if missing); 0: skip
#   BENCH_OUT_DIR       where http.json/http.md go (default bench/out)
#   BENCH_HTTP_GATEWAY_BIN  measure this gateway binary instead of target/release's (A/B of a change)
#
# Raw tokens exist only in the harness table bench_http.tokens and in a private temp dir, both
# removed on exit. Servers listen on 127.0.0.1 only and are stopped by pid.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SECONDS_PER_STEP="${BENCH_HTTP_SECONDS:-10}"
RUNS="${BENCH_HTTP_RUNS:-3}"
CLIENTS="${BENCH_HTTP_CLIENTS:-8}"
USE_OHA="${BENCH_HTTP_OHA:-1}"
OUT_DIR="${BENCH_OUT_DIR:-$ROOT/bench/out}"
ROLE=bench_http_gateway
log() { printf 'bench/http: %s\n' "$*" >&2; }

TMP="$(mktemp -d /tmp/linktoken-bench-http.XXXXXX)"
chmod 700 "$TMP"
PIDS=()
OWN_CLUSTER=""
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ -n "${DB:-}" ]]; then
        psql -X -q -d "$DB" -c "DROP SCHEMA IF EXISTS bench_http CASCADE" >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    if [[ -n "$OWN_CLUSTER" ]]; then
        scripts/pg-cluster.sh destroy "$OWN_CLUSTER" >/dev/null 2>&1 || true
    fi
    exit $rc
}
trap cleanup EXIT INT TERM

# --- the database ---------------------------------------------------------------------------
if [[ -z "${PGPORT:-}" ]]; then
    OWN_CLUSTER="$ROOT/.pgdata/bench-http"
    log "no PGPORT: starting a throwaway cluster in $OWN_CLUSTER"
    eval "$(scripts/pg-cluster.sh start "$OWN_CLUSTER" -c max_connections=100 | sed 's/^/export /')"
    export BENCH_DB="${BENCH_DB:-linktoken_bench}"
    psql -X -q -d postgres -c "CREATE DATABASE $BENCH_DB" >/dev/null 2>&1 || true
    psql -X -q -d "$BENCH_DB" -c "CREATE EXTENSION IF NOT EXISTS linktoken" >/dev/null
fi
DB="${BENCH_DB:?set BENCH_DB (a database with the linktoken extension)}"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL >/dev/null
SET client_min_messages = warning;
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN IN ROLE linktoken_gateway;
  END IF;
END \$\$;
SELECT linktoken.define_purpose('bench_http', '1 hour', revoke_previous => false);
DROP SCHEMA IF EXISTS bench_http CASCADE;
CREATE SCHEMA bench_http;
CREATE TABLE bench_http.tokens (id integer PRIMARY KEY, token text NOT NULL);
GRANT USAGE ON SCHEMA bench_http TO $ROLE;
GRANT SELECT ON bench_http.tokens TO $ROLE;
SQL
DATA_DIR="$(psql -X -A -t -d "$DB" -c 'SHOW data_directory')"
TOKEN_ROWS="$(psql -X -A -t -d "$DB" -c "SELECT reltuples::bigint FROM pg_class WHERE oid = 'linktoken.tokens'::regclass")"
POSTMASTER_PID="$(head -1 "$DATA_DIR/postmaster.pid")"

# --- the programs ---------------------------------------------------------------------------
if [[ -n "${BENCH_HTTP_BIN_DIR:-}" ]]; then
    BIN="$BENCH_HTTP_BIN_DIR"   # built by bench/run.sh (from the source it measures)
else
    log "building the gateway and the ceiling server (release)"
    cargo build --release -q -p linktoken-gateway -p linktoken-bench-ceiling
    BIN="$ROOT/target/release"
fi
GATEWAY_BIN="${BENCH_HTTP_GATEWAY_BIN:-$BIN/linktoken-gateway}"
OHA=""
if [[ "$USE_OHA" == 1 ]]; then
    OHA="$(command -v oha || true)"
    [[ -z "$OHA" && -x "$HOME/.cargo/bin/oha" ]] && OHA="$HOME/.cargo/bin/oha"
    if [[ -z "$OHA" ]]; then
        log "installing oha (cargo install oha --locked; a few minutes, once)"
        if cargo install oha --locked -q; then OHA="$HOME/.cargo/bin/oha"; else log "oha failed to install: no cross-check"; fi
    fi
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # wait_http URL: up to 10 s
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    log "no answer from $1"; return 1
}

CEILING_PORT="$(free_port)"
"$BIN/linktoken-bench-ceiling" "$CEILING_PORT" 2>"$TMP/ceiling.log" &
CEILING_PID=$!
PIDS+=("$CEILING_PID")
GATEWAY_PORT="$(free_port)"
# Benchmark settings: the pool as large as the load's concurrency, and the per-address limits
# out of the way (all load comes from 127.0.0.1: no lookup should fail, and the per-client
# in-flight cap would refuse all but half the connections).
GATEWAY_FLAGS=(--listen "127.0.0.1:$GATEWAY_PORT" --public-url "http://127.0.0.1:$GATEWAY_PORT"
               --pool-size "$CLIENTS" --failed-lookups-per-minute 1000000
               --max-in-flight-per-client 0)
LINKTOKEN_DATABASE_URL="host=$PGHOST port=$PGPORT user=$ROLE dbname=$DB" \
    "$GATEWAY_BIN" "${GATEWAY_FLAGS[@]}" 2>"$TMP/gateway.log" &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
wait_http "http://127.0.0.1:$CEILING_PORT/"
wait_http "http://127.0.0.1:$GATEWAY_PORT/healthz"

# --- the measurements -------------------------------------------------------------------------
log "measuring: 10 steps of ${SECONDS_PER_STEP}s (+2 oha steps of at most 10 s, +2 steps per GET run after the first of $RUNS) with $CLIENTS connections"
python3 bench/http/drive.py --db "$DB" --tmp "$TMP" --out "$TMP/raw.json" \
    --load-bin "$BIN/linktoken-bench-load" --ceiling-port "$CEILING_PORT" --gateway-port "$GATEWAY_PORT" \
    --gateway-pid "$GATEWAY_PID" --ceiling-pid "$CEILING_PID" --postmaster-pid "$POSTMASTER_PID" --gateway-role "$ROLE" \
    --oha "$OHA" --clients "$CLIENTS" --seconds "$SECONDS_PER_STEP" --runs "$RUNS"

{
    echo "gateway flags: ${GATEWAY_FLAGS[*]}"
    echo "gateway binary: ${BENCH_HTTP_GATEWAY_BIN:-$BIN/linktoken-gateway} (cargo build --release, $(rustc --version))"
    if [[ -n "$OHA" ]]; then echo "oha: $("$OHA" --version | head -1) (cross-check)"; else echo "oha: not used"; fi
    echo "load client: bench/ceiling linktoken-bench-load"
    echo "rows in linktoken.tokens before this part (estimate): $TOKEN_ROWS"
    echo "access log lines: $(grep -c '^access ' "$TMP/gateway.log" || true)"
} >"$TMP/settings.txt"
mkdir -p "$OUT_DIR"
python3 bench/http/http_report.py --raw "$TMP/raw.json" --tmp "$TMP" --out-dir "$OUT_DIR" \
    --chart-dir "$ROOT/bench/charts"
log "wrote $OUT_DIR/http.json and $OUT_DIR/http.md"
