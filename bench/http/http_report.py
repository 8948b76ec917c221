#!/usr/bin/env python3
"""Turns the raw results of bench/http/drive.py into bench/out/http.json, bench/out/http.md and
bench/charts/http-*.svg, following the contract at the top of bench/report.py (standard library only).

Usage: http_report.py --raw RAW.json --tmp DIR --out-dir bench/out --chart-dir bench/charts
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
try:
    from chart import bar_chart, line_chart  # bench/chart.py
except ImportError:  # the report still gets its figures without charts
    bar_chart = line_chart = None

FRACTIONS = ("25%", "50%", "75%")
RSS_LIMIT_MB = 50.0
P99_LIMIT_MS = 10.0
RATIO_REQUIRED = 0.7


def mib_to_mb(v: float | None) -> float | None:
    return None if v is None else v * 1024 * 1024 / 1e6


def r1(v):
    return None if v is None else round(v, 3 if abs(v) < 10 else 1)


class Report:
    def __init__(self, raw: dict, tmp: str):
        self.raw, self.tmp = raw, tmp
        self.steps = {s["step"]: s for s in raw["steps"]}
        self.figures: list[dict] = []
        self.targets: list[dict] = []

    def step(self, name: str) -> dict:
        return self.steps.get(name, {})

    def fig(self, name: str, value, unit: str, **extra):
        self.figures.append({"name": name, "value": r1(value), "unit": unit, **extra})

    def collect(self):
        c = self.raw["clients"]
        for name in ("ceiling max", "gateway GET max", "gateway POST max"):
            s = self.step(name)
            self.fig(f"{name}: rate", s.get("rate"), "req/s", connections=c, seconds=r1(s.get("seconds")),
                     refused=s.get("refused"), transport_errors=s.get("transport_errors"))
            self.fig(f"{name}: p50", s.get("p50_ms"), "ms")
            self.fig(f"{name}: p99", s.get("p99_ms"), "ms")
        sql = self.step("sql redeem")
        self.fig("direct SQL redeem (pgbench -M prepared, gateway's transaction)", sql.get("rate"), "tx/s",
                 clients=c, transactions=sql.get("transactions"), sample_consumed=sql.get("sample_used"))
        self.fig("direct SQL redeem: mean latency", sql.get("mean_ms"), "ms")
        for kind in ("GET", "POST"):
            for frac in FRACTIONS:
                s = self.step(f"gateway {kind} at {frac}")
                for k in ("p50", "p90", "p99", "p999"):
                    self.fig(f"gateway {kind} at {frac} of max: {k}", s.get(f"{k}_ms"), "ms",
                             offered=r1(s.get("target_rate")), achieved=r1(s.get("rate")))
        for name in ("oha: ceiling max", "oha: gateway GET max"):
            s = self.step(name)
            if s:
                self.fig(f"{name}: rate", s.get("rate"), "req/s", connections=c, refused=s.get("refused"),
                         transport_errors=s.get("transport_errors"), p50_ms=s.get("p50_ms"), p99_ms=s.get("p99_ms"))
        self.fig("gateway RSS idle (after start)", mib_to_mb(self.raw.get("rss_idle_mib")), "MB")
        self.fig("gateway RSS peak (sampled every 0.2 s)", mib_to_mb(self.raw.get("rss_peak_mib")), "MB")
        self.fig("gateway VmHWM at the end", mib_to_mb(self.raw.get("hwm_mib")), "MB")
        for name in ("ceiling max", "gateway GET max", "gateway POST max", "oha: ceiling max", "oha: gateway GET max"):
            for who, us in self.step(name).get("cpu_per_request_us", {}).items():
                self.fig(f"CPU per request, {name}: {who}", us, "µs")
        self.fig("tokens issued for the run", self.raw.get("tokens_issued"), "tokens",
                 seconds=self.raw.get("issue_seconds"))

    def judge(self):
        post, sql = self.step("gateway POST max").get("rate"), self.step("sql redeem").get("rate")
        ratio = post / sql if post and sql else None
        self.targets.append({
            "issue": "5",
            "target": f"gateway redeem >= {RATIO_REQUIRED}x direct SQL redeem ({self.raw['clients']} connections)",
            "measured": r1(ratio), "required": f">= {RATIO_REQUIRED}", "met": ratio is not None and ratio >= RATIO_REQUIRED,
            "note": f"gateway POST {post:.0f} req/s / pgbench {sql:.0f} tx/s" if ratio else "not measured"})
        s = self.step("gateway POST at 50%")
        p99 = s.get("p99_ms")
        self.targets.append({
            "issue": "5",
            "target": f"gateway POST p99 < {P99_LIMIT_MS:g} ms at half the maximum rate",
            "measured": r1(p99), "required": f"< {P99_LIMIT_MS:g} ms", "met": p99 is not None and p99 < P99_LIMIT_MS,
            "note": f"{s.get('target_rate', 0):.0f} req/s offered (open loop), p50 {s.get('p50_ms')} ms; other "
                    f"processes used {s.get('cpu_seconds', {}).get('other processes')} CPU-s during the step"
                    if s else "not measured"})
        runs = self.raw.get("get_runs") or []
        p99s = [g.get("p99_ms") for g in runs]
        ok = bool(runs) and len(runs) >= 3 and all(p is not None and p < P99_LIMIT_MS for p in p99s)
        self.targets.append({
            "issue": "11",
            "target": f"gateway GET p99 < {P99_LIMIT_MS:g} ms at half the maximum rate, {len(runs)} consecutive runs",
            "measured": r1(max((p for p in p99s if p is not None), default=None)),
            "required": f"< {P99_LIMIT_MS:g} ms in each of 3", "met": ok,
            "note": "; ".join(f"run {g['run']}: p99 {g.get('p99_ms')} ms at {g.get('offered') or 0:.0f} req/s offered "
                              f"(max {g.get('max_rate') or 0:.0f}), other processes {g.get('other_cpu_s')} CPU-s"
                              for g in runs) or "not measured"})
        hwm = mib_to_mb(self.raw.get("hwm_mib"))
        self.targets.append({
            "issue": "5",
            "target": f"gateway RSS < {RSS_LIMIT_MB:g} MB under load", "measured": r1(hwm),
            "required": f"< {RSS_LIMIT_MB:g} MB", "met": hwm is not None and hwm < RSS_LIMIT_MB,
            "note": "VmHWM (peak resident set) after all steps, 1 MB = 10^6 bytes"})

    def charts(self, chart_dir: str) -> list[str]:
        if bar_chart is None:
            return []
        made = []
        cats = ["ceiling (constant page)", "gateway GET landing", "gateway POST redeem", "direct SQL redeem"]
        vals = [self.step("ceiling max").get("rate"), self.step("gateway GET max").get("rate"),
                self.step("gateway POST max").get("rate"), self.step("sql redeem").get("rate")]
        made.append(bar_chart(os.path.join(chart_dir, "http-throughput.svg"),
                              f"Maximum rate, {self.raw['clients']} connections", cats, {"rate": vals}, "req/s"))
        for kind in ("GET", "POST"):
            rows = [self.step(f"gateway {kind} at {f}") for f in FRACTIONS]
            rows.append(self.step(f"gateway {kind} max"))
            rows = [r for r in rows if r.get("rate")]
            if len(rows) < 2:
                continue
            xs = [r.get("target_rate") or r["rate"] for r in rows]
            made.append(line_chart(
                os.path.join(chart_dir, f"http-latency-{kind.lower()}.svg"),
                f"Gateway {kind} latency vs request rate (last point: maximum, closed loop)", xs,
                {"p50": [r.get("p50_ms") for r in rows], "p99": [r.get("p99_ms") for r in rows]},
                "requests per second", "ms"))
        return [os.path.basename(m) for m in made]

    def markdown(self, charts: list[str], settings: str) -> str:
        raw, c = self.raw, self.raw["clients"]
        L = []
        L.append(
            f"One run, {c} keep-alive connections throughout, {raw['seconds']:g} s measured per step after "
            f"{raw['warmup']:g} s of warm-up. The load client is `linktoken-bench-load` (bench/ceiling): "
            "every redemption needs a token nobody used before, which oha cannot do (it picks URLs from a file at "
            "random, with repeats) and wrk cannot do open-loop. It runs closed-loop for the maximum rate and "
            "open-loop (requests due at fixed times whether or not earlier ones were answered; a request that "
            "waited for a busy connection counts from when it was due) for the fixed rates. Latency runs until "
            "the whole response body has arrived. The gateway, the ceiling server, PostgreSQL and the load client "
            "share this machine's CPUs, so every figure includes the load client's own cost.")
        L += ["", "| step | offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | non-2xx/3xx | errors | "
              "other processes' CPU (s) |", "|---|---|---|---|---|---|---|---|---|"]
        for s in raw["steps"]:
            if s["step"] == "sql redeem":
                L.append(f"| direct SQL redeem (pgbench) | max | {s['rate']:.0f} | {s['mean_ms']} (mean) | | | | | "
                         f"{s['cpu_seconds'].get('other processes')} |")
                continue
            off = f"{s['target_rate']:.0f}" if s.get("target_rate") else "max"
            L.append(f"| {s['step']} | {off} | {s['rate']:.0f} | {s['p50_ms']} | {s['p99_ms']} | {s['p999_ms']} | "
                     f"{s['refused']} | {s['transport_errors']} | {s['cpu_seconds'].get('other processes')} |")
        if raw.get("get_runs"):
            L += ["", f"**GET at half the maximum rate, {len(raw['get_runs'])} consecutive runs** (each run measures the "
                  "closed-loop maximum again and then offers half of it, open loop; the target wants p99 < "
                  f"{P99_LIMIT_MS:g} ms in every run):", "",
                  "| run | maximum req/s | offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | other processes' CPU (s) |",
                  "|---|---|---|---|---|---|---|---|"]
            for g in raw["get_runs"]:
                L.append(f"| {g['run']} | {g.get('max_rate') or 0:.0f} | {g.get('offered') or 0:.0f} | "
                         f"{g.get('achieved') or 0:.0f} | {g.get('p50_ms')} | {g.get('p99_ms')} | {g.get('p999_ms')} | "
                         f"{g.get('other_cpu_s')} |")
        L += ["", "The oha rows measure the same closed-loop maximum with oha as a cross-check of the load client "
              "(oha cannot run the POST steps: it picks URLs from its file at random). Its client spends a little "
              "more CPU per request than ours (see the CPU table), which the shared cores take from the server; "
              "otherwise the two differ by what else the machine was doing during the step. oha's 'errors' are "
              "requests cut off at the end of its run. "
              "The 'other processes' column is CPU the machine spent on anything outside this benchmark during the "
              "step (other users of a shared machine): steps with a large figure have disturbed latencies."]
        L += ["", "Charts: " + ", ".join(f"![{n}](charts/{n})" for n in charts) if charts else
              "(no charts: bench/chart.py was not importable)"]
        L += ["", "**Memory.** Gateway VmRSS "
              f"{mib_to_mb(raw.get('rss_idle_mib')):.1f} MB idle, peak {mib_to_mb(raw.get('rss_peak_mib')):.1f} MB "
              f"sampled, VmHWM {mib_to_mb(raw.get('hwm_mib')):.1f} MB at the end."]
        L += ["", "**Where the CPU goes** (CPU time of each process during the step / requests answered, in µs; "
              "PostgreSQL = postmaster and all backends):", "",
              "| step | server (gateway or ceiling) | PostgreSQL | load client | machine busy (s) | other processes (s) |",
              "|---|---|---|---|---|---|"]
        for s in raw["steps"]:
            name = s["step"]
            if name == "sql redeem":
                continue
            u = s.get("cpu_per_request_us", {})
            server = u.get("ceiling server") if "ceiling" in name else u.get("gateway")
            L.append(f"| {name} | {server} | {u.get('postgres')} | {u.get('load client')} | "
                     f"{s.get('cpu_seconds', {}).get('machine')} | {s.get('cpu_seconds', {}).get('other processes')} |")
        sql = self.step("sql redeem")
        if sql.get("rate"):
            n = sql["transactions"]
            cs = sql["cpu_seconds"]
            L.append(f"| direct SQL redeem | – | {cs['postgres'] / n * 1e6:.1f} | "
                     f"{cs['load client'] / n * 1e6:.1f} (pgbench) | {cs['machine']} | {cs['other processes']} |")
        L += ["", "**Method of the direct SQL figure.** pgbench -M prepared, the same number of clients, as the "
              "gateway's login role, one transaction per redemption exactly as gateway/src/db.rs sends it: "
              "`START TRANSACTION READ WRITE`, the `set_config` prelude, "
              "`SELECT status, result::text, page::text, purpose FROM linktoken.gateway_redeem(...)` with the "
              "form `{\"confirm\":\"1\"}`, `COMMIT`. The token comes from the harness table by id "
              "(a primary-key subquery). After the step a sample of 200 of its tokens is peeked: "
              f"{sql.get('sample_used')} are `used`."]
        L += ["", "**Settings.** The gateway runs with `--pool-size` equal to the connections and "
              "`--failed-lookups-per-minute 1000000` so its per-address limiter (all load comes from 127.0.0.1) can "
              "never turn the run into 429s; no lookup in the run fails anyway (see the non-2xx column). Its access "
              "log (one line per request on stderr) goes to a file, as in production.", "", "```", settings.strip(),
              "```"]
        L += ["", f"Tokens issued for the run: {raw.get('tokens_issued')} in {raw.get('issue_seconds')} s "
              "(not part of any measured step). Lengthen the steps with `BENCH_HTTP_SECONDS`."]
        return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--raw", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--chart-dir", required=True)
    a = ap.parse_args()
    with open(a.raw, encoding="utf-8") as f:
        raw = json.load(f)
    rep = Report(raw, a.tmp)
    rep.collect()
    rep.judge()
    charts = rep.charts(a.chart_dir)
    try:
        settings = open(os.path.join(a.tmp, "settings.txt"), encoding="utf-8").read()
    except OSError:
        settings = ""
    md = rep.markdown(charts, settings)
    limits_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "LIMITS.md")
    if os.path.exists(limits_path):
        md += "\n" + open(limits_path, encoding="utf-8").read()
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "http.json"), "w", encoding="utf-8") as f:
        json.dump({"part": "http", "title": "Gateway (HTTP)", "figures": rep.figures, "targets": rep.targets,
                   "settings": {"connections": raw["clients"], "seconds per step": raw["seconds"],
                                "warm-up seconds": raw["warmup"]}}, f, indent=1)
    with open(os.path.join(a.out_dir, "http.md"), "w", encoding="utf-8") as f:
        f.write(md)
    for t in rep.targets:
        print(f"http_report.py: {'met' if t['met'] else 'NOT MET'}: {t['target']}: {t['measured']} ({t['note']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
