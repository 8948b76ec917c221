#!/usr/bin/env bash
# fuzz.sh - run every cargo-fuzz target of fuzz/ (linktoken-core's parsers) for a bounded time.
#
# Usage:
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
#   SECONDS_PER_TARGET  how long each target runs (default 20: the short CI run).
#                       Longer runs, e.g. an hour each: scripts/fuzz.sh 3600
#   TARGET              only these targets (default: all of `cargo fuzz list`):
#                       token_decode, sealed_open, sealed_round_trip, form_parse, code_check,
#                       head_screen
#
# Environment:
#   FUZZ_SANITIZER      address (default) or none (faster, finds only panics and aborts)
#   FUZZ_OUT            where logs and crash artifacts go (default target/test-output/fuzz)
#
# Needs only stable Rust: cargo-fuzz's nightly-only flags are allowed with RUSTC_BOOTSTRAP=1.
# Installs cargo-fuzz (pinned, --locked, from crates.io) if `cargo fuzz` is missing or another
# version, so a fresh CI machine needs nothing else.
#
# Corpus: the committed seeds in fuzz/corpus/<target>/ are read; what the fuzzer finds goes to
# target/fuzz/corpus/<target>/ (kept between runs on this machine, never committed).
# Any crash, panic, failed assertion, timeout (10 s per input) or out-of-memory fails the run;
# the input that did it is kept as $FUZZ_OUT/<target>/crash-* (or timeout-*, oom-*), with the
# libFuzzer output in $FUZZ_OUT/<target>.log. Reproduce one with:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir target/fuzz <target> <artifact file>
set -euo pipefail

CARGO_FUZZ_VERSION="0.13.2"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

SECONDS_PER_TARGET=20
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
    SECONDS_PER_TARGET=$1
    shift
fi
case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
esac
SANITIZER=${FUZZ_SANITIZER:-address}
OUT=${FUZZ_OUT:-$ROOT/target/test-output/fuzz}
TARGET_DIR=$ROOT/target/fuzz

log() { printf 'fuzz: %s\n' "$*"; }

if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

FUZZ=(cargo fuzz)
if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <("${FUZZ[@]}" list)
fi

log "building the targets, sanitizer $SANITIZER"
"${FUZZ[@]}" build --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR"

mkdir -p "$OUT"
FAILED=()
for t in "${TARGETS[@]}"; do
    mkdir -p "$OUT/$t" "$TARGET_DIR/corpus/$t"
    extra=()
    # Sealed tokens may be up to sealed::MAX_LEN (8192) characters: let inputs cross that limit.
    [[ "$t" == sealed_open ]] && extra+=(-max_len=8300)
    log "$t: ${SECONDS_PER_TARGET}s (log: $OUT/$t.log)"
    if "${FUZZ[@]}" run --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR" "$t" \
        "$TARGET_DIR/corpus/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$OUT/$t/" -print_final_stats=1 "${extra[@]}" >"$OUT/$t.log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$t.log" | tail -1)
        log "$t: ok, ${runs:-?} inputs, no crash"
    else
        log "$t: FAILED; last lines of $OUT/$t.log:"
        tail -n 30 "$OUT/$t.log" | sed 's/^/    /'
        ls "$OUT/$t" | sed 's/^/    artifact: /'
        FAILED+=("$t")
    fi
done

if [[ ${#FAILED[@]} -gt 0 ]]; then
    log "failed: ${FAILED[*]} (artifacts under $OUT)"
    exit 1
fi
log "all ${#TARGETS[@]} target(s) ran ${SECONDS_PER_TARGET}s each without a crash"
