#!/usr/bin/env python3
"""Assemble bench/REPORT.md from the parts' results (Python 3.11 standard library only).

CONTRACT for every benchmark part (bench/sql, bench/http, ...)
-----------------------------------------------------------------
A part named PART writes two files:

  bench/out/PART.json   {
                          "part": "PART",                       # e.g. "sql", "http"
                          "title": "SQL level (pgbench)",       # optional heading for the report
                          "figures": [                          # raw measured numbers
                            {"name": "issue tps, extension, 8 clients",
                             "value": 2345.6, "unit": "tx/s",
                             ...                                 # any extra keys (clients, variant,
                            }                                    #  seconds, ...) are kept as raw data
                          ],
                          "targets": [                          # targets this part checks
                            {"issue": "11",                     # the issue that set it
                             "target": "issue TPS >= 0.9x hand-written (8 clients)",
                             "measured": 0.97,                  # the measured ratio or figure
                             "required": ">= 0.95",             # human-readable requirement
                             "met": true,
                             "note": "extension 2345.6 tx/s / floor 2418.1 tx/s"}
                          ],
                          "settings": {"key": "value"}           # optional: settings the part used
                        }
  bench/out/PART.md     a markdown fragment (method, tables, what limits what), included verbatim
                        under a "## <title>" heading; it should link its charts as
                        ![alt](charts/NAME.svg), i.e. relative to bench/ where REPORT.md lives.

Charts are SVG files written with bench/chart.py (bar_chart, line_chart) to bench/charts/*.svg.
A part that did not run (missing json) is reported as absent, never as a failure of the report.
bench/out/warnings.md (markdown lines, e.g. "the library was replaced during the run") is shown
before the targets when present. Machine facts come from bench/out/machine.json if present (written by bench/run.sh: PostgreSQL
settings), completed here from /proc, lscpu, df, uname, rustc.

Usage: bench/report.py [--out-dir bench/out] [--report bench/REPORT.md] [--parts sql,http]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR_FOR_WARNINGS: list[str] = []  # set by main(): bench/out/warnings.md is shown first
KNOWN_PARTS = ["sql", "http"]  # report order; unknown parts found in out/ follow alphabetically
PART_TITLES = {"sql": "SQL level (pgbench)", "http": "Gateway (HTTP)"}


def run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ram_gib() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def disk_of(path: str) -> str:
    out = run(["df", "-hT", path]).splitlines()
    if len(out) < 2:
        return "unknown"
    f = out[1].split()
    desc = f"{f[1]} filesystem on {f[0]}, {f[2]} total, {f[4]} free" if len(f) >= 5 else out[1]
    dev = os.path.basename(f[0]) if f else ""
    rot = ""
    base = dev.rstrip("0123456789")
    for cand in (dev, base, base[:-1] if base.endswith("p") else base):
        p = f"/sys/block/{cand}/queue/rotational"
        if cand and os.path.exists(p):
            with open(p, encoding="utf-8") as fh:
                rot = "rotational" if fh.read().strip() == "1" else "non-rotational (SSD/virtual)"
            break
    return desc + (f", {rot}" if rot else "")


def machine(out_dir: str) -> dict:
    m = {
        "CPU": cpu_model(),
        "cores (logical)": str(os.cpu_count()),
        "RAM": ram_gib(),
        "disk (bench cluster)": disk_of(os.path.join(HERE, "..")),
        "kernel": " ".join(platform.uname()[i] for i in (0, 2, 4)),
        "OS": run(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]) or platform.platform(),
        "rustc": run(["rustc", "--version"]) or "unknown",
        "python": sys.version.split()[0],
        "date (UTC)": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
    }
    p = os.path.join(out_dir, "machine.json")
    if os.path.exists(p):
        with open(p, encoding="utf-8") as f:
            m.update(json.load(f))
    return m


def load_parts(out_dir: str, wanted: list[str]) -> tuple[list[dict], list[str]]:
    present, absent = [], []
    extra = sorted(
        n[:-5] for n in os.listdir(out_dir) if n.endswith(".json") and n != "machine.json" and n[:-5] not in wanted
    ) if os.path.isdir(out_dir) else []
    for name in wanted + extra:
        jp, mp = os.path.join(out_dir, f"{name}.json"), os.path.join(out_dir, f"{name}.md")
        if not os.path.exists(jp):
            absent.append(name)
            continue
        try:
            with open(jp, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            absent.append(f"{name} (unreadable {jp}: {e})")
            continue
        data.setdefault("part", name)
        data["_md"] = open(mp, encoding="utf-8").read() if os.path.exists(mp) else ""
        present.append(data)
    return present, absent


def fmt_num(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, (int, float)):
        if v == 0:
            return "0"
        a = abs(v)
        if a >= 1000:
            return f"{v:,.0f}"
        if a >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}"
    return str(v)


def cell(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render(m: dict, parts: list[dict], absent: list[str]) -> str:
    L = ["# linktoken benchmark report", ""]
    L.append("Generated by `make bench` (bench/run.sh, assembled by bench/report.py). All figures come from "
             "one run on the machine below; compare ratios, not absolute numbers, across machines.")
    L += ["", "## Machine", "", "| | |", "|---|---|"]
    for k, v in m.items():
        L.append(f"| {cell(k)} | {cell(v)} |")
    warn = os.path.join(OUT_DIR_FOR_WARNINGS[0], "warnings.md") if OUT_DIR_FOR_WARNINGS else ""
    if warn and os.path.exists(warn):
        L += ["", "## Warnings", "", open(warn, encoding="utf-8").read().strip()]
    L += ["", "## Targets", ""]
    rows = [(p.get("part"), t) for p in parts for t in p.get("targets", [])]
    # issue 11's targets first (the current ones), then issue 5's that still stand
    rows.sort(key=lambda r: 0 if str(r[1].get("issue", "")) == "11" else 1)
    if rows:
        L += ["| issue | part | target | measured | required | met | note |", "|---|---|---|---|---|---|---|"]
        for part, t in rows:
            met = "met" if t.get("met") else "**missed**"
            L.append(f"| {cell(t.get('issue', ''))} | {cell(part)} | {cell(t.get('target', ''))} | "
                     f"{fmt_num(t.get('measured'))} | {cell(t.get('required', ''))} | {met} | {cell(t.get('note', ''))} |")
        for issue in sorted({str(t.get("issue", "")) for _, t in rows}, key=lambda i: (i != "11", i)):
            sel = [t for _, t in rows if str(t.get("issue", "")) == issue]
            L += ["", f"Issue {issue or '?'}: {sum(1 for t in sel if t.get('met'))} of {len(sel)} targets met."]
    else:
        L.append("No part reported targets.")
    for name in absent:
        L += ["", f"**Part `{name}` is absent**: it did not run or wrote no bench/out/{name.split()[0]}.json, "
              "so its figures and targets are missing from this report."]
    for p in parts:
        title = p.get("title") or PART_TITLES.get(p["part"], p["part"])
        L += ["", f"## {title}", ""]
        if p["_md"].strip():
            L.append(p["_md"].strip())
        if p.get("settings"):
            L += ["", "Settings:", ""] + [f"- {cell(k)}: {cell(v)}" for k, v in p["settings"].items()]
        figs = p.get("figures", [])
        if figs:
            L += ["", f"<details><summary>Raw figures ({p['part']}, {len(figs)})</summary>", "",
                  "| name | value | unit | details |", "|---|---|---|---|"]
            for f in figs:
                extra = ", ".join(f"{k}={v}" for k, v in f.items() if k not in ("name", "value", "unit"))
                L.append(f"| {cell(f.get('name', ''))} | {fmt_num(f.get('value'))} | {cell(f.get('unit', ''))} | "
                         f"{cell(extra)} |")
            L += ["", "</details>"]
    L.append("")
    return "\n".join(L)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(HERE, "out"))
    ap.add_argument("--report", default=os.path.join(HERE, "REPORT.md"))
    ap.add_argument("--parts", default=",".join(KNOWN_PARTS))
    a = ap.parse_args()
    wanted = [p for p in a.parts.split(",") if p]
    OUT_DIR_FOR_WARNINGS.append(a.out_dir)
    parts, absent = load_parts(a.out_dir, wanted)
    text = render(machine(a.out_dir), parts, absent)
    tmp = a.report + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    shutil.move(tmp, a.report)
    print(f"report.py: wrote {a.report} ({len(parts)} part(s), absent: {', '.join(absent) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
