#!/usr/bin/env python3
"""SQL-level benchmark: linktoken vs the floor vs the PL/pgSQL baseline (stdlib only).

Run by bench/sql/run.sh against a running throwaway cluster (PGHOST, PGPORT, PGUSER set). Creates
the database linktoken_bench, runs pgbench (-M prepared) and timed single statements, and writes
bench/out/sql.json, bench/out/sql.md and bench/charts/sql-*.svg (see bench/report.py for the shape).

Sizes (environment):
  BENCH_SECONDS       duration of each pgbench run (default 5)
  BENCH_ROUNDS        interleaved rounds per (operation, clients); the median counts (default 3)
  BENCH_CLIENTS       client counts (default "1 8")
  BENCH_BATCH         tokens in the one-statement batch issue (default 1000000)
  BENCH_OUTSTANDING   outstanding-token counts for the latency runs (default "10000 1000000 10000000")
  BENCH_LAT_SECONDS   duration of each latency run (default 10)
  BENCH_MAX_TPS       least redeem TPS the pre-issued token supply allows for (default 8000; it also
                      allows for 3x the fastest issue run)
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, BENCH)
from chart import bar_chart, line_chart  # noqa: E402

PGBIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
DB = "linktoken_bench"
OUT = os.path.join(BENCH, "out")
RAW = os.path.join(OUT, "sql")
CHARTS = os.path.join(BENCH, "charts")

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
OPS = os.environ.get("BENCH_OPS", "issue redeem").split()  # for development: a subset
CLIENTS = [int(c) for c in os.environ.get("BENCH_CLIENTS", "1 8").split()]
BATCH = int(os.environ.get("BENCH_BATCH", "1000000"))
OUTSTANDING = [int(float(n)) for n in os.environ.get("BENCH_OUTSTANDING", "10000 1000000 10000000").split()]
LAT_SECONDS = int(os.environ.get("BENCH_LAT_SECONDS", "10"))
MAX_TPS = int(os.environ.get("BENCH_MAX_TPS", "8000"))
VARIANTS = ["extension", "floor", "plpgsql"]
LABEL = {"extension": "linktoken", "floor": "floor (plain SQL)", "plpgsql": "PL/pgSQL + pgcrypto"}

figures: list[dict] = []
targets: list[dict] = []
notes: list[str] = []


def log(msg: str) -> None:
    print(f"bench/sql: {msg}", file=sys.stderr, flush=True)


def psql(sql: str, db: str = DB, vars: dict | None = None, file: str | None = None) -> str:
    cmd = [f"{PGBIN}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db]
    for k, v in (vars or {}).items():
        cmd += ["-v", f"{k}={v}"]
    cmd += ["-f", file] if file else ["-c", sql]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr.strip()[:2000]}")
    return r.stdout.strip()


def timed(sql: str) -> float:
    t0 = time.monotonic()
    psql(sql)
    return time.monotonic() - t0


def fig(name: str, value, unit: str, **extra) -> None:
    figures.append({"name": name, "value": value, "unit": unit, **extra})


class BackendCpu:
    """CPU time (user + system) of the benchmark's backends, read from /proc while pgbench runs:
    a cost per transaction that other load on a shared machine barely disturbs, unlike TPS."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, clients: int):
        self.clients = clients
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.before = {int(n) for n in os.listdir("/proc") if n.isdigit()}  # not pgbench's

    @staticmethod
    def ticks(pid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            return None

    def sample(self, scan: bool) -> None:
        if scan:  # new pgbench backends ("postgres: USER DB [local] ..."), incl. short-lived ones
            for name in os.listdir("/proc"):
                if not name.isdigit() or int(name) in self.before:
                    continue
                pid = int(name)
                try:
                    with open(f"/proc/{name}/cmdline", "rb") as f:
                        title = f.read()
                except OSError:
                    continue
                if b"postgres" in title[:64] and not title.startswith(b"postgres: "):
                    continue  # a backend not yet past authentication: look again
                self.before.add(pid)  # decided: look at it no more
                if title.startswith(f"postgres: {os.environ.get('PGUSER', 'postgres')} {DB} ".encode()):
                    t = self.ticks(pid)
                    if t is not None:
                        self.first[pid] = self.last[pid] = t
        for pid in self.first:
            t = self.ticks(pid)
            if t is not None:
                self.last[pid] = t

    def seconds(self) -> float:
        return sum(self.last[p] - self.first[p] for p in self.first) / self.TICK


def pgbench(script: str, clients: int, seconds: int, defines: dict | None = None, log_prefix: str | None = None) -> dict:
    """Runs one pgbench script; returns tps, latency average and, with log_prefix, p50/p99 (ms)."""
    cmd = [f"{PGBIN}/pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
           "-T", str(seconds), "-f", os.path.join(HERE, "pgbench", script)]
    for k, v in (defines or {}).items():
        cmd += ["-D", f"{k}={v}"]
    if log_prefix:
        for f in os.listdir(RAW):
            if f.startswith(os.path.basename(log_prefix) + "."):
                os.remove(os.path.join(RAW, f))
        cmd += ["--log", f"--log-prefix={log_prefix}"]
    cmd.append(DB)
    with open(os.path.join(RAW, "pgbench.stdout"), "w+", encoding="utf-8") as fo, \
            open(os.path.join(RAW, "pgbench.stderr"), "w+", encoding="utf-8") as fe:
        cpu = BackendCpu(clients)
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True, cwd=RAW)
        started, n = time.monotonic(), 0
        while proc.poll() is None:
            early = time.monotonic() - started < 1.0 or len(cpu.first) <= clients
            cpu.sample(scan=early or n % 10 == 0)
            n += 1
            time.sleep(0.002 if early else 0.05)
        fo.seek(0)
        fe.seek(0)
        r = subprocess.CompletedProcess(cmd, proc.returncode, fo.read(), fe.read())
    name = os.path.basename(log_prefix).removeprefix("log-") if log_prefix else f"{script[:-4]}-c{clients}"
    with open(os.path.join(RAW, f"{name}.txt"), "w", encoding="utf-8") as f:
        f.write(" ".join(cmd) + "\n" + r.stdout + r.stderr)
    if r.returncode != 0:
        raise RuntimeError(f"pgbench {script} -c {clients} failed: {r.stderr.strip()[-2000:]}")
    res = {
        "tps": float(re.search(r"tps = ([\d.]+) \(without initial", r.stdout).group(1)),
        "latency_ms": float(re.search(r"latency average = ([\d.]+) ms", r.stdout).group(1)),
        "transactions": int(re.search(r"number of transactions actually processed: (\d+)", r.stdout).group(1)),
    }
    res["cpu_us_per_tx"] = cpu.seconds() * 1e6 / max(res["transactions"], 1)
    log(f"  {script} -c {clients}: {res['tps']:.0f} tx/s, {res['latency_ms']} ms average")
    if log_prefix:
        lat = []
        for f in os.listdir(RAW):
            if f.startswith(os.path.basename(log_prefix) + "."):
                with open(os.path.join(RAW, f), encoding="utf-8") as fh:
                    lat += [int(line.split()[2]) / 1000.0 for line in fh if line.strip()]
                os.remove(os.path.join(RAW, f))
        lat.sort()
        if lat:
            res["p50_ms"] = lat[len(lat) // 2]
            res["p99_ms"] = lat[min(len(lat) - 1, math.ceil(len(lat) * 0.99) - 1)]
    return res


# --- set-up --------------------------------------------------------------------------------
def setup() -> None:
    psql(f"DROP DATABASE IF EXISTS {DB}", db="postgres")
    psql(f"CREATE DATABASE {DB}", db="postgres")
    psql("", vars={"ttl": "1 day"}, file=os.path.join(HERE, "setup.sql"))
    psql("", file=os.path.join(BENCH, "baseline", "plpgsql.sql"))
    psql("SELECT bench_plpgsql.define_purpose('bench', interval '1 day', max_uses => 1, revoke_previous => false)")
    global HAS_BATCH
    HAS_BATCH = psql("SELECT to_regproc('linktoken.issue_batch') IS NOT NULL") == "t"


HAS_BATCH = False
SUBJECTS = "ARRAY(SELECT 'batch:' || g FROM generate_series(1, {n}) g)"


def batch_sql(variant: str, n: int) -> str:
    if variant == "extension":
        if HAS_BATCH:
            return f"SELECT count(token) FROM linktoken.issue_batch('bench', {SUBJECTS.format(n=n)})"
        return f"SELECT count(linktoken.issue('bench', 'batch:' || g)) FROM generate_series(1, {n}) g"
    if variant == "extension_per_row":
        return f"SELECT count(linktoken.issue('bench', 'batch:' || g)) FROM generate_series(1, {n}) g"
    if variant == "floor":
        return (
            "WITH n AS MATERIALIZED (SELECT s, bench_floor.new_token() AS t "
            f"                        FROM unnest({SUBJECTS.format(n=n)}) s), "
            "i AS (INSERT INTO bench_floor.tokens (token_hash, purpose, subject, payload, expires_at, max_uses) "
            "      SELECT sha256(convert_to(t, 'UTF8')), 'bench', s, '{}', now() + interval '1 day', 1 FROM n "
            "      RETURNING id, purpose, subject), "
            "e AS (INSERT INTO bench_floor.events (event, purpose, subject, token_id) "
            "      SELECT 'issued', purpose, subject, id FROM i) "
            "SELECT count(t) FROM n"
        )
    return f"SELECT count(token) FROM bench_plpgsql.issue_many('bench', {SUBJECTS.format(n=n)})"


TABLES = {"extension": "linktoken", "floor": "bench_floor", "plpgsql": "bench_plpgsql"}


def batch_and_size() -> dict:
    """One-statement batch issue into empty tables, then bytes per stored token."""
    res = {}
    for v in VARIANTS:
        log(f"batch issue of {BATCH} tokens: {v}")
        secs = timed(batch_sql(v, BATCH))
        res[v] = secs
        fig(f"batch issue {BATCH} tokens, {LABEL[v]}", round(secs, 2), "s", variant=v, tokens=BATCH)
        s = TABLES[v]
        psql(f"VACUUM ANALYZE {s}.tokens")
        psql(f"VACUUM ANALYZE {s}.events")
        row = psql(f"SELECT pg_total_relation_size('{s}.tokens'), pg_relation_size('{s}.tokens'), count(*), "
                   f"pg_total_relation_size('{s}.events'), (SELECT count(*) FROM {s}.events) FROM {s}.tokens")
        total, heap, count, ev_total, ev_count = (int(x) for x in row.split("|"))
        fig(f"bytes per stored token (table + indexes), {LABEL[v]}", round(total / count, 1), "bytes",
            variant=v, heap_bytes_per_token=round(heap / count, 1), tokens=count)
        fig(f"bytes per audit event (table + indexes), {LABEL[v]}", round(ev_total / max(ev_count, 1), 1), "bytes",
            variant=v, events=ev_count)
        res[f"bytes_{v}"] = total / count
    if HAS_BATCH and os.environ.get("BENCH_PER_ROW_BATCH", "1") == "1":
        n = min(BATCH, 100000)
        log(f"for comparison: {n} calls of linktoken.issue() in one statement")
        secs = timed(batch_sql("extension_per_row", n))
        fig(f"{n} x issue() in one statement (per-row calls), linktoken", round(secs, 2), "s",
            variant="extension", tokens=n, extrapolated_1m_s=round(secs * 1000000 / n, 1))
        res["per_row"] = (n, secs)
    return res


# --- token supply for the redeem runs ---------------------------------------------------------
def supply(variant: str, first: int, count: int) -> None:
    """Issues `count` tokens with the variant's own issue path and stores them with ids first.."""
    ids = f"generate_series({first}, {first + count - 1})"
    if variant == "extension":
        if HAS_BATCH:
            sql = (f"INSERT INTO bench_harness.tokens SELECT 'extension', {first} - 1 + row_number() OVER (), token "
                   f"FROM linktoken.issue_batch('bench', ARRAY(SELECT 'redeem:' || g FROM {ids} g))")
        else:
            sql = (f"INSERT INTO bench_harness.tokens SELECT 'extension', g, linktoken.issue('bench', 'redeem:' || g) "
                   f"FROM {ids} g")
    elif variant == "floor":
        sql = (f"WITH n AS MATERIALIZED (SELECT g, bench_floor.new_token() AS t FROM {ids} g), "
               "i AS (INSERT INTO bench_floor.tokens (token_hash, purpose, subject, payload, expires_at, max_uses) "
               "      SELECT sha256(convert_to(t, 'UTF8')), 'bench', 'redeem:' || g, '{}', now() + interval '1 day', 1 FROM n) "
               "INSERT INTO bench_harness.tokens SELECT 'floor', g, t FROM n")
    else:
        sql = (f"INSERT INTO bench_harness.tokens SELECT 'plpgsql', g, bench_plpgsql.issue('bench', 'redeem:' || g) "
               f"FROM {ids} g")
    psql(sql)


def redeemed_count(variant: str) -> int:
    s = TABLES[variant]
    return int(psql(f"SELECT count(*) FROM {s}.events WHERE event = 'redeemed'"))


def tps_runs() -> dict:
    """Each (operation, clients): ROUNDS rounds, each running the three variants one after the
    other in a rotating order; the median run per variant counts (the machine's fsync speed and
    neighbours drift, interleaving spreads that drift over all variants alike)."""
    res: dict = {}
    next_id = {v: 1 for v in VARIANTS}
    for op in OPS:
        for c in CLIENTS:
            runs: dict = {v: [] for v in VARIANTS}
            for rnd in range(ROUNDS):
                order = VARIANTS[rnd % 3:] + VARIANTS[:rnd % 3]
                for v in order:
                    defines = None
                    if op == "redeem":
                        # enough tokens for 3x the fastest issue run at this client count (redeem and
                        # issue write alike), at least BENCH_MAX_TPS; a shortfall is detected below
                        est = max([MAX_TPS] + [3 * r["tps"] for (o, _, cc), r in res.items()
                                               if o == "issue" and cc == c])
                        stride = math.ceil(SECONDS * est / c * (1.0 if c == 1 else 1.3))
                        # pgbench client ids are 0..c-1 and n starts at 1: ids base+1 .. base+c*stride
                        supply(v, next_id[v], stride * c + 1)
                        psql(f"VACUUM ANALYZE bench_harness.tokens, {TABLES[v]}.tokens")
                        defines = {"base": next_id[v] - 1, "stride": stride, "n": 0}
                        next_id[v] += stride * c + 1
                        before = redeemed_count(v)
                    psql("CHECKPOINT")
                    log(f"{op} {v}, {c} client(s), {SECONDS}s, round {rnd + 1}/{ROUNDS}")
                    r = pgbench(f"{op}_{v}.sql", c, SECONDS, defines)
                    if op == "redeem":
                        got = redeemed_count(v) - before
                        if got != r["transactions"]:
                            notes.append(f"redeem {v} with {c} clients: {r['transactions']} transactions but {got} "
                                         f"redemptions (token supply too small: raise BENCH_MAX_TPS); figure not valid")
                    runs[v].append(r)
            for v in VARIANTS:
                ordered = sorted(runs[v], key=lambda r: r["tps"])
                med = ordered[len(ordered) // 2]
                res[(op, v, c)] = med
                fig(f"{op} TPS, {LABEL[v]}, {c} client(s)", round(med["tps"], 1), "tx/s", op=op, variant=v,
                    clients=c, latency_avg_ms=med["latency_ms"], seconds=SECONDS,
                    rounds=[round(r["tps"], 1) for r in runs[v]])
                cpu = sorted(r["cpu_us_per_tx"] for r in runs[v])[len(runs[v]) // 2]
                res[(op, v, c)]["cpu_median"] = cpu
                fig(f"{op} backend CPU per transaction, {LABEL[v]}, {c} client(s)", round(cpu, 1), "µs",
                    op=op, variant=v, clients=c, rounds=[round(r["cpu_us_per_tx"], 1) for r in runs[v]])
    return res


def seal_runs() -> dict:
    res = {}
    for c in CLIENTS:
        log(f"seal, {c} client(s), {SECONDS}s")
        r = pgbench("seal_extension.sql", c, SECONDS)
        res[c] = r
        fig(f"seal per second, {c} client(s)", round(r["tps"], 1), "tokens/s", clients=c,
            latency_avg_ms=r["latency_ms"], seconds=SECONDS)
    return res


def latency_runs() -> dict:
    """Redeem latency (1 client) with N outstanding tokens in linktoken.tokens. The redeemed tokens
    belong to a purpose with unlimited uses, so redeeming them (the same UPDATE and event as a
    one-use token) keeps the outstanding count at exactly N for the whole run."""
    res = {}
    psql("TRUNCATE linktoken.tokens")
    psql("SELECT linktoken.define_purpose('bench_multi', interval '1 day', max_uses => NULL, revoke_previous => false)")
    filled = 0
    next_id = 0
    for n in OUTSTANDING:
        k = min(n, 5000)  # tokens the run redeems, at random, again and again
        want = n - k
        if want > filled:
            log(f"filling linktoken.tokens to {want} outstanding filler tokens")
            t0 = time.monotonic()
            psql("INSERT INTO linktoken.tokens (token_hash, purpose, subject, expires_at, max_uses) "
                 f"SELECT sha256(int8send(g)), 'bench', 'filler:' || g, now() + interval '30 days', 1 "
                 f"FROM generate_series({filled + 1}, {want}) g")
            log(f"filled in {time.monotonic() - t0:.0f}s")
            filled = want
        psql("DELETE FROM linktoken.tokens WHERE purpose = 'bench_multi'")
        psql("INSERT INTO bench_harness.tokens SELECT 'latency', " + str(next_id) + " + row_number() OVER (), token "
             f"FROM linktoken.issue_batch('bench_multi', ARRAY(SELECT 'latency:' || g FROM generate_series(1, {k}) g))")
        defines = {"base": next_id, "k": k}
        next_id += k
        psql("VACUUM ANALYZE linktoken.tokens")
        outstanding = int(psql("SELECT count(*) FROM linktoken.tokens WHERE consumed_at IS NULL"))
        psql("CHECKPOINT")
        log(f"redeem latency with {outstanding} outstanding tokens, {LAT_SECONDS}s")
        r = pgbench("redeem_latency.sql", 1, LAT_SECONDS, defines, log_prefix=os.path.join(RAW, f"log-latency-{n}"))
        r["outstanding"] = outstanding
        res[n] = r
        fig(f"redeem latency p50, {n} outstanding", round(r.get("p50_ms", float("nan")), 3), "ms",
            outstanding=outstanding, avg_ms=r["latency_ms"], p99_ms=round(r.get("p99_ms", float("nan")), 3),
            tps=round(r["tps"], 1), clients=1)
    return res


# --- targets, markdown, charts ---------------------------------------------------------------
def target(name: str, measured: float, required: str, met: bool, note: str) -> None:
    targets.append({"target": name, "measured": round(measured, 3), "required": required, "met": bool(met),
                    "note": note})


def settings() -> dict:
    names = ["server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method",
             "shared_buffers", "max_wal_size", "checkpoint_timeout", "wal_level", "max_connections", "jit"]
    rows = psql("SELECT name || '=' || setting || COALESCE(unit, '') FROM pg_settings WHERE name = ANY (ARRAY[" +
                ",".join(f"'{n}'" for n in names) + "]) ORDER BY name")
    out = dict(line.split("=", 1) for line in rows.splitlines())
    out["linktoken extension version"] = psql("SELECT extversion FROM pg_extension WHERE extname = 'linktoken'")
    return out


def main() -> int:
    os.makedirs(RAW, exist_ok=True)
    t_start = time.monotonic()
    setup()
    log(f"extension batch function: {'linktoken.issue_batch' if HAS_BATCH else 'none (per-row issue())'}")
    batch = batch_and_size() if BATCH > 0 else {}
    tps = tps_runs()
    seal = seal_runs() if os.environ.get("BENCH_SEAL", "1") == "1" else {}
    lat = latency_runs() if OUTSTANDING else {}

    # targets
    for op in OPS:
        for c in CLIENTS:
            e, f, p = (tps[(op, v, c)]["tps"] for v in VARIANTS)
            ce, cf, cp = (tps[(op, v, c)]["cpu_median"] for v in VARIANTS)
            target(f"{op} TPS >= 0.95x floor, {c} client(s)", e / f, ">= 0.95", e / f >= 0.95,
                   f"linktoken {e:.0f} tx/s, floor {f:.0f} tx/s; backend CPU per tx {ce:.0f} vs {cf:.0f} µs "
                   f"(CPU ratio floor/linktoken {cf / ce:.2f})")
            target(f"{op} TPS >= 1.2x PL/pgSQL, {c} client(s)", e / p, ">= 1.2", e / p >= 1.2,
                   f"linktoken {e:.0f} tx/s, PL/pgSQL {p:.0f} tx/s; backend CPU per tx {ce:.0f} vs {cp:.0f} µs "
                   f"(CPU ratio PL/pgSQL/linktoken {cp / ce:.2f})")
    if batch:
        r = batch["extension"] / batch["floor"]
        how = "linktoken.issue_batch" if HAS_BATCH else "per-row linktoken.issue()"
        target(f"batch issue of {BATCH:,} time <= 1.2x floor", r, "<= 1.2", r <= 1.2,
               f"{how} {batch['extension']:.1f} s, floor {batch['floor']:.1f} s, PL/pgSQL {batch['plpgsql']:.1f} s")

    # charts
    os.makedirs(CHARTS, exist_ok=True)
    cats = [f"{c} client{'s' if c > 1 else ''}" for c in CLIENTS]
    for op in OPS:
        bar_chart(os.path.join(CHARTS, f"sql-{op}-tps.svg"), f"{op}: transactions per second (pgbench -M prepared)",
                  cats, {LABEL[v]: [tps[(op, v, c)]["tps"] for c in CLIENTS] for v in VARIANTS}, "tx/s")
    if batch:
        bar_chart(os.path.join(CHARTS, "sql-batch-issue.svg"), f"batch issue of {BATCH:,} tokens in one statement",
                  ["time"], {LABEL[v]: [batch[v]] for v in VARIANTS}, "seconds (lower is better)")
        bar_chart(os.path.join(CHARTS, "sql-bytes-per-token.svg"), "bytes per stored token (table + indexes)",
                  ["bytes"], {LABEL[v]: [batch[f"bytes_{v}"]] for v in VARIANTS}, "bytes")
    if lat:
        xs = sorted(lat)
        line_chart(os.path.join(CHARTS, "sql-redeem-latency.svg"), "linktoken.redeem latency vs outstanding tokens (1 client)",
                   [lat[n]["outstanding"] for n in xs],
                   {"average": [lat[n]["latency_ms"] for n in xs], "p50": [lat[n].get("p50_ms") for n in xs],
                    "p99": [lat[n].get("p99_ms") for n in xs]},
                   "outstanding tokens", "ms", log_x=True)

    # markdown
    st = settings()
    M = []
    M.append("Method: one throwaway cluster, one database holding the three variants side by side; pgbench with "
             f"`-M prepared`, {', '.join(map(str, CLIENTS))} client(s), {SECONDS} s per run; for each operation and client "
             f"count {ROUNDS} rounds run the three variants one after the other in rotating order, and the median run of "
             "each variant is reported (the machine is shared and its fsync speed drifts; interleaving spreads the "
             "drift over all variants alike; every round's figure is in the raw data). "
             "Durability as shipped: fsync on, synchronous_commit on (every transaction waits for its WAL flush).")
    M.append("")
    M.append("- **linktoken**: `linktoken.issue('bench', subject)` and `linktoken.redeem(token, 'bench')`; the purpose "
             "has max_uses 1, no action, revoke_previous off (so no per-subject lock), ttl 1 day.")
    M.append("- **floor**: the same rows written with plain SQL and built-in functions only: tables created "
             "`LIKE linktoken.tokens/events INCLUDING ALL` (same columns, constraints, indexes, fillfactor), token = "
             "`'ltk_'` + base64url of two `gen_random_uuid()`, stored as `sha256()`; issue is one INSERT of the token "
             "row plus its `issued` event (one statement), redeem is the same conditional `UPDATE ... RETURNING` by "
             "hash plus its `redeemed` event (one statement). It does no argument checks, no status answers.")
    M.append("- **PL/pgSQL + pgcrypto**: [bench/baseline/plpgsql.sql](baseline/plpgsql.sql), a careful hand-written "
             "implementation of the same semantics (argument checks, purpose lookup, ttl, max uses, revoke_previous "
             "and min_interval branches, statuses, audit events, action call), `gen_random_bytes` and `digest`.")
    M.append("- Redeem needs raw tokens at the client: each variant's tokens are pre-issued through its own issue "
             "path and kept in `bench_harness.tokens (variant, id, token)`; every redeem statement reads its token "
             "by `(variant, :id)` in a sub-select, the same for all three, so the harness overhead is equal. Each "
             "pgbench client walks its own id range (no token is redeemed twice). The bench cluster is destroyed "
             "after the run.")
    M.append("")
    M.append("| operation | clients | " + " | ".join(LABEL[v] + " tx/s" for v in VARIANTS) +
             " | linktoken / floor | linktoken / PL/pgSQL | backend CPU µs/tx (linktoken, floor, PL/pgSQL) |")
    M.append("|---|---|" + "---|" * (len(VARIANTS) + 3))
    for op in OPS:
        for c in CLIENTS:
            vals = [tps[(op, v, c)]["tps"] for v in VARIANTS]
            cpus = [tps[(op, v, c)]["cpu_median"] for v in VARIANTS]
            M.append(f"| {op} | {c} | " + " | ".join(f"{x:,.0f}" for x in vals) +
                     f" | {vals[0] / vals[1]:.2f} | {vals[0] / vals[2]:.2f} | " + ", ".join(f"{x:.0f}" for x in cpus) + " |")
    M.append("")
    M.append("Backend CPU per transaction: user + system time of the pgbench backends (from /proc while the run "
             "lasts) divided by the transactions: the work each variant costs the server, which other load on a "
             "shared machine disturbs far less than TPS does. It includes the backend's own WAL writes and flushes.")
    M.append("")
    M.append("![issue TPS](charts/sql-issue-tps.svg)")
    M.append("![redeem TPS](charts/sql-redeem-tps.svg)")
    if batch:
        M.append("")
        how = "`linktoken.issue_batch(purpose, subjects text[])`" if HAS_BATCH else "per-row `linktoken.issue()`"
        M.append(f"Batch issue of {BATCH:,} tokens in one statement (wall time, including commit), into empty tables: "
                 f"linktoken ({how}) {batch['extension']:.1f} s, floor {batch['floor']:.1f} s, "
                 f"PL/pgSQL `issue_many` (set-based) {batch['plpgsql']:.1f} s.")
        if "per_row" in batch:
            n, secs = batch["per_row"]
            M.append(f"For comparison, {n:,} calls of the per-row `linktoken.issue()` in one statement took "
                     f"{secs:.1f} s ({secs * 1e6 / n:.0f} µs per token).")
        M.append("")
        M.append("| | " + " | ".join(LABEL[v] for v in VARIANTS) + " |")
        M.append("|---|" + "---|" * len(VARIANTS))
        M.append("| batch issue time (s) | " + " | ".join(f"{batch[v]:.1f}" for v in VARIANTS) + " |")
        M.append("| bytes per stored token (table + indexes) | " +
                 " | ".join(f"{batch['bytes_' + v]:.0f}" for v in VARIANTS) + " |")
        M.append("")
        M.append("![batch issue](charts/sql-batch-issue.svg) ![bytes per token](charts/sql-bytes-per-token.svg)")
    M.append("")
    M.append("`seal` (sealed tokens, nothing written): " + "no run" * (not seal) +
             ", ".join(f"{seal[c]['tps']:,.0f} tokens/s with {c} client(s)" for c in CLIENTS if c in seal) + ".")
    if lat:
        M.append("")
        M.append("Redeem latency, 1 client, `linktoken.redeem` with N outstanding tokens in linktoken.tokens "
                 "(filler tokens inserted directly, plus 5,000 (at most N) tokens of an unlimited-use purpose that the "
                 "run redeems at random, so N stays constant; same UPDATE and audit event as a one-use redeem; "
                 "latency from pgbench's per-transaction log, commit included):")
        M.append("")
        M.append("| outstanding tokens | average ms | p50 ms | p99 ms | tx/s |")
        M.append("|---|---|---|---|---|")
        for n in sorted(lat):
            r = lat[n]
            M.append(f"| {r['outstanding']:,} | {r['latency_ms']:.3f} | {r.get('p50_ms', float('nan')):.3f} | "
                     f"{r.get('p99_ms', float('nan')):.3f} | {r['tps']:,.0f} |")
        M.append("")
        M.append("![redeem latency](charts/sql-redeem-latency.svg)")
    if notes:
        M.append("")
        M += [f"- **Note**: {n}" for n in notes]
    extra = os.path.join(HERE, "analysis.md")
    if os.path.exists(extra):
        M += ["", open(extra, encoding="utf-8").read().strip()]
    M.append("")
    M.append(f"SQL part took {time.monotonic() - t_start:.0f} s.")

    with open(os.path.join(OUT, "sql.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(M) + "\n")
    with open(os.path.join(OUT, "sql.json"), "w", encoding="utf-8") as f:
        json.dump({"part": "sql", "title": "SQL level (pgbench)", "figures": figures, "targets": targets,
                   "settings": st}, f, indent=1)
    log(f"wrote {OUT}/sql.json and sql.md ({time.monotonic() - t_start:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
