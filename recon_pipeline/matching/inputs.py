"""What the matching engine reads and how it is tuned: the input frames, the options, the output columns."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from recon_pipeline.matching.names import DEFAULT_CHANNEL_PREFIXES
from recon_pipeline.settings import Settings

LINK_COLUMNS = [
    "account_no",
    "txn_id",
    "customer_id",
    "order_id",
    "allocated_cents",
    "match_method",
    "match_score",
    "match_status",
    "evidence",
]

FEEDBACK_COLUMNS = ["feedback_id", "account_no", "txn_id", "customer_id", "order_id", "decision",
                    "decided_by", "decided_at", "comment"]

STRONG_METHODS = ("memo_order_id", "payer_account", "exact_name", "alias")


@dataclass
class MatchingInputs:
    """Current state of the sources the engine reads (one frame per staging model).

    bank:       account_no, txn_id, txn_time, amount_cents, currency, counterparty_name,
                counterparty_account, memo
    customers:  customer_id, customer_name, credit_code, aliases, region_code, industry
    contracts:  order_id, customer_id, customer_name, salesperson_id, amount_cents, status,
                signed_at
    invoices:   invoice_no, order_id, customer_name, invoice_date, total_amount_cents,
                invoice_type, status
    writeoffs:  writeoff_id, txn_id, order_id, invoice_no, amount_cents, confirmed_by,
                confirmed_at, status
    feedback:   (optional, source `match_feedback`) feedback_id, account_no, txn_id,
                customer_id, order_id, decision (`confirm`/`reject`), decided_by, decided_at
    """

    bank: pd.DataFrame
    customers: pd.DataFrame
    contracts: pd.DataFrame
    invoices: pd.DataFrame
    writeoffs: pd.DataFrame
    as_of: datetime
    feedback: pd.DataFrame | None = None


@dataclass(frozen=True)
class MatchOptions:
    suggest_threshold: int = 85
    abstain_margin: int = 5
    plausible_payer_score: int = 60
    max_candidates: int = 30
    blocking_max_postings: int = 1000
    region_conflict_penalty: int = 15
    channel_prefixes: tuple[str, ...] = DEFAULT_CHANNEL_PREFIXES
    subset_sum_max_orders: int = 16
    subset_sum_max_size: int = 4

    @classmethod
    def from_settings(cls, settings: Settings | None) -> "MatchOptions":
        if settings is None:
            return cls()
        own = dict((settings.raw or {}).get("payer_matching") or {})
        values: dict[str, Any] = {"suggest_threshold": int(settings.matching.get("fuzzy_suggest_threshold", 85))}
        for name in cls.__dataclass_fields__:
            if name in own and name != "suggest_threshold":
                values[name] = tuple(own[name]) if name == "channel_prefixes" else int(own[name])
        return cls(**values)



def clean_text(value) -> str:
    if type(value) is str:
        return value.strip()
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA or value is pd.NaT:
        return ""
    return str(value).strip()


def column_values(column: pd.Series) -> list:
    """A column as a Python list, the same values as iterating it, in one call (iterating a
    pandas column element by element is slow for Arrow-backed strings)."""
    return column.tolist()


def row_records(frame: pd.DataFrame, name: str) -> list[tuple]:
    """The rows as named tuples, like `itertuples(index=False)`, built from whole columns."""
    row = namedtuple(name, list(frame.columns), rename=True)
    return [row(*values) for values in zip(*(column_values(frame[c]) for c in frame.columns))]
