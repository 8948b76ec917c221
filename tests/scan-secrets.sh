#!/usr/bin/env bash
# scan-secrets.sh - after the whole test suite: is a raw token anywhere it must never be?
#
# Usage:
#   tests/scan-secrets.sh [--files DIR]... [--cluster DIR]... [--gateway URL]...
#   tests/scan-secrets.sh --self-test
#
#   --files DIR     every text file under DIR (recursively; binary files such as screenshots
#                   and the fuzzer's synthetic inputs under DIR/fuzz are skipped, and so are
#                   the mails an SMTP sink received, *.eml files in a directory mail-spool,
#                   which carry their links by design; anything else in mail-spool is scanned)
#   --cluster DIR   a cluster made by scripts/pg-cluster.sh: its server logs, a pg_dumpall of
#                   all its databases, every column of every table in every database (bytea
#                   read as text, so a token stored as bytes is found too), and
#                   pg_stat_statements where installed. A stopped cluster is started for the
#                   scan and stopped again.
#   --gateway URL   a running gateway: its /metrics output
#   --self-test     negative control: plants fake token-shaped strings in a throwaway cluster
#                   (.pgdata/scan-self-test) and a scratch directory - a text column, a jsonb
#                   column, a bytea column, the server log, a log file - and checks that each is
#                   found, that a stored SHA-256 of a token is not, and that tokens quoted in the
#                   repository are exempt. Exit 0 if the scan works.
#   Without --files/--cluster: --files target/test-output --cluster .pgdata/test.
#
# Token-shaped: ltk_ (stored tokens) or lts_ (sealed tokens) followed by 20 or more base64url
# characters. Hashes are fine (they are bytes, and hex or base64 of them never has the prefix).
# Exempt: the strings that occur in files tracked by git (documentation examples, fixtures,
# fuzz seeds): whatever is in the repository is public and was never issued. Findings are shown
# with the token cut to its first 4 characters, so this script's own output leaks nothing.
# Exit 1 if anything was found.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PGBIN=/usr/lib/postgresql/15/bin
PATTERN='(ltk|lts)_[A-Za-z0-9_-]{20,}'
WORK=$(mktemp -d)
HITS=$WORK/hits             # category <TAB> location <TAB> token
STARTED=()                  # clusters this script started (stopped again on exit)
SELF_TEST_DIR=$ROOT/.pgdata/scan-self-test
: >"$HITS"

log() { printf 'scan-secrets: %s\n' "$*"; }
die() { printf 'scan-secrets: ERROR: %s\n' "$*" >&2; exit 2; }
finish() {
    local d
    for d in "${STARTED[@]}"; do scripts/pg-cluster.sh stop "$d" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap finish EXIT

# record CATEGORY LOCATION: token-shaped strings on stdin (one or more per line) -> HITS
record() {
    grep -aoE "$PATTERN" | while IFS= read -r t; do
        printf '%s\t%s\t%s\n' "$1" "$2" "$t"
    done >>"$HITS" || true
}

scan_files() { # scan_files DIR
    local dir=$1 f
    [[ -d "$dir" ]] || { log "files: $dir does not exist, skipped"; return; }
    local n=0 mails=0
    while IFS= read -r -d '' f; do
        n=$((n + 1))
        # The mails an SMTP sink received (DIR/.../mail-spool/<n>.eml) carry their links by
        # design: exempt are those files only (a token from them anywhere else is a finding).
        if [[ "$f" == */mail-spool/*.eml ]]; then mails=$((mails + 1)); continue; fi
        grep -qIaE "$PATTERN" "$f" 2>/dev/null || continue
        grep -IaoE "$PATTERN" "$f" | record file "$f"
    done < <(find "$dir" -path "$dir/fuzz" -prune -o -type f -print0)
    log "files: $n files under $dir ($mails mails in mail-spool directories exempt)"
}

# psql_all DATABASE SQL: unaligned, tuples only, tab-separated
psql_all() {
    "$PGBIN/psql" -X -q -At -F $'\t' -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# One query per table of a database, returning "location <TAB> token" for every token-shaped
# string in any column (every column as text; bytea through encode(..., 'escape')).
COLUMN_QUERIES="
SELECT format('SELECT %L, m[1] FROM %I.%I AS t, regexp_matches(%s, %L, ''g'') AS m',
              current_database() || ':' || n.nspname || '.' || c.relname,
              n.nspname, c.relname,
              string_agg(CASE WHEN a.atttypid = 'bytea'::regtype
                              THEN format('coalesce(encode(t.%I, ''escape''), '''')', a.attname)
                              ELSE format('coalesce(t.%I::text, '''')', a.attname) END,
                         ' || '' '' || ' ORDER BY a.attnum),
              '((ltk|lts)_[A-Za-z0-9_-]{20,})')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
GROUP BY n.nspname, c.relname"

scan_cluster() { # scan_cluster DIR
    local dir=$1 env db q n_tables=0 f
    [[ -d "$dir" ]] || { log "cluster: $dir does not exist, skipped"; return; }
    # The cluster's own PostgreSQL (pg_dumpall refuses a newer server): recorded by pg-cluster.sh.
    local PGBIN=$PGBIN
    [[ -f "$dir/pg-bin" ]] && PGBIN=$(<"$dir/pg-bin")
    for f in "$dir"/server.log "$dir"/data/log/* "$dir"/data/pg_log/*; do
        [[ -f "$f" ]] && record server-log "$f" <"$f"
    done
    if ! env=$(scripts/pg-cluster.sh env "$dir" 2>/dev/null); then
        scripts/pg-cluster.sh start "$dir" >/dev/null 2>&1 || die "cannot start the cluster $dir"
        STARTED+=("$dir")
        env=$(scripts/pg-cluster.sh env "$dir")
    fi
    eval "$env"
    "$PGBIN/pg_dumpall" >"$WORK/dump.sql" 2>"$WORK/dump.err" || die "pg_dumpall of $dir failed: $(head -3 "$WORK/dump.err")"
    record pg_dumpall "$dir (all databases)" <"$WORK/dump.sql"
    local dump_bytes
    dump_bytes=$(wc -c <"$WORK/dump.sql")
    rm -f "$WORK/dump.sql"
    while IFS= read -r db; do
        while IFS= read -r q; do
            n_tables=$((n_tables + 1))
            psql_all "$db" "$q" | while IFS=$'\t' read -r where t; do
                printf 'column\t%s\t%s\n' "$where" "$t"
            done >>"$HITS"
        done < <(psql_all "$db" "$COLUMN_QUERIES")
        local pss
        pss=$(psql_all "$db" "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'")
        if [[ -n "$pss" ]]; then
            if psql_all "$db" "SELECT query FROM $pss.pg_stat_statements" >"$WORK/pss" 2>/dev/null; then
                record pg_stat_statements "$db" <"$WORK/pss"
                log "cluster $dir: pg_stat_statements scanned (in $db)"
            fi
        fi
    done < <(psql_all postgres "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
    log "cluster $dir: server logs, pg_dumpall ($dump_bytes bytes), $n_tables tables in $(psql_all postgres "SELECT count(*) FROM pg_database WHERE datallowconn") databases"
}

scan_gateway() { # scan_gateway URL
    if curl -fsS --max-time 10 "$1/metrics" >"$WORK/metrics" 2>/dev/null; then
        record metrics "$1/metrics" <"$WORK/metrics"
        log "gateway $1: /metrics scanned"
    else
        log "gateway $1: /metrics not reachable, skipped"
    fi
}

# Prints the findings (tokens cut short) that are not exempt; returns 1 if there are any.
report() {
    git -C "$ROOT" grep -ohE "$PATTERN" 2>/dev/null | sort -u >"$WORK/exempt" || true
    awk -F'\t' 'NR == FNR { exempt[$0] = 1; next } !($3 in exempt)' "$WORK/exempt" "$HITS" >"$WORK/found"
    local exempt_hits
    exempt_hits=$(($(wc -l <"$HITS") - $(wc -l <"$WORK/found")))
    if [[ -s "$WORK/found" ]]; then
        log "FOUND raw token-shaped strings ($(wc -l <"$WORK/found") occurrences):"
        awk -F'\t' '{ printf "  %-18s %s: %s...\n", $1, $2, substr($3, 1, 8) }' "$WORK/found" | sort | uniq -c
        return 1
    fi
    log "no raw token found ($exempt_hits occurrences of strings quoted in the repository ignored)"
}

self_test() {
    local failures=0 dir=$SELF_TEST_DIR
    fake() { printf '%s_%s' "$1" "$(head -c 36 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n=' | head -c 48)"; }
    local in_file in_text in_jsonb in_bytea in_log only_hash
    in_file=$(fake ltk); in_text=$(fake ltk); in_jsonb=$(fake lts); in_bytea=$(fake ltk)
    in_log=$(fake ltk); only_hash=$(fake ltk)
    local in_mail in_spool_other
    in_mail=$(fake ltk); in_spool_other=$(fake ltk)
    local repo_token
    repo_token=$(git -C "$ROOT" grep -ohE "$PATTERN" -- docs | head -1)
    [[ -n "$repo_token" ]] || die "self-test: no token quoted in docs/ to test the exemption with"
    scripts/pg-cluster.sh destroy "$dir" >/dev/null 2>&1 || true
    trap 'scripts/pg-cluster.sh destroy "$SELF_TEST_DIR" >/dev/null 2>&1 || true; finish' EXIT
    eval "$(scripts/pg-cluster.sh start "$dir" | sed 's/^/export /')"
    mkdir -p "$WORK/files"

    log "self-test: a clean cluster and directory must give nothing"
    scan_files "$WORK/files"
    scan_cluster "$dir"
    if [[ -s "$HITS" ]]; then log "self-test FAILED: findings in a clean cluster"; failures=$((failures + 1)); fi

    log "self-test: planting fake tokens"
    printf 'GET /t/%s HTTP/1.1\nquoted in the docs: %s\n' "$in_file" "$repo_token" >"$WORK/files/app.log"
    mkdir -p "$WORK/files/mail-spool"
    printf 'Subject: Sign in\n\nhttps://example.org/t/%s\n' "$in_mail" >"$WORK/files/mail-spool/1.eml"
    printf 'not a mail: %s\n' "$in_spool_other" >"$WORK/files/mail-spool/notes.txt"
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE scan_self_test" >/dev/null
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d scan_self_test \
        -v in_text="$in_text" -v in_jsonb="$in_jsonb" -v in_bytea="$in_bytea" -v only_hash="$only_hash" <<'SQL' >/dev/null
CREATE SCHEMA app;
CREATE TABLE app.mail (id int, note text, doc jsonb, raw bytea, token_hash bytea);
INSERT INTO app.mail VALUES
    (1, 'link: https://example.org/t/' || :'in_text', jsonb_build_object('link', :'in_jsonb'),
     convert_to(:'in_bytea', 'UTF8'), sha256(convert_to(:'only_hash', 'UTF8')));
SQL
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres -v in_log="$in_log" <<'SQL' >/dev/null 2>&1
SELECT set_config('scan.fake', :'in_log', false);
DO $$ BEGIN RAISE WARNING 'scan-secrets self-test: %', current_setting('scan.fake'); END $$;
SQL
    scripts/pg-cluster.sh stop "$dir" >/dev/null 2>&1   # the scan must start it again
    : >"$HITS"
    scan_files "$WORK/files"
    scan_cluster "$dir"

    expect() { # expect WHAT TOKEN CATEGORY...
        local what=$1 t=$2 cat
        shift 2
        for cat in "$@"; do
            if awk -F'\t' -v c="$cat" -v t="$t" '$1 == c && $3 == t { f = 1 } END { exit !f }' "$HITS"; then
                log "self-test: found $what in $cat"
            else
                log "self-test FAILED: $what not found in $cat"
                failures=$((failures + 1))
            fi
        done
    }
    expect "the token in a log file" "$in_file" file
    expect "the token in a non-mail file of a mail spool" "$in_spool_other" file
    if grep -qF "$in_mail" "$HITS"; then
        log "self-test FAILED: a link in a received mail (mail-spool/*.eml) was reported"
        failures=$((failures + 1))
    else
        log "self-test: a received mail in a mail spool is exempt"
    fi
    expect "the token in a text column" "$in_text" column pg_dumpall
    expect "the sealed token in a jsonb column" "$in_jsonb" column pg_dumpall
    expect "the token stored as bytea" "$in_bytea" column
    expect "the token in a server log message" "$in_log" server-log
    if grep -qF "$only_hash" "$HITS"; then
        log "self-test FAILED: a token whose SHA-256 alone is stored was reported"
        failures=$((failures + 1))
    else
        log "self-test: a stored SHA-256 of a token is not a finding"
    fi
    if report >"$WORK/report" 2>&1; then
        log "self-test FAILED: the report did not fail"
        failures=$((failures + 1))
    elif grep -qF "${repo_token:0:8}" "$WORK/report"; then
        log "self-test FAILED: a token quoted in the repository was reported"
        failures=$((failures + 1))
    elif grep -qE "$PATTERN" "$WORK/report"; then
        log "self-test FAILED: the report shows a whole token"
        failures=$((failures + 1))
    else
        log "self-test: the report fails, shows tokens cut short and exempts the repository's"
        sed 's/^/    /' "$WORK/report"
    fi
    if [[ $failures -gt 0 ]]; then
        log "self-test: $failures check(s) FAILED"
        exit 1
    fi
    log "self-test passed"
}

FILES=()
CLUSTERS=()
GATEWAYS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --files) FILES+=("${2:?--files needs a directory}"); shift 2 ;;
        --cluster) CLUSTERS+=("${2:?--cluster needs a directory}"); shift 2 ;;
        --gateway) GATEWAYS+=("${2:?--gateway needs a URL}"); shift 2 ;;
        --self-test) self_test; exit 0 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
if [[ ${#FILES[@]} -eq 0 && ${#CLUSTERS[@]} -eq 0 ]]; then
    FILES=("$ROOT/target/test-output")
    CLUSTERS=("$ROOT/.pgdata/test")
fi
for d in "${FILES[@]}"; do scan_files "$d"; done
for d in "${CLUSTERS[@]}"; do scan_cluster "$d"; done
for g in "${GATEWAYS[@]}"; do scan_gateway "$g"; done
report || exit 1
