"""Small inline-SVG charts for the HTML report: line charts and a heatmap, no script, no external file.

Pure functions from numbers to SVG text, so the report opens offline and a
test can check what is drawn.

>>> svg = line_chart({"psi": [(0, 0.1), (60_000, 0.3)]}, title="drift", threshold=0.2)
>>> svg.startswith("<svg") and "polyline" in svg and "drift" in svg
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

__all__ = ["heatmap", "interval_chart", "line_chart"]

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 28, 34
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f", "#64748b")


def _clock(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M")


def _finite(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(x, y) for x, y in points if y is not None and math.isfinite(y)]


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    bands: Sequence[tuple[float, float, str]] = (),
    y_label: str = "",
) -> str:
    """Lines over time (x: epoch ms), a dashed threshold line, and shaded time ``bands`` (start, end, label)."""
    clean = {name: _finite(points) for name, points in series.items()}
    xs = [x for points in clean.values() for x, _ in points]
    ys = [y for points in clean.values() for _, y in points] + ([threshold] if threshold is not None else [])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="18" class="chart-title">{escape(title)}</text>',
    ]
    if not xs:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT // 2}" class="empty">no data</text></svg>')
        return "".join(parts)
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(0.0, min(ys)), max(ys) * 1.1 if max(ys) > 0 else 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - (y - y0) / (y1 - y0) * plot_h

    for start, end, label in bands:
        a, b = max(px(start), LEFT), min(px(end), LEFT + plot_w)
        if b > a:
            parts.append(
                f'<rect x="{a:.1f}" y="{TOP}" width="{b - a:.1f}" height="{plot_h}" class="band">'
                f"<title>{escape(label)}</title></rect>"
            )
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="frame"/>')
    for i in range(5):
        value = y0 + (y1 - y0) * i / 4
        parts.append(f'<text x="{LEFT - 6}" y="{py(value) + 4:.1f}" class="tick" text-anchor="end">{value:.3g}</text>')
    for i in range(5):
        at = x0 + (x1 - x0) * i / 4
        parts.append(f'<text x="{px(at):.1f}" y="{HEIGHT - 14}" class="tick" text-anchor="middle">{_clock(at)}</text>')
    if y_label:
        parts.append(f'<text x="12" y="{TOP - 8}" class="tick">{escape(y_label)}</text>')
    if threshold is not None:
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py(threshold):.1f}" y2="{py(threshold):.1f}" '
            f'class="threshold"/><text x="{LEFT + plot_w + 6}" y="{py(threshold) + 4:.1f}" class="tick">'
            f"{escape(threshold_label)} {threshold:.3g}</text>"
        )
    for i, (name, points) in enumerate(sorted(clean.items())):
        color = PALETTE[i % len(PALETTE)]
        if points:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(points))
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        key_x, key_y = WIDTH - RIGHT + 40, TOP + 16 * i
        parts.append(f'<rect x="{key_x}" y="{key_y - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{key_x + 14}" y="{key_y}" class="tick">{escape(name[:16])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def interval_chart(
    estimates: Mapping[str, Sequence[tuple[float, float, float | None, float | None]]],
    realized: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
) -> str:
    """Estimates over time (x: epoch ms) as lines inside their shaded band, ``(x, estimate, lower, upper)`` each, and
    the realized figures of the same names as dots in the same colour: a dot outside its band is an estimate missed.
    """
    lines = {name: _finite([(x, y) for x, y, _, _ in points]) for name, points in estimates.items()}
    bands = {
        name: [(x, lo, hi) for x, _, lo, hi in points if lo is not None and hi is not None and math.isfinite(lo + hi)]
        for name, points in estimates.items()
    }
    dots = {name: _finite(points) for name, points in realized.items()}
    xs = [x for group in (lines, dots) for points in group.values() for x, _ in points]
    ys = [y for group in (lines, dots) for points in group.values() for _, y in points]
    ys += [y for band in bands.values() for _, lo, hi in band for y in (lo, hi)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="18" class="chart-title">{escape(title)}</text>',
    ]
    if not xs:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT // 2}" class="empty">no data</text></svg>')
        return "".join(parts)
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(0.0, min(ys)), (1.0 if max(ys) <= 1.0 else max(ys) * 1.1) if max(ys) > 0 else 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - (y - y0) / (y1 - y0) * plot_h

    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="frame"/>')
    for i in range(5):
        value = y0 + (y1 - y0) * i / 4
        parts.append(f'<text x="{LEFT - 6}" y="{py(value) + 4:.1f}" class="tick" text-anchor="end">{value:.3g}</text>')
    for i in range(5):
        at = x0 + (x1 - x0) * i / 4
        parts.append(f'<text x="{px(at):.1f}" y="{HEIGHT - 14}" class="tick" text-anchor="middle">{_clock(at)}</text>')
    key = 0
    for i, name in enumerate(sorted({*estimates, *realized})):
        color = PALETTE[i % len(PALETTE)]
        band = sorted(bands.get(name, []))
        if band:
            upper = [f"{px(x):.1f},{py(hi):.1f}" for x, _, hi in band]
            lower = [f"{px(x):.1f},{py(lo):.1f}" for x, lo, _ in reversed(band)]
            parts.append(
                f'<polygon points="{" ".join(upper + lower)}" fill="{color}" fill-opacity="0.18" stroke="none">'
                f"<title>{escape(name)}: bounds of the estimate</title></polygon>"
            )
        if lines.get(name):
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(lines[name]))
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in sorted(dots.get(name, [])):
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}" stroke="#fff">'
                f"<title>{escape(name)} realized {_clock(x)}: {y:.3g}</title></circle>"
            )
        for label, present in (("est.", name in lines), ("realized", name in dots)):
            if present:
                key_x, key_y = WIDTH - RIGHT + 40, TOP + 16 * key
                shape = (
                    f'<rect x="{key_x}" y="{key_y - 9}" width="10" height="10" fill="{color}"/>'
                    if label == "est."
                    else f'<circle cx="{key_x + 5}" cy="{key_y - 4}" r="4" fill="{color}"/>'
                )
                parts.append(
                    f'{shape}<text x="{key_x + 14}" y="{key_y}" class="tick">{escape(name[:10])} {label}</text>'
                )
                key += 1
    parts.append("</svg>")
    return "".join(parts)


def heatmap(rows: Mapping[str, Mapping[int, float]], *, title: str, scale_max: float = 1.0) -> str:
    """One row per name, one cell per time (epoch ms), coloured by value from 0 to ``scale_max``."""
    times = sorted({t for cells in rows.values() for t in cells})
    names = sorted(rows)
    cell_h = 18
    height = TOP + cell_h * max(1, len(names)) + BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img">',
        f'<title>{escape(title)}</title><text x="{LEFT}" y="18" class="chart-title">{escape(title)}</text>',
    ]
    if not times:
        parts.append(f'<text x="{LEFT}" y="{TOP + 14}" class="empty">no data</text></svg>')
        return "".join(parts)
    left = 130
    cell_w = (WIDTH - left - 20) / len(times)
    for r, name in enumerate(names):
        y = TOP + r * cell_h
        parts.append(f'<text x="{left - 6}" y="{y + 13}" class="tick" text-anchor="end">{escape(name[:20])}</text>')
        for c, at in enumerate(times):
            value = rows[name].get(at)
            if value is None or not math.isfinite(value):
                continue
            share = min(1.0, max(0.0, value / scale_max))
            color = f"rgb({int(255 - 35 * share)},{int(255 - 200 * share)},{int(255 - 210 * share)})"
            parts.append(
                f'<rect x="{left + c * cell_w:.1f}" y="{y}" width="{cell_w + 0.5:.1f}" height="{cell_h - 2}" '
                f'fill="{color}"><title>{escape(name)} {_clock(at)}: {value:.3g}</title></rect>'
            )
    for i in range(0, len(times), max(1, len(times) // 6)):
        parts.append(f'<text x="{left + i * cell_w:.1f}" y="{height - 12}" class="tick">{_clock(times[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)
