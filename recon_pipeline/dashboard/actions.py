"""Acting on alerts, diff-list items and the red health board: acknowledge, assign, comment,
resolve with a note. Each action is an `alert_actions` landing record (landing.py) that the
next run ingests and publishes as `mart.fct_alert_actions`; the alerts stage measures the SLAs
against them (recon_pipeline/alerts/workflow.py).

`register_action_log` gives every request a view `action_log` over the published actions
plus the records not ingested yet, so counts and states change the moment someone clicks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from recon_pipeline.dashboard.landing import new_record_id, pending_records, write_record
from recon_pipeline.dashboard.queries import MartReader

ACTIONS_SOURCE = "alert_actions"
ACTION_COLUMNS = ["action_id", "target_type", "target_id", "action", "assignee", "note", "acted_by", "acted_at"]
AUDIT_COLUMNS = ["recorded_at"]
TARGET_TYPES = ("alert", "diff", "health")
ACTIONS = ("acknowledge", "assign", "comment", "resolve")
FILE_PREFIX = "action"
HEALTH_BOARD = "board"  # target_id of the health board (one item: the board is red or not)
MAX_NOTE = 500


class InvalidAction(ValueError):
    """An action the form should not have sent; the message is shown to the user."""


@dataclass(frozen=True)
class AlertAction:
    target_type: str
    target_id: str
    action: str
    acted_by: str
    assignee: str = ""
    note: str = ""

    def validated(self) -> "AlertAction":
        if self.target_type not in TARGET_TYPES:
            raise InvalidAction("处理对象无效")
        if self.action not in ACTIONS:
            raise InvalidAction("动作只能是确认收到、分派、备注或处理完毕")
        target_id = self.target_id.strip()
        if not target_id or len(target_id) > 200 or any(c in target_id for c in "\r\n"):
            raise InvalidAction("处理对象编号无效")
        acted_by = self.acted_by.strip()
        if not acted_by:
            raise InvalidAction("请填写处理人姓名")
        if len(acted_by) > 64:
            raise InvalidAction("处理人姓名过长")
        assignee, note = self.assignee.strip(), self.note.strip()
        if self.action == "assign" and not assignee:
            raise InvalidAction("分派时请填写负责人")
        if self.action == "comment" and not note:
            raise InvalidAction("请填写备注内容")
        if self.action == "resolve" and not note:
            raise InvalidAction("处理完毕时请写明处理结果")
        if len(assignee) > 64 or len(note) > MAX_NOTE:
            raise InvalidAction(f"负责人或备注过长（备注最多 {MAX_NOTE} 字）")
        return AlertAction(self.target_type, target_id, self.action, acted_by, assignee, note)


def write_action(
    landing_dir: str | os.PathLike, folder_date: date, action: AlertAction, acted_at: datetime, recorded_at: datetime
) -> Path:
    """Write one action into `alert_actions/<folder date>/` (the publication's as-of date, so
    the next run ingests it) and return its path."""
    action = action.validated()
    action_id = new_record_id()
    return write_record(
        landing_dir, ACTIONS_SOURCE, folder_date, FILE_PREFIX, action_id, ACTION_COLUMNS + AUDIT_COLUMNS,
        [action_id, action.target_type, action.target_id, action.action, action.assignee, action.note,
         action.acted_by, acted_at.strftime("%Y-%m-%d %H:%M:%S"), recorded_at.strftime("%Y-%m-%d %H:%M:%S")],
    )


def pending_actions(reader: MartReader, landing_dir, as_of_date: date | None) -> pd.DataFrame:
    """Action records of the landing zone that the publication does not hold yet."""
    records = pending_records(landing_dir, ACTIONS_SOURCE, as_of_date, FILE_PREFIX)
    frame = pd.DataFrame.from_records(records, columns=ACTION_COLUMNS) if records else pd.DataFrame(columns=ACTION_COLUMNS)
    frame = frame[ACTION_COLUMNS].astype(object)
    if len(frame) and reader.has("mart.fct_alert_actions"):
        published = {
            row[0] for row in reader.conn.execute(
                "SELECT action_id FROM mart.fct_alert_actions WHERE list_contains(?::VARCHAR[], action_id)",
                [frame["action_id"].dropna().astype(str).tolist()],
            ).fetchall()
        }
        frame = frame[~frame["action_id"].isin(published)]
    frame = frame[frame["target_type"].isin(TARGET_TYPES) & frame["action"].isin(ACTIONS)]
    return frame.reset_index(drop=True)


def register_action_log(reader: MartReader, landing_dir, as_of_date: date | None) -> int:
    """Create the temporary view `action_log` (published + pending actions); returns how
    many pending ones it holds."""
    pending = pending_actions(reader, landing_dir, as_of_date)
    reader.conn.register("_pending_actions", pending)
    typed = ("CAST(action_id AS VARCHAR) AS action_id, CAST(target_type AS VARCHAR) AS target_type, "
             "CAST(target_id AS VARCHAR) AS target_id, CAST(action AS VARCHAR) AS action, "
             "CAST(nullif(assignee, '') AS VARCHAR) AS assignee, CAST(nullif(note, '') AS VARCHAR) AS note, "
             "CAST(acted_by AS VARCHAR) AS acted_by, TRY_CAST(acted_at AS TIMESTAMP) AS acted_at")
    published = (
        f"SELECT {typed}, FALSE AS pending FROM mart.fct_alert_actions"
        if reader.has("mart.fct_alert_actions")
        else "SELECT NULL::VARCHAR AS action_id, NULL::VARCHAR AS target_type, NULL::VARCHAR AS target_id, "
             "NULL::VARCHAR AS action, NULL::VARCHAR AS assignee, NULL::VARCHAR AS note, NULL::VARCHAR AS acted_by, "
             "NULL::TIMESTAMP AS acted_at, FALSE AS pending WHERE FALSE"
    )
    reader.conn.execute(
        f"CREATE OR REPLACE TEMP VIEW action_log AS {published} UNION ALL "
        f"SELECT {typed}, TRUE AS pending FROM _pending_actions"
    )
    return len(pending)


def target_actions(reader: MartReader, target_type: str, target_id: str, since: datetime | None = None) -> list[dict]:
    """The history of one item (oldest first), pending ones marked."""
    clause, params = "", [target_type, target_id]
    if since is not None:
        clause, params = " AND acted_at >= ?", params + [since]
    return reader.rows(
        f"SELECT * FROM action_log WHERE target_type = ? AND target_id = ?{clause} ORDER BY acted_at, action_id", params
    )
