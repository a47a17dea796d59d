"""The dashboard's reads of the published mart: SQL aggregation with LIMITs, never whole tables.

Every function takes a `MartReader` (one read-only connection per request) and returns plain
rows (dicts) with Decimal money. A table that is not published yet gives an empty result, and
an optional (non-contract) column that is missing reads as NULL, so the pages degrade to an
empty state instead of failing while the other parts of the pipeline catch up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb

from recon_pipeline.as_of import cutoff_moment, next_cutoff, shift_period
from recon_pipeline.dashboard.formatting import hours_until

LINKED_STATUSES = ("auto_linked", "confirmed")
LIFECYCLE_STEPS = ("已签约", "已开票", "已回款", "已核销", "已归档")
GROUP_COLUMNS = {"region": "region_code", "industry": "industry", "salesperson": "salesperson_id"}


class MartReader:
    """A read-only connection on the published file plus what it holds (tables, columns)."""

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn = conn
        self._columns: dict[str, set[str]] = {}
        for schema, table, column in conn.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
            "WHERE schema_name IN ('mart', 'meta')"
        ).fetchall():
            self._columns.setdefault(f"{schema}.{table}", set()).add(column)

    def has(self, table: str) -> bool:
        return table in self._columns

    def has_column(self, table: str, column: str) -> bool:
        return column in self._columns.get(table, set())

    def column(self, table: str, column: str, alias: str = "", prefix: str = "") -> str:
        """`prefix.column` when the published table has it, else NULL (for optional extras)."""
        name = alias or column
        if self.has_column(table, column):
            return f"{prefix + '.' if prefix else ''}{column} AS {name}"
        return f"NULL AS {name}"

    def rows(self, sql: str, params: list | None = None) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def value(self, sql: str, params: list | None = None):
        row = self.conn.execute(sql, params or []).fetchone()
        return row[0] if row else None


# ---------------------------------------------------------------- publication


def mart_as_of(reader: MartReader) -> datetime | None:
    """The run's as-of the publication reflects (never the wall clock)."""
    candidates = [
        ("meta.publication", "SELECT max(as_of) FROM meta.publication"),
        ("mart.health_metrics", "SELECT max(as_of) FROM mart.health_metrics"),
        ("mart.alerts", "SELECT max(as_of) FROM mart.alerts"),
    ]
    for table, sql in candidates:
        if reader.has(table):
            value = reader.value(sql)
            if value is not None:
                return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return None


def published_at(reader: MartReader) -> datetime | None:
    if reader.has("meta.publication"):
        return reader.value("SELECT max(published_at) FROM meta.publication")
    return None


# ---------------------------------------------------------------- overview


@dataclass(frozen=True)
class OrderFilters:
    region: str = ""
    industry: str = ""
    salesperson: str = ""

    def where(self, alias: str = "o") -> tuple[str, list]:
        clauses, params = ["TRUE"], []
        for column, value in (
            ("region_code", self.region),
            ("industry", self.industry),
            ("salesperson_id", self.salesperson),
        ):
            if value:
                clauses.append(f"{alias}.{column} = ?")
                params.append(value)
        return " AND ".join(clauses), params


def filter_options(reader: MartReader) -> dict[str, list[str]]:
    if not reader.has("mart.fct_order_reconciliation"):
        return {"region": [], "industry": [], "salesperson": []}
    options = {}
    for key, column in GROUP_COLUMNS.items():
        options[key] = [
            row["v"]
            for row in reader.rows(
                f"SELECT DISTINCT {column} AS v FROM mart.fct_order_reconciliation "
                f"WHERE {column} IS NOT NULL ORDER BY 1 LIMIT 500"
            )
        ]
    return options


def _signed_at_sql(reader: MartReader) -> str:
    # CRM signing time (what the CRM shows); the sales leg's close time when signed_at is absent.
    if reader.has_column("mart.fct_order_reconciliation", "signed_at"):
        return "coalesce(o.signed_at, o.sales_leg_closed_at)"
    return "o.sales_leg_closed_at"


def _signed_month_sql(reader: MartReader) -> str:
    return f"strftime({_signed_at_sql(reader)}, '%Y-%m')"


def _collected_month_sql(cutoff_hour: int) -> str:
    """First day of the cutoff period of txn_time (its month, or the next once the month's
    cutoff has passed): shifting by the hours left after the cutoff, less a microsecond,
    moves exactly the moments after the last day's cutoff into the next month."""
    return (
        f"date_trunc('month', m.txn_time + INTERVAL {24 - int(cutoff_hour)} HOUR - INTERVAL 1 MICROSECOND)"
    )


def _amounts_by(
    reader: MartReader, filters: OrderFilters, periods: list[str], cutoff_hour: int, group_column: str | None
) -> list[dict]:
    """signed / recognized / collected per (group, period), restricted to `periods`.

    Each leg is first narrowed to the time window the periods span (so at volume the join
    and the grouping see only those months), then exactly by period.
    """
    if not reader.has("mart.fct_order_reconciliation"):
        return []
    first, last = min(periods), max(periods)
    signed_from = datetime.fromisoformat(f"{first}-01")
    signed_until = datetime.fromisoformat(f"{shift_period(last, 1)}-01")
    collected_after = cutoff_moment(shift_period(first, -1), cutoff_hour)
    collected_until = cutoff_moment(last, cutoff_hour)
    where, params = filters.where("o")
    group = f"o.{group_column}" if group_column else "NULL"
    signed_at = _signed_at_sql(reader)
    parts = [
        # Group on a truncated timestamp, format only the few groups (strftime per row is slow).
        f"""SELECT grp, strftime(month, '%Y-%m') AS period, signed, 0 AS recognized, 0 AS collected
            FROM (SELECT {group} AS grp, date_trunc('month', {signed_at}) AS month,
                         sum(o.contract_amount) AS signed
                  FROM mart.fct_order_reconciliation o
                  WHERE {where} AND o.sales_leg_closed_at IS NOT NULL
                    AND {signed_at} >= ? AND {signed_at} < ?
                  GROUP BY ALL)""",
        f"""SELECT {group} AS grp, o.recognized_period AS period,
                   0, sum(o.contract_amount), 0
            FROM mart.fct_order_reconciliation o
            WHERE {where} AND o.is_closed AND o.recognized_period BETWEEN ? AND ?
            GROUP BY ALL""",
    ]
    all_params = params + [signed_from, signed_until] + params + [first, last]
    if reader.has("mart.fct_receipt_matches") and reader.has_column("mart.fct_receipt_matches", "txn_time"):
        # The join to orders is only needed to filter or group by an order attribute; at 1M
        # bank lines it is most of the page's time.
        needs_orders = bool(params) or group_column is not None
        join = "JOIN mart.fct_order_reconciliation o ON o.order_id = m.order_id" if needs_orders else ""
        parts.append(
            f"""SELECT grp, strftime(month, '%Y-%m') AS period, 0, 0, collected
                FROM (SELECT {group} AS grp, {_collected_month_sql(cutoff_hour)} AS month,
                             sum(m.allocated_amount) AS collected
                      FROM mart.fct_receipt_matches m {join}
                      WHERE {where if needs_orders else 'TRUE'} AND m.order_id IS NOT NULL
                        AND m.match_status IN {LINKED_STATUSES}
                        AND m.txn_time > ? AND m.txn_time <= ?
                      GROUP BY ALL)"""
        )
        all_params += (params if needs_orders else []) + [collected_after, collected_until]
    sql = f"""
        SELECT grp, period, sum(signed) AS signed, sum(recognized) AS recognized,
               sum(collected) AS collected
        FROM ({' UNION ALL '.join(parts)}) AS amounts
        WHERE list_contains(?, period)
        GROUP BY grp, period
    """
    return reader.rows(sql, all_params + [periods])


def period_trend(reader: MartReader, filters: OrderFilters, periods: list[str], cutoff_hour: int) -> list[dict]:
    """One row per period (oldest first): signed, recognized, collected amounts."""
    by_period = {row["period"]: row for row in _amounts_by(reader, filters, periods, cutoff_hour, None)}
    zero = Decimal("0.00")
    return [
        {
            "period": period,
            "signed": by_period.get(period, {}).get("signed") or zero,
            "recognized": by_period.get(period, {}).get("recognized") or zero,
            "collected": by_period.get(period, {}).get("collected") or zero,
        }
        for period in periods
    ]


def breakdown(
    reader: MartReader, filters: OrderFilters, group_by: str, period: str, cutoff_hour: int, limit: int
) -> list[dict]:
    """The selected period's amounts by region, industry or salesperson, largest signed first."""
    column = GROUP_COLUMNS.get(group_by, "region_code")
    rows = _amounts_by(reader, filters, [period], cutoff_hour, column)
    review = {}
    if group_by == "salesperson" and reader.has("mart.salesperson_period_summary"):
        review = {
            row["salesperson_id"]: row
            for row in reader.rows(
                "SELECT salesperson_id, discrepancy_rate, needs_review "
                "FROM mart.salesperson_period_summary WHERE period = ?",
                [period],
            )
        }
    for row in rows:
        signed = row["signed"] or Decimal(0)
        row["discrepancy_rate"] = (signed - (row["recognized"] or 0)) / signed if signed else None
        if row["grp"] in review:
            row["discrepancy_rate"] = review[row["grp"]]["discrepancy_rate"]
            row["needs_review"] = review[row["grp"]]["needs_review"]
    rows.sort(key=lambda r: (-(r["signed"] or 0), -(r["collected"] or 0), str(r["grp"])))
    return rows[:limit]


def lifecycle_funnel(
    reader: MartReader, filters: OrderFilters, periods: list[str], tolerance: Decimal
) -> list[dict]:
    """Signed orders of the window plus every open order, by the first lifecycle step not done.

    Steps in order: signed -> invoiced -> received -> written off -> archived; an order is
    *stuck* at the last step it completed. Coverage of the contract amount uses the finance
    leg's tolerance.
    """
    empty = [
        {"label": label, "reached_count": 0, "reached_amount": Decimal(0), "stuck_count": 0, "stuck_amount": Decimal(0)}
        for label in LIFECYCLE_STEPS
    ]
    if not reader.has("mart.fct_order_reconciliation"):
        return empty
    where, params = filters.where("o")
    rows = reader.rows(
        f"""
        WITH scoped AS (
          SELECT o.* FROM mart.fct_order_reconciliation o
          WHERE {where} AND o.sales_leg_closed_at IS NOT NULL
            AND (NOT coalesce(o.is_closed, FALSE) OR list_contains(?, {_signed_month_sql(reader)}))
        )
        SELECT CASE
                 WHEN coalesce(invoiced_amount, 0) < contract_amount - ? THEN 1
                 WHEN coalesce(received_amount, 0) < contract_amount - ? THEN 2
                 WHEN coalesce(written_off_amount, 0) < contract_amount - ? THEN 3
                 WHEN legal_leg_closed_at IS NULL THEN 4
                 ELSE 5 END AS stage,
               count(*) AS orders, sum(contract_amount) AS amount
        FROM scoped o GROUP BY 1
        """,
        params + [periods, tolerance, tolerance, tolerance],
    )
    by_stage = {row["stage"]: row for row in rows}
    steps = []
    for index, label in enumerate(LIFECYCLE_STEPS, start=1):
        reached = [by_stage[s] for s in by_stage if s >= index]
        stuck = by_stage.get(index)
        steps.append(
            {
                "label": label,
                "reached_count": sum(r["orders"] for r in reached),
                "reached_amount": sum((r["amount"] for r in reached), Decimal(0)),
                "stuck_count": stuck["orders"] if stuck else 0,
                "stuck_amount": stuck["amount"] if stuck else Decimal(0),
            }
        )
    return steps


# ---------------------------------------------------------------- health


def health_metrics(reader: MartReader, trend_points: int) -> list[dict]:
    """Each metric at the latest as-of with threshold, status and its recent values."""
    if not reader.has("mart.health_metrics"):
        return []
    return reader.rows(
        """
        WITH ranked AS (
          SELECT *, row_number() OVER (PARTITION BY metric ORDER BY as_of DESC) AS recency
          FROM mart.health_metrics
        )
        SELECT metric,
               arg_max(value, as_of) AS value,
               arg_max(threshold, as_of) AS threshold,
               arg_max(status, as_of) AS status,
               max(as_of) AS as_of,
               list(value ORDER BY as_of) AS trend
        FROM ranked WHERE recency <= ?
        GROUP BY metric ORDER BY metric
        """,
        [trend_points],
    )


def hours_to_cutoff(metrics: list[dict], as_of: datetime | None, cutoff_hour: int) -> Decimal | None:
    """The mart's figure when it has one, else computed from the as-of and the cutoff rule."""
    for metric in metrics:
        if metric["metric"] == "hours_to_cutoff" and metric["value"] is not None:
            return Decimal(str(metric["value"]))
    if as_of is None:
        return None
    return hours_until(as_of, next_cutoff(as_of, cutoff_hour))


def orders_at_risk(reader: MartReader, limit: int) -> dict:
    """Signed orders not yet archived (they miss the cutoff unless archived), largest first."""
    result = {"rows": [], "count": 0, "amount": Decimal(0)}
    if not reader.has("mart.fct_order_reconciliation"):
        return result
    table = "mart.fct_order_reconciliation"
    scope = "o.sales_leg_closed_at IS NOT NULL AND o.legal_leg_closed_at IS NULL AND NOT coalesce(o.is_closed, FALSE)"
    count, amount = reader.conn.execute(
        f"SELECT count(*), coalesce(sum(contract_amount), 0) FROM {table} o WHERE {scope}"
    ).fetchone()
    alerted = ""
    if reader.has("mart.alerts"):
        alerted = (
            ", EXISTS (SELECT 1 FROM mart.alerts a WHERE a.alert_type = 'cutoff_unarchived' "
            "AND a.entity_id = o.order_id) AS alerted"
        )
    result["rows"] = reader.rows(
        f"""
        SELECT o.order_id, {reader.column(table, 'customer_name', prefix='o')},
               {reader.column(table, 'contract_no', prefix='o')}, o.salesperson_id, o.region_code,
               o.contract_amount, o.outstanding_amount, o.sales_leg_closed_at{alerted}
        FROM {table} o WHERE {scope}
        ORDER BY o.contract_amount DESC, o.order_id LIMIT ?
        """,
        [limit],
    )
    result["count"], result["amount"] = count, amount
    return result


# ---------------------------------------------------------------- alerts and diff list


@dataclass(frozen=True)
class AlertFilters:
    level: str = ""  # "1" / "2" / "3" / "reminder"
    alert_type: str = ""
    owner: str = ""

    def where(self) -> tuple[str, list]:
        clauses, params = ["TRUE"], []
        if self.level == "reminder":
            clauses.append("alert_level IS NULL")
        elif self.level in {"1", "2", "3"}:
            clauses.append("alert_level = ?")
            params.append(int(self.level))
        if self.alert_type:
            clauses.append("alert_type = ?")
            params.append(self.alert_type)
        if self.owner:
            clauses.append("recipient = ?")
            params.append(self.owner)
        return " AND ".join(clauses), params


def alert_options(reader: MartReader) -> dict[str, list[str]]:
    if not reader.has("mart.alerts"):
        return {"alert_type": [], "owner": []}
    return {
        "alert_type": [r["v"] for r in reader.rows("SELECT DISTINCT alert_type AS v FROM mart.alerts WHERE alert_type IS NOT NULL ORDER BY 1 LIMIT 200")],
        "owner": [r["v"] for r in reader.rows("SELECT DISTINCT recipient AS v FROM mart.alerts WHERE recipient IS NOT NULL ORDER BY 1 LIMIT 500")],
    }


def alerts(reader: MartReader, filters: AlertFilters, limit: int) -> dict:
    result = {"rows": [], "count": 0, "by_level": {}}
    if not reader.has("mart.alerts"):
        return result
    where, params = filters.where()
    result["by_level"] = {
        row["level"]: row["n"]
        for row in reader.rows(
            f"SELECT coalesce(CAST(alert_level AS VARCHAR), 'reminder') AS level, count(*) AS n "
            f"FROM mart.alerts WHERE {where} GROUP BY 1",
            params,
        )
    }
    result["count"] = sum(result["by_level"].values())
    table = "mart.alerts"
    result["rows"] = reader.rows(
        f"""
        SELECT alert_id, CAST(alert_level AS INTEGER) AS alert_level, alert_type, entity_id, recipient, as_of, message,
               {reader.column(table, 'runbook_url')}, {reader.column(table, 'cc')}
        FROM mart.alerts WHERE {where}
        ORDER BY alert_level NULLS LAST, alert_type, entity_id LIMIT ?
        """,
        params + [limit],
    )
    return result


def diff_list(reader: MartReader, diff_type: str, owner: str, limit: int) -> dict:
    """The latest daily diff list: totals per type and the rows (with the order's salesperson)."""
    result = {"as_of_date": None, "summary": [], "rows": [], "count": 0}
    if not reader.has("mart.diff_list"):
        return result
    latest = reader.value("SELECT max(as_of_date) FROM mart.diff_list")
    result["as_of_date"] = latest
    if latest is None:
        return result
    result["summary"] = reader.rows(
        "SELECT diff_type, count(*) AS n, sum(amount) AS amount FROM mart.diff_list "
        "WHERE as_of_date = ? GROUP BY 1 ORDER BY 1",
        [latest],
    )
    has_orders = reader.has("mart.fct_order_reconciliation")
    owner_column = "o.salesperson_id" if has_orders else "NULL"
    if reader.has_column("mart.diff_list", "salesperson_id"):
        owner_column = f"coalesce(d.salesperson_id, {owner_column})"
    join = "LEFT JOIN mart.fct_order_reconciliation o ON o.order_id = d.entity_id" if has_orders else ""
    customer = reader.column("mart.fct_order_reconciliation", "customer_name", prefix="o") if has_orders else "NULL AS customer_name"
    clauses, params = ["d.as_of_date = ?"], [latest]
    if diff_type:
        clauses.append("d.diff_type = ?")
        params.append(diff_type)
    if owner:
        clauses.append(f"{owner_column} = ?")
        params.append(owner)
    where = " AND ".join(clauses)
    result["count"] = reader.value(f"SELECT count(*) FROM mart.diff_list d {join} WHERE {where}", params)
    result["rows"] = reader.rows(
        f"""
        SELECT d.diff_type, d.entity_id, d.amount, {owner_column} AS owner, {customer}
        FROM mart.diff_list d {join} WHERE {where}
        ORDER BY d.diff_type, d.amount DESC NULLS LAST, d.entity_id LIMIT ?
        """,
        params + [limit],
    )
    return result


# ---------------------------------------------------------------- customers


def customer_health(reader: MartReader, only_high_risk: bool, limit: int) -> dict:
    result = {"rows": [], "count": 0, "high_risk_count": 0, "top_outstanding": []}
    if not reader.has("mart.customer_collection_health"):
        return result
    has_orders = reader.has("mart.fct_order_reconciliation")
    open_orders = (
        """LEFT JOIN (
             SELECT customer_id, sum(outstanding_amount) AS outstanding,
                    count(*) FILTER (WHERE NOT coalesce(is_closed, FALSE)) AS open_orders
             FROM mart.fct_order_reconciliation GROUP BY 1) o USING (customer_id)"""
        if has_orders
        else "LEFT JOIN (SELECT NULL::VARCHAR AS customer_id, NULL::DECIMAL(18,2) AS outstanding, NULL::BIGINT AS open_orders) o USING (customer_id)"
    )
    result["count"], result["high_risk_count"] = reader.conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE high_risk) FROM mart.customer_collection_health"
    ).fetchone()
    where = "WHERE c.high_risk" if only_high_risk else ""
    result["rows"] = reader.rows(
        f"""
        SELECT c.customer_id, c.customer_name, c.high_risk, c.reason, o.outstanding, o.open_orders
        FROM mart.customer_collection_health c {open_orders} {where}
        ORDER BY c.high_risk DESC, o.outstanding DESC NULLS LAST, c.customer_id LIMIT ?
        """,
        [limit],
    )
    result["top_outstanding"] = reader.rows(
        f"""
        SELECT coalesce(c.customer_name, c.customer_id) AS label, o.outstanding AS value
        FROM mart.customer_collection_health c {open_orders}
        WHERE c.high_risk AND o.outstanding > 0
        ORDER BY o.outstanding DESC LIMIT 10
        """
    )
    return result


# ---------------------------------------------------------------- review queue

def parse_evidence(raw: str | None) -> dict[str, Any]:
    """What the review queue shows of the engine's evidence JSON.

    The engine writes `{"payer": {"normalized", "core", ...}, "candidates": [{"customer_id",
    "score"}, ...], ...}`; flat keys (`payer_normalized`, `payer_core`, `candidate_name`,
    `score`) are read too, and an unknown shape degrades to the raw text.
    """
    shown: dict[str, Any] = {"payer_normalized": None, "payer_core": None, "candidate": None,
                             "candidate_id": None, "score": None, "others": []}
    if not raw:
        return shown
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return {**shown, "raw": str(raw)}
    if not isinstance(data, dict):
        return {**shown, "raw": str(raw)}
    payer = data.get("payer")
    if isinstance(payer, dict):
        shown["payer_normalized"] = payer.get("normalized") or payer.get("raw")
        shown["payer_core"] = payer.get("core")
    else:
        shown["payer_normalized"] = data.get("payer_normalized") or data.get("normalized_payer") or payer
        shown["payer_core"] = data.get("payer_core") or data.get("core_name")
    candidates = [c for c in data.get("candidates") or [] if isinstance(c, dict)]
    if candidates:
        best = candidates[0]
        shown["candidate_id"] = best.get("customer_id")
        shown["candidate"] = best.get("customer_name") or best.get("name")
        shown["score"] = best.get("score")
        shown["others"] = [(c.get("customer_id"), c.get("score")) for c in candidates[1:4]]
    shown["candidate"] = shown["candidate"] or data.get("candidate_name") or data.get("candidate")
    shown["candidate_id"] = shown["candidate_id"] or data.get("candidate_customer_id")
    if shown["score"] is None:
        shown["score"] = data.get("score", data.get("memo_payer_score"))
    return shown


def customer_names(reader: MartReader, customer_ids: set[str]) -> dict[str, str]:
    """Registered names of a few customers (the collection-health table, else the orders)."""
    ids = sorted(i for i in customer_ids if i)
    if not ids:
        return {}
    if reader.has("mart.customer_collection_health"):
        sql = "SELECT customer_id, any_value(customer_name) FROM mart.customer_collection_health WHERE list_contains(?, customer_id) GROUP BY 1"
    elif reader.has_column("mart.fct_order_reconciliation", "customer_name"):
        sql = "SELECT customer_id, any_value(customer_name) FROM mart.fct_order_reconciliation WHERE list_contains(?, customer_id) GROUP BY 1"
    else:
        return {}
    return dict(reader.conn.execute(sql, [ids]).fetchall())


def review_queue(reader: MartReader, limit: int) -> dict:
    result = {"rows": [], "count": 0, "amount": Decimal(0)}
    if not reader.has("mart.fct_receipt_matches"):
        return result
    table = "mart.fct_receipt_matches"
    result["count"], result["amount"] = reader.conn.execute(
        f"SELECT count(*), coalesce(sum(allocated_amount), 0) FROM {table} WHERE match_status = 'suggested'"
    ).fetchone()
    rows = reader.rows(
        f"""
        SELECT m.account_no, m.txn_id, m.customer_id, m.order_id, m.allocated_amount,
               m.match_method, m.match_score,
               {reader.column(table, 'txn_time', prefix='m')}, {reader.column(table, 'amount', prefix='m')},
               {reader.column(table, 'counterparty_name', prefix='m')}, {reader.column(table, 'memo', prefix='m')},
               {reader.column(table, 'evidence', prefix='m')}
        FROM {table} m
        WHERE m.match_status = 'suggested'
        ORDER BY m.txn_time NULLS LAST, m.account_no, m.txn_id, m.order_id NULLS LAST LIMIT ?
        """,
        [limit],
    )
    for row in rows:
        row["evidence_shown"] = parse_evidence(row.pop("evidence"))
    names = customer_names(
        reader, {r["customer_id"] for r in rows} | {r["evidence_shown"]["candidate_id"] for r in rows}
    )
    for row in rows:
        row["customer_name"] = names.get(row["customer_id"])
        shown = row["evidence_shown"]
        shown["candidate"] = shown["candidate"] or names.get(shown["candidate_id"])
    result["rows"] = rows
    return result


def is_suggested(reader: MartReader, account_no: str, txn_id: str, customer_id: str, order_id: str) -> bool:
    """Whether the publication holds this suggestion (a decision must name one it showed)."""
    if not reader.has("mart.fct_receipt_matches"):
        return False
    return bool(
        reader.value(
            """
            SELECT count(*) FROM mart.fct_receipt_matches
            WHERE match_status = 'suggested' AND account_no = ? AND txn_id = ?
              AND coalesce(customer_id, '') = ? AND coalesce(order_id, '') = ?
            """,
            [account_no, txn_id, customer_id, order_id],
        )
    )
