#!/usr/bin/env bash
# `make bench`: the benchmark of issue 5, written to bench/REPORT.md (+ bench/charts/*.svg).
#
#  1. dependencies (scripts/install-deps.sh; pgbench and pgcrypto come with postgresql-15)
#  2. the extension built and installed in RELEASE mode (scripts/install-extension.sh --release)
#  3. a throwaway cluster under .pgdata/bench with the shipped durability (fsync on,
#     synchronous_commit on); settings recorded in bench/out/machine.json
#  4. bench/sql/run.sh (pgbench: linktoken vs floor vs PL/pgSQL baseline), then
#     bench/http/run.sh if present (the gateway part; it gets PGHOST/PGPORT/PGUSER and BENCH_DB)
#  5. bench/report.py assembles bench/REPORT.md from bench/out/*.json and *.md
#
# Sizes: BENCH_SECONDS (per pgbench run, default 5), BENCH_ROUNDS (3), BENCH_CLIENTS ("1 8"), BENCH_BATCH (1000000),
# BENCH_OUTSTANDING ("10000 1000000 10000000"), BENCH_LAT_SECONDS, BENCH_MAX_TPS (see bench/sql/bench.py).
# BENCH_SKIP_INSTALL=1 skips steps 1-2 (use what is installed). The cluster is stopped and
# destroyed (immediate stop) on every exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
CLUSTER=$ROOT/.pgdata/bench
OUT=$ROOT/bench/out
START=$(date +%s)

if [[ "${BENCH_SKIP_INSTALL:-0}" != 1 ]]; then
    scripts/install-deps.sh
    scripts/install-extension.sh --release
fi
command -v python3 >/dev/null || { apt-get update -q && apt-get install -y -q python3; }

rm -rf "$OUT"
mkdir -p "$OUT" bench/charts
# The cluster is thrown away: stop it at once (pg_ctl -m immediate, by its pid file) rather than
# wait for a shutdown checkpoint of a ten-million-token table, then remove it.
drop_cluster() {
    scripts/pg-cluster.sh crash "$CLUSTER" >/dev/null 2>&1 || true
    scripts/pg-cluster.sh destroy "$CLUSTER" >/dev/null 2>&1 || true
}
drop_cluster
cleanup() {
    cp "$CLUSTER/server.log" "$OUT/server.log" 2>/dev/null || true
    drop_cluster
}
trap cleanup EXIT
# Durability as shipped (fsync, synchronous_commit and full_page_writes at their defaults: on).
# Memory and checkpoint spacing sized for a 10-million-token table; none of them trades safety.
PG_OPTS=(-c max_connections=200 -c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=15min)
[[ ! -e "$CLUSTER" ]] || { echo "bench: could not remove an earlier $CLUSTER"; exit 1; }
eval "$(scripts/pg-cluster.sh start "$CLUSTER" "${PG_OPTS[@]}" | sed 's/^/export /')"
echo "bench: cluster on port $PGPORT (options: ${PG_OPTS[*]})"
PSQL=(/usr/lib/postgresql/15/bin/psql -X -A -t -d postgres)
python3 - "$OUT/machine.json" "$("${PSQL[@]}" -c "SELECT version()")" \
    "$("${PSQL[@]}" -c "SELECT string_agg(name || '=' || setting || COALESCE(unit, ''), ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync','synchronous_commit','full_page_writes','wal_sync_method','shared_buffers','max_wal_size','checkpoint_timeout','max_connections','jit')")" \
    "${PG_OPTS[*]}" <<'EOF'
import json, sys
path, version, settings, opts = sys.argv[1:]
json.dump({"PostgreSQL": version, "PostgreSQL settings": settings, "server options given": opts,
           "extension build": "release (scripts/install-extension.sh --release)"}, open(path, "w"), indent=1)
EOF

# Anything that reinstalls the extension meanwhile (another `make install` or `make test` on the
# machine) swaps the library under the running backends: say so in the report.
LIB=$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)/linktoken.so
LIB_SUM=$(sha256sum "$LIB" | cut -d' ' -f1)
lib_check() {
    if [[ "$(sha256sum "$LIB" | cut -d' ' -f1)" != "$LIB_SUM" ]]; then
        echo "- **The extension library $LIB was replaced during the run ($1)** (something else installed the extension meanwhile): the figures after that point are not valid; run make bench again on a quiet machine." >> "$OUT/warnings.md"
        echo "bench: WARNING: $LIB was replaced during the run ($1)"
        LIB_SUM=$(sha256sum "$LIB" | cut -d' ' -f1)
    fi
}

STATUS=0
echo "bench: SQL part"
bench/sql/run.sh || { echo "bench: SQL part FAILED"; STATUS=1; }
lib_check "SQL part"
if [[ -x bench/http/run.sh ]]; then
    echo "bench: HTTP part"
    BENCH_DB=linktoken_bench bench/http/run.sh || { echo "bench: HTTP part FAILED"; STATUS=1; }
    lib_check "HTTP part"
else
    echo "bench: bench/http/run.sh not present; the report will say so"
fi
python3 bench/report.py
echo "bench: done in $(($(date +%s) - START)) s; see bench/REPORT.md"
exit "$STATUS"
