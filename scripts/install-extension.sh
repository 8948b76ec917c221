#!/usr/bin/env bash
# Builds the linktoken extension and installs it into a PostgreSQL major: Debian's 15 by default
# (/usr/lib/postgresql/15/lib and /usr/share/postgresql/15/extension), or 16 / 18 (the servers
# scripts/install-deps.sh unpacks; paths in scripts/pg-majors.sh), built with that major's
# cargo feature.
# Usage: scripts/install-extension.sh [--major 15|16|18] [--release]
# Used by `make demo`, `make test` and the Docker images, so they cannot drift.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
. scripts/pg-majors.sh
major=15
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --major) major=${2:?--major needs a value}; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
PG_CONFIG=${PG_CONFIG:-$(pg_config_of "$major")}
features=()
[[ "$major" == 15 ]] || features=(--no-default-features --features "pg$major")
echo "install-extension: building and installing linktoken for PostgreSQL $major (${args[*]:-})" >&2
cargo pgrx install -p linktoken --pg-config "$PG_CONFIG" "${features[@]}" "${args[@]}" >&2
