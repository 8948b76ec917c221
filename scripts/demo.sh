#!/usr/bin/env bash
# `make demo`: installs what is missing, builds and installs the extension, starts a throwaway
# PostgreSQL 15 cluster under .pgdata/demo (as the postgres user), creates the database
# linktoken_demo and walks through issue -> peek -> redeem -> redeem again.
# Re-running is idempotent (the demo database is recreated). The cluster keeps running so you
# can explore; `make clean` (or scripts/pg-cluster.sh stop .pgdata/demo) stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PGBIN=/usr/lib/postgresql/15/bin
CLUSTER=$ROOT/.pgdata/demo

scripts/install-deps.sh
scripts/install-extension.sh
export PGOPTIONS="-c client_min_messages=warning"
eval "$(scripts/pg-cluster.sh start "$CLUSTER" | sed 's/^/export /')"
"$PGBIN/psql" -X -q -d postgres -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS linktoken_demo" -c "CREATE DATABASE linktoken_demo"
"$PGBIN/psql" -X -q -d linktoken_demo -v ON_ERROR_STOP=1 -f sql/deploy.sql
"$PGBIN/psql" -X -q -d linktoken_demo -f sql/examples/demo.sql

cat <<EOT

The demo cluster is still running. Explore it with:
  psql -h $PGHOST -p $PGPORT -U postgres linktoken_demo
Stop it with: make clean   (or scripts/pg-cluster.sh stop .pgdata/demo)
EOT
