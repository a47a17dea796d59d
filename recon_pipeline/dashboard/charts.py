"""Server-rendered inline SVG charts: no JavaScript library, nothing fetched from outside.

Amounts arrive as Decimal; they become floats only for pixel geometry. Each mark carries a
<title> so hovering shows the exact figure.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable, Sequence

from markupsafe import Markup, escape

from recon_pipeline.dashboard.formatting import wan, yuan

PALETTE = ("#3b6fb6", "#e08a2c", "#3d9a5b", "#b5473d", "#7a5ea8", "#8c8c8c")


def _nice_ceiling(value: float) -> float:
    """A round axis maximum (1, 2, 2.5, 5 x 10^n) at or above value."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def grouped_bar_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal | None]]],
    *,
    width: int = 760,
    height: int = 280,
    axis_label: Callable = wan,
    title: str = "",
) -> Markup:
    """Bars per category, one per series, with a legend and a y axis in 万元."""
    left, right, top, bottom = 86, 12, 34, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [float(v or 0) for _, vals in series for v in vals]
    y_max = _nice_ceiling(max(values + [0.0]))
    group_w = plot_w / max(len(categories), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in range(5):
        y_value = y_max * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        label = axis_label(Decimal(str(round(y_value, 2))))
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{escape(label)}</text>')
    for index, category in enumerate(categories):
        group_x = left + group_w * index + group_w * 0.1
        for s_index, (name, vals) in enumerate(series):
            value = vals[index]
            bar_h = plot_h * float(value or 0) / y_max
            x = group_x + bar_w * s_index
            y = top + plot_h - bar_h
            color = PALETTE[s_index % len(PALETTE)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.92:.1f}" height="{bar_h:.1f}" fill="{color}">'
                f"<title>{escape(category)} {escape(name)}：{escape(yuan(value or 0))}</title></rect>"
            )
        parts.append(
            f'<text x="{left + group_w * (index + 0.5):.1f}" y="{height - bottom + 18}" class="axis" '
            f'text-anchor="middle">{escape(category)}</text>'
        )
    legend_x = left
    for s_index, (name, _) in enumerate(series):
        color = PALETTE[s_index % len(PALETTE)]
        parts.append(f'<rect x="{legend_x}" y="10" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{legend_x + 16}" y="20" class="legend">{escape(name)}</text>')
        legend_x += 28 + 14 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(
    values: Sequence[Decimal | float | None],
    *,
    threshold: Decimal | float | None = None,
    width: int = 180,
    height: int = 44,
    color: str = PALETTE[0],
) -> Markup:
    """A small trend line (oldest first) with the threshold as a dashed line."""
    points = [float(v) for v in values if v is not None]
    if not points:
        return Markup('<span class="muted">无趋势数据</span>')
    scale_values = points + ([float(threshold)] if threshold is not None else [])
    low, high = min(scale_values), max(scale_values)
    span = (high - low) or 1.0
    pad = 4

    def y_of(value: float) -> float:
        return pad + (height - 2 * pad) * (1 - (value - low) / span)

    step = (width - 2 * pad) / max(len(points) - 1, 1)
    coords = " ".join(f"{pad + step * i:.1f},{y_of(v):.1f}" for i, v in enumerate(points))
    parts = [f'<svg class="sparkline" viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">']
    if threshold is not None:
        y = y_of(float(threshold))
        parts.append(f'<line x1="0" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" class="threshold"><title>阈值 {escape(str(threshold))}</title></line>')
    parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
    last_x = pad + step * (len(points) - 1)
    parts.append(f'<circle cx="{last_x:.1f}" cy="{y_of(points[-1]):.1f}" r="3" fill="{color}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def funnel_chart(steps: Sequence[dict], *, width: int = 760, row_height: int = 40) -> Markup:
    """Lifecycle funnel: one bar per step, width by orders that reached it."""
    left = 120
    top_count = max([step["reached_count"] for step in steps] + [1])
    height = row_height * len(steps) + 8
    parts = [f'<svg class="chart funnel" viewBox="0 0 {width} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">']
    plot_w = width - left - 250
    for index, step in enumerate(steps):
        bar_w = max(plot_w * step["reached_count"] / top_count, 2)
        x = left + (plot_w - bar_w) / 2
        y = 4 + row_height * index
        color = PALETTE[index % len(PALETTE)]
        parts.append(f'<text x="{left - 8}" y="{y + row_height / 2 + 4:.1f}" class="axis" text-anchor="end">{escape(step["label"])}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{bar_w:.1f}" height="{row_height - 8}" fill="{color}" rx="3">'
            f'<title>{escape(step["label"])}：{step["reached_count"]} 单，{escape(yuan(step["reached_amount"]))}</title></rect>'
        )
        parts.append(
            f'<text x="{left + plot_w + 10}" y="{y + row_height / 2 + 4:.1f}" class="legend">'
            f'{step["reached_count"]} 单 · {escape(wan(step["reached_amount"]))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bars(items: Sequence[tuple[str, Decimal]], *, width: int = 760, row_height: int = 26) -> Markup:
    """Labelled horizontal bars (e.g. outstanding amount per customer)."""
    if not items:
        return Markup('<p class="muted">暂无数据</p>')
    left = 230
    top_value = max(float(value or 0) for _, value in items) or 1.0
    height = row_height * len(items) + 6
    plot_w = width - left - 130
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">']
    for index, (label, value) in enumerate(items):
        y = 3 + row_height * index
        bar_w = max(plot_w * float(value or 0) / top_value, 1)
        parts.append(f'<text x="{left - 8}" y="{y + row_height / 2 + 4:.1f}" class="axis" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{bar_w:.1f}" height="{row_height - 8}" fill="{PALETTE[3]}"><title>{escape(label)}：{escape(yuan(value))}</title></rect>')
        parts.append(f'<text x="{left + bar_w + 6:.1f}" y="{y + row_height / 2 + 4:.1f}" class="legend">{escape(wan(value))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
