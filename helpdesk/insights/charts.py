"""Server-side SVG charts (no JavaScript, no CDN, no inline styles: CSP-safe presentation attributes).

Every chart is drawn next to a data table holding the same numbers; the SVG carries a <title>
and <desc> for screen readers.
"""
from __future__ import annotations

import itertools
import math
from html import escape

from markupsafe import Markup

#: Colours with at least 3:1 contrast against white, distinguishable in grey scale by dash pattern.
PALETTE = ["#1f5fa8", "#b3401b", "#2e7d32", "#6a3d9a", "#8a6d00", "#00727a", "#a0226e", "#4d4d4d"]
DASHES = ["", "6 3", "2 3", "8 3 2 3", "", "6 3", "2 3", "8 3 2 3"]
_ids = itertools.count(1)


def _nice_max(value: float) -> int:
    """Top of the y-axis: four whole, round grid steps (1 1.5 2 2.5 3 4 5 6 8 x 10^n) just covering `value`."""
    for power in range(0, 10):
        for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8):
            step = m * 10 ** power
            if step == int(step) and 4 * step >= value:
                return int(4 * step)
    return int(value)


def line_chart(title: str, labels: list[str], series: dict[str, list[float]], *, width: int = 720,
               height: int = 260, max_series: int = 8, y_label: str = "") -> Markup:
    """A multi-series line chart; labels along x, one polyline per series (top `max_series`)."""
    uid = next(_ids)
    items = list(series.items())[:max_series]
    # The legend column is as wide as its longest name at the print size (13 units, static/css/print.css),
    # so a long organisation name is printed whole instead of being cut at the chart's edge.
    longest = max((_em_width(str(name)[:18]) for name, _ in items), default=0)
    left, right, top, bottom = 44, max(150, 40 + int(13.5 * longest) + 6), 16, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max([max(v) if v else 0 for _, v in items] + [0]))
    n = max(len(labels), 1)
    x = (lambda i: left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2))
    y = (lambda v: top + plot_h - plot_h * (v / peak if peak else 0))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="chart-t{uid} chart-d{uid}" width="100%" preserveAspectRatio="xMinYMin meet">',
             f'<title id="chart-t{uid}">{escape(title)}</title>',
             f'<desc id="chart-d{uid}">{escape(_describe(labels, items))}</desc>',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    for k in range(5):
        value = peak * k / 4
        yy = y(value)
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="#d0d0d0" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11" fill="#333333">'
                     f'{value:g}</text>')
    # every k-th label, so that labels at the print size (13 units) never touch; the latest period always
    widest = max((len(label[5:] if len(label) == 10 else label) for label in labels), default=0) * 0.62 * 13 + 8
    every = max(1, n // 8, math.ceil(n * widest / plot_w))
    for i, label in enumerate(labels):
        if i == n - 1 or (i % every == 0 and n - 1 - i >= every):
            parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="10" '
                         f'fill="#333333">{escape(label[5:] if len(label) == 10 else label)}</text>')
    if y_label:
        parts.append(f'<text x="4" y="{top + 8}" font-size="10" fill="#333333">{escape(y_label)}</text>')
    for s, (name, values) in enumerate(items):
        colour, dash = PALETTE[s % len(PALETTE)], DASHES[s % len(DASHES)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.2"{dash_attr}/>')
        for i, v in enumerate(values):
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.6" fill="{colour}"/>')
        ly = top + 6 + s * 18
        parts.append(f'<line x1="{width - right + 12}" y1="{ly}" x2="{width - right + 36}" y2="{ly}" stroke="{colour}" '
                     f'stroke-width="3"{dash_attr}/>')
        parts.append(f'<text x="{width - right + 40}" y="{ly + 4}" font-size="11" fill="#222222">{escape(str(name)[:18])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(title: str, labels: list[str], values: list[float], *, width: int = 720, height: int = 240,
              highlight_from: int | None = None, marker_label: str = "") -> Markup:
    """A single-series bar chart; bars from `highlight_from` on are drawn in a second colour (after a fix)."""
    uid = next(_ids)
    left, right, top, bottom = 44, 12, 16, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(values), 1)
    peak = _nice_max(max(values + [0]))
    bar_w = plot_w / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="chart-t{uid} chart-d{uid}" width="100%" preserveAspectRatio="xMinYMin meet">',
             f'<title id="chart-t{uid}">{escape(title)}</title>',
             f'<desc id="chart-d{uid}">{escape(", ".join(f"{a}: {b:g}" for a, b in zip(labels, values)))}</desc>',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    for k in range(5):
        value = peak * k / 4
        yy = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="#d0d0d0" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11" fill="#333333">{value:g}</text>')
    every = max(1, n // 10)
    for i, (label, v) in enumerate(zip(labels, values)):
        h = plot_h * (v / peak if peak else 0)
        colour = PALETTE[2] if highlight_from is not None and i >= highlight_from else PALETTE[0]
        bx = left + i * bar_w + bar_w * 0.15
        parts.append(f'<rect x="{bx:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w * 0.7:.1f}" height="{h:.1f}" fill="{colour}"/>')
        if i % every == 0:
            parts.append(f'<text x="{bx + bar_w * 0.35:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="10" '
                         f'fill="#333333">{escape(label[5:] if len(label) == 10 else label)}</text>')
    if highlight_from is not None and 0 <= highlight_from <= n:
        mx = left + highlight_from * bar_w
        parts.append(f'<line x1="{mx:.1f}" y1="{top}" x2="{mx:.1f}" y2="{top + plot_h}" stroke="#222222" '
                     f'stroke-width="2" stroke-dasharray="4 3"/>')
        if marker_label:
            parts.append(f'<text x="{mx + 4:.1f}" y="{top + 10}" font-size="11" fill="#222222">{escape(marker_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _em_width(text: str) -> float:
    """Rough printed width of a text in ems: full-width (CJK, kana) characters 1, others 0.6."""
    import unicodedata

    return sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.6 for c in text)


def _describe(labels: list[str], items) -> str:
    if not labels:
        return "データなし"
    return "; ".join(f"{name}: 合計 {sum(values):g}" for name, values in items) + f" ({labels[0]}〜{labels[-1]})"


def sparkline(title: str, labels: list[str], values: list[float], *, width: int = 120, height: int = 28) -> Markup:
    """A small bar sparkline for a table cell; every bar carries its date and count as a tooltip."""
    uid = next(_ids)
    n = max(len(values), 1)
    peak = max(values + [1])
    bar_w = width / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-labelledby="spark-t{uid}">',
             f'<title id="spark-t{uid}">{escape(title)}: '
             f'{escape(", ".join(f"{a} {b:g}" for a, b in zip(labels, values)))}</title>',
             f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" stroke="#8a8a8a" stroke-width="1"/>']
    for i, (label, v) in enumerate(zip(labels, values)):
        h = (height - 2) * v / peak
        parts.append(f'<rect x="{i * bar_w + 1:.1f}" y="{height - 1 - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                     f'fill="{PALETTE[0]}"><title>{escape(label)}: {v:g}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))
