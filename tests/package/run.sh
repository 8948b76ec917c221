#!/usr/bin/env bash
# The Debian packages of scripts/package.sh, installed on this machine:
#  - builds postgresql-15-linktoken and linktoken-gateway (--debug, to keep CI time down) and
#    checks their control fields and contents;
#  - extension: takes the source install of the extension out of PostgreSQL 15's directories
#    (the files scripts/install-extension.sh put there, after checking that no package owns
#    them; kept aside), dpkg -i's the package, checks dpkg -L, runs CREATE EXTENSION and a smoke
#    test of the SQL API on a throwaway cluster (.pgdata/package), dpkg -r's it and reinstalls
#    the source build (scripts/install-extension.sh; if that fails, the files kept aside). The
#    reinstall is in the EXIT trap, so a failure or an interrupt restores the machine too;
#  - gateway: dpkg -i, the system user, --help/--version, the unit file (systemd-analyze verify
#    and the hardening keys), the environment file (mode, group, conffile, every flag's
#    variable), enable/disable without a running systemd, reinstall, remove, purge.
# Tokens stay in psql variables (\gset) and never reach the output or the server log.
# Usage: tests/package/run.sh   (OUT: artifacts directory). Prints "N passed, N failed".
set -uo pipefail   # no -e: a failed check is counted, and the restore runs in any case
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
OUT=${OUT:-$ROOT/target/test-output}/package
CLUSTER=$ROOT/.pgdata/package
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PGBIN=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
EXTDIR=$("$PG_CONFIG" --sharedir)/extension
EXT_PKG=postgresql-15-linktoken
GW=linktoken-gateway
ENV_FILE=/etc/default/$GW
UNIT=/lib/systemd/system/$GW.service
ARCH=$(dpkg --print-architecture)
mkdir -p "$OUT"

passed=0; failed=0
check() { # check DESCRIPTION COMMAND...
    if "${@:2}"; then echo "ok: $1"; passed=$((passed + 1)); else echo "FAILED: $1"; failed=$((failed + 1)); return 1; fi
}
quiet() { "$@" >>"$OUT/dpkg.log" 2>&1; }   # quiet COMMAND...: output to dpkg.log
# dpkg_ ARGS...: dpkg, output to dpkg.log, waiting up to 60 s while apt or dpkg elsewhere holds the lock
dpkg_() {
    local i out
    for i in $(seq 60); do
        out=$(dpkg "$@" 2>&1) && { printf '%s\n' "$out" >>"$OUT/dpkg.log"; return 0; }
        printf '%s\n' "$out" >>"$OUT/dpkg.log"
        grep -q 'dpkg frontend lock\|dpkg status database is locked' <<<"$out" || return 1
        sleep 1
    done
    return 1
}
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
finish() {
    echo
    echo "package: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'; }
# known PACKAGE: installed, or half so, or removed with its conffiles left
known() { local s; s=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1; [[ "$s" != *not-installed ]]; }
psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
field() { dpkg-deb -f "$1" "$2"; }   # field DEB NAME
# the (sorted) files a .deb would install, without directories
deb_files() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ {sub(/^\./, "", $6); print $6}' | sort; }

read -r EXT_VERSION GW_VERSION TARGET_DIR < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
m = json.load(sys.stdin)
v = {p["name"]: p["version"] for p in m["packages"]}
print(v["linktoken"], v["linktoken-gateway"], m["target_directory"])')
[ -n "${TARGET_DIR:-}" ] || { echo "FAILED: cargo metadata"; exit 1; }
deb_version() { local v=${1%%+*}; [[ "$v" == *-* ]] && v="${v%%-*}~${v#*-}"; printf '%s\n' "$v"; }
EXT_DEB=$TARGET_DIR/debian/${EXT_PKG}_$(deb_version "$EXT_VERSION")_$ARCH.deb
GW_DEB=$TARGET_DIR/debian/${GW}_$(deb_version "$GW_VERSION")_$ARCH.deb

# --- restoring the machine -------------------------------------------------------------------
SOURCE_REMOVED=0
KEPT=$(mktemp -d)   # the source install's files, kept aside while the package is installed
restore_extension() {
    [ "$SOURCE_REMOVED" = 1 ] || return 0
    known "$EXT_PKG" && { dpkg_ -r "$EXT_PKG" || bad "dpkg -r $EXT_PKG (in the restore)"; }
    echo "--- restoring the source install of the extension (scripts/install-extension.sh)"
    local f
    if scripts/install-extension.sh >"$OUT/reinstall.log" 2>&1; then
        # Files install-extension does not make (e.g. released install scripts the upgrade test
        # copied in) come back as they were.
        for f in "$KEPT"/lib/* "$KEPT"/ext/*; do
            [ -e "$f" ] || continue
            case "$f" in
                "$KEPT"/lib/*) [ -e "$PKGLIBDIR/${f##*/}" ] || cp -a "$f" "$PKGLIBDIR/" ;;
                *) [ -e "$EXTDIR/${f##*/}" ] || cp -a "$f" "$EXTDIR/" ;;
            esac
        done
    else
        tail -20 "$OUT/reinstall.log"
        bad "scripts/install-extension.sh failed (log: $OUT/reinstall.log); putting back the files that were installed before"
        cp -a "$KEPT"/lib/. "$PKGLIBDIR/"
        cp -a "$KEPT"/ext/. "$EXTDIR/"
    fi
    SOURCE_REMOVED=0
}
cleanup() {
    local failed_before=$failed
    scripts/pg-cluster.sh stop "$CLUSTER" >/dev/null 2>&1 || true
    cp "$CLUSTER/server.log" "$OUT/server.log" 2>/dev/null || true
    scripts/pg-cluster.sh destroy "$CLUSTER" >/dev/null 2>&1 || true
    restore_extension
    if known "$GW"; then dpkg_ --purge "$GW" || bad "dpkg --purge $GW (in the cleanup)"; fi
    rm -rf "$KEPT"
    [ "$failed" -eq "$failed_before" ] || { echo "package: the cleanup failed (above)"; exit 1; }
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -------------------------------------------------------------------------------------
echo "--- building the packages: scripts/package.sh --debug --major 15 --gateway (log: $OUT/build.log)"
start=$SECONDS
if ! scripts/package.sh --debug --major 15 --gateway >"$OUT/build.log" 2>&1; then
    tail -30 "$OUT/build.log"
    bad "scripts/package.sh --debug --major 15 --gateway"
    finish
    exit 1
fi
echo "built in $((SECONDS - start)) s: $(du -h "$EXT_DEB" | cut -f1) $EXT_DEB, $(du -h "$GW_DEB" | cut -f1) $GW_DEB"

# --- the extension package: fields and contents ------------------------------------------------
check "$EXT_PKG: Package, Version $EXT_VERSION, Architecture $ARCH" \
    test "$(field "$EXT_DEB" Package) $(field "$EXT_DEB" Version) $(field "$EXT_DEB" Architecture)" = \
    "$EXT_PKG $(deb_version "$EXT_VERSION") $ARCH"
check "$EXT_PKG: Depends on postgresql-15" grep -qE '(^|, )postgresql-15(,|$)' <<<"$(field "$EXT_DEB" Depends)"
check "$EXT_PKG: Section database, a Maintainer and a Description" \
    test "$(field "$EXT_DEB" Section)" = database -a -n "$(field "$EXT_DEB" Maintainer)" -a -n "$(field "$EXT_DEB" Description)"
expected_ext=("$PKGLIBDIR/linktoken.so" "$EXTDIR/linktoken.control" "$EXTDIR/linktoken--$EXT_VERSION.sql"
    "/usr/share/doc/$EXT_PKG/copyright")
for f in extension/sql/linktoken--*--*.sql; do expected_ext+=("$EXTDIR/${f##*/}"); done
check "$EXT_PKG: exactly the library, control file, install script, upgrade scripts and copyright" \
    diff <(printf '%s\n' "${expected_ext[@]}" | sort) <(deb_files "$EXT_DEB")
check "$EXT_PKG: every file owned by root:root" \
    test -z "$(dpkg-deb -c "$EXT_DEB" | awk '$2 != "root/root"')"

# --- the extension package, installed ----------------------------------------------------------
# The source install: what `cargo pgrx install` put into PostgreSQL 15's directories.
mapfile -t source_files < <(ls -d "$PKGLIBDIR/linktoken.so" "$EXTDIR/linktoken.control" "$EXTDIR"/linktoken--*.sql 2>/dev/null)
owned=()
for f in "${source_files[@]}"; do
    if pkg=$(dpkg -S "$f" 2>/dev/null); then owned+=("$pkg"); fi
done
extension_test() {
    if [ ${#owned[@]} -gt 0 ]; then
        if installed "$EXT_PKG" && [ -z "$(printf '%s\n' "${owned[@]}" | grep -v "^$EXT_PKG: ")" ]; then
            echo "--- $EXT_PKG is installed (left by an interrupted run?): dpkg -r it first"
            SOURCE_REMOVED=1
            mkdir -p "$KEPT/lib" "$KEPT/ext"
            dpkg_ -r "$EXT_PKG" || { bad "dpkg -r of the $EXT_PKG left installed"; return; }
        else
            bad "files of the extension belong to a package, not to the source install; not touching them: ${owned[*]}"
            return
        fi
    fi
    check "the source install's files belong to no package (dpkg -S): ${#source_files[@]} files" \
        test ${#owned[@]} -eq 0 -o "$SOURCE_REMOVED" = 1
    echo "--- taking the source install out of the way (kept in $KEPT until the restore)"
    SOURCE_REMOVED=1
    mkdir -p "$KEPT/lib" "$KEPT/ext"
    for f in "${source_files[@]}"; do
        [ -e "$f" ] || continue
        case "$f" in "$PKGLIBDIR"/*) mv "$f" "$KEPT/lib/" ;; *) mv "$f" "$KEPT/ext/" ;; esac
    done
    check "no linktoken file left in $PKGLIBDIR and $EXTDIR" \
        test -z "$(ls -d "$PKGLIBDIR"/linktoken* "$EXTDIR"/linktoken* 2>/dev/null)"

    check "dpkg -i $EXT_PKG" dpkg_ -i "$EXT_DEB" || return
    listed=$(dpkg -L "$EXT_PKG")
    for f in "${expected_ext[@]}"; do
        check "dpkg -L lists $f, and it is there" eval 'grep -qxF -- "$f" <<<"$listed" && test -f "$f"'
    done
    check "dpkg -S $PKGLIBDIR/linktoken.so: $EXT_PKG" test "$(dpkg -S "$PKGLIBDIR/linktoken.so" 2>/dev/null)" = "$EXT_PKG: $PKGLIBDIR/linktoken.so"

    scripts/pg-cluster.sh destroy "$CLUSTER" >/dev/null 2>&1 || true
    if ! vars=$(scripts/pg-cluster.sh start "$CLUSTER" 2>>"$OUT/cluster.log"); then
        bad "throwaway PostgreSQL 15 cluster in $CLUSTER (see $OUT/cluster.log)"
        return
    fi
    eval "$(sed 's/^/export /' <<<"$vars")"
    export PGOPTIONS="-c client_min_messages=warning"
    psql_q -d postgres -c "CREATE DATABASE linktoken_package" -c "ALTER DATABASE linktoken_package SET log_min_error_statement = panic"
    check "CREATE EXTENSION linktoken (from the package)" psql_q -d linktoken_package -c "CREATE EXTENSION linktoken"
    # One line "name=value" per result; the tokens and the code stay in psql variables.
    results=$(psql_q -At -d linktoken_package 2>&1 <<'SQL'
SELECT 'version=' || extversion FROM pg_extension WHERE extname = 'linktoken';
SELECT 'module=' || string_agg(DISTINCT probin, ',') FROM pg_proc WHERE pronamespace = 'linktoken'::regnamespace AND probin IS NOT NULL;
SELECT linktoken.define_purpose('pkg_verify', '1 hour');
SELECT linktoken.issue('pkg_verify', 'user:1') AS tok \gset
SELECT 'peek=' || status || ',' || subject FROM linktoken.peek(:'tok', 'pkg_verify');
SELECT 'redeem1=' || status FROM linktoken.redeem(:'tok', 'pkg_verify');
SELECT 'redeem2=' || status FROM linktoken.redeem(:'tok', 'pkg_verify');
SELECT linktoken.define_purpose('pkg_code', '10 minutes', code_digits => 6);
SELECT token AS ctok, code AS ccode FROM linktoken.issue_with_code('pkg_code', 'user:2') \gset
SELECT 'code=' || status || ',' || subject FROM linktoken.redeem_code('pkg_code', 'user:2', :'ccode');
SELECT 'code_link=' || status FROM linktoken.redeem(:'ctok', 'pkg_code');
SELECT linktoken.define_purpose('pkg_unsub', '30 days', max_uses => NULL, revoke_previous => false);
SELECT linktoken.seal('pkg_unsub', 'user:3') AS stok \gset
SELECT 'sealed_prefix=' || left(:'stok', 4);
SELECT 'sealed_peek=' || status || ',' || subject FROM linktoken.peek(:'stok', 'pkg_unsub');
SELECT 'sealed_redeem=' || status FROM linktoken.redeem(:'stok', 'pkg_unsub');
SQL
    ) || { echo "$results" | grep -v '=' | head -20; bad "the SQL smoke test stopped with an error"; }
    result() { sed -n "s/^$1=//p" <<<"$results"; }
    check "extension version = package version ($EXT_VERSION)" test "$(result version)" = "$EXT_VERSION"
    check "functions come from \$libdir/linktoken" test "$(result module)" = "\$libdir/linktoken"
    check "issue + peek: ok, subject user:1" test "$(result peek)" = "ok,user:1"
    check "redeem: ok" test "$(result redeem1)" = ok
    check "redeem again: used" test "$(result redeem2)" = used
    check "issue_with_code + redeem_code: ok, subject user:2" test "$(result code)" = "ok,user:2"
    check "the link of a redeemed code: used" test "$(result code_link)" = used
    check "seal (revoke_previous => false): an lts_ token" test "$(result sealed_prefix)" = lts_
    check "peek of the sealed token: ok, subject user:3" test "$(result sealed_peek)" = "ok,user:3"
    check "redeem of the sealed token: ok" test "$(result sealed_redeem)" = ok
    scripts/pg-cluster.sh stop "$CLUSTER" >/dev/null 2>&1 || true
    cp "$CLUSTER/server.log" "$OUT/server.log" 2>/dev/null || true
    scripts/pg-cluster.sh destroy "$CLUSTER" >/dev/null 2>&1 || true

    check "dpkg -r $EXT_PKG" dpkg_ -r "$EXT_PKG"
    check "dpkg -r removed the package's files" \
        test -z "$(ls -d "$PKGLIBDIR"/linktoken* "$EXTDIR"/linktoken* /usr/share/doc/"$EXT_PKG" 2>/dev/null)"
}
window=$SECONDS
extension_test
restore_extension
echo "the source install was out of the way for $((SECONDS - window)) s"
check "the source build is installed again ($PKGLIBDIR/linktoken.so, $EXTDIR/linktoken--$EXT_VERSION.sql, owned by no package)" \
    eval 'test -f "$PKGLIBDIR/linktoken.so" -a -f "$EXTDIR/linktoken--$EXT_VERSION.sql" && ! dpkg -S "$PKGLIBDIR/linktoken.so" >/dev/null 2>&1'

# --- the gateway package -----------------------------------------------------------------------
check "$GW: Package, Version $GW_VERSION, Architecture $ARCH" \
    test "$(field "$GW_DEB" Package) $(field "$GW_DEB" Version) $(field "$GW_DEB" Architecture)" = \
    "$GW $(deb_version "$GW_VERSION") $ARCH"
check "$GW: exactly the binary, the unit, the environment file and copyright" \
    diff <(printf '%s\n' /etc/default/$GW /lib/systemd/system/$GW.service /usr/bin/$GW /usr/share/doc/$GW/copyright | sort) \
    <(deb_files "$GW_DEB")
check "$GW: the environment file is 0640 in the package already" \
    grep -qE '^-rw-r----- root/root .* \./etc/default/linktoken-gateway$' <<<"$(dpkg-deb -c "$GW_DEB")"
ctrl=$(mktemp -d)
dpkg-deb -e "$GW_DEB" "$ctrl"
check "$GW: conffiles is /etc/default/$GW" test "$(cat "$ctrl/conffiles")" = "/etc/default/$GW"
check "$GW: maintainer scripts parse (sh -n)" sh -n "$ctrl/postinst" "$ctrl/prerm" "$ctrl/postrm"
rm -rf "$ctrl"

gateway_test() {
    if known "$GW"; then
        echo "--- $GW is installed (left by an interrupted run?): purging it first"
        dpkg_ --purge "$GW" || { bad "dpkg --purge of the $GW left installed"; return; }
    fi
    if getent passwd "$GW" >/dev/null || getent group "$GW" >/dev/null; then
        bad "a user or group $GW exists but the package is not installed: not touching it"
        return
    fi
    check "dpkg -i $GW" dpkg_ -i "$GW_DEB" || return
    local uid shell home group mode
    IFS=: read -r _ _ uid _ _ home shell < <(getent passwd "$GW") || true
    check "system user $GW exists (uid $uid < 1000, home $home, shell $shell)" \
        test -n "$uid" -a "${uid:-1000}" -lt 1000 -a "$shell" = /usr/sbin/nologin -a ! -e "$home"
    check "its primary group is $GW" test "$(id -gn "$GW" 2>/dev/null)" = "$GW"
    check "/usr/bin/$GW --help runs and names LINKTOKEN_DATABASE_URL" \
        grep -q 'env: LINKTOKEN_DATABASE_URL' <<<"$(/usr/bin/$GW --help 2>&1)"
    check "/usr/bin/$GW --version, as the user $GW: $GW $GW_VERSION" \
        test "$(runuser -u "$GW" -- /usr/bin/$GW --version 2>&1)" = "$GW $GW_VERSION"

    if command -v systemd-analyze >/dev/null; then
        verify=$(systemd-analyze verify "$UNIT" 2>&1)
        check "systemd-analyze verify $UNIT: no complaints" test -z "$verify" || echo "$verify"
        systemd-analyze security --offline=true "$UNIT" >"$OUT/unit-security.txt" 2>&1 &&
            echo "systemd-analyze security: $(tail -1 "$OUT/unit-security.txt")"
    else
        echo "(systemd-analyze not available: the unit is checked by its keys only)"
    fi
    local key
    for key in "User=$GW" "Group=$GW" "EnvironmentFile=$ENV_FILE" "ExecStart=/usr/bin/$GW" Restart=on-failure \
        NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
        CapabilityBoundingSet= "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" WantedBy=multi-user.target; do
        check "unit: $key" grep -qxF -- "$key" "$UNIT"
    done

    read -r mode owner group < <(stat -c '%a %U %G' "$ENV_FILE")
    check "$ENV_FILE: mode 0640, root:$GW (is $mode $owner:$group)" test "$mode $owner:$group" = "640 root:$GW"
    check "$ENV_FILE is a conffile" grep -q "^ $ENV_FILE " <<<"$(dpkg-query -W -f='${Conffiles}\n' "$GW")"
    local var missing=()
    for var in $(/usr/bin/$GW --help | grep -o '\[env: [A-Z_]*=' | sed 's/\[env: //; s/=$//'); do
        grep -Eq "^#?$var=" "$ENV_FILE" || missing+=("$var")
    done
    check "$ENV_FILE documents every flag's variable${missing[*]:+ (missing: ${missing[*]})}" test ${#missing[@]} -eq 0
    check "$ENV_FILE: only LINKTOKEN_DATABASE_URL and LINKTOKEN_PUBLIC_URL are set" \
        test "$(grep -oE '^[A-Z_]+=' "$ENV_FILE" | tr '\n' ' ')" = "LINKTOKEN_DATABASE_URL= LINKTOKEN_PUBLIC_URL= "
    check "$ENV_FILE: the password is a placeholder" grep -q '^LINKTOKEN_DATABASE_URL=.*password=CHANGE_ME' "$ENV_FILE"

    # Enabled by hand (systemctl works on the symlinks without a running systemd, as here).
    if command -v systemctl >/dev/null; then
        check "systemctl enable $GW (no running systemd)" quiet systemctl enable "$GW.service"
        check "enabled: the multi-user.target.wants symlink" test -L /etc/systemd/system/multi-user.target.wants/$GW.service
    fi

    # Reinstall over itself: postinst again with the user, the statoverride and a changed conffile.
    echo "# changed by tests/package/run.sh" >>"$ENV_FILE"
    uid_before=$uid
    check "dpkg -i $GW again (upgrade path)" dpkg_ -i "$GW_DEB"
    check "same user afterwards (uid $uid_before)" test "$(id -u "$GW" 2>/dev/null)" = "$uid_before"
    check "the changed environment file is kept, still 0640 root:$GW" \
        eval 'tail -1 "$ENV_FILE" | grep -q "changed by tests/package" && test "$(stat -c "%a %U %G" "$ENV_FILE")" = "640 root $GW"'

    check "dpkg -r $GW" dpkg_ -r "$GW"
    check "removed: binary and unit gone, service disabled; user and environment file kept" \
        eval 'test ! -e /usr/bin/$GW -a ! -e "$UNIT" -a ! -L /etc/systemd/system/multi-user.target.wants/$GW.service -a -f "$ENV_FILE" && getent passwd "$GW" >/dev/null'
    check "dpkg --purge $GW" dpkg_ --purge "$GW"
    check "purged: the user and the group are gone" eval '! getent passwd "$GW" >/dev/null && ! getent group "$GW" >/dev/null'
    check "purged: the environment file and its statoverride are gone" \
        eval 'test ! -e "$ENV_FILE" && ! dpkg-statoverride --list "$ENV_FILE" >/dev/null'
}
gateway_test

finish
