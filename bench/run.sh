#!/usr/bin/env bash
# `make bench`: the benchmark of issues 5 and 11, written to bench/REPORT.md (+ bench/charts/*.svg).
#
#  1. dependencies (scripts/install-deps.sh; pgbench comes with each server, pgcrypto with
#     Debian's postgresql-15 only: elsewhere bench.py loads bench/baseline/pgcrypto_shim.sql)
#  2. the extension built and installed in RELEASE mode into PostgreSQL BENCH_PG_MAJOR
#     (scripts/install-extension.sh --major N --release; default 15, or 16 / 18 under /opt)
#  3. a throwaway cluster of that major under .pgdata/bench with the shipped durability (fsync
#     on, synchronous_commit on); settings recorded in bench/out/machine.json
#  4. bench/sql/run.sh (pgbench: linktoken vs hand-written table vs floor vs PL/pgSQL baseline),
#     then bench/http/run.sh if present (the gateway part; it gets PGHOST/PGPORT/PGUSER and BENCH_DB)
#  5. bench/report.py assembles bench/REPORT.md from bench/out/*.json and *.md
#
# BENCH_PG_MAJOR (15, 16 or 18; default 15): the server measured. Use another major than the one
# other people reinstall meanwhile (a replaced library is detected and reported, see lib_check).
# Sizes: see bench/sql/bench.py (BENCH_SECONDS, BENCH_ROUNDS, BENCH_CLIENTS, BENCH_PER_ROW, BENCH_BATCH,
# BENCH_OUTSTANDING, BENCH_LAT_SECONDS, BENCH_MAX_TPS, BENCH_PROFILE) and bench/http/run.sh (BENCH_HTTP_*).
# BENCH_SKIP_INSTALL=1 skips steps 1-2 (use what is installed). The cluster is stopped and
# destroyed (immediate stop) on every exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
CLUSTER=$ROOT/.pgdata/bench
. scripts/pg-majors.sh
BENCH_PG_MAJOR=${BENCH_PG_MAJOR:-15}
PG_CONFIG=$(pg_config_of "$BENCH_PG_MAJOR")
[[ -x "$PG_CONFIG" ]] || { echo "bench: no PostgreSQL $BENCH_PG_MAJOR ($PG_CONFIG missing; scripts/install-deps.sh installs it)"; exit 1; }
PG_BIN=$("$PG_CONFIG" --bindir)
export PG_BIN BENCH_PG_MAJOR
# psql and pgbench of the measured server first (bench/http/run.sh calls them by name).
export PATH="$PG_BIN:$PATH"
OUT=$ROOT/bench/out
START=$(date +%s)

# What is measured: BENCH_SRC=head (default) builds the extension, the gateway and the load
# programs from `git archive HEAD` in $BENCH_BUILD_DIR-src, target dir $BENCH_BUILD_DIR-target
# (others' uncommitted edits in the working
# tree are not measured, and a half-edited tree cannot break the build); BENCH_SRC=tree builds the
# working tree as it is (for trying out a change).
BENCH_SRC=${BENCH_SRC:-head}
BENCH_BUILD_DIR=${BENCH_BUILD_DIR:-/tmp/linktoken-bench}
case "$BENCH_SRC" in
    head)
        SRC=$BENCH_BUILD_DIR-src
        export CARGO_TARGET_DIR=$BENCH_BUILD_DIR-target
        if [[ "${BENCH_SKIP_INSTALL:-0}" != 1 ]]; then
            rm -rf "$SRC" && mkdir -p "$SRC"
            git rev-parse HEAD > "$SRC.commit"
            git archive "$(cat "$SRC.commit")" | tar -x -C "$SRC"
        elif [[ ! -d "$SRC" ]]; then
            echo "bench: BENCH_SKIP_INSTALL=1 with BENCH_SRC=head measures the last export ($SRC), and there is none;" \
                 "run once without BENCH_SKIP_INSTALL, or measure the working tree with BENCH_SRC=tree"
            exit 2
        fi
        # with BENCH_SKIP_INSTALL=1: what the last export installed
        BENCH_COMMIT="$(cat "$SRC.commit" 2>/dev/null || echo unknown) (git archive, release build)"
        ;;
    tree)
        SRC=$ROOT
        BENCH_COMMIT="$(git rev-parse HEAD) + uncommitted changes: $(git status --porcelain -- extension core gateway | wc -l) file(s) in extension/ core/ gateway/"
        ;;
    *) echo "bench: BENCH_SRC must be head or tree"; exit 2 ;;
esac
export BENCH_COMMIT
if [[ "${BENCH_SKIP_INSTALL:-0}" != 1 ]]; then
    scripts/install-deps.sh
    "$SRC/scripts/install-extension.sh" --major "$BENCH_PG_MAJOR" --release
fi
# The HTTP part's programs (gateway, ceiling server, load client), built from the same source.
if [[ -x bench/http/run.sh ]]; then
    echo "bench: building the gateway and the load programs (release, from $SRC)"
    (cd "$SRC" && cargo build --release -q -p linktoken-gateway -p linktoken-bench-ceiling)
    export BENCH_HTTP_BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/release
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
eval "$(PG_BIN=$PG_BIN scripts/pg-cluster.sh start "$CLUSTER" "${PG_OPTS[@]}" | sed 's/^/export /')"
echo "bench: cluster on port $PGPORT (options: ${PG_OPTS[*]})"
PSQL=("$PG_BIN/psql" -X -A -t -d postgres)
python3 - "$OUT/machine.json" "$("${PSQL[@]}" -c "SELECT version()")" \
    "$("${PSQL[@]}" -c "SELECT string_agg(name || '=' || setting || COALESCE(unit, ''), ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync','synchronous_commit','full_page_writes','wal_sync_method','shared_buffers','max_wal_size','checkpoint_timeout','max_connections','jit')")" \
    "${PG_OPTS[*]}" "$("$PG_CONFIG" --pkglibdir)/linktoken.so, sha256 $(sha256sum "$("$PG_CONFIG" --pkglibdir)/linktoken.so" | cut -c1-16)…" <<'EOF'
import json, os, sys
path, version, settings, opts, lib = sys.argv[1:]
json.dump({"PostgreSQL": version, "PostgreSQL settings": settings, "server options given": opts,
           "extension build": "release (scripts/install-extension.sh --major %s --release)" % os.environ["BENCH_PG_MAJOR"],
           "source measured": os.environ["BENCH_COMMIT"], "extension library": lib,
           "load average at start (1, 5, 15 min)": " ".join(open("/proc/loadavg").read().split()[:3])},
          open(path, "w"), indent=1)
EOF

# Anything that reinstalls the extension meanwhile (another `make install` or `make test` on the
# machine) swaps the library under the running backends: say so in the report.
LIB=$("$PG_CONFIG" --pkglibdir)/linktoken.so
LIB_SUM=$(sha256sum "$LIB" | cut -d' ' -f1)
lib_check() {
    if [[ "$(sha256sum "$LIB" | cut -d' ' -f1)" != "$LIB_SUM" ]]; then
        echo "- **The extension library $LIB was replaced during the run ($1)** (something else installed the extension meanwhile): the figures after that point are not valid; run make bench again (BENCH_PG_MAJOR=$BENCH_PG_MAJOR) when nothing installs into that server." >> "$OUT/warnings.md"
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
