#!/usr/bin/env bash
# pg-cluster.sh - manage a throwaway PostgreSQL cluster (for tests and the
# demo), owned by the `postgres` OS user. PostgreSQL 15 from Debian unless
# PG_BIN names another server's bin directory (e.g. the 16 and 18 that
# scripts/install-deps.sh installs); the cluster remembers it (DIR/pg-bin),
# so later commands on DIR need no PG_BIN.
#
# Usage:
#   scripts/pg-cluster.sh start   DIR [POSTGRES_OPTION...]
#   scripts/pg-cluster.sh env     DIR
#   scripts/pg-cluster.sh status  DIR
#   scripts/pg-cluster.sh stop    DIR
#   scripts/pg-cluster.sh restart DIR
#   scripts/pg-cluster.sh crash   DIR
#   scripts/pg-cluster.sh destroy DIR
#
#   start    Create DIR if needed, initdb DIR/data (trust auth, superuser
#            "postgres", C.UTF-8, UTF8) if it has no PG_VERSION, pick a free
#            TCP port and start the server listening on 127.0.0.1:PORT and on
#            the Unix socket DIR/.s.PGSQL.PORT. If the server is already
#            running it only prints the info (idempotent).
#            POSTGRES_OPTIONS are passed straight to postgres, e.g.
#              scripts/pg-cluster.sh start DIR -c shared_preload_libraries=linktoken
#            They are recorded in DIR/postgres-opts and reused by `restart`
#            and by a later `start DIR` given no options. Give `--` as the
#            first option to start with no extra options at all
#            (`start DIR --`). Defaults, which extra options may override:
#              -c log_statement=none -c log_min_messages=warning -c fsync=on
#            On success prints to stdout (eval-able):
#              PGHOST=DIR  PGPORT=PORT  PGUSER=postgres   (one per line)
#   env      Print `export PGHOST=...`, `export PGPORT=...`,
#            `export PGUSER=postgres` for a running cluster (exit 1 if not
#            running), so callers can:  eval "$(scripts/pg-cluster.sh env DIR)"
#   status   Exit 0 if the server is running, 1 otherwise.
#   stop     pg_ctl stop -m fast (no-op if not running).
#   restart  stop, then start again with the recorded port/options.
#   crash    pg_ctl stop -m immediate (no clean shutdown; the next start does
#            crash recovery). No-op if not running.
#   destroy  stop, then rm -rf DIR (refuses if DIR holds unexpected files).
#
# Files in DIR: data/ (PGDATA), server.log, port, postgres-opts, pg-bin, the socket.
# Progress messages go to stderr; stdout carries only the variables above.
# Must be run as root (commands then go through `runuser -u postgres`) or as
# the postgres user itself. All waits are bounded (pg_ctl -t 60).
set -euo pipefail

PG_BIN="${PG_BIN:-}"   # the server's bin directory; see PG_BIN in the usage above
PG_OS_USER="postgres"
WAIT_SECS=60
DEFAULT_OPTS=(-c log_statement=none -c log_min_messages=warning -c fsync=on)
PORT_FIRST=54320        # ports are probed upward from here ...
PORT_LAST=54999         # ... up to here
START_ATTEMPTS=5        # retries if the chosen port gets taken meanwhile

log() { printf 'pg-cluster: %s\n' "$*" >&2; }
die() { printf 'pg-cluster: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {   # usage [EXIT_CODE]
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
    exit "${1:-2}"
}

# --- who are we? -------------------------------------------------------------------
PG_UID="$(id -u "$PG_OS_USER" 2>/dev/null)" || die "OS user '$PG_OS_USER' does not exist (install postgresql-15)"
MY_UID="$(id -u)"
if [[ "$MY_UID" -ne 0 && "$MY_UID" -ne "$PG_UID" ]]; then
    die "must be run as root or as the '$PG_OS_USER' user"
fi

# as_pg CMD... : run CMD as the postgres user (from / so an unreadable cwd such
# as /root does not bother PostgreSQL tools).
as_pg() {
    if [[ "$MY_UID" -eq 0 ]]; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# --- arguments ---------------------------------------------------------------------
case "${1:-}" in -h | --help | help) usage 0 ;; esac
[[ $# -ge 2 ]] || usage
CMD="$1"
DIR_ARG="$2"
shift 2
[[ -n "$DIR_ARG" ]] || die "DIR must not be empty"
DIR="$(realpath -m -- "$DIR_ARG")"
[[ "$DIR" != "/" ]] || die "refusing to use / as DIR"
DATA="$DIR/data"
PORT_FILE="$DIR/port"
OPTS_FILE="$DIR/postgres-opts"
LOG_FILE="$DIR/server.log"
BIN_FILE="$DIR/pg-bin"
# The cluster's PostgreSQL: PG_BIN if given, else the one it was created with, else Debian's 15.
if [[ -z "$PG_BIN" && -f "$BIN_FILE" ]]; then
    PG_BIN="$(<"$BIN_FILE")"
fi
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

# Unix socket paths are limited to 107 bytes: DIR + "/.s.PGSQL.NNNNN".
if (( ${#DIR} + 16 > 107 )); then
    die "DIR path too long for a Unix socket (${#DIR} chars, max 91): $DIR"
fi

# --- helpers -----------------------------------------------------------------------
is_running() {
    [[ -f "$DATA/PG_VERSION" ]] || return 1
    as_pg "$PG_BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

# Port of the running server (line 4 of postmaster.pid), else DIR/port.
current_port() {
    local p=""
    if [[ -f "$DATA/postmaster.pid" ]]; then
        p="$(as_pg sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)"
    fi
    if [[ ! "$p" =~ ^[0-9]+$ && -f "$PORT_FILE" ]]; then
        p="$(<"$PORT_FILE")"
    fi
    [[ "$p" =~ ^[0-9]+$ ]] || return 1
    printf '%s\n' "$p"
}

# port_busy PORT -> 0 if something listens on PORT (any address).
port_busy() {
    local port="$1"
    if command -v ss >/dev/null 2>&1 &&
        [[ -n "$(ss -Hltn "( sport = :$port )" 2>/dev/null)" ]]; then
        return 0
    fi
    # Fallback / double check: can we connect to it on loopback?
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        return 0
    fi
    return 1
}

# pick_port [PREFERRED [EXCLUDED...]] -> prints a free port.
pick_port() {
    local preferred="${1:-}" p x
    shift || true
    if [[ "$preferred" =~ ^[0-9]+$ ]] && ! port_busy "$preferred"; then
        printf '%s\n' "$preferred"
        return 0
    fi
    for ((p = PORT_FIRST; p <= PORT_LAST; p++)); do
        for x in "$@"; do [[ "$p" == "$x" ]] && continue 2; done
        if ! port_busy "$p"; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    die "no free port in $PORT_FIRST-$PORT_LAST"
}

# write_file PATH CONTENT... : write as the postgres user (DIR is theirs).
write_file() {
    local path="$1"
    shift
    printf '%s' "$@" | as_pg tee "$path.tmp" >/dev/null
    as_pg mv -f "$path.tmp" "$path"
}

print_vars() {   # print_vars PORT [PREFIX]
    printf '%sPGHOST=%q\n' "${2:-}" "$DIR"
    printf '%sPGPORT=%q\n' "${2:-}" "$1"
    printf '%sPGUSER=%q\n' "${2:-}" "$PG_OS_USER"
}

# Make DIR exist, be owned/writable by postgres, and be reachable by postgres.
# As root, directories this script creates get o+x whatever the umask, and
# DIR's parent gets o+x if needed (unless it is / or a home directory such as
# /root); any other untraversable ancestor is an error.
prepare_dir() {
    local first_existing="$DIR" d parent
    local -a ancestors=()
    while [[ ! -e "$first_existing" ]]; do first_existing="$(dirname "$first_existing")"; done
    [[ -d "$first_existing" ]] || die "$first_existing exists and is not a directory"

    if [[ ! -d "$DIR" ]]; then
        mkdir -p -- "$DIR" || die "cannot create $DIR"
        if [[ "$MY_UID" -eq 0 ]]; then
            d="$DIR"
            while [[ "$d" != "$first_existing" ]]; do
                chmod o+x -- "$d"
                d="$(dirname "$d")"
            done
        fi
    fi

    # Check ancestors top-down so the first failure names the real culprit.
    d="$DIR"
    while [[ "$d" != "/" ]]; do
        d="$(dirname "$d")"
        ancestors=("$d" "${ancestors[@]}")
    done
    parent="$(dirname "$DIR")"
    for d in "${ancestors[@]}"; do
        as_pg test -x "$d" && continue
        if [[ "$MY_UID" -eq 0 && "$d" == "$parent" && "$d" != / && "$d" != /root &&
            ! "$d" =~ ^/home/[^/]+$ ]]; then
            log "chmod o+x $d (so $PG_OS_USER can reach $DIR)"
            chmod o+x -- "$d"
            as_pg test -x "$d" && continue
        fi
        die "user '$PG_OS_USER' cannot traverse $d (needed to reach $DIR); run 'chmod o+x $d' or choose another DIR"
    done

    if [[ "$MY_UID" -eq 0 ]]; then
        chown "$PG_OS_USER:" -- "$DIR"
        chmod u+rwx,o+x -- "$DIR"
    fi
    as_pg test -w "$DIR" -a -x "$DIR" ||
        die "user '$PG_OS_USER' cannot write to $DIR; fix its ownership or choose another DIR"
}

init_data() {
    if [[ -f "$DATA/PG_VERSION" ]]; then
        return 0
    fi
    if [[ -e "$DATA" ]] && [[ -n "$(as_pg ls -A "$DATA")" ]]; then
        die "$DATA exists, is not empty and has no PG_VERSION; remove it or use 'destroy'"
    fi
    log "initdb $DATA"
    local out
    if ! out="$(as_pg "$PG_BIN/initdb" -A trust -U "$PG_OS_USER" --locale=C.UTF-8 -E UTF8 \
        -D "$DATA" 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "initdb failed"
    fi
    write_file "$BIN_FILE" "$PG_BIN"
}

# Extra postgres options recorded by the last start (NUL separated).
read_recorded_opts() {
    RECORDED_OPTS=()
    if [[ -f "$OPTS_FILE" ]]; then
        mapfile -d '' -t RECORDED_OPTS <"$OPTS_FILE"
    fi
}

# server_start PORT_PREFERENCE EXTRA_OPTS... : start, retrying other ports
# if the chosen one is taken in the meantime. Prints the vars on success.
server_start() {
    local preferred="$1" port attempt opts_str o log_mark
    shift
    local -a tried=()
    for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
        port="$(pick_port "$preferred" "${tried[@]}")"
        tried+=("$port")
        preferred=""
        # pg_ctl hands -o to /bin/sh, so every word is shell-quoted.
        opts_str="$(printf '%q ' -k "$DIR" -p "$port" -c listen_addresses=127.0.0.1 \
            "${DEFAULT_OPTS[@]}" "$@")"
        log_mark=0
        [[ -f "$LOG_FILE" ]] && log_mark="$(wc -l <"$LOG_FILE")"
        log "starting server in $DATA on port $port${*:+ with options: $*}"
        if as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG_FILE" -w -t "$WAIT_SECS" \
            -o "${opts_str% }" start >&2; then
            write_file "$PORT_FILE" "$port"$'\n'
            log "server running: psql -h $DIR -p $port -U $PG_OS_USER (or -h 127.0.0.1)"
            print_vars "$port"
            return 0
        fi
        if is_running; then
            # pg_ctl timed out but the server is up (e.g. long crash recovery
            # still in progress): do not start a second one.
            die "pg_ctl did not confirm startup within ${WAIT_SECS}s; see $LOG_FILE"
        fi
        if tail -n "+$((log_mark + 1))" "$LOG_FILE" 2>/dev/null | grep -q 'could not bind\|Address already in use'; then
            log "port $port was taken meanwhile, retrying with another port"
            continue
        fi
        o="$(tail -n "+$((log_mark + 1))" "$LOG_FILE" 2>/dev/null | tail -n 20 || true)"
        die "server failed to start; new lines in $LOG_FILE:"$'\n'"$o"
    done
    die "could not find a usable port after $START_ATTEMPTS attempts"
}

server_stop() {   # server_stop MODE
    if ! is_running; then
        log "server in $DATA is not running"
        return 0
    fi
    log "stopping server in $DATA (mode $1)"
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m "$1" -w -t "$WAIT_SECS" stop >&2 ||
        die "pg_ctl stop -m $1 failed or timed out after ${WAIT_SECS}s; see $LOG_FILE"
}

# --- commands ----------------------------------------------------------------------
cmd_start() {
    local -a opts
    local port=""
    read_recorded_opts
    if [[ $# -gt 0 && "$1" == "--" ]]; then
        shift
        opts=("$@")
    elif [[ $# -gt 0 ]]; then
        opts=("$@")
    else
        opts=("${RECORDED_OPTS[@]}")
    fi

    if is_running; then
        port="$(current_port)" || die "server running but its port is unknown"
        if [[ "${opts[*]}" != "${RECORDED_OPTS[*]}" ]]; then
            log "WARNING: already running with options '${RECORDED_OPTS[*]}'," \
                "not '${opts[*]}'; to change them: stop DIR, then start DIR OPTIONS..."
        fi
        log "server already running on port $port"
        print_vars "$port"
        return 0
    fi

    prepare_dir
    init_data
    [[ -f "$PORT_FILE" ]] && port="$(<"$PORT_FILE")"
    server_start "$port" "${opts[@]}"
    # Record the options only once they are known to work.
    if [[ ${#opts[@]} -gt 0 ]]; then
        printf '%s\0' "${opts[@]}" | as_pg tee "$OPTS_FILE" >/dev/null
    else
        as_pg rm -f "$OPTS_FILE"
    fi
}

cmd_restart() {
    local port=""
    [[ -f "$DATA/PG_VERSION" ]] || die "no cluster in $DATA; use 'start' first"
    read_recorded_opts
    port="$(current_port || true)"
    server_stop fast
    prepare_dir
    server_start "$port" "${RECORDED_OPTS[@]}"
}

cmd_env() {
    local port
    is_running || die "no server running in $DATA"
    port="$(current_port)" || die "server running but its port is unknown"
    print_vars "$port" "export "
}

cmd_status() {
    local port
    if is_running; then
        port="$(current_port || echo '?')"
        echo "running: PGHOST=$DIR PGPORT=$port"
        return 0
    fi
    echo "not running: $DIR"
    return 1
}

cmd_destroy() {
    local entry name
    if [[ ! -e "$DIR" ]]; then
        log "$DIR does not exist; nothing to destroy"
        return 0
    fi
    [[ -d "$DIR" ]] || die "$DIR is not a directory"
    # Safety net: only remove directories that look like ours.
    for entry in "$DIR"/* "$DIR"/.[!.]*; do
        [[ -e "$entry" || -L "$entry" ]] || continue
        name="${entry##*/}"
        case "$name" in
            data | server.log | port | port.tmp | postgres-opts | pg-bin | .s.PGSQL.*) ;;
            *) die "refusing to delete $DIR: unexpected entry '$name'" ;;
        esac
    done
    server_stop fast
    log "removing $DIR"
    rm -rf -- "$DIR"
}

case "$CMD" in
    start) cmd_start "$@" ;;
    env | status | stop | restart | crash | destroy)
        [[ $# -eq 0 ]] || die "'$CMD' takes no options after DIR"
        case "$CMD" in
            env) cmd_env ;;
            status) cmd_status ;;
            stop) server_stop fast ;;
            crash) server_stop immediate ;;
            restart) cmd_restart ;;
            destroy) cmd_destroy ;;
        esac
        ;;
    *) die "unknown command '$CMD' (see --help)" ;;
esac
