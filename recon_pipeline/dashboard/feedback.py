"""Finance's confirm / reject / undo decisions on suggested payer matches, as landing records.

A decision is a one-row `match_feedback` drop (see landing.py): the source the matching
engine reads on the next `recon run`, so nothing bypasses the pipeline. `undo` reverses the
previous decision on the same suggestion: the engine keeps only the latest decision per bank
line and customer (matching/learning.py), so after an undo the suggestion is pending again.

Time: `decided_at` is the publication's as-of (business time): the next run (a later as-of)
applies it, and so does a rerun of the same as-of, also when the as-of is in the past (demo,
backfill). Decisions of one as-of keep their order through the record id (a microsecond stamp)
in the file name; the wall-clock moment goes into `recorded_at` for the audit trail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from recon_pipeline.dashboard.landing import new_record_id, pending_records, write_record

FEEDBACK_SOURCE = "match_feedback"
FEEDBACK_COLUMNS = [
    "feedback_id",
    "account_no",
    "txn_id",
    "customer_id",
    "order_id",
    "decision",
    "decided_by",
    "decided_at",
]
AUDIT_COLUMNS = ["recorded_at"]
DECISIONS = ("confirm", "reject", "undo")
FILE_PREFIX = "decision"


class InvalidDecision(ValueError):
    """A decision the form should not have sent; the message is shown to the user."""


@dataclass(frozen=True)
class MatchDecision:
    account_no: str
    txn_id: str
    customer_id: str
    order_id: str
    decision: str
    decided_by: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.account_no, self.txn_id, self.customer_id, self.order_id)

    def validated(self) -> "MatchDecision":
        if self.decision not in DECISIONS:
            raise InvalidDecision("决定只能是“确认”“驳回”或“撤销”")
        if not self.account_no.strip() or not self.txn_id.strip():
            raise InvalidDecision("缺少账号或流水号")
        decided_by = self.decided_by.strip()
        if not decided_by:
            raise InvalidDecision("请填写确认人姓名")
        if len(decided_by) > 64:
            raise InvalidDecision("确认人姓名过长")
        fields = (self.account_no, self.txn_id, self.customer_id, self.order_id)
        if any(len(value) > 128 or "\n" in value or "\r" in value for value in fields):
            raise InvalidDecision("账号、流水号、客户或订单编号无效")
        return MatchDecision(
            self.account_no.strip(), self.txn_id.strip(), self.customer_id.strip(),
            self.order_id.strip(), self.decision, decided_by,
        )


def write_decision(
    landing_dir: str | os.PathLike, as_of: datetime, decision: MatchDecision, recorded_at: datetime
) -> Path:
    """Write one decision record into `match_feedback/<as-of date>/` and return its path."""
    decision = decision.validated()
    feedback_id = new_record_id()
    return write_record(
        landing_dir, FEEDBACK_SOURCE, as_of.date(), FILE_PREFIX, feedback_id,
        FEEDBACK_COLUMNS + AUDIT_COLUMNS,
        [
            feedback_id, decision.account_no, decision.txn_id, decision.customer_id,
            decision.order_id, decision.decision, decision.decided_by,
            as_of.strftime("%Y-%m-%d %H:%M:%S"), recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
        ],
    )


def decisions_pending(
    landing_dir: str | os.PathLike | None, as_of_date: date | None, ingested: set[str] = frozenset()
) -> dict[tuple, dict[str, str]]:
    """The latest decision written for each suggestion and not yet in the publication,
    keyed by (account, txn, customer, order); an undo shows as `undo`."""
    made: dict[tuple, dict[str, str]] = {}
    for row in pending_records(landing_dir, FEEDBACK_SOURCE, as_of_date, FILE_PREFIX, days_back=0):
        if row.get("feedback_id") in ingested:
            continue
        key = (row.get("account_no", ""), row.get("txn_id", ""), row.get("customer_id", ""), row.get("order_id", ""))
        made[key] = row
    return made
