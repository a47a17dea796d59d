"""Alert rules (CONTRACT.md section 3) -> rows of `mart.alerts`, plus the alert history.

`evaluate_alerts` is read-only: it turns the warehouse state at the run's as-of into one row
per alert. `write_alerts` keeps `mart.alerts` (the alerts open at this as-of) and
`mart.alert_history` (one row per episode of a fact: first seen, last seen, resolved).

`alert_id` hashes the alert type and the fact's own key (transaction, order + cutoff,
salesperson + periods, ...), never the as-of, so the same fact keeps its id across runs.
Boundaries follow the contract's wording: "more than 72 hours", "more than 2 hours",
"above 10%", "below 95%" are strict; exactly at the threshold does not alert.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Iterable, NamedTuple

import duckdb
import pandas as pd

from recon_pipeline.alerts import health
from recon_pipeline.alerts.health import LINKED_STATUSES, plain_rows
from recon_pipeline.as_of import as_naive_datetime, duration_text, hours_between, last_closed_periods, next_cutoff
from recon_pipeline.money import cents_to_decimal, format_yuan
from recon_pipeline.settings import Settings
from recon_pipeline.faults import crash_point

ALERT_TYPES = (
    "amount_mismatch",
    "receipt_not_written_off",
    "salesperson_discrepancy",
    "cutoff_unarchived",
    "approval_stalled",
    "match_rate_low",
)
CONTRACT_COLUMNS = ["alert_id", "alert_level", "alert_type", "entity_id", "recipient", "as_of", "message"]
EXTRA_COLUMNS = [
    "cc",
    "escalate_to",
    "severity",
    "order_id",
    "salesperson_id",
    "owner_name",
    "amount",
    "runbook_url",
]
ALERT_COLUMNS = CONTRACT_COLUMNS + EXTRA_COLUMNS
SEVERITY = {1: "一级预警", 2: "二级预警", 3: "三级预警", None: "提醒"}


# --- small helpers -------------------------------------------------------------------------


def stable_alert_id(alert_type: str, *fact_key: Any) -> str:
    """Same type + same fact key -> same id, whatever the run."""
    text = "|".join([alert_type, *("" if part is None else str(part) for part in fact_key)])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def format_percent(rate: Fraction | float) -> str:
    return f"{float(rate) * 100:.1f}%"


def format_time(value: datetime | pd.Timestamp | None) -> str:
    return "-" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


def _clean(value: Any) -> Any:
    return None if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)) else value


@dataclass(frozen=True)
class Person:
    salesperson_id: str | None
    name: str | None
    email: str | None
    manager_email: str | None

    @property
    def label(self) -> str:
        return self.name or self.salesperson_id or "未指定"


def load_people(conn: duckdb.DuckDBPyConnection) -> dict[str, Person]:
    rows = conn.execute(
        "SELECT salesperson_id, name, email, manager_email FROM staging.stg_salespeople"
    ).fetchall()
    return {row[0]: Person(*row) for row in rows}


def _person(people: dict[str, Person], salesperson_id: Any) -> Person:
    salesperson_id = _clean(salesperson_id)
    return people.get(salesperson_id) or Person(salesperson_id, None, None, None)


@dataclass(frozen=True)
class RuleContext:
    conn: duckdb.DuckDBPyConnection
    as_of: datetime
    settings: Settings
    people: dict[str, Person]

    @property
    def notify(self) -> dict[str, Any]:
        return self.settings.raw.get("notify") or {}

    def runbook_url(self, alert_type: str) -> str:
        base = self.notify.get("runbook_base_url") or "docs/runbook.md"
        return f"{base}#{alert_type}"

    def or_fallback(self, email: str | None) -> str | None:
        return email or self.notify.get("fallback_recipient") or None


def _alert(
    ctx: RuleContext,
    alert_type: str,
    level: int | None,
    entity_id: str,
    fact_key: Iterable[Any],
    recipient: str | None,
    message: str,
    *,
    cc: str | None = None,
    escalate_to: str | None = None,
    order_id: str | None = None,
    salesperson_id: str | None = None,
    owner_name: str | None = None,
    amount_cents: int | None = None,
) -> dict[str, Any]:
    return {
        "alert_id": stable_alert_id(alert_type, *fact_key),
        "alert_level": level,
        "alert_type": alert_type,
        "entity_id": entity_id,
        "recipient": ctx.or_fallback(recipient),
        "as_of": ctx.as_of,
        "message": message,
        "cc": cc or None,
        "escalate_to": escalate_to or None,
        "severity": SEVERITY[level],
        "order_id": order_id,
        "salesperson_id": salesperson_id,
        "owner_name": owner_name,
        "amount": cents_to_decimal(amount_cents),
        "runbook_url": ctx.runbook_url(alert_type),
    }


# --- rules ---------------------------------------------------------------------------------


def _has_amount_mismatch(evidence: Any) -> bool:
    if not isinstance(evidence, str):
        return False
    try:
        parsed = json.loads(evidence)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("amount_mismatch") is True


def amount_mismatch_alerts(ctx: RuleContext) -> list[dict]:
    """Level 1: a linked credit whose amount fits no open amount of its customer (the matching
    engine marks it with `"amount_mismatch": true` in the evidence). To the customer's owner."""
    rows = ctx.conn.execute(
        """
        SELECT m.account_no, m.txn_id, m.customer_id, m.txn_time,
               CAST(m.amount * 100 AS BIGINT) AS amount_cents, m.counterparty_name, m.evidence,
               c.customer_name, c.owner_salesperson_id
        FROM mart.fct_receipt_matches m
        LEFT JOIN staging.stg_customers c USING (customer_id)
        WHERE m.evidence LIKE '%amount_mismatch%' AND m.amount > 0 AND m.txn_time <= ?
        ORDER BY m.account_no, m.txn_id
        """,
        [ctx.as_of],
    ).df()
    alerts: dict[str, dict] = {}
    for row in plain_rows(rows):
        if not _has_amount_mismatch(row.evidence):
            continue
        owner = _person(ctx.people, row.owner_salesperson_id)
        customer = _clean(row.customer_name) or _clean(row.counterparty_name) or _clean(row.customer_id) or "未知客户"
        message = (
            f"【一级】流水 {row.txn_id} 于 {format_time(row.txn_time)} 到账 {format_yuan(row.amount_cents)}"
            f"（{customer}），与该客户任何未结金额（单笔或组合）都对不上，请核实款项用途。"
        )
        alert = _alert(
            ctx, "amount_mismatch", 1, row.txn_id, (row.account_no, row.txn_id), owner.email, message,
            cc=owner.manager_email, salesperson_id=owner.salesperson_id, owner_name=owner.label,
            amount_cents=row.amount_cents,
        )
        alerts.setdefault(alert["alert_id"], alert)
    return list(alerts.values())


def receipt_not_written_off_alerts(ctx: RuleContext) -> list[dict]:
    """Level 2: a credit linked to an order, received more than N hours before as_of, without an
    active write-off for that transaction and order. To the order's salesperson; escalates to
    the manager (see notify)."""
    hours = float(ctx.settings.alerts["receipt_not_written_off_hours"])
    rows = ctx.conn.execute(
        f"""
        SELECT m.account_no, m.txn_id, m.order_id, m.txn_time,
               CAST(m.allocated_amount * 100 AS BIGINT) AS allocated_cents, o.salesperson_id
        FROM mart.fct_receipt_matches m
        LEFT JOIN staging.stg_crm_contracts o USING (order_id)
        WHERE m.order_id IS NOT NULL AND m.match_status IN {LINKED_STATUSES}
          AND m.allocated_amount > 0 AND m.txn_time < ?
          AND NOT EXISTS (
            SELECT 1 FROM staging.stg_finance_writeoffs w
            WHERE w.txn_id = m.txn_id AND w.status = 'active'
              AND (w.order_id IS NULL OR w.order_id = m.order_id))
        ORDER BY m.account_no, m.txn_id, m.order_id
        """,
        [ctx.as_of - timedelta(hours=hours)],
    ).df()
    alerts = []
    for row in plain_rows(rows):
        owner = _person(ctx.people, row.salesperson_id)
        age_hours = hours_between(pd.Timestamp(row.txn_time).to_pydatetime(), ctx.as_of)
        message = (
            f"【二级】流水 {row.txn_id} 的 {format_yuan(row.allocated_cents)} 已关联订单 {row.order_id}，"
            f"到账已 {duration_text(age_hours * 3600)}（{format_time(row.txn_time)}）仍未核销，请联系财务核销或更新 CRM。"
        )
        alerts.append(
            _alert(
                ctx, "receipt_not_written_off", 2, row.txn_id, (row.account_no, row.txn_id, row.order_id),
                owner.email, message, escalate_to=owner.manager_email, order_id=row.order_id,
                salesperson_id=owner.salesperson_id, owner_name=owner.label, amount_cents=row.allocated_cents,
            )
        )
    return alerts


def discrepancy_exceeds(signed_cents: int, recognized_cents: int, threshold: Fraction) -> bool:
    """(signed - recognized) / signed strictly above the threshold; nothing signed never alerts."""
    if signed_cents <= 0:
        return False
    return Fraction(signed_cents - recognized_cents, signed_cents) > threshold


class Amounts(NamedTuple):
    signed_cents: int
    recognized_cents: int


def salesperson_discrepancy_alerts(ctx: RuleContext) -> list[dict]:
    """Level 3: discrepancy rate above the threshold in both of the last two closed periods
    (computed exactly from the amounts). To management: the salesperson's manager."""
    threshold = Fraction(str(ctx.settings.alerts["discrepancy_rate_threshold"]))
    latest, previous = last_closed_periods(ctx.as_of, ctx.settings.cutoff_hour, 2)
    rows = ctx.conn.execute(
        """
        SELECT salesperson_id, period,
               CAST(signed_amount * 100 AS BIGINT) AS signed_cents,
               CAST(coalesce(recognized_amount, 0) * 100 AS BIGINT) AS recognized_cents
        FROM mart.salesperson_period_summary
        WHERE period IN (?, ?) AND signed_amount IS NOT NULL AND salesperson_id IS NOT NULL
        ORDER BY salesperson_id, period
        """,
        [previous, latest],
    ).fetchall()
    periods_of: dict[str, dict[str, Amounts]] = {}
    for salesperson_id, period, signed_cents, recognized_cents in rows:
        periods_of.setdefault(salesperson_id, {})[period] = Amounts(int(signed_cents), int(recognized_cents))
    alerts = []
    for salesperson_id, by_period in periods_of.items():
        if set(by_period) != {previous, latest}:
            continue
        if not all(
            discrepancy_exceeds(r.signed_cents, r.recognized_cents, threshold) for r in by_period.values()
        ):
            continue
        person = _person(ctx.people, salesperson_id)
        details = "；".join(
            f"{period} 差异率 {format_percent(Fraction(int(r.signed_cents - r.recognized_cents), int(r.signed_cents)))}"
            f"（签约 {format_yuan(r.signed_cents)}，确认 {format_yuan(r.recognized_cents)}）"
            for period, r in ((previous, by_period[previous]), (latest, by_period[latest]))
        )
        message = (
            f"【三级】销售 {person.label} 连续两个已封关期间差异率超过 {format_percent(threshold)}：{details}，请复核。"
        )
        alerts.append(
            _alert(
                ctx, "salesperson_discrepancy", 3, salesperson_id, (salesperson_id, previous, latest),
                person.manager_email, message, salesperson_id=salesperson_id, owner_name=person.label,
                amount_cents=int(by_period[latest].signed_cents - by_period[latest].recognized_cents),
            )
        )
    return alerts


def cutoff_unarchived_alerts(ctx: RuleContext) -> list[dict]:
    """Reminder: strictly less than N hours before the next cutoff, each signed order not yet
    archived. To the owner, cc the manager."""
    cutoff = next_cutoff(ctx.as_of, ctx.settings.cutoff_hour)
    hours_left = hours_between(ctx.as_of, cutoff)
    if hours_left >= float(ctx.settings.alerts["cutoff_warning_hours"]):
        return []
    alerts = []
    for row in plain_rows(health.unarchived_signed_contracts(ctx.conn, ctx.as_of)):
        owner = _person(ctx.people, row.salesperson_id)
        message = (
            f"距 {format_time(cutoff)} 封关还有 {duration_text(hours_left * 3600)}：订单 {row.order_id}"
            f"（{_clean(row.customer_name) or _clean(row.customer_id) or '-'}，{format_yuan(row.amount_cents)}）"
            f"已签约但法务尚未归档，请尽快提交归档。"
        )
        alerts.append(
            _alert(
                ctx, "cutoff_unarchived", None, row.order_id, (row.order_id, cutoff.isoformat()), owner.email,
                message, cc=owner.manager_email, order_id=row.order_id, salesperson_id=owner.salesperson_id,
                owner_name=owner.label, amount_cents=row.amount_cents,
            )
        )
    return alerts


def approval_stalled_alerts(ctx: RuleContext) -> list[dict]:
    """Reminder: approval pending strictly longer than N hours (as_of - approval_submitted_at).
    To the owner, cc the manager. A resubmission is a new fact (new id)."""
    alerts = []
    for row in plain_rows(health.stalled_approvals(ctx.conn, ctx.as_of, ctx.settings)):
        owner = _person(ctx.people, row.salesperson_id)
        submitted = pd.Timestamp(row.approval_submitted_at).to_pydatetime()
        waited = hours_between(submitted, ctx.as_of)
        message = (
            f"订单 {row.order_id}（{format_yuan(row.amount_cents)}）审批已等待 {duration_text(waited * 3600)}"
            f"（{format_time(submitted)} 提交），请催办。"
        )
        alerts.append(
            _alert(
                ctx, "approval_stalled", None, row.order_id, (row.order_id, submitted.isoformat()), owner.email,
                message, cc=owner.manager_email, order_id=row.order_id, salesperson_id=owner.salesperson_id,
                owner_name=owner.label, amount_cents=row.amount_cents,
            )
        )
    return alerts


def match_rate_low_alerts(ctx: RuleContext) -> list[dict]:
    """Reminder: contract_receipt_match_rate strictly below its threshold. To the health
    recipients of `notify:` (first one, the others in copy)."""
    match = health.contract_receipt_match_rate(ctx.conn, ctx.as_of, ctx.settings)
    threshold = Fraction(str(ctx.settings.alerts["match_rate_threshold"]))
    if match.rate is None or match.rate >= threshold:
        return []
    recipients = list(ctx.notify.get("health_recipients") or [])
    message = (
        f"近 {match.window_days} 天合同回款匹配率 {format_percent(match.rate)}，低于阈值 {format_percent(threshold)}："
        f"{match.credits} 笔到账中仅 {match.linked} 笔关联到订单，请检查未匹配流水。"
    )
    metric = "contract_receipt_match_rate"
    return [
        _alert(
            ctx, "match_rate_low", None, metric, (metric,), recipients[0] if recipients else None, message,
            cc=";".join(recipients[1:]) or None, owner_name="财务",
        )
    ]


RULES = {
    "amount_mismatch": amount_mismatch_alerts,
    "receipt_not_written_off": receipt_not_written_off_alerts,
    "salesperson_discrepancy": salesperson_discrepancy_alerts,
    "cutoff_unarchived": cutoff_unarchived_alerts,
    "approval_stalled": approval_stalled_alerts,
    "match_rate_low": match_rate_low_alerts,
}


def evaluate_alerts(conn: duckdb.DuckDBPyConnection, as_of: datetime | str, settings: Settings) -> pd.DataFrame:
    """All alerts that hold at as_of, one row each (columns: ALERT_COLUMNS)."""
    ctx = RuleContext(conn, as_naive_datetime(as_of), settings, load_people(conn))
    records = [alert for rule in RULES.values() for alert in rule(ctx)]
    frame = pd.DataFrame.from_records(records, columns=ALERT_COLUMNS)
    frame = frame.drop_duplicates("alert_id").reset_index(drop=True)
    frame["alert_level"] = frame["alert_level"].astype("Int64")
    return frame


# --- writing: open alerts and history ----------------------------------------------------------

FACT_COLUMNS_DDL = """
  alert_level INTEGER,
  alert_type VARCHAR NOT NULL,
  entity_id VARCHAR NOT NULL,
  recipient VARCHAR,
  message VARCHAR NOT NULL,
  cc VARCHAR,
  escalate_to VARCHAR,
  severity VARCHAR,
  order_id VARCHAR,
  salesperson_id VARCHAR,
  owner_name VARCHAR,
  amount DECIMAL(18,2),
  runbook_url VARCHAR
"""
FACT_COLUMNS = [c for c in ALERT_COLUMNS if c not in ("alert_id", "as_of")]

ALERTS_DDL = f"""
CREATE TABLE IF NOT EXISTS mart.alerts (
  alert_id VARCHAR NOT NULL PRIMARY KEY,
  as_of TIMESTAMP NOT NULL,
  first_seen_as_of TIMESTAMP NOT NULL,
  {FACT_COLUMNS_DDL}
)
"""

HISTORY_DDL = f"""
CREATE TABLE IF NOT EXISTS mart.alert_history (
  alert_id VARCHAR NOT NULL,
  first_seen_as_of TIMESTAMP NOT NULL,
  last_seen_as_of TIMESTAMP NOT NULL,
  resolved_as_of TIMESTAMP,
  {FACT_COLUMNS_DDL},
  PRIMARY KEY (alert_id, first_seen_as_of)
)
"""


def ensure_alert_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS mart")
    conn.execute(ALERTS_DDL)
    conn.execute(HISTORY_DDL)


def _typed_fact_select(alias: str) -> str:
    """The fact columns of a registered frame, cast to the table's types."""
    casts = {"alert_level": "INTEGER", "amount": "DECIMAL(18,2)"}
    return ", ".join(
        f"CAST({alias}.{c} AS {casts.get(c, 'VARCHAR')}) AS {c}" for c in FACT_COLUMNS
    )


def write_alerts(conn: duckdb.DuckDBPyConnection, alerts: pd.DataFrame, as_of: datetime | str) -> pd.DataFrame:
    """Record the alerts holding at as_of.

    History episodes (alert_id, first_seen_as_of): an alert still holding extends its open
    episode (last_seen, latest facts); a new one opens an episode; an open episode whose fact
    no longer holds is resolved at this as_of (kept, not deleted); a fact that comes back after
    being resolved opens a new episode (and is notified again). Re-running the same as_of
    changes nothing. `mart.alerts` becomes exactly the open alerts at as_of, with first seen.
    Returns mart.alerts.
    """
    as_of = as_naive_datetime(as_of)
    ensure_alert_tables(conn)
    current = alerts[ALERT_COLUMNS].drop_duplicates("alert_id").copy()
    current["amount"] = current["amount"].map(lambda d: None if d is None or pd.isna(d) else str(d)).astype(object)
    current["alert_level"] = current["alert_level"].astype("Int64")
    fact_select = _typed_fact_select("c")
    holds_at_as_of = "h.alert_id = c.alert_id AND h.first_seen_as_of <= $as_of AND (h.resolved_as_of IS NULL OR h.resolved_as_of > $as_of)"
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.register("current_alerts", current)
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE current_alert_facts AS
            SELECT c.alert_id, {fact_select} FROM current_alerts c
            """
        )
        assignments = ", ".join(
            f"{col} = CASE WHEN $as_of >= h.last_seen_as_of THEN c.{col} ELSE h.{col} END" for col in FACT_COLUMNS
        )
        conn.execute(
            f"""
            UPDATE mart.alert_history AS h
            SET last_seen_as_of = greatest(h.last_seen_as_of, $as_of), {assignments}
            FROM current_alert_facts AS c
            WHERE {holds_at_as_of}
            """,
            {"as_of": as_of},
        )
        conn.execute(
            f"""
            INSERT INTO mart.alert_history (alert_id, first_seen_as_of, last_seen_as_of, resolved_as_of, {", ".join(FACT_COLUMNS)})
            SELECT c.alert_id, $as_of, $as_of, NULL, {", ".join("c." + col for col in FACT_COLUMNS)}
            FROM current_alert_facts c
            WHERE NOT EXISTS (SELECT 1 FROM mart.alert_history h WHERE {holds_at_as_of})
            """,
            {"as_of": as_of},
        )
        conn.execute(
            """
            UPDATE mart.alert_history SET resolved_as_of = $as_of
            WHERE resolved_as_of IS NULL AND last_seen_as_of < $as_of
              AND alert_id NOT IN (SELECT alert_id FROM current_alert_facts)
            """,
            {"as_of": as_of},
        )
        # Built new rather than emptied: DuckDB deletes and re-inserts every row of a keyed
        # table several times slower than it creates one (see workflow.write_sla).
        conn.execute("DROP TABLE mart.alerts")
        conn.execute(ALERTS_DDL)
        conn.execute(
            f"""
            INSERT INTO mart.alerts (alert_id, as_of, first_seen_as_of, {", ".join(FACT_COLUMNS)})
            SELECT c.alert_id, $as_of, h.first_seen_as_of, {", ".join("c." + col for col in FACT_COLUMNS)}
            FROM current_alert_facts c JOIN mart.alert_history h ON {holds_at_as_of}
            """,
            {"as_of": as_of},
        )
        conn.execute("DROP TABLE current_alert_facts")
        conn.unregister("current_alerts")
        crash_point("alerts:write")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return conn.execute("SELECT * FROM mart.alerts ORDER BY alert_type, entity_id, alert_id").df()


def refresh_alerts(conn: duckdb.DuckDBPyConnection, as_of: datetime | str, settings: Settings) -> pd.DataFrame:
    """Evaluate and record the alerts at as_of; returns mart.alerts."""
    return write_alerts(conn, evaluate_alerts(conn, as_of, settings), as_of)


def open_alert_counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Open alerts by type (every contract type, zero included), for reports and `make demo`."""
    ensure_alert_tables(conn)
    counts = dict(conn.execute("SELECT alert_type, count(*) FROM mart.alerts GROUP BY alert_type").fetchall())
    return {alert_type: int(counts.get(alert_type, 0)) for alert_type in ALERT_TYPES}
