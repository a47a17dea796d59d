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
from recon_pipeline.dashboard.access import Scope
from recon_pipeline.dashboard.formatting import hours_until

LINKED_STATUSES = ("auto_linked", "confirmed")
LIFECYCLE_STEPS = ("已签约", "已归档", "已开票", "已回款", "已闭环")
GROUP_COLUMNS = {"region": "region_code", "industry": "industry", "salesperson": "salesperson_id"}


def published_columns(conn: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Tables of the publication (`mart.x`, `meta.x`) and their columns."""
    columns: dict[str, set[str]] = {}
    for schema, table, column in conn.execute(
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
        "WHERE schema_name IN ('mart', 'meta') AND database_name = current_database()"
    ).fetchall():
        columns.setdefault(f"{schema}.{table}", set()).add(column)
    return columns


class MartReader:
    """A read-only connection on the published file plus what it holds (tables, columns)."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, columns: dict[str, set[str]] | None = None):
        self.conn = conn
        self._columns = columns if columns is not None else published_columns(conn)

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
    scope: Scope = Scope()

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
        if not self.scope.everything:
            clause, scope_params = self.scope.sql(f"{alias}.salesperson_id")
            clauses.append(clause)
            params += scope_params
        return " AND ".join(clauses), params

    @property
    def narrowed(self) -> bool:
        return bool(self.region or self.industry or self.salesperson or not self.scope.everything)


def filter_options(reader: MartReader, scope: Scope = Scope()) -> dict[str, list[str]]:
    if not reader.has("mart.fct_order_reconciliation"):
        return {"region": [], "industry": [], "salesperson": []}
    clause, params = scope.sql("salesperson_id")
    options = {}
    for key, column in GROUP_COLUMNS.items():
        options[key] = [
            row["v"]
            for row in reader.rows(
                f"SELECT DISTINCT {column} AS v FROM mart.fct_order_reconciliation "
                f"WHERE {column} IS NOT NULL AND {clause} ORDER BY 1 LIMIT 500",
                params,
            )
        ]
    return options


def signed_at_sql(reader: MartReader) -> str:
    # CRM signing time (what the CRM shows); the sales leg's close time when signed_at is absent.
    if reader.has_column("mart.fct_order_reconciliation", "signed_at"):
        return "coalesce(o.signed_at, o.sales_leg_closed_at)"
    return "o.sales_leg_closed_at"


def _signed_month_sql(reader: MartReader) -> str:
    return f"strftime({signed_at_sql(reader)}, '%Y-%m')"


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
    signed_at = signed_at_sql(reader)
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


def lifecycle_funnel(reader: MartReader, filters: OrderFilters, tolerance: Decimal) -> list[dict]:
    """Every signed order (cancelled ones excluded) by how far it got: signed -> archived ->
    invoiced -> received -> closed (all three legs, the mart's is_closed). An order is *stuck*
    at the last step it completed. Unfiltered, the closed count is `recon run`'s closed count.
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
        SELECT CASE
                 WHEN coalesce(o.is_closed, FALSE) THEN 5
                 WHEN o.legal_leg_closed_at IS NULL THEN 1
                 WHEN coalesce(o.invoiced_amount, 0) < o.contract_amount - ? THEN 2
                 WHEN coalesce(o.received_amount, 0) < o.contract_amount - ? THEN 3
                 ELSE 4 END AS stage,
               count(*) AS orders, sum(o.contract_amount) AS amount
        FROM mart.fct_order_reconciliation o
        WHERE {where} AND (o.sales_leg_closed_at IS NOT NULL OR coalesce(o.is_closed, FALSE))
          AND coalesce(o.status, '') <> 'cancelled'
        GROUP BY 1
        """,
        [tolerance, tolerance] + params,
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


def orders_at_risk(reader: MartReader, limit: int, scope: Scope = Scope()) -> dict:
    """Signed orders not yet archived (they miss the cutoff unless archived), largest first."""
    result = {"rows": [], "count": 0, "amount": Decimal(0)}
    if not reader.has("mart.fct_order_reconciliation"):
        return result
    table = "mart.fct_order_reconciliation"
    clause, params = scope.sql("o.salesperson_id")
    where = (f"o.sales_leg_closed_at IS NOT NULL AND o.legal_leg_closed_at IS NULL AND NOT coalesce(o.is_closed, FALSE) "
             f"AND coalesce(o.status, '') <> 'cancelled' AND {clause}")
    count, amount = reader.conn.execute(
        f"SELECT count(*), coalesce(sum(contract_amount), 0) FROM {table} o WHERE {where}", params
    ).fetchone()
    alerted = ""
    if reader.has("mart.alerts"):
        alerted = (
            ", EXISTS (SELECT 1 FROM mart.alerts a WHERE a.alert_type = 'cutoff_unarchived' "
            "AND a.entity_id = o.order_id) AS alerted"
        )
    result["rows"] = reader.rows(
        f"""
        SELECT o.order_id, o.customer_id, {reader.column(table, 'customer_name', prefix='o')},
               {reader.column(table, 'contract_no', prefix='o')}, o.salesperson_id,
               {reader.column(table, 'salesperson_name', prefix='o')}, o.region_code,
               o.contract_amount, o.outstanding_amount, o.sales_leg_closed_at{alerted}
        FROM {table} o WHERE {where}
        ORDER BY o.contract_amount DESC, o.order_id LIMIT ?
        """,
        params + [limit],
    )
    result["count"], result["amount"] = count, amount
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
