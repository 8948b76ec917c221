#!/usr/bin/env bash
# The extension's SQL suites on another PostgreSQL major (16 or 18; where they come from:
# scripts/pg-majors.sh): build and install the extension with that major's cargo feature, start
# a throwaway cluster of that major under .pgdata/test-<major>, and run against it
#   pg_regress (extension/tests/pg_regress), the upgrade test from every released version,
#   pg_isolation_regress (extension/tests/isolation), and the integration tests that check the
#   SQL API over tokio-postgres (SQL_SUITES below; the HTTP, crash and timing suites run on 15).
# Each tool is that major's own (pg_regress, pg_isolation_regress, psql, pg_dump).
# Usage: tests/other-major.sh MAJOR   (OUT: artifacts directory). Stops its cluster on exit and
# leaves it for tests/scan-secrets.sh. Exit status 0 only if every suite passed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. scripts/pg-majors.sh
MAJOR=${1:?usage: tests/other-major.sh MAJOR}
OUT=${OUT:-$ROOT/target/test-output}/pg$MAJOR
CLUSTER=$ROOT/.pgdata/test-$MAJOR
PG_CONFIG=$(pg_config_of "$MAJOR")
PGBIN=$("$PG_CONFIG" --bindir)
PGXS_TEST=$(dirname "$("$PG_CONFIG" --pgxs)")/../test
SQL_SUITES=(actions codes privileges redeem_race reissue sealed statuses storage)
FAILED=()
fail() { echo "FAILED (PostgreSQL $MAJOR): $*"; FAILED+=("$*"); }
mkdir -p "$OUT"

echo "--- PostgreSQL $MAJOR ($("$PG_CONFIG" --version)): build and install"
scripts/install-extension.sh --major "$MAJOR"

scripts/pg-cluster.sh destroy "$CLUSTER" >/dev/null 2>&1 || true
cleanup() {
    scripts/pg-cluster.sh stop "$CLUSTER" >/dev/null 2>&1 || true
    cp "$CLUSTER/server.log" "$OUT/server.log" 2>/dev/null || true
}
trap cleanup EXIT
eval "$(PG_BIN=$PGBIN scripts/pg-cluster.sh start "$CLUSTER" -c max_connections=300 | sed 's/^/export /')"
psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
new_db() { # new_db NAME: a fresh database with the extension, statement text kept out of the log
    psql_q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
    psql_q -d "$1" -c "CREATE EXTENSION linktoken" -c "ALTER DATABASE $1 SET log_min_error_statement = panic"
}

echo "--- PostgreSQL $MAJOR: pg_regress"
mapfile -t REGRESS < <(cd extension/tests/pg_regress/sql && ls ./*.sql | sed 's|^\./||; s|\.sql$||' | grep -vx setup | sort)
"$PGXS_TEST/regress/pg_regress" --bindir="$PGBIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --dbname=linktoken_regress --inputdir=extension/tests/pg_regress --outputdir="$OUT/regress" \
    setup "${REGRESS[@]}" || { head -200 "$OUT/regress/regression.diffs" 2>/dev/null; fail "pg_regress"; }

echo "--- PostgreSQL $MAJOR: upgrade from every released version"
PG_CONFIG="$PG_CONFIG" OUT="$OUT" tests/upgrade/run.sh || fail "upgrade"

echo "--- PostgreSQL $MAJOR: pg_isolation_regress"
new_db linktoken_isolation
mapfile -t SPECS < <(cd extension/tests/isolation/specs && ls ./*.spec | sed 's|^\./||; s|\.spec$||' | sort)
"$PGXS_TEST/isolation/pg_isolation_regress" --bindir="$PGBIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --dbname=linktoken_isolation --use-existing --inputdir=extension/tests/isolation \
    --outputdir="$OUT/isolation" "${SPECS[@]}" || { head -200 "$OUT/isolation/regression.diffs" 2>/dev/null; fail "pg_isolation_regress"; }

echo "--- PostgreSQL $MAJOR: integration tests over tokio-postgres (${SQL_SUITES[*]})"
new_db linktoken_it
tests=()
for t in "${SQL_SUITES[@]}"; do tests+=(--test "$t"); done
LINKTOKEN_TEST_DATABASE_URL="host=127.0.0.1 port=$PGPORT user=postgres dbname=linktoken_it" \
LINKTOKEN_TEST_PG_BIN="$PGBIN" \
LINKTOKEN_GATEWAY_BIN="$ROOT/target/debug/linktoken-gateway" \
LINKTOKEN_TEST_CLUSTER_DIR="$CLUSTER" \
LINKTOKEN_TEST_LOG_DIR="$OUT/gateway-logs" \
    cargo test -p linktoken-integration "${tests[@]}" || fail "integration tests"

if [ ${#FAILED[@]} -gt 0 ]; then
    echo "PostgreSQL $MAJOR: ${#FAILED[@]} suite(s) failed: ${FAILED[*]}"
    exit 1
fi
echo "PostgreSQL $MAJOR: all suites passed"
