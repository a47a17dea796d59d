"""Adjustments (调整): a change to a closed period, booked in the open period of the run's as-of.

Every run recomputes, for each closed period (its current version) and each order, what the
live marts recognize there now against what the close froze plus what earlier adjustments
already booked. A non-zero difference is booked in the period of the run's as-of (the current
open period): negative when the closed period was overstated. The ledger is kept across runs:
adjustments booked in an earlier period, or in a closed one, never change; those of the current
period are recomputed, so a change undone within the same period leaves no trace and
re-running the same as-of books nothing new. `adjustment_id` hashes the closed period, its
version, the order, the salesperson and the booking period: the same fact keeps its id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

import pandas as pd

from recon_pipeline.as_of import cutoff_period
from recon_pipeline.close.reasons import Evidence, change_reason

LEDGER_COLUMNS = [
    "adjustment_id", "original_period", "booked_period", "order_id", "salesperson_id", "amount_cents",
    "reason", "as_of", "original_version", "adjustment_type", "contract_no", "customer_name",
    "current_recognized_period",
]
KEY = ["order_id", "salesperson_id"]


def adjustment_id(original_period: str, version: int, order_id: str, salesperson_id: str, booked_period: str) -> str:
    text = "|".join([original_period, str(version), order_id, salesperson_id, booked_period])
    return "ADJ-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12].upper()


@dataclass
class AdjustmentPlan:
    """What a run books: `booked` replaces the recomputable entries (the current period's); `kept` are
    the entries of the orders planned that no run may change."""

    current_period: str
    kept: pd.DataFrame
    booked: pd.DataFrame
    skipped: str | None = None
    closes: list[tuple[str, int]] = field(default_factory=list)


def _by_key(frame: pd.DataFrame, value: str) -> pd.Series:
    if frame.empty:
        return pd.Series(dtype="int64", index=pd.MultiIndex.from_tuples([], names=KEY))
    return frame.groupby(KEY, sort=False)[value].sum().astype("int64")


def _rows(frame: pd.DataFrame, order_ids) -> dict[str, dict]:
    """order_id -> row (as a dict) for the given orders of a frame with one row per order."""
    wanted = frame[frame["order_id"].isin(set(order_ids))]
    return {str(row["order_id"]): row for row in wanted.to_dict("records")}


def plan_adjustments(
    *,
    as_of: datetime,
    cutoff_hour: int,
    closes: Iterable[tuple[str, int]],
    closed_periods: set[str],
    frozen: pd.DataFrame,
    excluded: pd.DataFrame,
    live: pd.DataFrame,
    ledger: pd.DataFrame,
    evidence: Evidence,
    tolerance_cents: int = 100,
) -> AdjustmentPlan:
    """The ledger after a run at `as_of` (pure).

    closes: the closed periods' current versions; closed_periods: every period whose latest
    close-log entry is a close; frozen / excluded: period_close_orders /
    period_close_excluded_orders of those versions (cents); live: the live orders (cents);
    ledger: period_adjustments as stored (amount_cents).
    """
    current = cutoff_period(as_of, cutoff_hour)
    ledger = ledger if not ledger.empty else pd.DataFrame(columns=LEDGER_COLUMNS)
    immutable = (ledger["booked_period"] < current) | ledger["booked_period"].isin(closed_periods)
    kept = ledger[immutable].reset_index(drop=True)
    closes = sorted((period, int(version)) for period, version in closes if period < current)
    if current in closed_periods:
        # Only a run at an earlier as-of than the close lands here: nothing may be booked into a closed period.
        return AdjustmentPlan(current, ledger.reset_index(drop=True), pd.DataFrame(columns=LEDGER_COLUMNS),
                              skipped=f"评估时点所在期间 {current} 已封账，本次不记调整", closes=closes)

    recognized = live[live["is_closed"].astype(bool) & live["salesperson_id"].notna()]
    booked: list[dict] = []
    for period, version in closes:
        frozen_here = frozen[(frozen["period"] == period) & (frozen["version"] == version)]
        excluded_here = excluded[(excluded["period"] == period) & (excluded["version"] == version)]
        kept_here = kept[(kept["original_period"] == period) & (kept["original_version"] == version)]
        figures = pd.concat({
            "live": _by_key(recognized[recognized["recognized_period"] == period], "contract_cents"),
            "frozen": _by_key(frozen_here, "recognized_cents"),
            "kept": _by_key(kept_here, "amount_cents"),
        }, axis=1).fillna(0).astype("int64")
        figures["delta"] = figures["live"] - figures["frozen"] - figures["kept"]
        changed = figures[figures["delta"] != 0].sort_index()
        if changed.empty:
            continue
        order_ids = changed.index.get_level_values("order_id")
        live_rows, frozen_rows = _rows(live, order_ids), _rows(frozen_here, order_ids)
        excluded_rows = _rows(excluded_here, order_ids)
        for (order_id, salesperson_id), figure in changed.iterrows():
            live_row = live_rows.get(order_id)
            kind, reason = change_reason(
                original_period=period, salesperson_id=salesperson_id, frozen=frozen_rows.get(order_id),
                excluded=excluded_rows.get(order_id), live=live_row, live_cents=int(figure["live"]),
                frozen_cents=int(figure["frozen"]), booked_cents=int(figure["kept"]), delta_cents=int(figure["delta"]),
                evidence=evidence, cutoff_hour=cutoff_hour, tolerance_cents=tolerance_cents,
            )
            described = live_row or frozen_rows.get(order_id) or excluded_rows.get(order_id) or {}
            booked.append({
                "adjustment_id": adjustment_id(period, version, order_id, salesperson_id, current),
                "original_period": period,
                "booked_period": current,
                "order_id": order_id,
                "salesperson_id": salesperson_id,
                "amount_cents": int(figure["delta"]),
                "reason": reason,
                "as_of": as_of,
                "original_version": version,
                "adjustment_type": kind,
                "contract_no": described.get("contract_no"),
                "customer_name": described.get("customer_name"),
                "current_recognized_period": live_row["recognized_period"] if live_row and live_row["is_closed"] else None,
            })
    return AdjustmentPlan(current, kept, pd.DataFrame(booked, columns=LEDGER_COLUMNS), closes=closes)
