"""The health board: `mart.health_metrics` and `mart.customer_collection_health`.

Everything is evaluated at the run's as-of (a naive local datetime), never the wall clock.
Counts and ratios are compared exactly (integers, `Fraction`), money stays in integer cents.
Averages are computed from integer sums (milliseconds) and counts and rounded half-up to a
stated scale (`DELAY_DAYS_SCALE`, `HOURS_SCALE`), never aggregated in floating point: the
order in which a parallel aggregate adds floats changes its last digits, and two runs on the
same inputs must write the same warehouse, bit for bit.

Reads: staging.stg_bank_transactions, staging.stg_crm_contracts, staging.stg_legal_archive,
staging.stg_customers and mart.fct_receipt_matches (order_id, allocated_amount, match_status,
txn_time).
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any, Iterator

import duckdb
import pandas as pd

from recon_pipeline.as_of import as_naive_datetime, hours_between, next_cutoff
from recon_pipeline.money import cents_to_decimal
from recon_pipeline.settings import Settings

LINKED_STATUSES = ("auto_linked", "confirmed")
DELAY_DAYS_SCALE = 2  # mart.customer_collection_health.avg_delay_days_*: DECIMAL(10,2) days
HOURS_SCALE = 2  # avg_approval_hours, hours_to_cutoff: two decimals
_MS_PER_HOUR = 3_600_000
_MS_PER_DAY = 24 * _MS_PER_HOUR


def plain_values(column: pd.Series) -> list:
    """A column as plain Python values (str, int, Decimal, datetime), missing ones None. Iterated
    value by value, pandas' Arrow-backed columns cost most of a rule's time at a million lines."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return [None if t is pd.NaT else t.to_pydatetime() for t in column]
    values = column.astype(object)
    return values.where(values.notna(), None).tolist()


def plain_rows(frame: pd.DataFrame) -> Iterator[Any]:
    """A query result's rows as named tuples of `plain_values`."""
    row = namedtuple("row", frame.columns)
    return map(row._make, zip(*(plain_values(frame[c]) for c in frame.columns)))


def exact_average(total: int, count: int, unit: int, scale: int) -> Decimal | None:
    """total / count / unit rounded half-up (away from zero) to `scale` decimals, exactly
    (None: nothing to average)."""
    if not count:
        return None
    scaled = Fraction(int(total), int(count) * unit) * 10**scale
    whole, rest = divmod(abs(scaled.numerator), scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    return Decimal(whole if scaled >= 0 else -whole).scaleb(-scale)
HEALTH_METRIC_COLUMNS = ["as_of", "metric", "value", "threshold", "status"]
COLLECTION_HEALTH_COLUMNS = [
    "as_of",
    "customer_id",
    "customer_name",
    "owner_salesperson_id",
    "signed_orders_1",
    "signed_orders_2",
    "signed_orders_3",
    "signed_amount_90d",
    "avg_delay_days_1",
    "avg_delay_days_2",
    "avg_delay_days_3",
    "outstanding_amount",
    "high_risk",
    "reason",
]


# --- metric queries -----------------------------------------------------------------------


@dataclass(frozen=True)
class MatchRate:
    credits: int
    linked: int
    window_days: int

    @property
    def rate(self) -> Fraction | None:
        return Fraction(self.linked, self.credits) if self.credits else None


def contract_receipt_match_rate(conn: duckdb.DuckDBPyConnection, as_of: datetime, settings: Settings) -> MatchRate:
    """Share of bank credits of the last N days (window (as_of - N days, as_of]) linked to an order."""
    window_days = int(settings.alerts["match_rate_window_days"])
    credits, linked = conn.execute(
        f"""
        WITH credits AS (
          SELECT DISTINCT account_no, txn_id FROM staging.stg_bank_transactions
          WHERE amount > 0 AND txn_time > ? AND txn_time <= ?
        ), linked AS (
          SELECT DISTINCT account_no, txn_id FROM mart.fct_receipt_matches
          WHERE order_id IS NOT NULL AND match_status IN {LINKED_STATUSES}
        )
        SELECT count(*), count(l.txn_id)
        FROM credits c LEFT JOIN linked l USING (account_no, txn_id)
        """,
        [as_of - timedelta(days=window_days), as_of],
    ).fetchone()
    return MatchRate(credits=int(credits), linked=int(linked), window_days=window_days)


def unarchived_signed_contracts(conn: duckdb.DuckDBPyConnection, as_of: datetime) -> pd.DataFrame:
    """Signed orders (signed on or before as_of) without an approved, archived legal record."""
    return conn.execute(
        """
        SELECT c.order_id, c.customer_id, c.customer_name, c.salesperson_id, c.signed_at,
               CAST(c.amount * 100 AS BIGINT) AS amount_cents
        FROM staging.stg_crm_contracts c
        WHERE c.status = 'signed' AND (c.signed_at IS NULL OR c.signed_at <= ?)
          AND NOT EXISTS (
            SELECT 1 FROM staging.stg_legal_archive a
            WHERE a.order_id = c.order_id AND a.review_status = 'approved'
              AND a.archived_at IS NOT NULL AND a.archived_at <= ?)
        ORDER BY c.order_id
        """,
        [as_of, as_of],
    ).df()


def stalled_approvals(conn: duckdb.DuckDBPyConnection, as_of: datetime, settings: Settings) -> pd.DataFrame:
    """Approvals pending strictly longer than `alerts.approval_stalled_hours` at as_of."""
    limit = timedelta(hours=float(settings.alerts["approval_stalled_hours"]))
    return conn.execute(
        """
        SELECT order_id, customer_id, customer_name, salesperson_id, approval_submitted_at,
               CAST(amount * 100 AS BIGINT) AS amount_cents
        FROM staging.stg_crm_contracts
        WHERE approval_status = 'pending' AND approval_submitted_at IS NOT NULL
          AND coalesce(status, '') <> 'cancelled'
          AND approval_submitted_at < ?
        ORDER BY order_id
        """,
        [as_of - limit],
    ).df()


def average_approval_hours(conn: duckdb.DuckDBPyConnection, as_of: datetime, window_days: int) -> Decimal | None:
    """Mean submit-to-decision hours of approvals decided in (as_of - window, as_of], to HOURS_SCALE decimals."""
    total, count = conn.execute(
        """
        SELECT CAST(sum(epoch_ms(approval_updated_at) - epoch_ms(approval_submitted_at)) AS BIGINT), count(*)
        FROM staging.stg_crm_contracts
        WHERE approval_status IN ('approved', 'rejected')
          AND approval_submitted_at IS NOT NULL AND approval_updated_at >= approval_submitted_at
          AND approval_updated_at > ? AND approval_updated_at <= ?
        """,
        [as_of - timedelta(days=window_days), as_of],
    ).fetchone()
    return exact_average(total or 0, count, _MS_PER_HOUR, HOURS_SCALE)


# --- customer collection health ------------------------------------------------------------


def _health_settings(settings: Settings) -> dict[str, Any]:
    defaults = {"collection_window_days": 30, "min_delay_growth_days": 7, "high_risk_customers_threshold": 0}
    return {**defaults, **(settings.raw.get("health") or {})}


def collection_windows(as_of: datetime, window_days: int) -> list[tuple[datetime, datetime]]:
    """Three consecutive half-open windows [start, end) ending at as_of, oldest first."""
    size = timedelta(days=window_days)
    return [(as_of - size * (3 - i), as_of - size * (2 - i)) for i in range(3)]


def _collection_rows(conn: duckdb.DuckDBPyConnection, as_of: datetime, settings: Settings) -> pd.DataFrame:
    """Per customer and window: orders signed, and the average days an order took to collect.

    An order counts towards a window's delay if it was fully paid inside the window (paid_at -
    signed_at) or is still unpaid at the window's end although signed before the window began
    (end - signed_at: overdue at least one window). Orders signed inside a window and not yet
    paid are too young to say anything. "Paid" = linked credits reach the contract amount within
    the finance tolerance (running sum by txn_time).
    """
    window_days = int(_health_settings(settings)["collection_window_days"])
    windows = collection_windows(as_of, window_days)
    tolerance_cents = int(Decimal(str(settings.amount_tolerance)) * 100)
    values_sql = ", ".join(f"({i + 1}, ?::TIMESTAMP, ?::TIMESTAMP)" for i in range(3))
    params: list[Any] = [bound for window in windows for bound in window]
    params += [as_of, as_of, tolerance_cents]
    return conn.execute(
        f"""
        WITH windows(window_no, start_at, end_at) AS (VALUES {values_sql}),
        orders AS (
          SELECT order_id, customer_id, signed_at, CAST(amount * 100 AS BIGINT) AS amount_cents
          FROM staging.stg_crm_contracts
          WHERE status = 'signed' AND signed_at IS NOT NULL AND customer_id IS NOT NULL AND signed_at <= ?
        ),
        credits AS (
          SELECT order_id, txn_time, CAST(allocated_amount * 100 AS BIGINT) AS cents
          FROM mart.fct_receipt_matches
          WHERE order_id IS NOT NULL AND match_status IN {LINKED_STATUSES} AND txn_time <= ?
        ),
        running AS (
          SELECT order_id, txn_time,
                 sum(cents) OVER (PARTITION BY order_id ORDER BY txn_time
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_cents
          FROM credits
        ),
        paid AS (
          SELECT o.order_id, min(r.txn_time) AS paid_at
          FROM orders o JOIN running r USING (order_id)
          WHERE r.cum_cents >= o.amount_cents - ?
          GROUP BY o.order_id
        ),
        received AS (SELECT order_id, sum(cents) AS received_cents FROM credits GROUP BY order_id),
        per_order AS (
          SELECT o.*, p.paid_at, coalesce(r.received_cents, 0) AS received_cents
          FROM orders o LEFT JOIN paid p USING (order_id) LEFT JOIN received r USING (order_id)
        ),
        delays AS (
          SELECT w.window_no, o.customer_id,
                 CASE WHEN o.paid_at >= w.start_at AND o.paid_at < w.end_at
                        THEN epoch_ms(o.paid_at) - epoch_ms(o.signed_at)
                      WHEN (o.paid_at IS NULL OR o.paid_at >= w.end_at) AND o.signed_at < w.start_at
                        THEN epoch_ms(w.end_at) - epoch_ms(o.signed_at)
                 END AS delay_ms,
                 CASE WHEN o.signed_at >= w.start_at AND o.signed_at < w.end_at THEN 1 ELSE 0 END AS signed_here,
                 CASE WHEN o.signed_at >= w.start_at AND o.signed_at < w.end_at THEN o.amount_cents ELSE 0 END
                   AS signed_cents_here
          FROM per_order o CROSS JOIN windows w
        ),
        outstanding AS (
          SELECT customer_id, sum(greatest(amount_cents - received_cents, 0)) AS outstanding_cents
          FROM per_order WHERE paid_at IS NULL GROUP BY customer_id
        )
        SELECT d.customer_id, d.window_no,
               sum(d.signed_here)::BIGINT AS signed_orders,
               sum(d.signed_cents_here)::BIGINT AS signed_cents,
               CAST(coalesce(sum(d.delay_ms), 0) AS BIGINT) AS delay_ms_total,
               count(d.delay_ms) AS delay_count,
               coalesce(any_value(s.outstanding_cents), 0)::BIGINT AS outstanding_cents,
               any_value(c.customer_name) AS customer_name,
               any_value(c.owner_salesperson_id) AS owner_salesperson_id
        FROM delays d
        LEFT JOIN outstanding s USING (customer_id)
        LEFT JOIN staging.stg_customers c USING (customer_id)
        GROUP BY d.customer_id, d.window_no
        ORDER BY d.customer_id, d.window_no
        """,
        params,
    ).df()


def collection_risk(signed_orders: list[int], delays: list[Decimal | float | None], min_growth_days: float) -> bool:
    """High risk: signed in every window while the collection delay grew window after window."""
    if any(n < 1 for n in signed_orders) or any(d is None for d in delays):
        return False
    d1, d2, d3 = (Decimal(str(d)) for d in delays)
    return d1 < d2 < d3 and d3 - d1 >= Decimal(str(min_growth_days))


def compute_customer_collection_health(
    conn: duckdb.DuckDBPyConnection, as_of: datetime | str, settings: Settings
) -> pd.DataFrame:
    """One row per customer active in the last three windows; `high_risk` with a Chinese reason."""
    as_of = as_naive_datetime(as_of)
    options = _health_settings(settings)
    rows = _collection_rows(conn, as_of, settings)
    if rows.empty:
        return pd.DataFrame(columns=COLLECTION_HEALTH_COLUMNS)
    rows["avg_delay_days"] = [exact_average(total, count, _MS_PER_DAY, DELAY_DAYS_SCALE)
                              for total, count in zip(rows["delay_ms_total"], rows["delay_count"])]
    wide = rows.pivot(index="customer_id", columns="window_no", values=["signed_orders", "avg_delay_days"])
    per_customer = rows.groupby("customer_id", sort=True).agg(
        signed_cents=("signed_cents", "sum"),
        outstanding_cents=("outstanding_cents", "first"),
        customer_name=("customer_name", "first"),
        owner_salesperson_id=("owner_salesperson_id", "first"),
    )
    frame = pd.DataFrame(index=per_customer.index)
    for i in (1, 2, 3):
        frame[f"signed_orders_{i}"] = wide[("signed_orders", i)].fillna(0).astype(int)
        frame[f"avg_delay_days_{i}"] = [None if pd.isna(d) else d for d in wide[("avg_delay_days", i)]]
    active = (frame[[f"signed_orders_{i}" for i in (1, 2, 3)]].sum(axis=1) > 0) | frame[
        [f"avg_delay_days_{i}" for i in (1, 2, 3)]
    ].notna().any(axis=1)
    frame = frame[active].join(per_customer)
    min_growth = options["min_delay_growth_days"]
    days = 3 * int(options["collection_window_days"])
    high_risk, reasons = [], []
    for row in frame.itertuples():
        signed = [row.signed_orders_1, row.signed_orders_2, row.signed_orders_3]
        delays = [row.avg_delay_days_1, row.avg_delay_days_2, row.avg_delay_days_3]
        risky = collection_risk(signed, delays, min_growth)
        high_risk.append(risky)
        reasons.append(
            f"近{days}天持续签约（{signed[0]}/{signed[1]}/{signed[2]} 单），"
            f"回款周期拉长：{delays[0]:.1f} → {delays[1]:.1f} → {delays[2]:.1f} 天"
            if risky
            else None
        )
    frame["high_risk"] = high_risk
    frame["reason"] = reasons
    frame["as_of"] = as_of
    frame["signed_amount_90d"] = [cents_to_decimal(c) for c in frame["signed_cents"]]
    frame["outstanding_amount"] = [cents_to_decimal(c) for c in frame["outstanding_cents"]]
    return frame.reset_index()[COLLECTION_HEALTH_COLUMNS]


# --- the board ------------------------------------------------------------------------------


def _metric(as_of: datetime, metric: str, value: float | None, threshold: float | None, red: bool) -> dict:
    return {
        "as_of": as_of,
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "status": "red" if red else "green",
    }


def compute_health_metrics(
    conn: duckdb.DuckDBPyConnection,
    as_of: datetime | str,
    settings: Settings,
    collection_health: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The rows of `mart.health_metrics` for as_of (one per metric).

    Status rules: the match rate is red strictly below its threshold (no credits in the window:
    null value, green); the cutoff pair is red when the cutoff is strictly less than
    `cutoff_warning_hours` away and signed contracts are still unarchived (each carries a
    threshold only while it applies); counts are red above their threshold; the average
    approval time is red above `approval_stalled_hours`. So red <=> the value breaks its
    threshold, for every metric.
    """
    as_of = as_naive_datetime(as_of)
    alerts = settings.alerts
    options = _health_settings(settings)
    window_days = int(alerts["match_rate_window_days"])

    match = contract_receipt_match_rate(conn, as_of, settings)
    match_threshold = Fraction(str(alerts["match_rate_threshold"]))
    rate = match.rate

    hours_left = hours_between(as_of, next_cutoff(as_of, settings.cutoff_hour))
    warning_hours = float(alerts["cutoff_warning_hours"])
    unarchived = len(unarchived_signed_contracts(conn, as_of))
    cutoff_red = hours_left < warning_hours and unarchived > 0

    stalled = len(stalled_approvals(conn, as_of, settings))
    stalled_hours = float(alerts["approval_stalled_hours"])
    avg_hours = average_approval_hours(conn, as_of, window_days)

    if collection_health is None:
        collection_health = compute_customer_collection_health(conn, as_of, settings)
    high_risk = int(collection_health["high_risk"].sum()) if len(collection_health) else 0
    high_risk_threshold = int(options["high_risk_customers_threshold"])

    rows = [
        _metric(
            as_of,
            "contract_receipt_match_rate",
            None if rate is None else float(rate),
            float(match_threshold),
            rate is not None and rate < match_threshold,
        ),
        # The cutoff pair's thresholds apply only when they can turn the board red, so a value
        # and its threshold never contradict the status (68 unarchived a month before the
        # cutoff is no alarm: no threshold; 10 hours left with nothing unarchived neither).
        _metric(as_of, "hours_to_cutoff", round(hours_left, HOURS_SCALE), warning_hours if unarchived else None, cutoff_red),
        _metric(
            as_of, "unarchived_signed_contracts", float(unarchived),
            0.0 if hours_left < warning_hours else None, cutoff_red,
        ),
        _metric(as_of, "stalled_approvals", float(stalled), 0.0, stalled > 0),
        _metric(
            as_of,
            "avg_approval_hours",
            None if avg_hours is None else float(avg_hours),
            stalled_hours,
            avg_hours is not None and avg_hours > stalled_hours,
        ),
        _metric(as_of, "high_risk_customers", float(high_risk), float(high_risk_threshold), high_risk > high_risk_threshold),
    ]
    return pd.DataFrame.from_records(rows, columns=HEALTH_METRIC_COLUMNS)


HEALTH_METRICS_DDL = """
CREATE TABLE IF NOT EXISTS mart.health_metrics (
  as_of TIMESTAMP NOT NULL,
  metric VARCHAR NOT NULL,
  value DOUBLE,
  threshold DOUBLE,
  status VARCHAR NOT NULL,
  PRIMARY KEY (as_of, metric)
)
"""

COLLECTION_HEALTH_DDL = """
CREATE TABLE IF NOT EXISTS mart.customer_collection_health (
  as_of TIMESTAMP NOT NULL,
  customer_id VARCHAR NOT NULL,
  customer_name VARCHAR,
  owner_salesperson_id VARCHAR,
  signed_orders_1 INTEGER,
  signed_orders_2 INTEGER,
  signed_orders_3 INTEGER,
  signed_amount_90d DECIMAL(18,2),
  avg_delay_days_1 DECIMAL(10,2),
  avg_delay_days_2 DECIMAL(10,2),
  avg_delay_days_3 DECIMAL(10,2),
  outstanding_amount DECIMAL(18,2),
  high_risk BOOLEAN NOT NULL,
  reason VARCHAR
)
"""


def write_health_metrics(conn: duckdb.DuckDBPyConnection, metrics: pd.DataFrame, as_of: datetime | str) -> None:
    """Replace the rows of this as_of in mart.health_metrics; other as-ofs are kept (history)."""
    as_of = as_naive_datetime(as_of)
    conn.execute("CREATE SCHEMA IF NOT EXISTS mart")
    conn.execute(HEALTH_METRICS_DDL)
    frame = metrics[HEALTH_METRIC_COLUMNS].astype({"value": "float64", "threshold": "float64"})
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM mart.health_metrics WHERE as_of = ?", [as_of])
        conn.register("health_metrics_rows", frame)
        conn.execute(
            "INSERT INTO mart.health_metrics SELECT CAST(as_of AS TIMESTAMP), metric, value, threshold, status "
            "FROM health_metrics_rows"
        )
        conn.unregister("health_metrics_rows")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def write_customer_collection_health(conn: duckdb.DuckDBPyConnection, health: pd.DataFrame) -> None:
    """Replace mart.customer_collection_health with the latest evaluation (a snapshot table)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS mart")
    conn.execute(COLLECTION_HEALTH_DDL)
    frame = health[COLLECTION_HEALTH_COLUMNS].copy()
    for exact in ("signed_amount_90d", "outstanding_amount", "avg_delay_days_1", "avg_delay_days_2", "avg_delay_days_3"):
        frame[exact] = frame[exact].map(lambda d: None if d is None or pd.isna(d) else str(d)).astype(object)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM mart.customer_collection_health")
        if len(frame):
            conn.register("collection_rows", frame)
            conn.execute(
                """
                INSERT INTO mart.customer_collection_health
                SELECT CAST(as_of AS TIMESTAMP), customer_id, customer_name, owner_salesperson_id,
                       signed_orders_1, signed_orders_2, signed_orders_3,
                       CAST(signed_amount_90d AS DECIMAL(18,2)),
                       CAST(avg_delay_days_1 AS DECIMAL(10,2)), CAST(avg_delay_days_2 AS DECIMAL(10,2)),
                       CAST(avg_delay_days_3 AS DECIMAL(10,2)),
                       CAST(outstanding_amount AS DECIMAL(18,2)), high_risk, reason
                FROM collection_rows
                """
            )
            conn.unregister("collection_rows")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def refresh_health(conn: duckdb.DuckDBPyConnection, as_of: datetime | str, settings: Settings) -> pd.DataFrame:
    """Compute and write both health tables for as_of; returns the metric rows."""
    collection = compute_customer_collection_health(conn, as_of, settings)
    metrics = compute_health_metrics(conn, as_of, settings, collection_health=collection)
    write_customer_collection_health(conn, collection)
    write_health_metrics(conn, metrics, as_of)
    return metrics
