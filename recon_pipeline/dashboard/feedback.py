"""Finance's confirm / reject decisions on suggested payer matches, written into the landing zone.

A decision is a one-row CSV `<landing>/match_feedback/<as-of date>/decision-<stamp>-<id>.csv`
with FEEDBACK_COLUMNS: the same source the matching engine reads on the next `recon run`, so
nothing bypasses the pipeline.

Time: the decision is made on a publication, which shows the books as of the run's as-of.
So the folder date and `decided_at` are that as-of (business time, like every time rule
here), which guarantees the next run (later as-of) ingests and applies it, also when the
as-of is in the past (demo, backfill). The wall-clock moment goes into the extra column
`recorded_at` for the audit trail.
"""

from __future__ import annotations

import csv
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

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
DECISIONS = ("confirm", "reject")


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

    def validated(self) -> "MatchDecision":
        if self.decision not in DECISIONS:
            raise InvalidDecision("决定只能是“确认”或“驳回”")
        if not self.account_no or not self.txn_id:
            raise InvalidDecision("缺少账号或流水号")
        decided_by = self.decided_by.strip()
        if not decided_by:
            raise InvalidDecision("请填写确认人姓名")
        if len(decided_by) > 64:
            raise InvalidDecision("确认人姓名过长")
        return MatchDecision(
            self.account_no.strip(), self.txn_id.strip(), self.customer_id.strip(),
            self.order_id.strip(), self.decision, decided_by,
        )


def feedback_folder(landing_dir: str | os.PathLike, as_of_date: date) -> Path:
    return Path(landing_dir) / FEEDBACK_SOURCE / as_of_date.isoformat()


def write_decision(
    landing_dir: str | os.PathLike, as_of: datetime, decision: MatchDecision, recorded_at: datetime
) -> Path:
    """Write one decision file atomically (temp name without .csv, then rename) and return it."""
    decision = decision.validated()
    folder = feedback_folder(landing_dir, as_of.date())
    folder.mkdir(parents=True, exist_ok=True)
    feedback_id = uuid.uuid4().hex
    target = folder / f"decision-{recorded_at:%Y%m%d%H%M%S}-{feedback_id[:12]}.csv"
    temporary = folder / f".{target.name}.tmp"
    # utf-8-sig: finance opens these in Excel, which needs the BOM to show Chinese names.
    with open(temporary, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FEEDBACK_COLUMNS + AUDIT_COLUMNS)
        writer.writerow(
            [
                feedback_id, decision.account_no, decision.txn_id, decision.customer_id,
                decision.order_id, decision.decision, decision.decided_by,
                as_of.strftime("%Y-%m-%d %H:%M:%S"), recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
            ]
        )
    os.replace(temporary, target)
    return target


def decisions_pending(landing_dir: str | os.PathLike | None, as_of_date: date | None) -> dict[tuple, str]:
    """Decisions already written for this publication, keyed by (account, txn, customer, order)."""
    if landing_dir is None or as_of_date is None:
        return {}
    folder = feedback_folder(landing_dir, as_of_date)
    if not folder.is_dir():
        return {}
    made: dict[tuple, str] = {}
    for path in sorted(folder.glob("decision-*.csv")):
        with open(path, encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                key = (row.get("account_no", ""), row.get("txn_id", ""), row.get("customer_id", ""), row.get("order_id", ""))
                made[key] = row.get("decision", "")
    return made
