"""The dashboard's pages: each builder takes a `View` (one request on one publication) and
returns the template's context. List pages hand their `Table` to `view.paged`, which either
returns the page of rows or, for `?format=xlsx|csv`, stops with the whole table to export.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from recon_pipeline.as_of import cutoff_moment, cutoff_period, next_cutoff, shift_period
from recon_pipeline.close.status import period_board
from recon_pipeline.dashboard import charts, details, formatting, lists, queries, search, workbooks
from recon_pipeline.dashboard.access import Account, Scope
from recon_pipeline.dashboard.actions import HEALTH_BOARD, register_action_log, target_actions
from recon_pipeline.dashboard.feedback import decisions_pending
from recon_pipeline.dashboard.labels import GROUP_BY, METRICS, breaches
from recon_pipeline.dashboard.queries import MartReader
from recon_pipeline.dashboard.statement_page import statement_context, statement_link
from recon_pipeline.dashboard.tables import Page, Table, fetch_page


class Export(Exception):
    """The request asked for the table as a file (`?format=xlsx|csv`)."""

    def __init__(self, table: Table, fmt: str):
        self.table, self.fmt = table, fmt


class Workbook(Exception):
    """The request asked for a page's tables as one Excel file (`?format=xlsx`, workbooks.py)."""

    def __init__(self, title: str, sheets: list):
        self.title, self.sheets = title, sheets


class NotFound(Exception):
    """Nothing to show at this address (or nothing this user may see there)."""


class Forbidden(Exception):
    """The user's role may not open this page."""


class Memo:
    """Figures of one publication version, computed once (bounded: a few hundred). Two
    requests wanting the same figure at once wait for one computation, not two."""

    LIMIT = 500

    def __init__(self):
        self._values: dict[tuple, Any] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def __contains__(self, key: tuple) -> bool:
        return key in self._values

    def clear(self) -> None:
        with self._guard:
            self._values.clear()
            self._locks.clear()

    def get(self, key: tuple, compute):
        if key in self._values:
            return self._values[key]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                value = compute()
                with self._guard:
                    if len(self._values) >= self.LIMIT:
                        self._values.clear()
                    self._values[key] = value
            return self._values[key]


@dataclass
class View:
    request: Request
    reader: MartReader
    as_of: datetime | None
    config: Any  # DashboardConfig
    user: Account | None
    scope: Scope
    salesperson_names: dict[str, str] = field(default_factory=dict)
    memo: "Memo" = field(default_factory=lambda: Memo())  # per publication version (app.Publication)

    def remembered(self, key: tuple, compute):
        """A figure of this publication version alone, computed once."""
        return self.memo.get(key, compute)

    def param(self, name: str, default: str = "") -> str:
        return (self.request.query_params.get(name) or default).strip()[:100]

    def filters(self, *names: str) -> dict[str, str]:
        return {name: self.param(name) for name in names if self.param(name)}

    def paged(self, table: Table, *filter_names: str) -> Page:
        fmt = self.param("format")
        if fmt in ("xlsx", "csv") and self.param("table") == table.prefix:
            raise Export(table, fmt)
        return fetch_page(self.reader, table, self.request.query_params, self.filters(*filter_names))

    def workbook(self, title: str, sheets) -> None:
        """On `?format=xlsx`, stop with the page's tables (`sheets()`) as one workbook."""
        if self.param("format") == "xlsx" and not self.param("table"):
            raise Workbook(title, sheets())

    def page_export_url(self) -> str:
        """This page, with its filters, as a workbook."""
        params = {k: v for k, v in self.request.query_params.items() if k not in ("format", "table", "notice")}
        return "?" + urlencode({**params, "format": "xlsx"})

    def region_name(self, code: str | None) -> str | None:
        return self.config.region_names.get(code, code) if code else code

    def person(self, salesperson_id: str | None) -> str | None:
        return self.salesperson_names.get(salesperson_id, salesperson_id) if salesperson_id else salesperson_id

    @property
    def as_of_date(self):
        return self.as_of.date() if self.as_of else None


def is_period(text: str | None) -> bool:
    return bool(text) and len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit() and 1 <= int(text[5:]) <= 12


# ---------------------------------------------------------------- overview


def overview(view: View) -> dict:
    reader, config = view.reader, view.config
    current = cutoff_period(view.as_of, config.cutoff_hour) if view.as_of else None
    period = view.param("period", current or "")
    if not is_period(period):
        period = current
    filters = queries.OrderFilters(
        region=view.param("region"), industry=view.param("industry"), salesperson=view.param("salesperson"),
        scope=view.scope,
    )
    group_by = view.param("group_by", "region")
    if group_by not in GROUP_BY:
        group_by = "region"
    options = queries.filter_options(reader, view.scope)
    context: dict[str, Any] = {"period": period, "filters": filters, "group_by": group_by, "options": options}
    if period is None:
        return context
    periods = formatting.trailing_periods(period, config.trend_periods)
    key = ("overview", period, filters, group_by)
    trend = list(view.remembered(key + ("trend",), lambda: queries.period_trend(reader, filters, periods, config.cutoff_hour)))
    # The chart starts at the first period with any figure (a young warehouse has empty months).
    while len(trend) > 1 and not any(trend[0][k] for k in ("signed", "recognized", "collected")):
        trend.pop(0)
    funnel = view.remembered(key + ("funnel",), lambda: queries.lifecycle_funnel(reader, filters, config.amount_tolerance))
    breakdown = [dict(row) for row in view.remembered(key + ("breakdown",), lambda: queries.breakdown(
        reader, filters, group_by, period, config.cutoff_hour, config.row_limit))]
    for row in breakdown:
        narrowing = {"region": filters.region, "salesperson": filters.salesperson, "signed": period}
        narrowing[group_by] = row["grp"] or ""
        row["orders_link"] = "/orders?" + urlencode({k: v for k, v in narrowing.items() if v and k != "industry"})
    context.update(
        period_options=formatting.trailing_periods(current or period, 24)[::-1],
        trend=trend,
        current=trend[-1],
        trend_chart=charts.trend_chart(trend),
        breakdown=breakdown,
        funnel=funnel,
        funnel_chart=charts.funnel_chart(funnel),
    )
    view.workbook(f"总览-{period}", lambda: workbooks.overview_sheets(context, view))
    return context


# ---------------------------------------------------------------- search

LEARNED_PAYER_NAMES = ("learned_payer_names",)


def learned_payer_names(view: View) -> list[tuple[str, str]]:
    """The payer names finance confirmed, of this publication: a scan of the whole bank, so it
    is computed once per version, and warmed after the first page of a new version is sent
    (app.py) so that the first search does not pay for it."""
    return view.remembered(LEARNED_PAYER_NAMES, lambda: search.learned_payer_names(view.reader))


def search_page(view: View) -> dict:
    text = view.param("q")
    result = search.search(view.reader, text, view.scope, view.config.amount_tolerance, lambda: learned_payer_names(view))
    return {"q": text, "result": result}


# ---------------------------------------------------------------- orders


def orders(view: View) -> dict:
    query = lists.OrderQuery(
        text=view.param("q"), region=view.param("region"), salesperson=view.param("salesperson"),
        customer=view.param("customer"), stage=view.param("stage"), signed_period=view.param("signed"),
        recognized_period=view.param("recognized"), scope=view.scope,
    )
    if not view.reader.has(lists.ORDERS):
        return {"query": query, "page": None, "options": {}}
    table = lists.orders_table(view.reader, query, view.region_name, view.salesperson_names)
    page = view.paged(table, "q", "region", "salesperson", "customer", "stage", "signed", "recognized")
    return {"query": query, "table": table, "page": page, "options": queries.filter_options(view.reader, view.scope)}


def order(view: View, order_id: str) -> dict:
    detail = details.order_detail(view.reader, order_id, view.scope, view.as_of, view.config.cutoff_hour,
                                  view.config.amount_tolerance)
    if detail is None:
        raise NotFound(f"找不到订单 {order_id}")
    view.workbook(f"订单-{detail.order['order_id']}", lambda: workbooks.order_sheets(detail, view))
    return {"detail": detail, "o": detail.order}


# ---------------------------------------------------------------- customers


def customers(view: View) -> dict:
    only_high_risk = view.param("scope", "high_risk") != "all"
    if not (view.reader.has("mart.dim_customers") or view.reader.has("mart.customer_collection_health")):
        return {"only_high_risk": only_high_risk, "page": None}
    table = lists.customers_table(view.reader, only_high_risk, view.param("q"), view.scope)
    page = view.paged(table, "scope", "q")
    counts = {"count": 0, "high_risk_count": 0}
    if view.reader.has("mart.customer_collection_health"):
        counts["count"], counts["high_risk_count"] = view.reader.conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE high_risk) FROM mart.customer_collection_health"
        ).fetchone()
    top = []
    if view.reader.has("mart.customer_collection_health") and view.reader.has(lists.ORDERS):
        clause, params = view.scope.customer_sql("c.customer_id", view.reader.has("mart.dim_customers"))
        top = view.reader.rows(
            f"""SELECT coalesce(c.customer_name, c.customer_id) AS label, sum(o.outstanding_amount) AS value
                FROM mart.customer_collection_health c JOIN {lists.ORDERS} o USING (customer_id)
                WHERE c.high_risk AND o.sales_leg_closed_at IS NOT NULL AND NOT coalesce(o.is_closed, FALSE) AND {clause}
                GROUP BY 1 HAVING sum(o.outstanding_amount) > 0 ORDER BY 2 DESC LIMIT 10""",
            params,
        )
    return {"only_high_risk": only_high_risk, "table": table, "page": page, "health": counts,
            "top_chart": charts.horizontal_bars([(r["label"], r["value"]) for r in top], "高风险客户未回款金额")}


def customer(view: View, customer_id: str) -> dict:
    found = details.customer_detail(view.reader, customer_id, view.scope)
    if found is None:
        raise NotFound(f"找不到客户 {customer_id}")
    table = lists.orders_table(view.reader, lists.OrderQuery(customer=customer_id, scope=view.scope),
                               view.region_name, view.salesperson_names)
    page = view.paged(table)
    receipts = lists.customer_receipts_table(view.reader, customer_id, view.scope) if view.reader.has(lists.MATCHES) else None
    return {**found, "table": table, "page": page,
            "receipts_table": receipts, "receipts_page": view.paged(receipts) if receipts else None}


# ---------------------------------------------------------------- salespeople


def salesperson(view: View, salesperson_id: str) -> dict:
    if not view.scope.covers(salesperson_id) or not view.reader.has(lists.ORDERS):
        raise NotFound(f"找不到销售 {salesperson_id}")
    reader, config = view.reader, view.config
    person = None
    if reader.has("mart.dim_salespeople"):
        rows = reader.rows("SELECT * FROM mart.dim_salespeople WHERE salesperson_id = ?", [salesperson_id])
        person = rows[0] if rows else None
    has_orders = reader.value(f"SELECT count(*) FROM {lists.ORDERS} WHERE salesperson_id = ?", [salesperson_id])
    if person is None and not has_orders:
        raise NotFound(f"找不到销售 {salesperson_id}")
    current = cutoff_period(view.as_of, config.cutoff_hour) if view.as_of else None
    period = view.param("period", current or "")
    if not is_period(period):
        period = current
    if period is None:
        return {"person": person, "salesperson_id": salesperson_id, "period": None, "page": None}
    collected_after = cutoff_moment(shift_period(period, -1), config.cutoff_hour)
    collected_until = cutoff_moment(period, config.cutoff_hour)
    table = lists.salesperson_period_table(reader, salesperson_id, period, collected_after, collected_until,
                                           config.amount_tolerance, view.region_name)
    page = view.paged(table, "period")
    totals = view.remembered(("salesperson", salesperson_id, period), lambda: reader.rows(
        f"""SELECT coalesce(sum(signed_here), 0) AS signed, coalesce(sum(recognized_here), 0) AS recognized,
                   coalesce(sum(collected_here), 0) AS collected, count(*) AS orders,
                   count(*) FILTER (WHERE counted) AS counted
            FROM ({table.sql}) AS mine""",
        list(table.params),
    )[0])
    summary = reader.rows(
        "SELECT * FROM mart.salesperson_period_summary WHERE salesperson_id = ? AND period = ?", [salesperson_id, period]
    ) if reader.has("mart.salesperson_period_summary") else []
    signed = totals["signed"] or Decimal(0)
    rate = (signed - totals["recognized"]) / signed if signed else None
    return {
        "person": person, "salesperson_id": salesperson_id, "period": period, "table": table, "page": page,
        "totals": totals, "discrepancy_rate": rate, "summary": summary[0] if summary else None,
        "period_options": formatting.trailing_periods(current or period, 24)[::-1],
        "cutoff_at": collected_until, "period_closed": view.as_of is not None and view.as_of > collected_until,
        "statement_link": statement_link,
    }


def statement(view: View, salesperson_id: str):
    """业绩确认单 (recon_pipeline.close): the page's context, or its XLSX."""
    if not view.scope.covers(salesperson_id):
        raise NotFound(f"找不到销售 {salesperson_id}")
    return statement_context(view.request, view.reader, view.as_of, view.config.settings)


# ---------------------------------------------------------------- alerts and diff list


def _action_log(view: View) -> None:
    register_action_log(view.reader, view.config.landing_dir, view.as_of_date)


def _sla_rows(view: View, item_type: str, ids: list[str]) -> dict[str, list[dict]]:
    if not ids or not view.reader.has("mart.alert_sla"):
        return {}
    rows = view.reader.rows(
        "SELECT * FROM mart.alert_sla WHERE item_type = ? AND list_contains(?::VARCHAR[], item_id) AND item_open "
        "ORDER BY due_at", [item_type, ids],
    )
    by_item: dict[str, list[dict]] = {}
    for row in rows:
        by_item.setdefault(row["item_id"], []).append(row)
    return by_item


def alerts(view: View) -> dict:
    query = lists.AlertQuery(level=view.param("level"), alert_type=view.param("type"), owner=view.param("owner"),
                             status=view.param("status", "open"), scope=view.scope)
    if not view.reader.has("mart.alerts"):
        return {"query": query, "page": None}
    _action_log(view)
    table = lists.alerts_table(view.reader, query, view.person)
    page = view.paged(table, "level", "type", "owner", "status")
    # The level cards count every level under the other filters (they are the level filter).
    every_level = lists.alerts_table(view.reader, replace(query, level=""), view.person)
    by_level = {
        row["level"]: row["n"] for row in view.reader.rows(
            f"SELECT level_key AS level, count(*) AS n FROM ({every_level.sql}) AS counted GROUP BY 1", list(every_level.params))
    }
    level_links = {key: "?" + urlencode({**view.filters("type", "owner", "status"), **({"level": key} if key != query.level else {})})
                   for key in ("1", "2", "3", "reminder")}
    sla = _sla_rows(view, "alert", [r["alert_id"] for r in page.rows])
    for row in page.rows:
        row["sla"] = sla.get(row["alert_id"], [])
    owner_scope, owner_params = view.scope.sql("salesperson_id")
    owners = view.reader.rows(
        "SELECT DISTINCT coalesce(owner_name, recipient) AS label, coalesce(salesperson_id, recipient) AS value "
        f"FROM mart.alerts WHERE coalesce(salesperson_id, recipient) IS NOT NULL AND {owner_scope} ORDER BY 1 LIMIT 300",
        owner_params,
    ) if view.reader.has_column("mart.alerts", "owner_name") and view.reader.has_column("mart.alerts", "salesperson_id") else []
    types = [r["t"] for r in view.reader.rows("SELECT DISTINCT alert_type AS t FROM mart.alerts ORDER BY 1")]
    return {"query": query, "table": table, "page": page, "by_level": by_level, "level_links": level_links,
            "owners": owners, "types": types}


def diff_list(view: View) -> dict:
    query = lists.DiffQuery(diff_type=view.param("diff_type"), owner=view.param("owner"),
                            status=view.param("status", "open"), scope=view.scope)
    if not view.reader.has("mart.diff_list"):
        return {"query": query, "page": None}
    _action_log(view)
    table = lists.diff_table(view.reader, query)
    page = view.paged(table, "diff_type", "owner", "status")
    summary = view.reader.rows(
        f"SELECT diff_type, count(*) AS n, sum(amount) AS amount FROM ({table.sql}) AS counted GROUP BY 1 ORDER BY 1",
        list(table.params),
    )
    as_of_date = view.reader.value("SELECT max(as_of_date) FROM mart.diff_list")
    sla = _sla_rows(view, "diff", [r["diff_id"] for r in page.rows])
    for row in page.rows:
        row["sla"] = sla.get(row["diff_id"], [])
    owners = queries.filter_options(view.reader, view.scope)["salesperson"]
    return {"query": query, "table": table, "page": page, "summary": summary, "as_of_date": as_of_date,
            "owners": owners}


# ---------------------------------------------------------------- health


def health(view: View) -> dict:
    reader, config = view.reader, view.config
    metrics = queries.health_metrics(reader, config.trend_points)
    known = list(METRICS)
    metrics.sort(key=lambda m: (known.index(m["metric"]) if m["metric"] in known else len(known), m["metric"]))
    for metric in metrics:
        metric["consistent"] = (metric["status"] == "red") == breaches(metric["metric"], metric["value"], metric["threshold"])
        metric["chart"] = charts.sparkline(metric["trend"], metric["threshold"], metric["status"] == "red")
    red = [m for m in metrics if m["status"] == "red"]
    _action_log(view)
    board = board_state(view, red)
    context = {
        "metrics": metrics,
        "red_count": len(red),
        "hours_to_cutoff": queries.hours_to_cutoff(metrics, view.as_of, config.cutoff_hour),
        "cutoff_at": next_cutoff(view.as_of, config.cutoff_hour) if view.as_of else None,
        "at_risk": queries.orders_at_risk(reader, 10, view.scope),
        "board": board,
        "response": response_times(view),
        "close_board": period_board(reader.conn, view.as_of, config.settings),
    }
    view.workbook("健康看板", lambda: workbooks.health_sheets(context, view))
    return context


def board_state(view: View, red: list[dict]) -> dict:
    """The red board as one item: since when, its SLA steps, who acknowledged it."""
    state: dict[str, Any] = {"red": bool(red), "since": None, "sla": [], "actions": []}
    if view.reader.has("mart.alert_sla"):
        rows = view.reader.rows(
            "SELECT * FROM mart.alert_sla WHERE item_type = 'health' AND item_open ORDER BY episode_start DESC, due_at"
        )
        if rows:
            state["since"] = rows[0]["episode_start"]
            state["sla"] = [r for r in rows if r["episode_start"] == state["since"]]
    if state["since"] is None and red:
        state["since"] = view.as_of
    if state["since"] is not None:
        state["actions"] = target_actions(view.reader, "health", HEALTH_BOARD, state["since"])
    return state


def response_times(view: View) -> list[dict]:
    """Per kind of item over the last 30 days: how fast people acknowledged, how long to repair."""
    if not view.reader.has("mart.alert_sla") or view.as_of is None:
        return []
    since = view.as_of - timedelta(days=30)
    return view.reader.rows(
        """
        SELECT item_class,
               count(*) FILTER (WHERE step = 'resolve') AS item_count,
               avg(epoch(done_at - episode_start)) FILTER (WHERE step IN ('acknowledge', 'respond') AND done_at IS NOT NULL) AS ack_seconds,
               count(*) FILTER (WHERE step IN ('acknowledge', 'respond') AND done_at IS NOT NULL) AS acknowledged,
               count(*) FILTER (WHERE step IN ('acknowledge', 'respond') AND status IN ('late', 'overdue')) AS ack_late,
               avg(epoch(done_at - episode_start)) FILTER (WHERE step = 'resolve' AND done_at IS NOT NULL) AS mttr_seconds,
               count(*) FILTER (WHERE step = 'resolve' AND done_at IS NOT NULL) AS repaired,
               count(DISTINCT item_id || '|' || CAST(episode_start AS VARCHAR)) FILTER (WHERE status = 'overdue') AS overdue
        FROM mart.alert_sla WHERE episode_start >= ?
        GROUP BY 1 ORDER BY 1
        """,
        [since],
    )


# ---------------------------------------------------------------- review queue


def review(view: View) -> dict:
    reader = view.reader
    if not reader.has(lists.MATCHES):
        return {"page": None, "made": {}, "count": 0}
    table = lists.review_table(reader)
    page = view.paged(table)
    ingested = set()
    if reader.has("mart.fct_match_feedback"):
        ingested = {r[0] for r in reader.conn.execute(
            "SELECT feedback_id FROM mart.fct_match_feedback WHERE drop_date >= ?", [view.as_of_date]).fetchall()} if view.as_of_date else set()
    made = decisions_pending(view.config.landing_dir, view.as_of_date, ingested)
    total, amount = reader.conn.execute(
        f"SELECT count(*), coalesce(sum(allocated_amount), 0) FROM ({table.sql}) AS q"
    ).fetchone()
    # Decided since the publication: no longer waiting for finance (an undo puts one back).
    decided = [(k, v) for k, v in made.items() if v.get("decision") in ("confirm", "reject")]
    decided_keys = [list(k) for k, _ in decided]
    waiting_decided = 0
    decided_amount = Decimal(0)
    if decided_keys:
        hit = reader.conn.execute(
            f"""SELECT count(*), coalesce(sum(allocated_amount), 0) FROM ({table.sql}) AS q
                WHERE list_contains(?::VARCHAR[][], [account_no, txn_id, coalesce(customer_id, ''), order_id])""",
            [decided_keys],
        ).fetchone()
        waiting_decided, decided_amount = int(hit[0]), hit[1]
    names = details.customer_names(reader, {r["customer_id"] for r in page.rows})
    for row in page.rows:
        evidence = details.parse_json(row.pop("evidence", None))
        row["shown"] = queries.parse_evidence(json_text(evidence))
        row["why"] = details.evidence_sentences(evidence, row["match_method"], row["match_score"], names)
        row["warnings"] = details.risk_warnings(evidence)
        row["customer_name"] = names.get(row["customer_id"])
        row["key"] = (row["account_no"], row["txn_id"], row["customer_id"] or "", row["order_id"] or "")
    history = decision_history(view, made)
    # An undo of a decision the last run already applied: pending again from the next run on.
    undone = [list(k) for k, v in made.items() if v.get("decision") == "undo"]
    reopened = 0
    if undone:
        still_suggested = reader.value(
            f"""SELECT count(*) FROM ({table.sql}) AS q
                WHERE list_contains(?::VARCHAR[][], [account_no, txn_id, coalesce(customer_id, ''), order_id])""",
            [undone],
        )
        reopened = len(undone) - int(still_suggested or 0)
    return {"table": table, "page": page, "made": made, "count": total - waiting_decided + reopened,
            "amount": amount - decided_amount, "decided_now": waiting_decided, "reopened": reopened, "history": history}


def json_text(evidence: dict) -> str | None:
    import json

    return json.dumps(evidence, ensure_ascii=False) if evidence else None


def decision_history(view: View, made: dict) -> list[dict]:
    """Recent decisions (published and not yet), newest first, each with whether an undo still
    applies (the latest decision on that suggestion is a confirm or reject)."""
    rows: list[dict] = []
    if view.reader.has("mart.fct_match_feedback"):
        rows = view.reader.rows(
            """SELECT feedback_id, account_no, txn_id, coalesce(customer_id, '') AS customer_id,
                      coalesce(order_id, '') AS order_id, decision, decided_by, decided_at, FALSE AS pending
               FROM mart.fct_match_feedback ORDER BY decided_at DESC, source_file DESC LIMIT 200"""
        )
    pending = [{**v, "pending": True} for v in made.values()]
    latest: dict[tuple, dict] = {}
    for row in pending + rows:  # pending ones are the newest
        key = (row["account_no"], row["txn_id"], row["customer_id"], row["order_id"])
        latest.setdefault(key, row)
    history = sorted(latest.values(), key=lambda r: (not r["pending"], str(r.get("decided_at") or "")), reverse=False)
    return history[:50]


# ---------------------------------------------------------------- runbook


def runbook(view: View) -> dict:
    from recon_pipeline.dashboard.runbook import render_runbook

    return {"content": render_runbook(view.config.runbook_path)}
