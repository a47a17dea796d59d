"""Canonical `bank_transactions` rows: the columns, money and time formatting shared by all
readers, and the deterministic transaction id for statements that print none."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import pandas as pd

from recon_pipeline.ingest.file_profiles import derived_txn_id as hashed_txn_id

CANONICAL_COLUMNS = [
    "account_no",
    "txn_id",
    "txn_time",
    "amount",
    "currency",
    "counterparty_name",
    "counterparty_account",
    "memo",
]
ROW_NUMBER_COLUMN = "_row_number"

# Cells that banks print to mean "nothing here".
_EMPTY_MARKERS = {"", "-", "--", "/", "—", "null", "none", "nan"}
_DASHES_ONLY = re.compile(r"^[-—*\s]+$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


@dataclass
class StatementLine:
    """One transaction as a reader found it; `bank_ref` is the bank's own id, if any."""

    row_number: int
    account_no: str | None
    txn_time: str | None
    amount: str | None
    currency: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    memo: str | None = None
    bank_ref: str | None = None


def clean(value: object) -> str | None:
    """A cell as text: padding (spaces, tabs, full-width spaces) removed, placeholders -> None."""
    if value is None:
        return None
    text = str(value).replace("\u3000", " ").strip().strip("\t").strip()
    if text.lower() in _EMPTY_MARKERS or _DASHES_ONLY.match(text) and "*" not in text:
        return None
    return text or None


def join_text(*parts: str | None, sep: str = " ") -> str | None:
    """Non-empty, distinct parts joined in order (a memo built from several cells)."""
    seen: list[str] = []
    for part in parts:
        part = clean(part)
        if part and part not in seen:
            seen.append(part)
    return sep.join(seen) or None


def parse_amount(text: object) -> Decimal | None:
    """A printed amount as Decimal: thousands separators, currency signs and a leading `+`
    are accepted; None when the cell is empty or not a number."""
    cleaned = clean(text)
    if cleaned is None:
        return None
    cleaned = cleaned.replace(",", "").replace("¥", "").replace("￥", "").replace(" ", "")
    if not _NUMBER.match(cleaned):
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the regex already guards this
        return None


_CENTS = Decimal("0.01")


def format_amount(value: Decimal) -> str:
    """Signed plain decimal string with at least two decimals (more are kept: camt.053 allows
    five); zero is never printed as `-0`."""
    if value == 0:
        value = abs(value)
    if value.as_tuple().exponent > -2:
        value = value.quantize(_CENTS)
    return format(value, "f")


def signed_amount(raw: object, negative: bool) -> str | None:
    """The canonical signed amount of a cell whose sign comes from elsewhere (a column or a
    debit/credit flag). An unreadable cell is passed on as printed, so ingestion quarantines
    that one row instead of the whole file failing."""
    value = parse_amount(raw)
    if value is None:
        return clean(raw)
    return format_amount(-abs(value) if negative else abs(value))


def amount_as_printed(raw: object) -> str | None:
    """A cell that carries its own sign (`-1,000.00`, `+10.00`)."""
    value = parse_amount(raw)
    return clean(raw) if value is None else format_amount(value)


def amount_from_number(value: float | int | str) -> Decimal | None:
    """A spreadsheet number cell: legacy .xls stores numbers as binary doubles, so the
    shortest round-trip text (`repr`) is the amount the bank meant; never arithmetic on it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(repr(value)).quantize(Decimal("0.01")) if value == value else None
    return parse_amount(value)


def format_time(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.strftime("%Y-%m-%d 00:00:00")


_DATE_PATTERNS = [
    (re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$"), "ymd"),
    (re.compile(r"^(\d{4})(\d{2})(\d{2})$"), "ymd"),
]
_TIME_PATTERNS = [
    re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$"),
    re.compile(r"^(\d{2})(\d{2})(\d{2})$"),
]


def parse_local_time(date_text: object, time_text: object = None) -> str | None:
    """`YYYY-MM-DD HH:MM:SS` from a date cell (2024-01-02, 2024/1/2, 20240102, with or
    without a time) and an optional separate time cell (13:15:12 or 131512). A cell that
    is not a date is returned as printed, so ingestion quarantines that row."""
    text = clean(date_text)
    if text is None:
        return None
    date_part, _, inline_time = text.partition(" ")
    found: date | None = None
    for pattern, _order in _DATE_PATTERNS:
        match = pattern.match(date_part)
        if match:
            try:
                found = date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                return text
            break
    if found is None:
        return text
    time_value = clean(inline_time) or clean(time_text)
    if time_value is None:
        return format_time(found)
    for pattern in _TIME_PATTERNS:
        match = pattern.match(time_value)
        if match:
            try:
                return format_time(
                    datetime(found.year, found.month, found.day, int(match[1]), int(match[2]), int(match[3] or 0))
                )
            except ValueError:
                return text
    return text


def derived_txn_id(line: StatementLine, occurrence: int) -> str:
    """Deterministic id for a line without a bank id: the same line in two overlapping
    downloads hashes the same; `occurrence` tells identical lines of one file apart."""
    return hashed_txn_id((line.account_no, line.txn_time, line.amount, line.counterparty_name,
                          line.counterparty_account, line.memo), occurrence)


def to_frame(lines: list[StatementLine]) -> pd.DataFrame:
    """The canonical frame. A bank id is used as `txn_id` only where it is unique in the file
    (sample exports repeat placeholder ids such as `0000000000`); other lines get a hash.
    Built column by column with object dtype: text stays Python `str`/None (pandas would
    otherwise infer its arrow string dtype and convert back, twice the work on 100k rows)."""
    ref_counts = Counter(line.bank_ref for line in lines if line.bank_ref)
    occurrences: Counter[tuple] = Counter()
    txn_ids = []
    for line in lines:
        if line.bank_ref and ref_counts[line.bank_ref] == 1:
            txn_ids.append(line.bank_ref)
            continue
        identity = (line.account_no, line.txn_time, line.amount, line.counterparty_name,
                    line.counterparty_account, line.memo)
        occurrences[identity] += 1
        txn_ids.append(derived_txn_id(line, occurrences[identity]))
    columns = {
        "account_no": [line.account_no for line in lines],
        "txn_id": txn_ids,
        "txn_time": [line.txn_time for line in lines],
        "amount": [line.amount for line in lines],
        "currency": [line.currency for line in lines],
        "counterparty_name": [line.counterparty_name for line in lines],
        "counterparty_account": [line.counterparty_account for line in lines],
        "memo": [line.memo for line in lines],
    }
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})
    frame[ROW_NUMBER_COLUMN] = pd.Series([line.row_number for line in lines], dtype="int64")
    return frame


CURRENCY_NAMES = {"人民币": "CNY", "人民币元": "CNY", "RMB": "CNY", "美元": "USD", "港币": "HKD",
                  "港元": "HKD", "欧元": "EUR", "日元": "JPY", "英镑": "GBP"}


def currency_code(text: object, default: str | None = None) -> str | None:
    value = clean(text)
    if value is None:
        return default
    return CURRENCY_NAMES.get(value, value.upper() if value.isascii() else value)
