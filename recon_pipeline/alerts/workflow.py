"""The alert workflow: who acknowledged, triaged, responded to or resolved what, and when it is
late. Evaluated at the run's as-of, written to `mart.alert_sla`; overdue items escalate to the
manager through the notifier (notify.plan_escalations).

Items (each with episodes: from first seen to resolved, a fact that comes back is a new one):
- an alert (`mart.alert_history`), class level_1 / level_2 / level_3 / reminder;
- a diff-list item (`mart.diff_history`, kept here from `mart.diff_list` like the alert
  history), class diff_list;
- the health board (`mart.health_metrics`): red from the first as-of with a red metric to the
  first as-of with none, class health_red, item id `board`.

Steps and their time limits come from `workflow.sla` in the settings (durations `5m`, `24h`,
`3d`), counted from the episode's start:

    workflow:
      sla:
        health_red: {acknowledge: 5m, triage: 10m}
        diff_list: {respond: 24h}
        level_2: {acknowledge: 24h, resolve: 3d}

Every episode also gets an `acknowledge` (`respond` for the diff list) and a `resolve` step
without a limit when the settings give none, so acknowledgement times and the time to repair
(MTTR) are measured for everything. What completes a step (`mart.fct_alert_actions`, the
dashboard's actions ingested from the landing zone, acted_at <= as-of, inside the episode):
acknowledge / respond: any action; triage: assign, comment or resolve; resolve: a resolve
action, or the fact no longer holding (the episode's resolution).

Status of a step at the as-of: met / late (done after its limit) / pending / overdue (open,
limit passed: escalate) / closed (the episode ended before the step was done).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from recon_pipeline.alerts.health import plain_rows
from recon_pipeline.as_of import as_naive_datetime
from recon_pipeline.settings import Settings

STEP_ACTIONS = {
    "acknowledge": ("acknowledge", "assign", "comment", "resolve"),
    "respond": ("acknowledge", "assign", "comment", "resolve"),
    "triage": ("assign", "comment", "resolve"),
    "resolve": ("resolve",),
}
FIRST_STEP = {"diff_list": "respond"}
SLA_COLUMNS = [
    "item_type", "item_id", "item_class", "episode_start", "episode_end", "item_open", "step", "due_at",
    "done_at", "done_by", "status", "escalate_to", "title", "owner", "as_of",
]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s*$", re.IGNORECASE)

DIFF_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS mart.diff_history (
  diff_id VARCHAR NOT NULL,
  first_seen_as_of TIMESTAMP NOT NULL,
  last_seen_as_of TIMESTAMP NOT NULL,
  resolved_as_of TIMESTAMP,
  diff_type VARCHAR,
  entity_id VARCHAR,
  amount DECIMAL(18,2),
  salesperson_id VARCHAR,
  PRIMARY KEY (diff_id, first_seen_as_of)
)
"""

SLA_DDL = """
CREATE TABLE IF NOT EXISTS mart.alert_sla (
  item_type VARCHAR NOT NULL,      -- alert / diff / health
  item_id VARCHAR NOT NULL,        -- alert_id / diff_id / board
  item_class VARCHAR NOT NULL,     -- level_1 / level_2 / level_3 / reminder / diff_list / health_red
  episode_start TIMESTAMP NOT NULL,
  episode_end TIMESTAMP,           -- resolved (no longer holding) at this as-of
  item_open BOOLEAN NOT NULL,
  step VARCHAR NOT NULL,           -- acknowledge / respond / triage / resolve
  due_at TIMESTAMP,                -- null: measured, no limit
  done_at TIMESTAMP,
  done_by VARCHAR,
  status VARCHAR NOT NULL,         -- met / late / pending / overdue / closed
  escalate_to VARCHAR,             -- the manager(s), ';'-separated
  title VARCHAR,
  owner VARCHAR,
  as_of TIMESTAMP NOT NULL,
  PRIMARY KEY (item_type, item_id, episode_start, step)
)
"""


class WorkflowSettingsError(ValueError):
    """A time limit the settings give that cannot be read (message in Chinese)."""


def parse_duration(text: Any) -> timedelta:
    """`5m`, `10 min`, `24h`, `3d` -> timedelta."""
    match = _DURATION.match(str(text))
    if not match:
        raise WorkflowSettingsError(f"无法识别的时限：{text!r}（示例：5m、24h、3d）")
    value, unit = float(match[1]), match[2].lower()
    return timedelta(minutes=value) if unit in ("m", "min") else timedelta(hours=value) if unit == "h" else timedelta(days=value)


def sla_limits(settings: Settings) -> dict[str, dict[str, timedelta]]:
    """item class -> step -> limit, from `workflow.sla`."""
    configured = ((settings.raw.get("workflow") or {}).get("sla")) or {}
    return {cls: {step: parse_duration(limit) for step, limit in (steps or {}).items()} for cls, steps in configured.items()}


def escalation_recipients(settings: Settings) -> str | None:
    workflow = settings.raw.get("workflow") or {}
    notify = settings.raw.get("notify") or {}
    people = list(workflow.get("escalation_recipients") or notify.get("health_recipients") or [])
    return ";".join(people) or None


def _exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = ? AND table_name = ?", [schema, name]).fetchone()[0] > 0


def _has_column(conn, table: str, column: str) -> bool:
    schema, name = table.split(".")
    return bool(conn.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? AND column_name = ?",
        [schema, name, column]).fetchone()[0])


# --- diff history ----------------------------------------------------------------------------


def record_diff_history(conn: duckdb.DuckDBPyConnection, as_of: datetime) -> None:
    """Episodes of the diff-list items, like mart.alert_history: an item still listed extends
    its open episode, a new one opens one, one no longer listed is resolved at this as-of.
    Re-running the same as-of changes nothing."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS mart")
    conn.execute(DIFF_HISTORY_DDL)
    if not _exists(conn, "mart.diff_list") or not _has_column(conn, "mart.diff_list", "diff_id"):
        return
    owner = "d.salesperson_id" if _has_column(conn, "mart.diff_list", "salesperson_id") else "NULL"
    holds = "h.diff_id = c.diff_id AND h.first_seen_as_of <= $as_of AND (h.resolved_as_of IS NULL OR h.resolved_as_of > $as_of)"
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"""CREATE OR REPLACE TEMP TABLE current_diffs AS
                SELECT d.diff_id, any_value(d.diff_type) AS diff_type, any_value(d.entity_id) AS entity_id,
                       any_value(d.amount) AS amount, any_value({owner}) AS salesperson_id
                FROM mart.diff_list d GROUP BY d.diff_id"""
        )
        conn.execute(
            f"""UPDATE mart.diff_history AS h SET last_seen_as_of = greatest(h.last_seen_as_of, $as_of),
                       amount = c.amount, salesperson_id = c.salesperson_id
                FROM current_diffs AS c WHERE {holds}""",
            {"as_of": as_of},
        )
        conn.execute(
            f"""INSERT INTO mart.diff_history
                SELECT c.diff_id, $as_of, $as_of, NULL, c.diff_type, c.entity_id, c.amount, c.salesperson_id
                FROM current_diffs c WHERE NOT EXISTS (SELECT 1 FROM mart.diff_history h WHERE {holds})""",
            {"as_of": as_of},
        )
        conn.execute(
            """UPDATE mart.diff_history SET resolved_as_of = $as_of
               WHERE resolved_as_of IS NULL AND last_seen_as_of < $as_of
                 AND diff_id NOT IN (SELECT diff_id FROM current_diffs)""",
            {"as_of": as_of},
        )
        conn.execute("DROP TABLE current_diffs")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


# --- items and actions -----------------------------------------------------------------------


def _items(conn: duckdb.DuckDBPyConnection, as_of: datetime, settings: Settings) -> pd.DataFrame:
    """Every episode that started by the as-of: item_type, item_id, item_class, episode_start,
    episode_end, title, owner, escalate_to."""
    fallback = escalation_recipients(settings)
    parts = []
    if _exists(conn, "mart.alert_history"):
        parts.append(conn.execute(
            """SELECT 'alert' AS item_type, alert_id AS item_id,
                      CASE WHEN alert_level IS NULL THEN 'reminder' ELSE 'level_' || CAST(alert_level AS VARCHAR) END AS item_class,
                      first_seen_as_of AS episode_start, resolved_as_of AS episode_end,
                      alert_type || ' ' || entity_id AS title, coalesce(owner_name, recipient) AS owner,
                      coalesce(escalate_to, cc, ?) AS escalate_to
               FROM mart.alert_history WHERE first_seen_as_of <= ?""",
            [fallback, as_of]).df())
    if _exists(conn, "mart.diff_history"):
        managers = (
            "LEFT JOIN staging.stg_salespeople s ON s.salesperson_id = h.salesperson_id"
            if _exists(conn, "staging.stg_salespeople") else
            "LEFT JOIN (SELECT NULL::VARCHAR AS salesperson_id, NULL::VARCHAR AS manager_email, NULL::VARCHAR AS name) s ON FALSE"
        )
        parts.append(conn.execute(
            f"""SELECT 'diff' AS item_type, h.diff_id AS item_id, 'diff_list' AS item_class,
                       h.first_seen_as_of AS episode_start, h.resolved_as_of AS episode_end,
                       h.diff_type || ' ' || h.entity_id AS title, coalesce(s.name, h.salesperson_id, '财务') AS owner,
                       coalesce(s.manager_email, ?) AS escalate_to
                FROM mart.diff_history h {managers} WHERE h.first_seen_as_of <= ?""",
            [fallback, as_of]).df())
    if _exists(conn, "mart.health_metrics"):
        parts.append(conn.execute(
            """WITH boards AS (
                 SELECT as_of, bool_or(status = 'red') AS red FROM mart.health_metrics WHERE as_of <= ? GROUP BY as_of
               ), marked AS (
                 SELECT as_of, red, CASE WHEN red AND NOT coalesce(lag(red) OVER (ORDER BY as_of), FALSE) THEN 1 ELSE 0 END AS starts
                 FROM boards
               ), numbered AS (
                 SELECT as_of, red, sum(starts) OVER (ORDER BY as_of ROWS UNBOUNDED PRECEDING) AS episode FROM marked
               ), episodes AS (
                 SELECT episode, min(as_of) FILTER (WHERE red) AS episode_start,
                        min(as_of) FILTER (WHERE NOT red) AS episode_end
                 FROM numbered WHERE episode > 0 GROUP BY episode
               )
               SELECT 'health' AS item_type, 'board' AS item_id, 'health_red' AS item_class, episode_start, episode_end,
                      '健康看板红灯' AS title, '财务' AS owner, ? AS escalate_to
               FROM episodes WHERE episode_start IS NOT NULL""",
            [as_of, fallback]).df())
    columns = ["item_type", "item_id", "item_class", "episode_start", "episode_end", "title", "owner", "escalate_to"]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def _actions(conn: duckdb.DuckDBPyConnection, as_of: datetime) -> pd.DataFrame:
    columns = ["action_id", "target_type", "target_id", "action", "acted_by", "acted_at"]
    for table in ("mart.fct_alert_actions", "staging.stg_alert_actions"):
        if _exists(conn, table):
            return conn.execute(
                f"SELECT {', '.join(columns)} FROM {table} WHERE acted_at <= ? ORDER BY acted_at, action_id", [as_of]
            ).df()
    return pd.DataFrame(columns=columns)


# --- the SLA evaluation (pure) ---------------------------------------------------------------


def evaluate_sla(items: pd.DataFrame, actions: pd.DataFrame, as_of: datetime,
                 limits: dict[str, dict[str, timedelta]]) -> pd.DataFrame:
    """One row per episode and step (SLA_COLUMNS) at the as-of."""
    by_target: dict[tuple[str, str], list[tuple]] = {}
    for action in plain_rows(actions[["target_type", "target_id", "acted_at", "action", "acted_by"]]):
        by_target.setdefault((action.target_type, action.target_id), []).append(
            (action.acted_at, action.action, action.acted_by))
    records = []
    for item in plain_rows(items):
        start, end = item.episode_start, item.episode_end
        is_open = end is None or end > as_of
        window_end = as_of if is_open else end
        own = [a for a in by_target.get((item.item_type, item.item_id), []) if start <= a[0] <= window_end]
        configured = limits.get(item.item_class, {})
        steps = dict.fromkeys([FIRST_STEP.get(item.item_class, "acknowledge"), *configured, "resolve"])
        for step in steps:
            limit = configured.get(step)
            due = start + limit if limit is not None else None
            done = next(((when, who) for when, action, who in own if action in STEP_ACTIONS[step]), None)
            done_at, done_by = done if done else (None, None)
            if step == "resolve" and not is_open and done_at is None:
                done_at, done_by = end, "（已自动解除）"  # the fact stopped holding: repaired at the source
            if done_at is not None:
                status = "met" if due is None or done_at <= due else "late"
            elif not is_open:
                status = "closed"
            elif due is not None and due <= as_of:
                status = "overdue"
            else:
                status = "pending"
            records.append({
                "item_type": item.item_type, "item_id": item.item_id, "item_class": item.item_class,
                "episode_start": start, "episode_end": end, "item_open": is_open, "step": step, "due_at": due,
                "done_at": done_at, "done_by": done_by, "status": status,
                "escalate_to": item.escalate_to, "title": item.title, "owner": item.owner, "as_of": as_of,
            })
    return pd.DataFrame.from_records(records, columns=SLA_COLUMNS)


def write_sla(conn: duckdb.DuckDBPyConnection, rows: pd.DataFrame) -> None:
    """Replace mart.alert_sla with this as-of's evaluation (it is a function of the histories
    and the actions, so it is rebuilt whole). The table is dropped and created again rather
    than emptied: deleting every row of a keyed table and inserting them back costs DuckDB
    several times more (index and WAL) than building it new; the rows go in as Arrow."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS mart")
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DROP TABLE IF EXISTS mart.alert_sla")
        conn.execute(SLA_DDL)
        if len(rows):
            conn.register("sla_rows", pa.Table.from_pandas(rows[SLA_COLUMNS], preserve_index=False))
            conn.execute(
                """INSERT INTO mart.alert_sla
                   SELECT item_type, item_id, item_class, CAST(episode_start AS TIMESTAMP), CAST(episode_end AS TIMESTAMP),
                          CAST(item_open AS BOOLEAN), step, CAST(due_at AS TIMESTAMP), CAST(done_at AS TIMESTAMP),
                          CAST(done_by AS VARCHAR), status, CAST(escalate_to AS VARCHAR), CAST(title AS VARCHAR),
                          CAST(owner AS VARCHAR), CAST(as_of AS TIMESTAMP)
                   FROM sla_rows ORDER BY item_type, item_id, episode_start, step"""
            )
            conn.unregister("sla_rows")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def refresh_workflow(conn: duckdb.DuckDBPyConnection, as_of: datetime | str, settings: Settings) -> pd.DataFrame:
    """The alerts stage's workflow part: diff history, then the SLA table. Returns it."""
    as_of = as_naive_datetime(as_of)
    record_diff_history(conn, as_of)
    rows = evaluate_sla(_items(conn, as_of, settings), _actions(conn, as_of), as_of, sla_limits(settings))
    write_sla(conn, rows)
    return rows


def overdue_counts(rows: pd.DataFrame) -> dict[str, int]:
    """Overdue steps by item class (for the run summary)."""
    if rows.empty:
        return {}
    late = rows[rows["status"] == "overdue"]
    return {str(k): int(v) for k, v in late.groupby("item_class").size().items()}
