#!/usr/bin/env bash
# Runs once, when the official postgres image initialises an empty data directory.
set -euo pipefail
psql_db() { psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@"; }
psql_db -v app_password="${LINKTOKEN_APP_PASSWORD:?set LINKTOKEN_APP_PASSWORD}" \
        -v gateway_password="${LINKTOKEN_GATEWAY_PASSWORD:?set LINKTOKEN_GATEWAY_PASSWORD}" \
        -f /opt/linktoken/sql/deploy.sql
if [ "${LINKTOKEN_EXAMPLES:-0}" = 1 ]; then
    psql_db -f /opt/linktoken/sql/examples/flows.sql
fi
