#!/usr/bin/env bash
# The SQL part of `make bench` (see bench/sql/bench.py): needs a running cluster in PGHOST/PGPORT/PGUSER
# with the linktoken extension installed; writes bench/out/sql.{json,md} and bench/charts/sql-*.svg.
set -euo pipefail
cd "$(dirname "$0")"
: "${PGHOST:?set PGHOST (bench/run.sh does)}" "${PGPORT:?set PGPORT}"
exec python3 bench.py
