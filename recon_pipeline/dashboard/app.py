"""The dashboard's web app (Starlette, server-rendered Jinja templates, ECharts from the package).

It reads only the published mart, through a fresh read-only connection per request, so a new
publication (swapped in with os.replace) shows on the next page load and the dashboard never
blocks the pipeline. What it writes are landing records (review decisions, alert actions; see
landing.py), which the next run ingests.

Who gets in (access.py): with `dashboard.accounts` in the settings, everyone logs in (argon2
password hashes, a signed session cookie) and sees their role's scope; without accounts, one
access token (`--token`) or, on localhost only, nobody: the single-user mode. Every POST is
CSRF-protected (asgi-csrf's double-submit cookie, checked also without cookies) and must come
from the dashboard's own origin; every page carries a strict Content-Security-Policy (scripts
only from /static), so text from the data can never run as script.
"""

from __future__ import annotations

import os
import secrets
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote, unquote, urlencode, urlparse

import duckdb
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from recon_pipeline.as_of import duration_text
from recon_pipeline.dashboard import export, formatting, labels, pages, queries, search
from recon_pipeline.dashboard.access import Account, LoginThrottle, Scope, accounts_from_settings, scope_for, verify_password
from recon_pipeline.dashboard.actions import HEALTH_BOARD, AlertAction, InvalidAction, write_action
from recon_pipeline.dashboard.feedback import InvalidDecision, MatchDecision, write_decision
from recon_pipeline.dashboard.landing import UnsafePath, business_now
from recon_pipeline.dashboard.runbook import runbook_link
from recon_pipeline.dashboard.tables import export_rows
from recon_pipeline.money import format_yuan
from recon_pipeline.settings import PROJECT_ROOT, Settings, load_settings

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_COOKIE = "recon_dashboard_token"
ACTOR_COOKIE = "recon_decided_by"
SESSION_COOKIE = "recon_session"
CSRF_COOKIE = "recon_csrf"
POST_PATHS = {"/login", "/logout", "/review/decide", "/actions"}
NAV = [
    ("/", "总览"),
    ("/orders", "订单"),
    ("/alerts", "预警"),
    ("/diff-list", "差额清单"),
    ("/health", "健康看板"),
    ("/customers", "客户"),
    ("/review", "复核队列"),
    ("/runbook", "处理手册"),
]
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
     b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
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
    region_names: dict = field(default_factory=lambda: dict(labels.REGION_NAMES))
    accounts: dict = field(default_factory=dict)  # username -> Account
    login_max_failures: int = 5  # wrong passwords per username or client address ...
    login_lockout_minutes: int = 15  # ... within this window lock that username or address for it
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now().replace(microsecond=0), repr=False)
    settings: Settings = field(default_factory=load_settings, repr=False, compare=False)

    @classmethod
    def from_settings(cls, published_path, landing_dir=None, token=None, settings: Settings | None = None):
        settings = settings or load_settings()
        section = settings.raw.get("dashboard") or {}
        runbook = section.get("runbook_path")
        secret = os.environ.get(section.get("session_secret_env", "RECON_DASHBOARD_SECRET") or "")
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
            region_names={**labels.REGION_NAMES, **(settings.raw.get("region_names") or {})},
            accounts=accounts_from_settings(section.get("accounts")),
            login_max_failures=int(section.get("login_max_failures", 5)),
            login_lockout_minutes=int(section.get("login_lockout_minutes", 15)),
            settings=settings,
            **({"secret": secret} if secret else {}),
        )

    @property
    def single_user(self) -> bool:
        return not self.accounts


class NotPublished(Exception):
    pass


# ---------------------------------------------------------------- templates


def cell(column, row: dict, view) -> Markup:
    """One table cell: the column's display (a name for a code) or its kind's format, linked
    where the column says; every value is escaped."""
    value = row.get(column.key)
    if column.display is not None:
        text = column.display(value)
    elif column.kind == "money":
        text = formatting.yuan(value) if value is not None else ""
    elif column.kind == "datetime":
        text = formatting.timestamp(value) if value is not None else ""
    elif column.kind in ("int", "score"):
        text = "" if value is None else str(value)
    elif column.kind == "percent":
        text = formatting.percent(value)
    else:
        text = "" if value is None else str(value)
    if column.key == "salesperson_name" and not value:
        text = view.person(row.get("salesperson_id")) or ""
    html = escape(text)
    if column.link and value is not None:
        href = column.link.format(**{k: quote(str(v if v is not None else ""), safe="") for k, v in row.items()})
        html = Markup(f'<a href="{escape(href)}">{html}</a>')
    return html


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("recon_pipeline.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        yuan=formatting.yuan, wan=formatting.wan, percent=formatting.percent,
        number=formatting.number, ts=formatting.timestamp,
        duration=lambda seconds: "—" if seconds is None else duration_text(float(seconds)),
        urlq=lambda v: quote(str(v if v is not None else ""), safe=""), cents=format_yuan,
    )
    env.globals.update(
        nav=NAV, ALERT_LEVELS=labels.ALERT_LEVELS, ALERT_TYPES=labels.ALERT_TYPES, DIFF_TYPES=labels.DIFF_TYPES,
        GROUP_BY=labels.GROUP_BY, MATCH_METHODS=labels.MATCH_METHODS, MATCH_STATUSES=labels.MATCH_STATUSES,
        METRICS=labels.METRICS, ORDER_STAGES=labels.ORDER_STAGES, ACTIONS=labels.ACTIONS,
        SLA_STEPS=labels.SLA_STEPS, SLA_STATUSES=labels.SLA_STATUSES, ITEM_CLASSES=labels.ITEM_CLASSES,
        INVOICE_TYPES=labels.INVOICE_TYPES, WRITEOFF_STATUSES=labels.WRITEOFF_STATUSES,
        REVIEW_STATUSES=labels.REVIEW_STATUSES, DECISIONS=labels.DECISIONS, ROLES=labels.ROLES,
        STATUS_FILTERS={"open": "未处理", "handled": "已处理", "all": "全部"},
        metric_display=labels.metric_display, threshold_display=labels.threshold_display,
        runbook_link=runbook_link, cell=cell, HEALTH_BOARD=HEALTH_BOARD,
    )
    return env


# ---------------------------------------------------------------- the app


def create_app(config: DashboardConfig) -> Starlette:
    env = _templates()

    publication = Publication(config.published_path)

    @contextmanager
    def open_reader() -> Iterator[queries.MartReader]:
        with publication.reader() as reader:
            yield reader

    def current_user(request: Request) -> Account | None:
        if config.single_user:
            return None
        return config.accounts.get(request.session.get("user", ""))

    def scope_of(reader: queries.MartReader, user: Account | None) -> Scope:
        if user is None or user.role != "manager" or not user.email or not reader.has("mart.dim_salespeople"):
            return scope_for(user)
        team: dict[str, set[str]] = {}
        for email, salesperson_id in reader.conn.execute(
            "SELECT lower(manager_email), salesperson_id FROM mart.dim_salespeople WHERE manager_email IS NOT NULL"
        ).fetchall():
            team.setdefault(email, set()).add(salesperson_id)
        return scope_for(user, team)

    def render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
        token = request.scope.get("csrftoken")
        html = env.get_template(template).render(
            request=request, path=request.url.path, user=current_user(request), config=config,
            csrf=token() if callable(token) else "", actor=unquote(request.cookies.get(ACTOR_COOKIE, "")),
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def message(request: Request, text: str, status_code: int) -> HTMLResponse:
        return render(request, "message.html", status_code=status_code, text=text, as_of=None, published_at=None)

    def page(template: str, builder, roles: tuple[str, ...] | None = None):
        """A GET page: open the publication, build the View, let the builder fill the context."""

        def endpoint(request: Request) -> Response:
            user = current_user(request)
            if roles and user is not None and user.role not in roles:
                return message(request, "您的角色无权查看此页面", 403)
            try:
                with open_reader() as reader:
                    as_of = queries.mart_as_of(reader)
                    view = pages.View(request, reader, as_of, config, user, scope_of(reader, user),
                                      salesperson_names_of(reader), reader.memo)
                    try:
                        context = builder(view, **request.path_params)
                    except pages.Export as wanted:
                        return exported(reader, wanted, request, as_of)
                    except pages.Workbook as wanted:
                        return workbook(wanted, as_of)
                    if isinstance(context, Response):  # a download built by the page itself
                        return context
                    context.update(as_of=as_of, published_at=queries.published_at(reader), view=view)
                    response = render(request, template, status_code=context.pop("status_code", 200), **context)
                    if pages.LEARNED_PAYER_NAMES not in reader.memo:
                        # A whole-bank scan the first name search needs: done once the page is sent.
                        response.background = BackgroundTask(
                            publication.warm, pages.LEARNED_PAYER_NAMES, search.learned_payer_names)
                    return response
            except NotPublished:
                return render(request, "not_published.html", status_code=503, published_path=config.published_path,
                              as_of=None, published_at=None)
            except pages.NotFound as missing:
                return message(request, str(missing), 404)

        return endpoint

    def exported(reader: queries.MartReader, wanted: pages.Export, request: Request, as_of: datetime | None) -> Response:
        """The whole table with the page's filters and order, as XLSX or CSV."""
        columns = wanted.table.export_columns
        headers = [c.header for c in columns]
        rows = export_rows(reader, wanted.table, request.query_params)
        stamp = as_of.strftime("%Y-%m-%d") if as_of else "未发布"
        if wanted.fmt == "csv":
            body, media, suffix = export.csv_bytes(headers, rows), export.CSV_MEDIA_TYPE, "csv"
        else:
            kinds = [c.kind if c.display is None else "text" for c in columns]
            body, media, suffix = export.xlsx_bytes(wanted.table.title, headers, kinds, rows), export.XLSX_MEDIA_TYPE, "xlsx"
        return Response(body, media_type=media, headers={
            "content-disposition": export.content_disposition(f"{wanted.table.title}-{stamp}.{suffix}")})

    def workbook(wanted: pages.Workbook, as_of: datetime | None) -> Response:
        """A page's tables as the sheets of one XLSX (workbooks.py)."""
        sheets = [(sheet.name, [c.header for c in sheet.columns],
                   [c.kind if c.display is None else "text" for c in sheet.columns], sheet.values())
                  for sheet in wanted.sheets]
        stamp = as_of.strftime("%Y-%m-%d") if as_of else "未发布"
        return Response(export.xlsx_book(sheets), media_type=export.XLSX_MEDIA_TYPE, headers={
            "content-disposition": export.content_disposition(f"{wanted.title}-{stamp}.xlsx")})

    # ------------------------------------------------------------ forms (POST)

    def local_target(value: str, fallback: str) -> str:
        """Where to go after a form: a path of this dashboard only (no open redirect)."""
        value = (value or "").strip()
        if value.startswith("/") and not value.startswith("//") and "\\" not in value:
            return value
        return fallback

    def actor_of(request: Request, form) -> str:
        user = current_user(request)
        if user is not None:
            return f"{user.display_name}({user.username})" if user.name else user.username
        return str(form.get("acted_by", "") or form.get("decided_by", ""))

    def remember_actor(response: Response, request: Request, actor: str) -> Response:
        if config.single_user and actor:
            # Cookies are latin-1: the (Chinese) name travels percent-encoded.
            response.set_cookie(ACTOR_COOKIE, quote(actor), max_age=3600 * 24 * 180, samesite="strict", httponly=True)
        return response

    def with_notice(target: str, notice: str) -> str:
        path, _, query = target.partition("?")
        params = [p for p in query.split("&") if p and not p.startswith("notice=")]
        params.append(urlencode({"notice": notice}))
        return f"{path}?{'&'.join(params)}"

    async def decide(request: Request) -> Response:
        if not _same_origin(request):
            return PlainTextResponse("拒绝跨站提交", status_code=403)
        user = current_user(request)
        if user is not None and not user.is_finance:
            return PlainTextResponse("只有财务可以确认或驳回匹配建议", status_code=403)
        form = await request.form()
        decision = MatchDecision(
            account_no=str(form.get("account_no", "")), txn_id=str(form.get("txn_id", "")),
            customer_id=str(form.get("customer_id", "")), order_id=str(form.get("order_id", "")),
            decision=str(form.get("decision", "")), decided_by=actor_of(request, form),
        )
        if config.landing_dir is None:
            return PlainTextResponse("未配置落地目录（--landing），无法写入复核结果", status_code=400)
        try:
            decision = decision.validated()
            with open_reader() as reader:
                as_of = queries.mart_as_of(reader)
                if as_of is None:
                    raise InvalidDecision("发布的数据没有截止时间（as-of），无法确定写入日期")
                if decision.decision != "undo" and not queries.is_suggested(
                        reader, decision.account_no, decision.txn_id, decision.customer_id, decision.order_id):
                    raise InvalidDecision("该匹配建议已不在当前发布的数据中，请刷新页面")
            write_decision(config.landing_dir, as_of, decision, config.clock())
        except (InvalidDecision, UnsafePath) as error:
            return PlainTextResponse(str(error), status_code=400)
        except NotPublished:
            return PlainTextResponse("尚未发布数据", status_code=503)
        verb = labels.DECISIONS[decision.decision]
        notice = f"已{verb}流水 {decision.txn_id}，下次对账运行后生效"
        response = RedirectResponse(with_notice(local_target(str(form.get("next", "")), "/review"), notice), status_code=303)
        return remember_actor(response, request, decision.decided_by)

    async def act(request: Request) -> Response:
        if not _same_origin(request):
            return PlainTextResponse("拒绝跨站提交", status_code=403)
        form = await request.form()
        action = AlertAction(
            target_type=str(form.get("target_type", "")), target_id=str(form.get("target_id", "")),
            action=str(form.get("action", "")), acted_by=actor_of(request, form),
            assignee=str(form.get("assignee", "")), note=str(form.get("note", "")),
        )
        if config.landing_dir is None:
            return PlainTextResponse("未配置落地目录（--landing），无法记录处理动作", status_code=400)
        try:
            action = action.validated()
            with open_reader() as reader:
                as_of = queries.mart_as_of(reader)
                if as_of is None:
                    raise InvalidAction("发布的数据没有截止时间（as-of），无法确定写入日期")
                user = current_user(request)
                if not may_act(reader, user, scope_of(reader, user), action):
                    return PlainTextResponse("无权处理该项", status_code=403)
                published_at = queries.published_at(reader)
            now = config.clock()
            write_action(config.landing_dir, as_of.date(), action, business_now(as_of, published_at, now), now)
        except (InvalidAction, UnsafePath) as error:
            return PlainTextResponse(str(error), status_code=400)
        except NotPublished:
            return PlainTextResponse("尚未发布数据", status_code=503)
        notice = f"已记录：{labels.ACTIONS[action.action]}，下次对账运行后计入"
        fallback = {"alert": "/alerts", "diff": "/diff-list", "health": "/health"}[action.target_type]
        response = RedirectResponse(with_notice(local_target(str(form.get("next", "")), fallback), notice), status_code=303)
        return remember_actor(response, request, action.acted_by)

    # ------------------------------------------------------------ login

    def login_form(request: Request) -> Response:
        if config.single_user:
            return RedirectResponse("/", status_code=303)
        return render(request, "login.html", as_of=None, published_at=None, error=None,
                      next=local_target(request.query_params.get("next", ""), "/"))

    throttle = LoginThrottle(config.login_max_failures, config.login_lockout_minutes * 60)

    async def login(request: Request) -> Response:
        if config.single_user:
            return RedirectResponse("/", status_code=303)
        if not _same_origin(request):
            return PlainTextResponse("拒绝跨站提交", status_code=403)
        form = await request.form()
        username = str(form.get("username", "")).strip()[:64]
        account = config.accounts.get(username)
        target = local_target(str(form.get("next", "")), "/")
        client = request.client.host if request.client else ""
        wait = throttle.wait_seconds(username, client)
        if wait > 0:
            return render(request, "login.html", status_code=429, as_of=None, published_at=None, next=target,
                          error=f"登录失败次数过多，请 {max(1, round(wait / 60))} 分钟后再试")
        if not verify_password(account, str(form.get("password", ""))):
            throttle.failed(username, client)
            return render(request, "login.html", status_code=401, as_of=None, published_at=None,
                          error="用户名或密码错误", next=target)
        throttle.succeeded(username)
        request.session.clear()
        request.session["user"] = account.username
        return RedirectResponse(target, status_code=303)

    async def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    routes = [
        Route("/", page("overview.html", pages.overview)),
        Route("/search", page("search.html", pages.search_page)),
        Route("/orders", page("orders.html", pages.orders)),
        Route("/orders/{order_id}", page("order.html", pages.order)),
        Route("/customers", page("customers.html", pages.customers)),
        Route("/customers/{customer_id}", page("customer.html", pages.customer)),
        Route("/salespeople/{salesperson_id}", page("salesperson.html", pages.salesperson)),
        Route("/salespeople/{salesperson_id}/statement", page("statement.html", pages.statement)),
        Route("/alerts", page("alerts.html", pages.alerts)),
        Route("/diff-list", page("diff_list.html", pages.diff_list)),
        Route("/health", page("health.html", pages.health)),
        Route("/review", page("review.html", pages.review, roles=("finance", "manager"))),
        Route("/runbook", page("runbook.html", pages.runbook)),
        Route("/review/decide", decide, methods=["POST"]),
        Route("/actions", act, methods=["POST"]),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes)
    # Innermost first: the login gate needs the session; CSRF wraps everything that posts.
    if not config.single_user:
        app.add_middleware(LoginRequired, accounts=config.accounts)
        app.add_middleware(SessionMiddleware, secret_key=config.secret, session_cookie=SESSION_COOKIE,
                           max_age=12 * 3600, same_site="strict", https_only=False)
    elif config.token:
        app.add_middleware(TokenMiddleware, token=config.token)
    return SecurityHeaders(_csrf(app, config.secret))


class Publication:
    """The published file, opened read-only once per version of it.

    Opening a DuckDB file and reading its catalog costs more than most pages' queries, so the
    file stays open and every request gets its own cursor (a connection of its own: its
    temporary views are its own). A new publication is a new file swapped in with os.replace:
    the next request sees another inode and opens that. The file is ATTACHed read-only to an
    in-memory database of its own per version, because `duckdb.connect(path)` would hand back
    the instance already open on the old inode (DuckDB caches instances by path); requests
    still running on the old version finish on its snapshot.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._columns: dict[str, set[str]] = {}
        self._version = 0
        # Figures computed from this version alone (no landing overlay), by page and filters.
        self.memo = pages.Memo()  # replaced (never cleared) with each version: a late result lands in its own

    def _current(self) -> tuple[duckdb.DuckDBPyConnection, str, dict]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise NotPublished() from None
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key != self._key or self._conn is None:
                self._version += 1
                catalog = f"published_v{self._version}"
                conn = duckdb.connect(":memory:")
                conn.execute("SET enable_progress_bar = false")
                path = str(self.path).replace("'", "''")
                conn.execute(f"ATTACH '{path}' AS {catalog} (READ_ONLY)")
                conn.execute(f"USE {catalog}")
                self._conn, self._catalog, self._key = conn, catalog, key
                self._columns = queries.published_columns(conn)
                self.memo = pages.Memo()
            return self._conn, self._catalog, self._columns, self.memo

    @contextmanager
    def reader(self) -> Iterator[queries.MartReader]:
        """A cursor on the current version; `reader.memo` is that version's Memo."""
        conn, catalog, columns, memo = self._current()
        cursor = conn.cursor()
        try:
            cursor.execute(f"USE {catalog}")
            reader = queries.MartReader(cursor, columns)
            reader.memo = memo
            yield reader
        finally:
            cursor.close()

    def warm(self, key: tuple, compute: Callable[[queries.MartReader], object]) -> None:
        """Compute a figure of the current version now (after a response was sent)."""
        try:
            with self.reader() as reader:
                reader.memo.get(key, lambda: compute(reader))
        except (NotPublished, duckdb.Error):
            pass  # the next page says so, or computes it itself


def salesperson_names_of(reader: queries.MartReader) -> dict[str, str]:
    from recon_pipeline.dashboard.details import salesperson_names

    return salesperson_names(reader)


def may_act(reader: queries.MartReader, user: Account | None, scope: Scope, action: AlertAction) -> bool:
    """Finance (and the single user) act on everything; a manager or salesperson on the
    items of their scope; the health board is finance's and managers'."""
    if user is None or user.is_finance:
        return True
    if action.target_type == "health":
        return user.role == "manager"
    if action.target_type == "alert":
        if not reader.has_column("mart.alerts", "salesperson_id"):
            return False
        owner = reader.value("SELECT salesperson_id FROM mart.alerts WHERE alert_id = ?", [action.target_id])
        return scope.covers(owner)
    if not reader.has("mart.diff_list"):
        return False
    owner = reader.value(
        "SELECT coalesce(d.salesperson_id, o.salesperson_id) FROM mart.diff_list d "
        "LEFT JOIN mart.fct_order_reconciliation o ON o.order_id = d.entity_id WHERE d.diff_id = ? LIMIT 1",
        [action.target_id],
    ) if reader.has_column("mart.diff_list", "diff_id") else None
    return scope.covers(owner)


def _csrf(app, secret: str):
    """asgi-csrf's double-submit cookie on every POST path, with or without other cookies
    (the open single-user mode has no session a forged form could ride on, but it writes)."""
    from asgi_csrf import asgi_csrf

    async def refused(scope, send, message_id):
        await send({"type": "http.response.start", "status": 403,
                    "headers": [[b"content-type", b"text/plain; charset=utf-8"]]})
        await send({"type": "http.response.body", "body": "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试".encode()})

    return asgi_csrf(app, signing_secret=secret, cookie_name=CSRF_COOKIE, always_protect=POST_PATHS,
                     cookie_samesite="Strict", send_csrf_failed=refused)


class SecurityHeaders:
    """CSP and friends on every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        return await self.app(scope, receive, send_with_headers)


class LoginRequired:
    """With accounts configured: every page but /login and /static needs a logged-in user."""

    def __init__(self, app, accounts: dict):
        self.app = app
        self.accounts = accounts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == "/login" or path.startswith("/static/"):
            return await self.app(scope, receive, send)
        user = (scope.get("session") or {}).get("user")
        if user not in self.accounts:
            if scope["method"] != "GET":
                response = PlainTextResponse("请先登录", status_code=401)
            else:
                request = Request(scope)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


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
