"""SWIFT MT940 customer statements, read with the `mt-940` library (wolph/mt940).

`mt940.parse_statements` splits a file on `:20:` so each statement keeps its own account
(`:25:`). Some banks (ASN Bank) print a counterparty IBAN longer than the 16 characters the
standard allows in `:61:`; those files are retried with the library's lenient ASNB tag.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from pathlib import Path

import mt940
import mt940.tags

from .canonical import StatementLine, clean, format_amount, format_time, join_text
from .errors import StatementError
from .mt940_details import transaction_details_post_processor

_TAG_LINE = re.compile(rb"^\s*(\{1:[^}]*\})?(\{2:[^}]*\})?(\{3:[^}]*\})?(\{4:)?\s*:(20|25|28C?|60[FM]|61|86|62[FM]|64|65|13D?|21|NS):", re.M)
# Every opt-in fix of the library: `?31` filed as the counterparty IBAN instead of being glued
# to the name, reversals (RC) signed as debits, long `:86:` kept whole, a BOM dropped.
_OPTIONS = mt940.Options.all()
_PLACEHOLDER_REFS = {"NONREF", "NOTPROVIDED", "N"}
# The library's structured-`:86:` step, replaced by an equal but faster one (mt940_details).
_PROCESSORS = {"post_transaction_details": [transaction_details_post_processor]}


def looks_like_mt940(head: bytes) -> bool:
    """The first non-empty line is an MT940 tag (optionally after the SWIFT `{1:..}{4:` blocks)."""
    stripped = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return bool(stripped) and _TAG_LINE.match(stripped) is not None


def decode_mt940(data: bytes) -> str:
    """SWIFT's character set is ASCII, but German banks write ISO 8859-1 umlauts."""
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # pragma: no cover - latin-1 decodes anything


def _parse_with(text: str, tags: dict | None) -> list:
    """One `Transactions` per statement; a fragment without `:20:` is one statement."""
    if re.search(r"(?m)^:20:", text):
        return mt940.parse_statements(text, processors=_PROCESSORS, tags=tags, options=_OPTIONS)
    return [mt940.parse(text, processors=_PROCESSORS, tags=tags, options=_OPTIONS)]


@contextmanager
def _quiet_library_log():
    """The library logs every failed regex attempt at ERROR before raising; the caller
    reports the failure itself, in Chinese."""
    library_logger = logging.getLogger("mt940")
    previous = library_logger.level
    library_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        library_logger.setLevel(previous)


def _parse(text: str) -> list:
    with _quiet_library_log():
        try:
            return _parse_with(text, None)
        except Exception:
            lenient = mt940.tags.StatementASNB()
            return _parse_with(text, {lenient.id: lenient})


def _reference(data: dict) -> str | None:
    for key in ("bank_reference", "customer_reference"):
        value = clean(data.get(key))
        if value and value.upper() not in _PLACEHOLDER_REFS:
            return value
    return None


def _one_line(text: str | None) -> str | None:
    return clean(re.sub(r"\s*\n\s*", " ", text)) if text else None


def _memo(data: dict) -> str | None:
    """SEPA-structured `:86:` gives the purpose (SVWZ); otherwise the free text of `:86:`."""
    if clean(data.get("purpose")) or clean(data.get("posting_text")):
        return join_text(data.get("posting_text"), data.get("purpose"))
    return _one_line(data.get("transaction_details")) or _one_line(data.get("extra_details"))


def read_mt940(path: Path, data: bytes) -> list[StatementLine]:
    text = decode_mt940(data)
    try:
        statements = _parse(text)
    except Exception as exc:  # the library raises RuntimeError/ValueError/KeyError on bad tags
        raise StatementError(f"无法读取 {path.name}：MT940 格式错误（{exc.args[0] if exc.args else exc}）") from exc
    lines: list[StatementLine] = []
    number = 0
    for statement in statements:
        account = clean(statement.data.get("account_identification"))
        opening = statement.data.get("final_opening_balance") or statement.data.get("opening_balance")
        statement_currency = getattr(getattr(opening, "amount", None), "currency", None)
        for transaction in statement:
            number += 1
            item = transaction.data
            amount = item.get("amount")
            booked = item.get("guessed_entry_date") or item.get("entry_date") or item.get("date")
            lines.append(
                StatementLine(
                    row_number=number,
                    account_no=account,
                    txn_time=format_time(booked) if booked else None,
                    amount=format_amount(amount.amount) if amount is not None else None,
                    currency=clean(item.get("currency")) or (amount.currency if amount is not None else None) or statement_currency,
                    counterparty_name=_one_line(item.get("applicant_name")),
                    counterparty_account=clean(item.get("applicant_iban")),
                    memo=_memo(item),
                    bank_ref=_reference(item),
                )
            )
    return lines
