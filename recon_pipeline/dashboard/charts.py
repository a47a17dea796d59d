"""Charts as ECharts options (the vendored static/vendor/echarts.min.js draws them, with tooltips).

Each function returns a placeholder `<div data-chart="...">` carrying the option as JSON (HTML-
escaped into the attribute, so a customer name can never become markup); static/charts.js
initializes them with the SVG renderer and formats tooltips and axes (`format`: yuan, wan,
percent, count), escaping every name it shows. Amounts become floats only here, for drawing;
the tables beside the charts show the exact figures.

Why ECharts rather than the hand-drawn SVG this replaced: Chinese finance users know its
look and its tooltips (hover a bar, read the exact figure and the series), it resizes with the
window and hides a series from the legend; the SVG had fixed geometry and only a <title>.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Sequence

from markupsafe import Markup, escape

PALETTE = ("#3b6fb6", "#e08a2c", "#3d9a5b", "#b5473d", "#7a5ea8", "#8c8c8c")


def _number(value) -> float | None:
    return None if value is None else float(value)


def chart(option: dict, *, format: str = "yuan", axis: str | None = None, size: str = "normal", label: str = "") -> Markup:
    spec = {"option": option, "format": format, "axis": axis or format}
    return Markup(
        f'<div class="echart echart-{escape(size)}" role="img" aria-label="{escape(label)}" '
        f'data-chart="{escape(json.dumps(spec, ensure_ascii=False))}"></div>'
    )


def trend_chart(trend: Sequence[dict]) -> Markup:
    """Signed / recognized / collected per period, grouped bars."""
    series = [("签约金额", "signed"), ("确认收入", "recognized"), ("回款金额", "collected")]
    option = {
        "color": list(PALETTE),
        "legend": {"top": 0},
        "grid": {"left": 90, "right": 16, "top": 36, "bottom": 30},
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "xAxis": {"type": "category", "data": [row["period"] for row in trend]},
        "yAxis": {"type": "value"},
        "series": [
            {"name": name, "type": "bar", "data": [_number(row[key]) for row in trend]} for name, key in series
        ],
    }
    return chart(option, format="yuan", axis="wan", label="近期签约、确认与回款")


def funnel_chart(steps: Sequence[dict]) -> Markup:
    """Orders reaching each lifecycle step (count), with the amount in the tooltip."""
    option = {
        "color": list(PALETTE),
        "tooltip": {"trigger": "item"},
        "series": [{
            "type": "funnel", "sort": "none", "left": "10%", "width": "80%", "minSize": "8%", "gap": 2,
            "label": {"show": True, "position": "inside"},
            "data": [{"name": s["label"], "value": s["reached_count"], "amount": _number(s["reached_amount"])} for s in steps],
        }],
    }
    return chart(option, format="funnel", label="订单生命周期漏斗")


def horizontal_bars(items: Sequence[tuple[str, Decimal]], title: str = "") -> Markup:
    """Labelled horizontal bars (e.g. outstanding amount per customer), largest on top."""
    if not items:
        return Markup('<p class="muted">暂无数据</p>')
    ordered = list(items)[::-1]
    option = {
        "color": [PALETTE[3]],
        "grid": {"left": 220, "right": 40, "top": 8, "bottom": 24},
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "xAxis": {"type": "value"},
        "yAxis": {"type": "category", "data": [label for label, _ in ordered], "axisLabel": {"width": 200, "overflow": "truncate"}},
        "series": [{"name": title or "金额", "type": "bar", "data": [_number(value) for _, value in ordered]}],
    }
    return chart(option, format="yuan", axis="wan", label=title)


def sparkline(values: Sequence, threshold=None, red: bool = False) -> Markup:
    """A small trend line (oldest first) with the threshold as a dashed line."""
    points = [_number(v) for v in values]
    if not any(p is not None for p in points):
        return Markup('<span class="muted">无趋势数据</span>')
    line = {"type": "line", "data": points, "symbol": "none", "lineStyle": {"width": 2}, "name": "数值"}
    if threshold is not None:
        line["markLine"] = {"symbol": "none", "silent": True, "label": {"show": False},
                            "lineStyle": {"type": "dashed", "color": PALETTE[3]}, "data": [{"yAxis": float(threshold)}]}
    option = {
        "color": [PALETTE[3] if red else PALETTE[2]],
        "grid": {"left": 2, "right": 2, "top": 4, "bottom": 4},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "show": False, "data": list(range(1, len(points) + 1))},
        "yAxis": {"type": "value", "show": False, "scale": True},
        "series": [line],
    }
    return chart(option, format="number", size="spark", label="趋势")
