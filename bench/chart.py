"""Minimal SVG charts for the benchmark report (Python 3.11 standard library only).

    from chart import bar_chart, line_chart   # with bench/ on sys.path

    bar_chart("bench/charts/x.svg", "Issue TPS", ["1 client", "8 clients"],
              {"extension": [900.0, 2400.0], "floor": [950.0, 2500.0]}, "tx/s")
    line_chart("bench/charts/y.svg", "Redeem latency", [1e4, 1e6, 1e7],
               {"extension": [0.4, 0.5, 0.7]}, "outstanding tokens", "ms", log_x=True)

Both write a self-contained SVG file (parent directories are created) and return the path.
Values that are None or NaN are skipped (a gap in the chart, "n/a" as a bar label).
"""

from __future__ import annotations

import math
import os
from xml.sax.saxutils import escape

# Colour-blind friendly palette (Okabe-Ito), cycled per series.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]

WIDTH, HEIGHT = 760, 420
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 80, 20, 50, 90
FONT = "font-family='DejaVu Sans, Arial, sans-serif'"


def _ok(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def fmt_value(v: float) -> str:
    """Short human label: 12345 -> '12.3k', 0.0123 -> '0.0123'."""
    if not _ok(v):
        return "n/a"
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.3g}G"
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(t, 12))
        t += step
    return ticks


class _Svg:
    def __init__(self, title: str):
        self.parts = [
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
            f"viewBox='0 0 {WIDTH} {HEIGHT}' {FONT} font-size='12'>",
            f"<rect width='{WIDTH}' height='{HEIGHT}' fill='white'/>",
        ]
        self.text(WIDTH / 2, 24, title, size=16, anchor="middle", weight="bold")

    def text(self, x, y, s, size=12, anchor="start", weight="normal", rotate=None, fill="#222"):
        tr = f" transform='rotate({rotate} {x:.1f} {y:.1f})'" if rotate is not None else ""
        self.parts.append(
            f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' "
            f"font-weight='{weight}' fill='{fill}'{tr}>{escape(str(s))}</text>"
        )

    def line(self, x1, y1, x2, y2, stroke="#999", width=1, dash=None):
        d = f" stroke-dasharray='{dash}'" if dash else ""
        self.parts.append(
            f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' "
            f"stroke='{stroke}' stroke-width='{width}'{d}/>"
        )

    def rect(self, x, y, w, h, fill, tooltip=None):
        t = f"<title>{escape(tooltip)}</title>" if tooltip else ""
        self.parts.append(
            f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(w, 0):.1f}' height='{max(h, 0):.1f}' fill='{fill}'>{t}</rect>"
        )

    def raw(self, s):
        self.parts.append(s)

    def legend(self, names: list[str]):
        x, y = MARGIN_LEFT, HEIGHT - 22
        for i, name in enumerate(names):
            self.rect(x, y - 10, 12, 12, PALETTE[i % len(PALETTE)])
            self.text(x + 16, y, name)
            x += 26 + 7 * len(name)

    def save(self, path: str) -> str:
        self.parts.append("</svg>\n")
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(self.parts))
        return path


def _y_axis(svg: _Svg, ticks: list[float], to_y, label: str):
    x0, x1 = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    for t in ticks:
        y = to_y(t)
        svg.line(x0, y, x1, y, stroke="#e3e3e3")
        svg.text(x0 - 6, y + 4, fmt_value(t), anchor="end")
    svg.line(x0, MARGIN_TOP, x0, HEIGHT - MARGIN_BOTTOM, stroke="#444")
    svg.text(18, (MARGIN_TOP + HEIGHT - MARGIN_BOTTOM) / 2, label, anchor="middle", rotate=-90)


def bar_chart(path: str, title: str, categories: list[str], series: dict[str, list[float]], unit: str) -> str:
    """Grouped bar chart: one group per category, one bar per series, value printed above each bar."""
    svg = _Svg(title)
    values = [v for vs in series.values() for v in vs if _ok(v)]
    top = max(values) if values else 1.0
    ticks = nice_ticks(0.0, top * 1.08 if top > 0 else 1.0)
    ymax = ticks[-1]
    plot_top, plot_bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def to_y(v):
        return plot_bottom - (v / ymax) * (plot_bottom - plot_top)

    _y_axis(svg, ticks, to_y, unit)
    names = list(series)
    n_cat = max(len(categories), 1)
    group_w = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / n_cat
    bar_w = min(60.0, group_w * 0.8 / max(len(names), 1))
    for ci, cat in enumerate(categories):
        gx = MARGIN_LEFT + ci * group_w + (group_w - bar_w * len(names)) / 2
        for si, name in enumerate(names):
            vs = series[name]
            v = vs[ci] if ci < len(vs) else None
            x = gx + si * bar_w
            if _ok(v):
                y = to_y(max(v, 0.0))
                svg.rect(x + 1, y, bar_w - 2, plot_bottom - y, PALETTE[si % len(PALETTE)],
                         tooltip=f"{name}, {cat}: {v:g} {unit}")
            else:
                y = plot_bottom
            svg.text(x + bar_w / 2, y - 4, fmt_value(v), size=10, anchor="middle")
        svg.text(MARGIN_LEFT + (ci + 0.5) * group_w, plot_bottom + 18, cat, anchor="middle")
    svg.line(MARGIN_LEFT, plot_bottom, WIDTH - MARGIN_RIGHT, plot_bottom, stroke="#444")
    svg.legend(names)
    return svg.save(path)


def line_chart(path: str, title: str, xs: list[float], series: dict[str, list[float]],
               x_label: str, y_label: str, log_x: bool = False) -> str:
    """Line chart with markers; x on a log10 scale when log_x (all xs must then be > 0)."""
    svg = _Svg(title)
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: float(v))
    xs_t = [fx(x) for x in xs]
    xlo, xhi = (min(xs_t), max(xs_t)) if xs_t else (0.0, 1.0)
    if xhi == xlo:
        xlo, xhi = xlo - 0.5, xhi + 0.5
    pad = (xhi - xlo) * 0.05
    xlo, xhi = xlo - pad, xhi + pad
    values = [v for vs in series.values() for v in vs if _ok(v)]
    top = max(values) if values else 1.0
    ticks = nice_ticks(0.0, top * 1.1 if top > 0 else 1.0)
    ymax = ticks[-1]
    plot_left, plot_right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    plot_top, plot_bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def to_x(t):
        return plot_left + (t - xlo) / (xhi - xlo) * (plot_right - plot_left)

    def to_y(v):
        return plot_bottom - (v / ymax) * (plot_bottom - plot_top)

    _y_axis(svg, ticks, to_y, y_label)
    svg.line(plot_left, plot_bottom, plot_right, plot_bottom, stroke="#444")
    for x, t in zip(xs, xs_t):
        px = to_x(t)
        svg.line(px, plot_bottom, px, plot_bottom + 4, stroke="#444")
        svg.text(px, plot_bottom + 18, fmt_value(x), anchor="middle")
    svg.text((plot_left + plot_right) / 2, plot_bottom + 40,
             x_label + (" (log scale)" if log_x else ""), anchor="middle")
    names = list(series)
    for si, name in enumerate(names):
        colour = PALETTE[si % len(PALETTE)]
        pts = [(to_x(t), to_y(v)) for t, v in zip(xs_t, series[name]) if _ok(v)]
        if len(pts) > 1:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            svg.raw(f"<polyline points='{d}' fill='none' stroke='{colour}' stroke-width='2'/>")
        for (x, y), v in zip(pts, [v for v in series[name] if _ok(v)]):
            svg.raw(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3.5' fill='{colour}'><title>{escape(name)}: {v:g}</title></circle>")
            svg.text(x + 5, y - 6, fmt_value(v), size=10)
    svg.legend(names)
    return svg.save(path)


if __name__ == "__main__":  # quick visual check: python3 bench/chart.py /tmp/charts
    import sys

    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench-chart-demo"
    print(bar_chart(f"{out}/bars.svg", "Demo TPS", ["1 client", "8 clients"],
                    {"extension": [1200, 3400], "floor": [1300, 3600], "plpgsql": [800, None]}, "tx/s"))
    print(line_chart(f"{out}/lines.svg", "Demo latency", [1e4, 1e6, 1e7],
                     {"extension": [0.4, 0.5, 0.7], "floor": [0.3, 0.35, 0.6]},
                     "outstanding tokens", "ms", log_x=True))
