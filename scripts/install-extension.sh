#!/usr/bin/env bash
# Builds the linktoken extension and installs it into Debian's PostgreSQL 15
# (/usr/lib/postgresql/15/lib and /usr/share/postgresql/15/extension).
# Usage: scripts/install-extension.sh [--release]
# Used by `make demo`, `make test` and the Docker images, so they cannot drift.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
echo "install-extension: building and installing linktoken ($*)" >&2
cargo pgrx install -p linktoken --pg-config "$PG_CONFIG" "$@" >&2
