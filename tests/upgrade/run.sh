#!/usr/bin/env bash
# Upgrade test: for every released version (its frozen install script is in
# extension/sql/released/), install that version, put data in, ALTER EXTENSION linktoken UPDATE,
# and check that (1) the data still works and (2) the result is identical, object by object, to
# a fresh install of the current version. Expects PGHOST/PGPORT of a running test cluster with the
# current build installed; run as root (it copies the frozen scripts into PostgreSQL's share dir).
# PG_CONFIG selects the major (default: Debian's 15).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/target/test-output}/upgrade
# The server's pg_config (PostgreSQL 15 from Debian unless PG_CONFIG names another major).
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGBIN=$("$PG_CONFIG" --bindir)
SHARE=$("$PG_CONFIG" --sharedir)/extension
mkdir -p "$OUT"
export PGOPTIONS="-c client_min_messages=warning"
psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
fresh_db() {
    psql_q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" \
        -c "ALTER DATABASE $1 SET log_min_error_statement = panic"
}

current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$SHARE/linktoken.control")
fresh_db upgrade_fresh
psql_q -d upgrade_fresh -c "CREATE EXTENSION linktoken"
psql_q -d upgrade_fresh -f "$ROOT/tests/upgrade/describe.sql" > "$OUT/fresh-$current.txt"
# Real tokens (valid checksums) for the fixtures of tests/upgrade/states.sql.
psql_q -d upgrade_fresh -c "SELECT linktoken.define_purpose('upgrade_fixture', '1 day', revoke_previous => false)" >/dev/null
mapfile -t T < <(psql_q -At -d upgrade_fresh -c "SELECT linktoken.issue('upgrade_fixture', 'f:' || i) FROM generate_series(1, 5) i")
fixture_vars=(-v t1="${T[0]}" -v t2="${T[1]}" -v t3="${T[2]}" -v t4="${T[3]}" -v t5="${T[4]}")

status=0
for script in "$ROOT"/extension/sql/released/linktoken--*.sql; do
    version=$(basename "$script" .sql); version=${version#linktoken--}
    [ "$version" = "$current" ] && continue
    cp "$script" "$SHARE/"
    db=upgrade_from_${version//./_}
    fresh_db "$db"
    psql_q -d "$db" -c "CREATE EXTENSION linktoken VERSION '$version'"
    # Data from before the upgrade, written directly: with one shared library, the new build's
    # functions need the new schema, which is why UPDATE must follow the install at once.
    # The token is the fixed test fixture of extension/tests/isolation (valid checksum).
    token=ltk_Ah964-_Mf5TeESeNtctekUh_RKhEErcFV32CJte9VG2QwA4d
    psql_q -d "$db" -v t="$token" <<'SQL'
INSERT INTO linktoken.purposes (name, ttl, max_uses) VALUES ('upgrade_check', '1 day', 1);
INSERT INTO linktoken.tokens (token_hash, purpose, subject, expires_at, max_uses)
VALUES (sha256(convert_to(:'t', 'UTF8')), 'upgrade_check', 'u:1', now() + interval '1 day', 1);
SQL
    # A typed-code attempt counter in the layout of its version (0.2.0 and 0.3.0 kept the
    # subject in clear; 0.4.0 keys it by SHA-256 of purpose:subject and counts consecutive ones).
    counter=$(psql_q -At -d "$db" <<'SQL'
SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'linktoken'
               AND table_name = 'code_attempts' AND column_name = 'subject');
SQL
)
    if [ "$counter" = t ]; then
        psql_q -d "$db" -c "INSERT INTO linktoken.code_attempts (purpose, subject, failures, window_until)
                            VALUES ('upgrade_check', 'u:2', 4, now() + interval '1 hour')"
    fi
    # Tokens in every state and the events about them, as versions before 0.5.0 stored them
    # (tokens with ids; a later layout needs a fixture of its own).
    with_ids=$(psql_q -At -d "$db" -c "SELECT EXISTS (SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'linktoken' AND table_name = 'tokens' AND column_name = 'id')")
    [ "$with_ids" = t ] && psql_q -d "$db" "${fixture_vars[@]}" -f "$ROOT/tests/upgrade/states.sql" >/dev/null
    # From 0.5.0 on (tokens by hash): a token consumed before the upgrade, with its 'redeemed'
    # event, as those versions wrote it (0.7.0 records the consuming use in the row instead).
    if [ "$with_ids" != t ]; then
        psql_q -d "$db" <<'SQL'
INSERT INTO linktoken.tokens (token_hash, purpose, subject, expires_at, max_uses, use_count, last_used_at, consumed_at)
VALUES (sha256(convert_to('used before the upgrade', 'UTF8')), 'upgrade_check', 'u:used', now() + interval '1 day', 1, 1, now(), now());
INSERT INTO linktoken.events (event, status, purpose, subject, token_hash)
VALUES ('redeemed', 'ok', 'upgrade_check', 'u:used', sha256(convert_to('used before the upgrade', 'UTF8')));
SQL
    fi
    psql_q -d "$db" -c "ALTER EXTENSION linktoken UPDATE"
    if [ "$counter" = t ]; then
        got=$(psql_q -At -d "$db" -c "SELECT failures || ' ' || consecutive FROM linktoken.code_attempts
                                      WHERE attempt_key = sha256(convert_to('upgrade_check:u:2', 'UTF8'))")
        if [ "$got" = "4 4" ]; then
            echo "upgrade $version -> $current: a code attempt counter survives (4 attempts)"
        else
            echo "upgrade $version -> $current: code attempt counter after upgrade is '$got', expected '4 4'"; status=1
        fi
    fi
    psql_q -d "$db" -f "$ROOT/tests/upgrade/describe.sql" > "$OUT/from-$version.txt"
    if diff -u "$OUT/fresh-$current.txt" "$OUT/from-$version.txt" > "$OUT/from-$version.diff"; then
        echo "upgrade $version -> $current: schema identical to a fresh install"
    else
        echo "upgrade $version -> $current: DIFFERS from a fresh install:"; head -60 "$OUT/from-$version.diff"; status=1
    fi
    # The data survives: the token issued under the old version redeems exactly once.
    got=$(printf '%s\n' "SELECT status FROM linktoken.redeem(:'t', 'upgrade_check');" \
          "SELECT status FROM linktoken.redeem(:'t', 'upgrade_check');" |
          psql_q -At -d "$db" -v t="$token" | tr '\n' ' ')
    if [ "$got" = "ok used " ]; then
        echo "upgrade $version -> $current: a token issued before the upgrade redeems once"
    else
        echo "upgrade $version -> $current: token after upgrade gave '$got', expected 'ok used'"; status=1
    fi
    if [ "$with_ids" != t ]; then
        got=$(psql_q -At -d "$db" -c "SELECT count(*) FROM linktoken.audit WHERE event = 'redeemed' AND subject = 'u:used'")
        if [ "$got" = 1 ]; then
            echo "upgrade $version -> $current: a token used before the upgrade has its redemption once in the audit view"
        else
            echo "upgrade $version -> $current: a token used before the upgrade has $got redemptions in the audit view, expected 1"; status=1
        fi
    fi
    # Every state survives, and the audit log answers what it answered (states-check.sql).
    if [ "$with_ids" = t ]; then
        checks=$(psql_q -d "$db" "${fixture_vars[@]}" -f "$ROOT/tests/upgrade/states-check.sql" 2>&1) || true
        printf '%s\n' "$checks" > "$OUT/states-$version.txt"
        if [ "$(grep -c '|t$' <<<"$checks")" -eq 17 ] && ! grep -qv '|t$' <<<"$checks"; then
            echo "upgrade $version -> $current: tokens in every state and their events survive (17 checks)"
        else
            echo "upgrade $version -> $current: states after the upgrade:"; sed 's/^/    /' <<<"$checks"; status=1
        fi
    fi
    rm -f "$SHARE/$(basename "$script")"
done
echo "$(( status == 0 ? 1 : 0 )) passed, $(( status == 0 ? 0 : 1 )) failed"
exit $status
