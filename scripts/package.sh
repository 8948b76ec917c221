#!/usr/bin/env bash
# Builds Debian packages under target/debian/ (`make package`):
#   postgresql-<major>-linktoken_<version>_<arch>.deb  the extension for one PostgreSQL major: what
#       `cargo pgrx package` puts out for that major's pg_config (linktoken.so in its --pkglibdir;
#       linktoken.control, linktoken--<version>.sql and the upgrade scripts in its
#       --sharedir/extension), and nothing else but a copyright file.
#   linktoken-gateway_<version>_<arch>.deb  /usr/bin/linktoken-gateway, the systemd unit
#       linktoken-gateway.service, its environment file /etc/default/linktoken-gateway (a
#       conffile) and the system user linktoken-gateway (made in postinst, removed on purge).
# Packaging files: packaging/postgresql-linktoken/, packaging/linktoken-gateway/.
# Versions come from the crates (the workspace version in Cargo.toml).
#
# Usage: scripts/package.sh [--debug] [--major N]... [--pg-config PATH] [--gateway]
#   (no --major, --pg-config or --gateway)  every major whose pg_config is found, and the gateway
#   --major N        the extension for PostgreSQL N (15, 16, 18); its pg_config is
#                    $LINKTOKEN_PG<N>_CONFIG if set, else the path in scripts/pg-majors.sh
#                    (15: /usr/lib/postgresql/15/bin/pg_config)
#   --pg-config PATH the extension for the PostgreSQL of that pg_config (with one --major: for
#                    that major, which must match)
#   --gateway        the gateway package
#   --debug          dev profile (`cargo pgrx package --debug`, `cargo build`) and gzip -1, for
#                    tests; the default, and `make package`, is the release profile and xz
# A major named with --major must be buildable; without --major, majors whose pg_config is
# missing, or whose cargo feature extension/Cargo.toml lacks, are skipped with a message.
# Environment: LINKTOKEN_MAINTAINER (the Maintainer field).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
. scripts/pg-majors.sh
umask 022

log() { printf 'package: %s\n' "$*" >&2; }
die() { printf 'package: ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

DEBUG=0
GATEWAY=0
MAJORS=()
PG_CONFIGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --debug) DEBUG=1; shift ;;
        --gateway) GATEWAY=1; shift ;;
        --major) [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--major needs a number"; MAJORS+=("$2"); shift 2 ;;
        --pg-config) [[ -n "${2:-}" ]] || die "--pg-config needs a path"; PG_CONFIGS+=("$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
AUTO=0
if [[ ${#MAJORS[@]} -eq 0 && ${#PG_CONFIGS[@]} -eq 0 && $GATEWAY -eq 0 ]]; then
    AUTO=1
    GATEWAY=1
fi
[[ ${#PG_CONFIGS[@]} -le 1 ]] || die "give at most one --pg-config"
[[ ${#PG_CONFIGS[@]} -eq 0 || ${#MAJORS[@]} -le 1 ]] || die "--pg-config goes with at most one --major"

command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
ARCH=$(dpkg --print-architecture)
MAINTAINER=${LINKTOKEN_MAINTAINER:-linktoken maintainers <maintainers@linktoken.invalid>}
# --debug: the dev profile, and gzip -1 instead of dpkg-deb's xz (which takes a minute on the
# unoptimised gateway binary alone).
if [[ $DEBUG -eq 1 ]]; then PROFILE=debug; PGRX_PROFILE=(--debug); CARGO_PROFILE=(); COMPRESS=(-Zgzip -z1)
else PROFILE=release; PGRX_PROFILE=(); CARGO_PROFILE=(--release); COMPRESS=(); fi

# The crates' versions and cargo's target directory.
read -r EXT_VERSION GW_VERSION TARGET_DIR < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
m = json.load(sys.stdin)
v = {p["name"]: p["version"] for p in m["packages"]}
print(v["linktoken"], v["linktoken-gateway"], m["target_directory"])')
OUT=$TARGET_DIR/debian
mkdir -p "$OUT"
STAGE=$(mktemp -d "$OUT/.stage.XXXXXX")   # this run's package trees, removed at exit
trap 'rm -rf "$STAGE"' EXIT

# A Cargo version as a Debian version: a pre-release 0.5.0-rc.1 sorts before 0.5.0 as 0.5.0~rc.1.
deb_version() { local v=${1%%+*}; [[ "$v" == *-* ]] && v="${v%%-*}~${v#*-}"; printf '%s\n' "$v"; }

# fill TEMPLATE KEY=VALUE... -> the template with every @KEY@ replaced
fill() {
    local text kv key val template=$1
    text=$(<"$template")
    shift
    for kv in "$@"; do
        key=${kv%%=*} val=${kv#*=}
        text=${text//"@$key@"/"$val"}
    done
    if grep -qE '@[A-Z_]+@' <<<"$text"; then
        die "$template: unfilled placeholder $(grep -oE '@[A-Z_]+@' <<<"$text" | head -1)"
    fi
    printf '%s\n' "$text"
}

# Shared-library dependencies of the ELF files given (dpkg-shlibdeps wants a debian/control).
shlib_depends() {
    local dir out
    if ! command -v dpkg-shlibdeps >/dev/null; then
        echo "libc6, libgcc-s1"
        return
    fi
    dir=$(mktemp -d "$STAGE/shlibdeps.XXXXXX")
    mkdir "$dir/debian"
    printf 'Source: linktoken\n\nPackage: linktoken\nArchitecture: any\n' >"$dir/debian/control"
    out=$(cd "$dir" && dpkg-shlibdeps -O "$@" 2>/dev/null) || die "dpkg-shlibdeps failed on $*"
    rm -rf "$dir"
    out=${out#shlibs:Depends=}
    [[ -n "$out" ]] || die "dpkg-shlibdeps found no dependencies of $*"
    printf '%s\n' "$out"
}

# One paragraph of Description text as control-file continuation lines (" text").
desc_lines() { fold -s -w 72 <<<"$*" | sed 's/ *$//; s/^/ /'; }

# installed_size ROOT -> KiB of the files to install (before DEBIAN/ exists)
installed_size() { du -sk --apparent-size "$1" | cut -f1; }

# build_deb ROOT NAME VERSION: directory modes, md5sums, then dpkg-deb into $OUT.
build_deb() {
    local root=$1 name=$2 version=$3 deb
    find "$root" -type d -exec chmod 0755 {} +
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
        >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/md5sums"
    rm -f "$OUT/${name}_"*"_$ARCH.deb"   # an older version's package would be ambiguous
    deb="$OUT/${name}_${version}_$ARCH.deb"
    dpkg-deb --root-owner-group "${COMPRESS[@]}" --build "$root" "$deb" >/dev/null
    log "built $deb ($(du -h "$deb" | cut -f1))"
}

# --- the extension for one major -------------------------------------------------------------
package_major() { # package_major MAJOR PG_CONFIG
    local major=$1 pg_config=$2 pkg root pkglibdir extdir server_note depends f rel size
    local -a features=() expected
    [[ "$major" == 15 ]] || features=(--no-default-features --features "pg$major")
    pkg=postgresql-$major-linktoken
    root=$STAGE/$pkg
    rm -rf "$root"
    log "PostgreSQL $major ($("$pg_config" --version), $pg_config): cargo pgrx package ($PROFILE)"
    cargo pgrx package -p linktoken --pg-config "$pg_config" "${features[@]}" "${PGRX_PROFILE[@]}" \
        --out-dir "$root" >&2
    pkglibdir=$("$pg_config" --pkglibdir)
    extdir=$("$pg_config" --sharedir)/extension
    # Exactly the library, the control file, this version's install script and the upgrade scripts.
    expected=("$pkglibdir/linktoken.so" "$extdir/linktoken.control" "$extdir/linktoken--$EXT_VERSION.sql")
    for f in extension/sql/linktoken--*--*.sql; do expected+=("$extdir/${f##*/}"); done
    for f in "${expected[@]}"; do [[ -f "$root$f" ]] || die "$pkg: cargo pgrx package made no $f"; done
    while IFS= read -r -d '' f; do
        rel=/${f#"$root"/}
        grep -qxF -- "$rel" <<<"$(printf '%s\n' "${expected[@]}")" || die "$pkg: unexpected file from cargo pgrx package: $rel"
    done < <(find "$root" -type f -print0)
    find "$root" -type f -exec chmod 0644 {} +

    depends=$(shlib_depends "$root$pkglibdir/linktoken.so")
    if [[ "$pkglibdir" == "/usr/lib/postgresql/$major/lib" ]]; then
        # Debian's layout: Debian's server package of that major.
        depends="postgresql-$major, $depends"
        server_note=$(printf ' .\n%s' "$(desc_lines "It goes with Debian's postgresql-$major server package.")")
    else
        server_note=$(printf ' .\n%s' "$(desc_lines "Built for the PostgreSQL $major installation whose pg_config is $pg_config: no Debian package provides that server (on the linktoken CI machine it is unpacked from a PyPI wheel by scripts/install-deps.sh), so this package depends on no Debian server package. Install that server first; this package only puts files into its lib directory ($pkglibdir) and $extdir.")")
    fi
    install -D -m 0644 packaging/postgresql-linktoken/copyright "$root/usr/share/doc/$pkg/copyright"
    size=$(installed_size "$root")
    install -d "$root/DEBIAN"
    fill packaging/postgresql-linktoken/control.in MAJOR="$major" VERSION="$(deb_version "$EXT_VERSION")" \
        EXT_VERSION="$EXT_VERSION" ARCH="$ARCH" MAINTAINER="$MAINTAINER" DEPENDS="$depends" \
        SERVER_NOTE="$server_note" INSTALLED_SIZE="$size" >"$root/DEBIAN/control"
    build_deb "$root" "$pkg" "$(deb_version "$EXT_VERSION")"
}

# pg_config of MAJOR: $LINKTOKEN_PG<N>_CONFIG, else scripts/pg-majors.sh's path (empty if unknown).
pg_config_for() {
    local var=LINKTOKEN_PG$1_CONFIG
    if [[ -n "${!var:-}" ]]; then printf '%s\n' "${!var}"; else pg_config_of "$1" 2>/dev/null || true; fi
}

# major_of PG_CONFIG -> the major it reports ("PostgreSQL 16.2" -> 16)
major_of() { local v; v=$("$1" --version) || return 1; v=${v#PostgreSQL }; printf '%s\n' "${v%%[.a-z ]*}"; }

# try_major MAJOR PG_CONFIG REQUIRED: package it, or skip (REQUIRED=0) / fail (REQUIRED=1) with the reason.
try_major() {
    local major=$1 pg_config=$2 required=$3 why="" reported
    if [[ -z "$pg_config" || ! -x "$pg_config" ]]; then
        why="no pg_config${pg_config:+ at $pg_config} (set LINKTOKEN_PG${major}_CONFIG to its path)"
    elif ! reported=$(major_of "$pg_config") || [[ "$reported" != "$major" ]]; then
        why="$pg_config reports '$("$pg_config" --version 2>&1)', not PostgreSQL $major"
    elif [[ "$major" != 15 ]] && ! grep -Eq "^pg$major *=" extension/Cargo.toml; then
        why="extension/Cargo.toml has no cargo feature pg$major"
    fi
    if [[ -n "$why" ]]; then
        [[ $required -eq 0 ]] || die "PostgreSQL $major: $why"
        log "skipping PostgreSQL $major: $why"
        return 0
    fi
    package_major "$major" "$pg_config"
}

if [[ ${#PG_CONFIGS[@]} -eq 1 ]]; then
    cfg=${PG_CONFIGS[0]}
    [[ -x "$cfg" ]] || die "--pg-config $cfg: not an executable"
    major=$(major_of "$cfg") || die "$cfg --version failed"
    try_major "${MAJORS[0]:-$major}" "$cfg" 1
elif [[ $AUTO -eq 1 ]]; then
    for major in "${LINKTOKEN_PG_MAJORS[@]}"; do try_major "$major" "$(pg_config_for "$major")" 0; done
else
    for major in "${MAJORS[@]}"; do try_major "$major" "$(pg_config_for "$major")" 1; done
fi

# --- the gateway -----------------------------------------------------------------------------
package_gateway() {
    local pkg=linktoken-gateway root bin dir=packaging/linktoken-gateway var size missing=()
    root=$STAGE/$pkg
    rm -rf "$root"
    log "gateway: cargo build -p linktoken-gateway ($PROFILE)"
    cargo build -p linktoken-gateway "${CARGO_PROFILE[@]}" >&2
    bin=$TARGET_DIR/$PROFILE/linktoken-gateway
    # Every flag's environment variable must be documented in the environment file.
    for var in $("$bin" --help | grep -o '\[env: [A-Z_]*=' | sed 's/\[env: //; s/=$//'); do
        grep -Eq "^#?$var=" "$dir/linktoken-gateway.default" || missing+=("$var")
    done
    [[ ${#missing[@]} -eq 0 ]] || die "$dir/linktoken-gateway.default lacks ${missing[*]} (see linktoken-gateway --help)"
    install -D -m 0755 "$bin" "$root/usr/bin/linktoken-gateway"
    install -D -m 0644 "$dir/linktoken-gateway.service" "$root/lib/systemd/system/linktoken-gateway.service"
    # 0640 already in the package; postinst gives it the group linktoken-gateway.
    install -D -m 0640 "$dir/linktoken-gateway.default" "$root/etc/default/linktoken-gateway"
    install -D -m 0644 "$dir/copyright" "$root/usr/share/doc/$pkg/copyright"
    size=$(installed_size "$root")
    install -d "$root/DEBIAN"
    install -m 0755 "$dir/postinst" "$dir/prerm" "$dir/postrm" "$root/DEBIAN/"
    install -m 0644 "$dir/conffiles" "$root/DEBIAN/conffiles"
    fill "$dir/control.in" VERSION="$(deb_version "$GW_VERSION")" ARCH="$ARCH" MAINTAINER="$MAINTAINER" \
        DEPENDS="$(shlib_depends "$root/usr/bin/linktoken-gateway")" INSTALLED_SIZE="$size" \
        >"$root/DEBIAN/control"
    build_deb "$root" "$pkg" "$(deb_version "$GW_VERSION")"
}
[[ $GATEWAY -eq 0 ]] || package_gateway

ls -l "$OUT"/*.deb >&2 2>/dev/null || log "no package built"
