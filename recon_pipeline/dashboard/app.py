"""The dashboard's web app (Starlette, server-rendered Jinja templates, inline SVG charts).

It reads only the published mart, through a fresh read-only connection per request, so a
new publication (swapped in with os.replace) shows on the next page load and the dashboard
never blocks the pipeline. The one thing it writes is a finance decision file into the
landing zone (see feedback.py).
"""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, unquote, urlencode, urlparse
from zoneinfo import ZoneInfo

import duckdb
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from recon_pipeline.as_of import cutoff_period, next_cutoff
from recon_pipeline.close.status import period_board
from recon_pipeline.dashboard import charts, feedback, formatting, queries
from recon_pipeline.dashboard.labels import (
    ALERT_LEVELS,
    ALERT_TYPES,
    DIFF_TYPES,
    GROUP_BY,
    MATCH_METHODS,
    METRICS,
    metric_display,
)
from recon_pipeline.dashboard.runbook import render_runbook, runbook_link
from recon_pipeline.dashboard.statement_page import statement_context
from recon_pipeline.money import format_yuan
from recon_pipeline.settings import PROJECT_ROOT, Settings, load_settings

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_COOKIE = "recon_dashboard_token"
DECIDED_BY_COOKIE = "recon_decided_by"
NAV = [
    ("/", "总览"),
    ("/health", "健康看板"),
    ("/alerts", "预警与差额清单"),
    ("/customers", "客户回款健康"),
    ("/review", "财务复核队列"),
]


@dataclass(frozen=True)
class DashboardConfig:
    published_path: Path
    landing_dir: Path | None = None
    token: str | None = None
    cutoff_hour: int = 16
    amount_tolerance: Decimal = Decimal("1.00")
    timezone: str = "Asia/Shanghai"
    trend_periods: int = 7
    trend_points: int = 30
    row_limit: int = 200
    runbook_path: Path = field(default_factory=lambda: PROJECT_ROOT / "docs" / "runbook.md")
    settings: Settings = field(default_factory=load_settings, repr=False, compare=False)

    @classmethod
    def from_settings(cls, published_path, landing_dir=None, token=None, settings: Settings | None = None):
        settings = settings or load_settings()
        section = settings.raw.get("dashboard") or {}
        runbook = section.get("runbook_path")
        return cls(
            published_path=Path(published_path),
            landing_dir=Path(landing_dir) if landing_dir else None,
            token=token or None,
            cutoff_hour=settings.cutoff_hour,
            amount_tolerance=settings.amount_tolerance,
            timezone=settings.timezone,
            trend_periods=int(section.get("trend_periods", 7)),
            trend_points=int(section.get("trend_points", 30)),
            row_limit=int(section.get("row_limit", 200)),
            runbook_path=(PROJECT_ROOT / runbook) if runbook else PROJECT_ROOT / "docs" / "runbook.md",
            settings=settings,
        )


class NotPublished(Exception):
    pass


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("recon_pipeline.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        yuan=formatting.yuan, wan=formatting.wan, percent=formatting.percent,
        number=formatting.number, ts=formatting.timestamp, cents=format_yuan,
    )
    env.globals.update(
        nav=NAV, ALERT_LEVELS=ALERT_LEVELS, ALERT_TYPES=ALERT_TYPES, DIFF_TYPES=DIFF_TYPES,
        GROUP_BY=GROUP_BY, MATCH_METHODS=MATCH_METHODS, METRICS=METRICS,
        metric_display=metric_display, runbook_link=runbook_link,
    )
    return env


def create_app(config: DashboardConfig) -> Starlette:
    env = _templates()

    @contextmanager
    def open_reader() -> Iterator[queries.MartReader]:
        if not config.published_path.is_file():
            raise NotPublished()
        conn = duckdb.connect(str(config.published_path), read_only=True)
        try:
            yield queries.MartReader(conn)
        finally:
            conn.close()

    def render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
        html = env.get_template(template).render(request=request, path=request.url.path, **context)
        return HTMLResponse(html, status_code=status_code)

    def page(template: str):
        """A GET page: open the publication, let `build` gather the context, render."""

        def decorator(build):
            def endpoint(request: Request) -> Response:
                try:
                    with open_reader() as reader:
                        as_of = queries.mart_as_of(reader)
                        context = build(request, reader, as_of)
                        if isinstance(context, Response):  # a download (XLSX)
                            return context
                        context.update(as_of=as_of, published_at=queries.published_at(reader))
                except NotPublished:
                    return render(request, "not_published.html", status_code=503, published_path=config.published_path)
                return render(request, template, status_code=context.pop("status_code", 200), **context)

            return endpoint

        return decorator

    def param(request: Request, name: str, default: str = "") -> str:
        return (request.query_params.get(name) or default).strip()[:100]

    @page("overview.html")
    def overview(request, reader, as_of):
        current = cutoff_period(as_of, config.cutoff_hour) if as_of else None
        period = param(request, "period", current or "")
        if not _is_period(period):
            period = current
        filters = queries.OrderFilters(
            region=param(request, "region"), industry=param(request, "industry"),
            salesperson=param(request, "salesperson"),
        )
        group_by = param(request, "group_by", "region")
        if group_by not in GROUP_BY:
            group_by = "region"
        if period is None:
            return {"period": None, "filters": filters, "group_by": group_by, "options": queries.filter_options(reader)}
        periods = formatting.trailing_periods(period, config.trend_periods)
        trend = queries.period_trend(reader, filters, periods, config.cutoff_hour)
        funnel = queries.lifecycle_funnel(reader, filters, periods, config.amount_tolerance)
        return {
            "period": period,
            "period_options": formatting.trailing_periods(current or period, 24)[::-1],
            "filters": filters,
            "group_by": group_by,
            "options": queries.filter_options(reader),
            "trend": trend,
            "current": trend[-1],
            "trend_chart": charts.grouped_bar_chart(
                [row["period"] for row in trend],
                [
                    ("签约金额", [row["signed"] for row in trend]),
                    ("确认收入", [row["recognized"] for row in trend]),
                    ("回款金额", [row["collected"] for row in trend]),
                ],
                title="近七期签约、确认与回款",
            ),
            "breakdown": queries.breakdown(reader, filters, group_by, period, config.cutoff_hour, config.row_limit),
            "funnel": funnel,
            "funnel_chart": charts.funnel_chart(funnel),
        }

    @page("health.html")
    def health(request, reader, as_of):
        metrics = queries.health_metrics(reader, config.trend_points)
        known = list(METRICS)
        metrics.sort(key=lambda m: (known.index(m["metric"]) if m["metric"] in known else len(known), m["metric"]))
        for metric in metrics:
            metric["sparkline"] = charts.sparkline(
                metric["trend"], threshold=metric["threshold"],
                color=charts.PALETTE[3] if metric["status"] == "red" else charts.PALETTE[2],
            )
        return {
            "metrics": metrics,
            "red_count": sum(1 for m in metrics if m["status"] == "red"),
            "hours_to_cutoff": queries.hours_to_cutoff(metrics, as_of, config.cutoff_hour),
            "cutoff_at": next_cutoff(as_of, config.cutoff_hour) if as_of else None,
            "at_risk": queries.orders_at_risk(reader, config.row_limit),
            "close_board": period_board(reader.conn, as_of, config.settings),
        }

    @page("alerts.html")
    def alerts(request, reader, as_of):
        filters = queries.AlertFilters(
            level=param(request, "level"), alert_type=param(request, "type"), owner=param(request, "owner")
        )
        diff_type = param(request, "diff_type")
        diff_owner = param(request, "diff_owner")
        return {
            "filters": filters,
            "options": queries.alert_options(reader),
            "alerts": queries.alerts(reader, filters, config.row_limit),
            "diff_type": diff_type,
            "diff_owner": diff_owner,
            "diff_owners": queries.filter_options(reader)["salesperson"],
            "diff": queries.diff_list(reader, diff_type, diff_owner, config.row_limit),
        }

    @page("customers.html")
    def customers(request, reader, as_of):
        only_high_risk = param(request, "scope", "high_risk") != "all"
        health_rows = queries.customer_health(reader, only_high_risk, config.row_limit)
        return {
            "only_high_risk": only_high_risk,
            "health": health_rows,
            "top_chart": charts.horizontal_bars(
                [(row["label"], row["value"]) for row in health_rows["top_outstanding"]]
            ),
        }

    @page("review.html")
    def review(request, reader, as_of):
        as_of_date = as_of.date() if as_of else None
        return {
            "queue": queries.review_queue(reader, config.row_limit),
            "made": feedback.decisions_pending(config.landing_dir, as_of_date),
            "landing_configured": config.landing_dir is not None,
            "decided_by": unquote(request.cookies.get(DECIDED_BY_COOKIE, "")),
            "notice": param(request, "notice"),
        }

    async def decide(request: Request) -> Response:
        if not _same_origin(request):
            return PlainTextResponse("拒绝跨站提交", status_code=403)
        form = await request.form()
        decision = feedback.MatchDecision(
            account_no=str(form.get("account_no", "")), txn_id=str(form.get("txn_id", "")),
            customer_id=str(form.get("customer_id", "")), order_id=str(form.get("order_id", "")),
            decision=str(form.get("decision", "")), decided_by=str(form.get("decided_by", "")),
        )
        if config.landing_dir is None:
            return PlainTextResponse("未配置落地目录（--landing），无法写入复核结果", status_code=400)
        try:
            decision = decision.validated()
            with open_reader() as reader:
                as_of = queries.mart_as_of(reader)
                if as_of is None:
                    raise feedback.InvalidDecision("发布的数据没有截止时间（as-of），无法确定写入日期")
                if not queries.is_suggested(reader, decision.account_no, decision.txn_id, decision.customer_id, decision.order_id):
                    raise feedback.InvalidDecision("该匹配建议已不在当前发布的数据中，请刷新页面")
            recorded_at = datetime.now(ZoneInfo(config.timezone)).replace(tzinfo=None, microsecond=0)
            feedback.write_decision(config.landing_dir, as_of, decision, recorded_at)
        except feedback.InvalidDecision as error:
            return PlainTextResponse(str(error), status_code=400)
        except NotPublished:
            return PlainTextResponse("尚未发布数据", status_code=503)
        verb = "确认" if decision.decision == "confirm" else "驳回"
        notice = f"已{verb}流水 {decision.txn_id}，下次对账运行后生效"
        response = RedirectResponse(f"/review?{urlencode({'notice': notice})}", status_code=303)
        # Cookies are latin-1: the (Chinese) name travels percent-encoded.
        response.set_cookie(DECIDED_BY_COOKIE, quote(decision.decided_by), max_age=3600 * 24 * 180, samesite="strict", httponly=True)
        return response

    @page("statement.html")
    def statement(request, reader, as_of):
        return statement_context(request, reader, as_of, config.settings)

    def runbook(request: Request) -> Response:
        return render(request, "runbook.html", content=render_runbook(config.runbook_path), as_of=None, published_at=None)

    routes = [
        Route("/", overview),
        Route("/health", health),
        Route("/alerts", alerts),
        Route("/customers", customers),
        Route("/review", review),
        Route("/review/decide", decide, methods=["POST"]),
        Route("/runbook", runbook),
        Route("/salespeople/{salesperson_id}/statement", statement),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes)
    if config.token:
        app.add_middleware(TokenMiddleware, token=config.token)
    return app


def _is_period(text: str | None) -> bool:
    return bool(text) and len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit() and 1 <= int(text[5:]) <= 12


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlparse(origin).netloc == request.headers.get("host")


class TokenMiddleware:
    """Optional access token: `?token=`, header `X-Recon-Token` or `Authorization: Bearer`.

    A valid `?token=` sets a same-site cookie so the links and forms of the pages work
    without carrying it.
    """

    def __init__(self, app, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        from_query = request.query_params.get("token")
        bearer = request.headers.get("authorization", "")
        offered = [
            from_query,
            request.headers.get("x-recon-token"),
            bearer[7:] if bearer.lower().startswith("bearer ") else None,
            request.cookies.get(TOKEN_COOKIE),
        ]
        if not any(value and secrets.compare_digest(value.encode(), self.token.encode()) for value in offered):
            response = HTMLResponse(
                "<!doctype html><html lang='zh-CN'><meta charset='utf-8'><link rel='icon' href='data:,'>"
                "<title>需要访问令牌</title><p>需要访问令牌：请在地址后加 ?token=… 或在请求头 X-Recon-Token 中提供。</p></html>",
                status_code=401,
            )
            return await response(scope, receive, send)
        if from_query and secrets.compare_digest(from_query.encode(), self.token.encode()):

            async def send_with_cookie(message):
                if message["type"] == "http.response.start":
                    cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
                await send(message)

            return await self.app(scope, receive, send_with_cookie)
        return await self.app(scope, receive, send)
