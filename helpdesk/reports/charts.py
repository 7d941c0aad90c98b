"""Small server-side SVG charts (no JS, no CDN); presentation attributes only, so the CSP holds."""
from __future__ import annotations

from markupsafe import Markup, escape

PALETTE = ["#1f5f99", "#d9822b", "#2e8540", "#7a4ea3", "#8a8f98"]


def hbar_stacked(title: str, rows: list[tuple[str, list[int]]], series: list[str], width: int = 640) -> Markup:
    """Horizontal stacked bars: rows = [(label, [value per series])]; a legend names the series."""
    label_w, bar_h, gap, top = 140, 22, 10, 34
    legend_h = 24
    height = top + len(rows) * (bar_h + gap) + legend_h + 10
    biggest = max([sum(v) for _, v in rows] + [1])
    scale = (width - label_w - 60) / biggest
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="100%" aria-labelledby="chart-title-{abs(hash(title))}">',
             f'<title id="chart-title-{abs(hash(title))}">{escape(title)}</title>',
             f'<text x="0" y="18" font-size="15" font-weight="bold" fill="#1a1a1a">{escape(title)}</text>']
    y = top
    for label, values in rows:
        parts.append(f'<text x="{label_w - 8}" y="{y + bar_h - 6}" font-size="13" text-anchor="end" '
                     f'fill="#1a1a1a">{escape(label)}</text>')
        x = label_w
        for i, value in enumerate(values):
            w = value * scale
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                             f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(series[i])}: {value}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + bar_h - 6}" font-size="13" fill="#1a1a1a">{sum(values)}</text>')
        y += bar_h + gap
    lx = label_w
    for i, name in enumerate(series):
        parts.append(f'<rect x="{lx}" y="{y + 4}" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>'
                     f'<text x="{lx + 16}" y="{y + 15}" font-size="12" fill="#1a1a1a">{escape(name)}</text>')
        lx += 16 + 14 * max(len(name), 3) // 2 + 24
    parts.append("</svg>")
    return Markup("".join(parts))


def pct_bars(title: str, rows: list[tuple[str, float | None]], target: float | None = None,
             width: int = 640) -> Markup:
    """Horizontal bars on a 0–100 % scale, with an optional target line."""
    label_w, bar_h, gap, top = 140, 20, 10, 34
    height = top + len(rows) * (bar_h + gap) + 10
    span = width - label_w - 70
    tid = f"chart-title-{abs(hash(title))}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" width="100%" '
             f'aria-labelledby="{tid}">', f'<title id="{tid}">{escape(title)}</title>',
             f'<text x="0" y="18" font-size="15" font-weight="bold" fill="#1a1a1a">{escape(title)}</text>']
    y = top
    for label, value in rows:
        parts.append(f'<text x="{label_w - 8}" y="{y + bar_h - 5}" font-size="13" text-anchor="end" '
                     f'fill="#1a1a1a">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{span}" height="{bar_h}" fill="#e6e8eb"/>')
        if value is not None:
            parts.append(f'<rect x="{label_w}" y="{y}" width="{span * value / 100:.1f}" height="{bar_h}" '
                         f'fill="{PALETTE[0]}"/>')
        parts.append(f'<text x="{label_w + span + 6}" y="{y + bar_h - 5}" font-size="13" fill="#1a1a1a">'
                     f'{"—" if value is None else f"{value:.1f}%"}</text>')
        y += bar_h + gap
    if target is not None:
        x = label_w + span * target / 100
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{y - gap + 4}" stroke="#b00020" '
                     f'stroke-width="2" stroke-dasharray="4 3"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
