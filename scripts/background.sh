#!/usr/bin/env bash
# Starts or stops a long-running process of the demo and the browser tests in the background:
# its pid in DIR/NAME.pid, its output in DIR/NAME.log. The one way scripts start a gateway, a
# mailer or an SMTP sink (the Rust tests start them as child processes instead).
#   scripts/background.sh start DIR NAME READY_REGEX COMMAND [ARG...]
#       starts COMMAND and waits (10 s at most) until its log matches READY_REGEX (grep -E);
#       prints the matching line. Fails, printing the log, if it exits or never gets ready.
#   scripts/background.sh stop DIR NAME
#       SIGTERM to the recorded pid, then waits up to 5 s (SIGKILL after that).
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}
name=${3:?name}
mkdir -p "$dir"
pidfile=$dir/$name.pid
log=$dir/$name.log
case "$cmd" in
stop)
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        pid=$(cat "$pidfile")
        kill -TERM "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$pidfile"
    ;;
start)
    ready=${4:?ready regex}
    shift 4
    "$0" stop "$dir" "$name"
    nohup "$@" >"$log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do
        if line=$(grep -m1 -E "$ready" "$log" 2>/dev/null); then
            echo "$line"
            exit 0
        fi
        kill -0 "$(cat "$pidfile")" 2>/dev/null || break
        sleep 0.1
    done
    echo "background: $name did not start:" >&2
    cat "$log" >&2
    "$0" stop "$dir" "$name"
    exit 1
    ;;
*) echo "usage: $0 start DIR NAME READY_REGEX COMMAND... | stop DIR NAME" >&2; exit 2 ;;
esac
