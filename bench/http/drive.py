#!/usr/bin/env python3
"""Measurement steps of the gateway benchmark (Python 3.11 standard library only).

Called by bench/http/run.sh with the ceiling server, the gateway and the database already
running; writes one raw-results JSON file that bench/http/http_report.py turns into
bench/out/http.json, bench/out/http.md and the charts.

Every step runs the same number of keep-alive connections (--clients) so that the gateway's
redemption rate and pgbench's direct SQL rate are compared at the same concurrency. Tokens for
the redemptions are issued just before the step that uses them (each POST needs a fresh one)
and kept, in clear, only in the harness table bench_http.tokens and in files under --tmp, both
removed by run.sh when the run ends.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import threading
import time

PURPOSE = "bench_http"
FORM = "confirm=1"
RATE_FRACTIONS = (0.25, 0.5, 0.75)
TICK = os.sysconf("SC_CLK_TCK")


# --- the database -------------------------------------------------------------------------

def psql(db: str, sql: str, out: str | None = None) -> str:
    cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql]
    if out:
        cmd += ["-o", out]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout.strip()


class Tokens:
    """Issues tokens into the harness table in consecutive id ranges."""

    def __init__(self, db: str, tmp: str):
        self.db, self.tmp, self.next_id, self.issued, self.issue_seconds = db, tmp, 0, 0, 0.0

    def issue(self, n: int) -> tuple[int, int]:
        first = self.next_id
        t0 = time.monotonic()
        psql(self.db, f"INSERT INTO bench_http.tokens(id, token) SELECT g, linktoken.issue('{PURPOSE}', "
                      f"'bench:' || g) FROM generate_series({first}, {first + n - 1}) g")
        self.issue_seconds += time.monotonic() - t0
        self.next_id += n
        self.issued += n
        return first, n

    def paths_file(self, name: str, first: int, n: int) -> str:
        path = os.path.join(self.tmp, f"{name}.paths")
        psql(self.db, f"SELECT '/t/' || token FROM bench_http.tokens WHERE id >= {first} "
                      f"AND id < {first + n} ORDER BY id", out=path)
        return path


# --- CPU and memory accounting --------------------------------------------------------------

def proc_times(pid: int, children_too: bool = False) -> float:
    """CPU seconds of a process (and of its waited-for children) from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children_too:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def children_of(ppid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", encoding="ascii") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == ppid:
                        out.append(int(name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def postgres_cpu(postmaster: int) -> float:
    """The cluster's CPU seconds: the postmaster with its exited children, plus the live ones."""
    return proc_times(postmaster, children_too=True) + sum(proc_times(p) for p in children_of(postmaster))


def machine_busy() -> float:
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / TICK  # all but idle and iowait


def client_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class CpuMeter:
    def __init__(self, gateway: int, ceiling: int, postmaster: int):
        self.gateway, self.ceiling, self.postmaster = gateway, ceiling, postmaster

    def snapshot(self) -> dict:
        return {"gateway": proc_times(self.gateway), "ceiling server": proc_times(self.ceiling),
                "postgres": postgres_cpu(self.postmaster),
                "load client": client_cpu(), "machine": machine_busy()}

    @staticmethod
    def delta(a: dict, b: dict) -> dict:
        d = {k: round(b[k] - a[k], 3) for k in a}
        # CPU the machine spent on anything else (other users of a shared machine).
        d["other processes"] = round(max(0.0, d["machine"] - sum(v for k, v in d.items() if k != "machine")), 3)
        return d


def per_request(cpu: dict, requests: float) -> dict:
    """CPU microseconds per request of each party (not of the machine as a whole)."""
    return {k: round(v / max(1.0, requests) * 1e6, 1) for k, v in cpu.items()
            if k not in ("machine", "other processes")}


class MemorySampler(threading.Thread):
    """Samples the gateway's VmRSS every 0.2 s; the largest sample per step, VmHWM at the end."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.step, self.peak, self.stop = pid, "idle", {}, threading.Event()

    def status(self) -> dict:
        out = {}
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmRSS", "VmHWM"):
                        out[k] = int(v.split()[0]) / 1024  # kB -> MiB
        except OSError:
            pass
        return out

    def run(self):
        while not self.stop.wait(0.2):
            rss = self.status().get("VmRSS")
            if rss is not None:
                self.peak[self.step] = max(self.peak.get(self.step, 0.0), rss)


# --- the steps ---------------------------------------------------------------------------

class Bench:
    def __init__(self, a):
        self.a = a
        self.tokens = Tokens(a.db, a.tmp)
        self.cpu = CpuMeter(a.gateway_pid, a.ceiling_pid, a.postmaster_pid)
        self.mem = MemorySampler(a.gateway_pid)
        self.results: dict = {"steps": []}

    def load(self, step: str, port: int, *, path: str | None = None, paths: str | None = None,
             once: bool = False, post: bool = False, rate: float | None = None) -> dict:
        cmd = [self.a.load_bin, "--addr", f"127.0.0.1:{port}", "--connections", str(self.a.clients),
               "--seconds", str(self.a.seconds), "--warmup-seconds", str(self.a.warmup)]
        cmd += ["--path", path] if path else ["--paths-file", paths]
        if once:
            cmd.append("--once")
        if post:
            cmd += ["--form", FORM]
        if rate:
            cmd += ["--rate", f"{rate:.1f}"]
        proc, cpu = self.measured(step, cmd, timeout=self.a.seconds * 4 + 120)
        if proc.returncode != 0:
            raise SystemExit(f"drive.py: load client failed in step {step}: {proc.stderr.strip()[-2000:]}")
        r = json.loads(proc.stdout)
        r.update(step=step, cpu_seconds=cpu, rss_peak_mib=self.mem.peak.get(step))
        # The CPU was also spent on the warm-up's requests: count them at the measured rate.
        sent = r["answered"] * (r["seconds"] + self.a.warmup) / r["seconds"] if r["seconds"] else 0
        r["cpu_per_request_us"] = per_request(cpu, sent)
        self.results["steps"].append(r)
        print(f"drive.py: {step}: {r['rate']:.0f}/s answered={r['answered']} refused={r['refused']} "
              f"errors={r['transport_errors']} p50={r['p50_ms']} ms p99={r['p99_ms']} ms", flush=True)
        if r["refused"] or r["transport_errors"]:
            print(f"drive.py: WARNING {step}: statuses {r['statuses']}, {r['transport_errors']} transport errors",
                  flush=True)
        return r

    def measured(self, step: str, cmd: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
        """Runs one step's load program; its output and the CPU seconds each party spent meanwhile."""
        self.mem.step = step
        before = self.cpu.snapshot()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        after = self.cpu.snapshot()
        self.mem.step = "idle"
        return proc, CpuMeter.delta(before, after)

    def oha(self, step: str, url: str) -> dict | None:
        """The same closed-loop maximum measured by oha, as a cross-check of the load client."""
        if not self.a.oha:
            return None
        secs = min(self.a.seconds, 10)
        cmd = [self.a.oha, "--no-tui", "--output-format", "json", "-z", f"{secs:g}s", "-c", str(self.a.clients), url]
        proc, cpu = self.measured(step, cmd, timeout=secs * 4 + 60)
        if proc.returncode != 0:
            print(f"drive.py: oha failed in {step}: {proc.stderr.strip()[-500:]}", flush=True)
            return None
        d = json.loads(proc.stdout)
        s, p = d.get("summary", {}), d.get("latencyPercentiles", {})
        ms = lambda k: None if p.get(k) is None else round(p[k] * 1000, 3)  # noqa: E731 (oha reports seconds)
        answered = sum(n for code, n in d.get("statusCodeDistribution", {}).items() if code.startswith(("2", "3")))
        r = {"step": step, "tool": "oha", "rate": s.get("requestsPerSec"), "seconds": secs, "answered": answered,
             "refused": sum(d.get("statusCodeDistribution", {}).values()) - answered,
             "transport_errors": sum(d.get("errorDistribution", {}).values()), "target_rate": None,
             "p50_ms": ms("p50"), "p99_ms": ms("p99"), "p999_ms": ms("p99.9"),
             "cpu_seconds": cpu, "cpu_per_request_us": per_request(cpu, answered)}
        self.results["steps"].append(r)
        print(f"drive.py: {step}: {r['rate']:.0f}/s p50={r['p50_ms']} ms p99={r['p99_ms']} ms", flush=True)
        return r

    def steps_named(self, name: str) -> dict:
        return next((s for s in self.results["steps"] if s["step"] == name), {})

    def post_tokens(self, name: str, rate: float) -> str:
        n = int(math.ceil(rate * (self.a.seconds + self.a.warmup + 1) * 1.05)) + 4 * self.a.clients
        first, n = self.tokens.issue(n)
        return self.tokens.paths_file(name, first, n)

    def sql_redeem(self, rate_hint: float) -> dict:
        """pgbench -M prepared: the gateway's own per-POST transaction, tokens from the harness table."""
        c = self.a.clients
        per_client = int(math.ceil(rate_hint * self.a.seconds / c)) + 1
        first, n = self.tokens.issue(per_client * c)
        script = os.path.join(self.a.tmp, "redeem.sql")
        with open(script, "w", encoding="utf-8") as f:
            f.write(
                "\\set n :n + 1\n"
                "\\set id :first + :n * :clients + :client_id\n"
                "START TRANSACTION READ WRITE;\n"
                "SELECT pg_catalog.set_config('linktoken.client_ip', '127.0.0.1', true), "
                "pg_catalog.set_config('linktoken.user_agent', 'linktoken-bench-load', true), "
                "pg_catalog.set_config('statement_timeout', '9500ms', true);\n"
                "SELECT status, result::text, page::text, purpose FROM linktoken.gateway_redeem("
                "(SELECT token FROM bench_http.tokens WHERE id = :id), '{\"confirm\":\"1\"}'::text::jsonb, NULL);\n"
                "COMMIT;\n")
        cmd = ["pgbench", "-n", "-M", "prepared", "-c", str(c), "-j", str(min(c, 2)), "-t", str(per_client),
               "-D", "n=-1", "-D", f"clients={c}", "-D", f"first={first}", "-f", script,
               "-U", self.a.gateway_role, "-d", self.a.db]
        proc, cpu = self.measured("sql redeem", cmd, timeout=self.a.seconds * 6 + 120)
        if proc.returncode != 0:
            raise SystemExit(f"drive.py: pgbench failed: {proc.stderr.strip()[-2000:]}")
        tps = lat = None
        for line in proc.stdout.splitlines():
            if line.startswith("tps ="):
                tps = float(line.split()[2])
            elif line.startswith("latency average ="):
                lat = float(line.split()[3])
        # A wrong token would make gateway_redeem answer 'invalid' fast: check that a sample was consumed.
        used = psql(self.a.db, f"SELECT count(*) FILTER (WHERE p.status = 'used') || '/' || count(*) "
                               f"FROM (SELECT token FROM bench_http.tokens WHERE id >= {first} AND id < {first + n} "
                               f"ORDER BY random() LIMIT 200) b, linktoken.peek(b.token, '{PURPOSE}') p")
        r = {"step": "sql redeem", "sample_used": used, "rate": tps, "mean_ms": lat, "transactions": n, "clients": c,
             "cpu_seconds": cpu}
        self.results["steps"].append(r)
        print(f"drive.py: sql redeem: {tps:.0f} tx/s, mean latency {lat} ms, {n} transactions, "
              f"sample consumed {used}", flush=True)
        return r

    def run(self) -> dict:
        a = self.a
        self.mem.start()
        idle = self.mem.status()
        self.results["rss_idle_mib"] = idle.get("VmRSS")
        t_start = time.monotonic()

        ceiling = self.load("ceiling max", a.ceiling_port, path="/")
        first, n = self.tokens.issue(1000)
        get_paths = self.tokens.paths_file("get", first, n)
        get_max = self.load("gateway GET max", a.gateway_port, paths=get_paths)
        post_max = self.load("gateway POST max", a.gateway_port, paths=self.post_tokens("post-max", get_max["rate"]),
                             once=True, post=True)
        # pgbench gets enough tokens for about the step's length if it is up to 1.5x the gateway.
        self.sql_redeem(post_max["rate"] * 1.5)
        for frac in RATE_FRACTIONS:
            self.load(f"gateway GET at {frac:.0%}", a.gateway_port, paths=get_paths, rate=get_max["rate"] * frac)
        for frac in RATE_FRACTIONS:
            rate = post_max["rate"] * frac
            self.load(f"gateway POST at {frac:.0%}", a.gateway_port,
                      paths=self.post_tokens(f"post-{frac}", rate), once=True, post=True, rate=rate)
        # Further consecutive GET runs (the first is above): the maximum again, then half of it.
        get_runs = [{"run": 1, "max": get_max["rate"], "half": self.steps_named("gateway GET at 50%")}]
        for k in range(2, a.runs + 1):
            m = self.load(f"gateway GET max (run {k})", a.gateway_port, paths=get_paths)
            h = self.load(f"gateway GET at 50% (run {k})", a.gateway_port, paths=get_paths, rate=m["rate"] * 0.5)
            get_runs.append({"run": k, "max": m["rate"], "half": h})
        self.results["get_runs"] = [{"run": g["run"], "max_rate": g["max"], "offered": g["half"].get("target_rate"),
                                     "achieved": g["half"].get("rate"), "p50_ms": g["half"].get("p50_ms"),
                                     "p99_ms": g["half"].get("p99_ms"), "p999_ms": g["half"].get("p999_ms"),
                                     "other_cpu_s": g["half"].get("cpu_seconds", {}).get("other processes")}
                                    for g in get_runs]
        self.oha("oha: ceiling max", f"http://127.0.0.1:{a.ceiling_port}/")
        with open(get_paths, encoding="ascii") as f:
            self.oha("oha: gateway GET max", f"http://127.0.0.1:{a.gateway_port}{f.readline().strip()}")
        self.mem.stop.set()
        end = self.mem.status()
        self.results.update(
            rss_end_mib=end.get("VmRSS"), hwm_mib=end.get("VmHWM"), rss_peak_mib=max(self.mem.peak.values(), default=None),
            tokens_issued=self.tokens.issued, issue_seconds=round(self.tokens.issue_seconds, 1),
            measure_seconds=round(time.monotonic() - t_start, 1), clients=a.clients, seconds=a.seconds,
            warmup=a.warmup, ceiling_rate=ceiling["rate"])
        return self.results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--out", required=True, help="raw results JSON")
    ap.add_argument("--load-bin", required=True)
    ap.add_argument("--ceiling-port", type=int, required=True)
    ap.add_argument("--gateway-port", type=int, required=True)
    ap.add_argument("--gateway-pid", type=int, required=True)
    ap.add_argument("--ceiling-pid", type=int, required=True)
    ap.add_argument("--postmaster-pid", type=int, required=True)
    ap.add_argument("--gateway-role", required=True)
    ap.add_argument("--oha", default="", help="oha binary for the cross-check (none: skipped)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--runs", type=int, default=3, help="consecutive GET runs (max, then half of it)")
    a = ap.parse_args()
    results = Bench(a).run()
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
