#!/usr/bin/env bash
# The purge worker and the pg_cron recipe on a real cluster with
# shared_preload_libraries = 'linktoken,pg_cron' (its own throwaway cluster under .pgdata/worker):
#  - the worker purges expired tokens every linktoken.purge_interval in linktoken.database;
#  - it survives a configuration reload (same pid, new interval in effect);
#  - pg_cron runs SELECT linktoken.purge() on a schedule (the documented recipe);
#  - typed codes are refused (53000), never checked uncounted, when no worker slot is free;
#  - the server stops cleanly (the worker honours SIGTERM).
# Bounded waits only; the cluster is stopped by pg_ctl on every exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/target/test-output}
DIR=$ROOT/.pgdata/worker
PGBIN=/usr/lib/postgresql/15/bin
cd "$ROOT"
passed=0; failed=0
check() { # check DESCRIPTION COMMAND...
    if "${@:2}"; then echo "ok: $1"; passed=$((passed + 1)); else echo "FAILED: $1"; failed=$((failed + 1)); fi
}
wait_for() { # wait_for SECONDS SQL-returning-t DB
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(psql_q -At -d "$3" -c "$2" 2>/dev/null)" = t ] && return 0
        sleep 0.5
    done
    return 1
}
psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

scripts/pg-cluster.sh destroy "$DIR" >/dev/null 2>&1 || true
trap 'scripts/pg-cluster.sh stop "$DIR" >/dev/null 2>&1 || true; mkdir -p "$OUT"; cp "$DIR/server.log" "$OUT/worker-server.log" 2>/dev/null || true' EXIT
# The databases must exist before the workers start (otherwise they retry every 30 s):
# create them on a plain start, then restart with the libraries preloaded.
eval "$(scripts/pg-cluster.sh start "$DIR" -- | sed 's/^/export /')"
export PGOPTIONS="-c client_min_messages=warning"
for db in linktoken_worker linktoken_cron; do
    psql_q -d postgres -c "CREATE DATABASE $db"
    psql_q -d "$db" -c "CREATE EXTENSION linktoken" -c "ALTER DATABASE $db SET log_min_error_statement = panic"
done
# The interval goes into postgresql.auto.conf, not onto the command line (which would outrank
# the reload below).
psql_q -d linktoken_worker -c "LOAD 'linktoken'" -c "ALTER SYSTEM SET linktoken.purge_interval = '1s'"
scripts/pg-cluster.sh stop "$DIR" >/dev/null
eval "$(scripts/pg-cluster.sh start "$DIR" -c shared_preload_libraries=linktoken,pg_cron \
    -c linktoken.database=linktoken_worker \
    -c cron.database_name=linktoken_cron -c log_min_messages=log | sed 's/^/export /')"

# Tokens: one live, two that expired 30 days ago (older than the default 7-day retention).
seed() { # seed DB SUBJECT-PREFIX
    psql_q -d "$1" -o /dev/null <<SQL
SELECT linktoken.define_purpose('w_reset', '1 hour', revoke_previous => false);
SELECT count(linktoken.issue('w_reset', '$2:' || i)) FROM generate_series(1, 3) i;
UPDATE linktoken.tokens SET expires_at = now() - interval '30 days' WHERE subject IN ('$2:1', '$2:2');
SQL
}
gone() { echo "SELECT count(*) = 0 FROM linktoken.tokens WHERE subject IN ('$1:1', '$1:2') AND EXISTS (SELECT 1 FROM linktoken.tokens WHERE subject = '$1:3')"; }

seed linktoken_worker a
check "the worker purges expired tokens within seconds" wait_for 20 "$(gone a)" linktoken_worker
check "the purge is in the audit log" wait_for 5 "SELECT count(*) > 0 FROM linktoken.events WHERE event = 'purged'" linktoken_worker
pid=$(psql_q -At -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'linktoken purge'")
check "one worker process runs (pid ${pid:-none})" test -n "$pid"

psql_q -d postgres -c "ALTER SYSTEM SET linktoken.purge_interval = '2s'" -c "SELECT pg_reload_conf()" -o /dev/null
sleep 3
pid2=$(psql_q -At -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'linktoken purge'")
check "the worker survives a reload (pid ${pid:-none} -> ${pid2:-none})" test -n "$pid2" -a "$pid" = "$pid2"
check "the reload reached the worker" grep -q "linktoken purge worker: configuration reloaded, every 2 s" "$DIR/server.log"
seed linktoken_worker b
check "after the reload it still purges" wait_for 20 "$(gone b)" linktoken_worker

# The pg_cron recipe from docs/sql-api.md (minute granularity in Debian 12's pg_cron 1.4).
psql_q -d linktoken_cron -c "CREATE EXTENSION pg_cron" \
    -c "SELECT cron.schedule('linktoken-purge', '* * * * *', 'SELECT linktoken.purge()')" -o /dev/null
seed linktoken_cron c
check "pg_cron runs linktoken.purge() on schedule" wait_for 100 "$(gone c)" linktoken_cron
check "pg_cron recorded a successful run" wait_for 10 \
    "SELECT count(*) > 0 FROM cron.job_run_details WHERE command = 'SELECT linktoken.purge()' AND status = 'succeeded'" linktoken_cron

# Typed codes are counted by a short-lived background worker before redeem_code answers
# (extension/src/attempts.rs). With no free worker slot it must refuse (53000) and check nothing.
psql_q -d linktoken_worker -o /dev/null -c "SELECT linktoken.define_purpose('w_code', '10 minutes', code_digits => 6)"
read -r code_tok code < <(psql_q -At -F ' ' -d linktoken_worker -c "SELECT token, code FROM linktoken.issue_with_code('w_code', 'w:1')")
wrong=$(printf '%06d' $(( (10#$code + 1) % 1000000 )))
redeem_code() { psql_q -At -d linktoken_worker -c "SELECT status FROM linktoken.redeem_code('w_code', 'w:1', '$1')" 2>&1 || true; }
# Positive control: with free slots the worker runs and counts the attempt.
check "with a free worker slot a wrong code is counted" test "$(redeem_code "$wrong")" = wrong_code
# Every slot taken by the always-running workers (purge, pg_cron, logical replication launcher).
busy=$(psql_q -At -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('linktoken purge', 'pg_cron launcher', 'logical replication launcher')")
psql_q -d postgres -c "ALTER SYSTEM SET max_worker_processes = $busy" -o /dev/null
scripts/pg-cluster.sh restart "$DIR" >/dev/null
started=$SECONDS
refused=$(redeem_code "$code")
check "with no free slot redeem_code refuses with 53000 ($((SECONDS - started)) s)" grep -q "could not count this typed code" <<<"$refused"
peeked=$(psql_q -At -d linktoken_worker -v t="$code_tok" <<<"SELECT status FROM linktoken.peek(:'t', 'w_code');" 2>&1 || true)
check "... and checked nothing: the code's token is still usable ($peeked)" test "$peeked" = ok
psql_q -d postgres -c "ALTER SYSTEM RESET max_worker_processes" -o /dev/null
scripts/pg-cluster.sh restart "$DIR" >/dev/null
check "with slots again the right code redeems" test "$(redeem_code "$code")" = ok

start=$SECONDS
scripts/pg-cluster.sh stop "$DIR" >/dev/null
check "the server stops cleanly and quickly ($((SECONDS - start)) s)" test $((SECONDS - start)) -lt 15
check "the worker logged its stop" grep -q "linktoken purge worker stopping" "$DIR/server.log"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
