"""SWIFT MT940 customer statements and MT942 interim reports, read with the `mt-940` library
(wolph/mt940) behind a layer that takes what banks really send.

The library splits the tags and parses the balances and the structured German `:86:`; this
module does what it cannot:

- **Envelopes and noise.** It expects bare tags. Files come wrapped in SWIFT blocks
  (`{1:..}{2:..}{3:{108:..}}{4:` ... `-}{5:..}`), with a bank header before the first tag
  (`ABNANL2A` / `940`), several messages per file and trailers after the last one. Each
  message's text block is cut out first (`split_messages`) and parsed on its own.
- **`:61:` quirks.** Its `:61:` pattern reads `1000.50` as 1000 (a dot is not a decimal mark
  there), merges a line without a transaction type code into the next one (the library opens a
  new transaction only when the previous one has a type code), does not know the MT942 marks
  `EC`/`ED`, and makes the whole file fail on one broken line. `StatementLine61` replaces it:
  any decimal mark, a customer reference of any length up to `//`, MT942 marks, and a broken
  line is kept with its text so ingestion quarantines that one row.
- **Tolerant tags.** A balance or header tag that does not match its pattern (`:28C:` with
  letters, an odd `:13D:`) no longer fails the file: the statement does not need it.
- **`:86:` after the closing balance** is information to the account owner, not part of the
  last line's memo (the library appends it there); it is dropped.
- **Structured `:86:`**: German `?20`-`?33` (the library), the same with another separator
  (`^`, `~`, `<`, as Polish banks write), and the slash keywords `/NAME/`, `/REMI/`,
  `/CNTP/`, `/BENM//NAME/`, `/IBAN/` (Dutch, Belgian and many other banks) are read by
  `mt940_details`; anything else is kept whole as the memo.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path

import mt940
import mt940.processors
import mt940.tags

from .canonical import StatementLine, clean, format_amount, format_time, join_text
from .errors import StatementError
from .mt940_details import (
    join_swift_lines,
    normalize_subfield_separator,
    parse_segments,
    parse_slash_details,
    transaction_details_post_processor,
)

# A tag at the start of a line: the SWIFT fields of MT940/MT942 and the bank extension `:NS:`.
_TAG = r":(?:20|21|25P?|28C?|60[FM]|61|86|62[FM]|64|65|13D?|34F|90[CD]|NS):"
_TAG_AT_LINE_START = re.compile(rf"(?m)^[ \t]*{_TAG}")
_FIRST_TAGS = re.compile(r"(?m)^[ \t]*(?:\{4:)?[ \t]*:(?:20|25):")
_BODY_TAGS = re.compile(r"(?m)^[ \t]*:(?:25P?|28C?|60[FM]|61|62[FM]|34F|13D?):")
_LEADING_TAG = re.compile(rf"^(?:\{{[1-3]:(?:[^{{}}]|\{{[^{{}}]*\}})*\}})*(?:\{{4:)?\s*{_TAG}")
_ENVELOPE_TEXT = re.compile(r"\{4:[ \t]*\n?(.*?)(?:\n?-\}|\Z)", re.S)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TERMINATOR = re.compile(r"(?m)^-[ \t]*$")
_BALANCE_TAGS = {"60F", "60M", "62F", "62M", "64", "65", "60", "62"}

# Every opt-in fix of the library: `?31` filed as the counterparty IBAN instead of being glued
# to the name, long `:86:` kept whole, lowercase marks, a BOM dropped.
_OPTIONS = mt940.Options.all()
_PLACEHOLDER_REFS = {"NONREF", "NOTPROVIDED", "N", "NONE", "NOREF"}
_DEBIT_MARKS = {"D", "RC", "ED", "ERC"}
_UNPARSED = "unparsed_line"


class StatementLine61(mt940.tags.Statement):
    """`:61:` as banks write it: 6!n[4!n]2a[1!a]15d1!a3!c16x[//16x][34x], loosened where
    banks differ (see the module notes). The debit/credit mark is kept as printed and signed
    by `read_mt940`, so `RC`/`ED` are never read as money in."""

    pattern = r"""^
    (?P<year>\d{2})(?P<month>\d{2})(?P<day>\d{2})     # value date YYMMDD
    (?P<entry_month>\d{2}|\s{2})?(?P<entry_day>\d{2}|\s{2})?  # entry date MMDD
    \s?
    (?P<status>E?R?[DC])                               # mark: C D RC RD (+E: MT942 expected)
    (?P<funds_code>[A-Z](?=\s?\d))?                    # third letter of the currency
    \s?
    (?P<amount>\d[\d.,]{0,17})                         # 15d, with either decimal mark
    (?P<id>[A-Z][A-Z0-9]{3})?                          # transaction type (NTRF, S202)
    (?P<customer_reference>(?:(?!//)[^\n])*)           # up to the bank reference
    (?://(?P<bank_reference>[^\n]*))?
    (?:\n(?P<extra_details>[\s\S]*))?                  # supplementary details
    $"""

    def parse(self, transactions, value):
        try:
            return super().parse(transactions, value)
        except RuntimeError:
            return {_UNPARSED: value}

    def __call__(self, transactions, value):
        if _UNPARSED in value:
            # Marked as a transaction of its own (the library merges lines without an `id`).
            return {_UNPARSED: value[_UNPARSED], "id": "?"}
        amount = _decimal_text(value.get("amount"))
        if amount is None:
            return {_UNPARSED: value.get("amount") or "", "id": "?"}
        value["amount"] = amount
        status = (value.get("status") or "").upper()
        data = super().__call__(transactions, value)
        data["mark"] = status
        data["transaction_type"] = data.get("id")
        data["id"] = data.get("id") or "?"  # the library opens a new line only after an `id`
        return data


def _decimal_text(text: str | None) -> str | None:
    """`1000,50` (SWIFT), `1000.50`, `1.000,50` or `1,000.50` as `1000.50`; the last mark
    is the decimal one. None when it is not a number."""
    if not text:
        return None
    text = text.rstrip(".,") if text.endswith((",", ".")) else text
    marks = [i for i, ch in enumerate(text) if ch in ",."]
    if marks:
        last = marks[-1]
        text = text[:last].replace(",", "").replace(".", "") + "." + text[last + 1:]
    try:
        Decimal(text)
    except InvalidOperation:
        return None
    return text


def _tolerant(tag_class: type) -> mt940.tags.Tag:
    """The library's tag with the same name (so its slug and data keys stay the same) whose
    value, when it does not match the pattern, is skipped instead of failing the file."""

    def parse(self, transactions, value):
        try:
            return tag_class.parse(self, transactions, value)
        except RuntimeError:
            return {_UNPARSED: value}

    def call(self, transactions, value):
        if _UNPARSED in value:
            return {}
        return tag_class.__call__(self, transactions, value)

    return type(tag_class.__name__, (tag_class,), {"parse": parse, "__call__": call})()


def _tags() -> dict:
    tags = {}
    for tag_id, tag in mt940.tags.TAG_BY_ID.items():
        if tag_id in (61, 86):
            continue
        tags[tag_id] = _tolerant(type(tag))
    tags[61] = StatementLine61()
    return tags


def _date_fixup(transactions, tag, tag_dict, *args):
    """The library's February fix-up (30 Feb -> 28 Feb), skipped for an unreadable line."""
    if _UNPARSED in tag_dict:
        return tag_dict
    return mt940.processors.date_fixup_pre_processor(transactions, tag, tag_dict, *args)


def _date_cleanup(transactions, tag, tag_dict, result):
    if _UNPARSED in result:
        return result
    return mt940.processors.date_cleanup_post_processor(transactions, tag, tag_dict, result)


_TAGS = _tags()
_PROCESSORS = {
    "pre_statement": [_date_fixup],
    "post_statement": [_date_cleanup, mt940.processors.transactions_to_transaction("transaction_reference")],
    # The library's structured-`:86:` step, replaced by an equal but faster one (mt940_details).
    "post_transaction_details": [transaction_details_post_processor],
}


def looks_like_mt940(head: bytes) -> bool:
    """An MT940/MT942 file: its first line is a tag (after any SWIFT envelope blocks), or a
    `:20:`/`:25:` tag line and a balance or statement-line tag follow some header lines."""
    text = head.decode("latin-1").lstrip("\ufeff\xef\xbb\xbf").lstrip()
    if _LEADING_TAG.match(text):
        return True
    return _FIRST_TAGS.search(text) is not None and _BODY_TAGS.search(text) is not None


def decode_mt940(data: bytes) -> str:
    return decode_mt940_with_encoding(data)[0]


def decode_mt940_with_encoding(data: bytes) -> tuple[str, str]:
    """SWIFT's character set is ASCII, but German banks write ISO 8859-1 umlauts."""
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"  # pragma: no cover - latin-1 decodes anything


def split_messages(text: str) -> list[str]:
    """The tag text of each message in the file: SWIFT envelopes opened, lines before the
    first tag and after the last message dropped, indented tags moved to the line start."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).lstrip("\ufeff")
    if "{4:" in text:
        chunks = _ENVELOPE_TEXT.findall(text)
    else:
        chunks = _TERMINATOR.split(text)
    messages = []
    for chunk in chunks:
        found = _TAG_AT_LINE_START.search(chunk)
        if found is None:
            continue
        body = re.sub(rf"(?m)^[ \t]+(?={_TAG})", "", chunk[found.start():])
        messages.append(_drop_owner_information(body))
    return messages


def _drop_owner_information(message: str) -> str:
    """Remove an `:86:` that follows a balance tag instead of a `:61:` (information to the
    account owner, which the library would append to the last line's memo)."""
    parts = re.split(rf"(?m)^(?={_TAG})", message)
    kept, after_line = [], False
    for part in parts:
        tag = part[1:part.find(":", 1)] if part.startswith(":") else ""
        if tag == "61":
            after_line = True
        elif tag in _BALANCE_TAGS or tag in ("20", "25", "28C", "28"):
            after_line = False
        elif tag == "86" and not after_line:
            continue
        kept.append(part)
    return "".join(kept)


@contextmanager
def _quiet_library_log():
    """The library logs every failed regex attempt at ERROR; unreadable lines are reported
    by ingestion instead, in Chinese."""
    library_logger = logging.getLogger("mt940")
    previous = library_logger.level
    library_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        library_logger.setLevel(previous)


def _parse_message(message: str) -> list:
    """One `Transactions` per statement of a message (a message may hold several `:20:`)."""
    if re.search(r"(?m)^:20:", message):
        return mt940.parse_statements(message, processors=_PROCESSORS, tags=_TAGS, options=_OPTIONS)
    return [mt940.parse(message, processors=_PROCESSORS, tags=_TAGS, options=_OPTIONS)]


def _reference(data: dict) -> str | None:
    for key in ("bank_reference", "customer_reference"):
        value = clean(data.get(key))
        if value and value.upper() not in _PLACEHOLDER_REFS:
            return value
    return None


def _details(item: dict) -> tuple[str | None, str | None, str | None]:
    """(counterparty name, counterparty account, memo) from `:86:` and the `:61:` extra details."""
    name = join_swift_lines(item.get("applicant_name"))
    account = clean(item.get("applicant_iban"))
    if clean(item.get("purpose")) or clean(item.get("posting_text")):  # German structured `:86:`
        return name, account, join_text(item.get("posting_text"), item.get("purpose"))
    raw = item.get("transaction_details")
    if raw:
        converted = normalize_subfield_separator(raw)
        if converted is not None:  # `^`/`~`/`<` subfields: read like the German `?`
            structured = transaction_details_post_processor(
                _OptionsHolder, None, {"transaction_details": converted}, {"transaction_details": converted})
            memo = join_text(structured.get("posting_text"), structured.get("purpose"))
            # Polish banks file the counterparty IBAN under 38.
            iban = clean(structured.get("applicant_iban")) or clean(parse_segments(converted.replace("\n", "")).get("38"))
            return join_swift_lines(structured.get("applicant_name")) or name, iban or account, memo
        slash = parse_slash_details(raw)
        if slash is not None:
            return slash.name or name, slash.account or account, slash.memo
    memo = join_swift_lines(raw) or join_swift_lines(item.get("extra_details"))
    return name, account, memo


class _OptionsHolder:
    options = _OPTIONS


_ACCOUNT_WITH_CURRENCY = re.compile(r"^([A-Z0-9/ ]*\d)([A-Z]{3})$")
_CURRENCIES = {"EUR", "USD", "CNY", "GBP", "CHF", "JPY", "HKD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF",
               "SGD", "AUD", "CAD", "RUB", "TRY", "RON", "BGN"}


def split_account_currency(text: object) -> tuple[str | None, str | None]:
    """`:25:NL20INGB0001234567EUR`: some banks append the account currency to the number."""
    account = clean(text)
    if account is None:
        return None, None
    found = _ACCOUNT_WITH_CURRENCY.match(account)
    if found and found[2] in _CURRENCIES and len(found[1]) >= 8:
        return found[1].strip(), found[2]
    return account, None


def _unreadable_line(number: int, account: str | None, text: str) -> StatementLine:
    """A `:61:` that is not a statement line: kept with its text in the date and amount, so
    ingestion quarantines it with the reason instead of the file failing."""
    shown = ":61:" + text.split("\n", 1)[0][:80]
    return StatementLine(row_number=number, account_no=account, txn_time=shown, amount=shown)


def read_mt940(path: Path, data: bytes) -> list[StatementLine]:
    text = decode_mt940(data)
    messages = split_messages(text)
    if not messages:
        raise StatementError(f"无法读取 {path.name}：没有找到 MT940 字段（:20:、:25:、:61:）")
    statements = []
    with _quiet_library_log():
        for message in messages:
            try:
                statements += _parse_message(message)
            except Exception as exc:  # the library raises RuntimeError/ValueError/KeyError on bad tags
                raise StatementError(f"无法读取 {path.name}：MT940 格式错误（{exc.args[0] if exc.args else exc}）") from exc
    lines: list[StatementLine] = []
    number = 0
    for statement in statements:
        account, account_currency = split_account_currency(statement.data.get("account_identification"))
        statement_currency = statement.currency or account_currency
        for transaction in statement:
            item = transaction.data
            if not item:
                continue
            number += 1
            if _UNPARSED in item:
                lines.append(_unreadable_line(number, account, item[_UNPARSED]))
                continue
            amount = item.get("amount")
            value = amount.amount if amount is not None else None
            if value is not None:
                value = -abs(value) if item.get("mark") in _DEBIT_MARKS else abs(value)
            booked = item.get("guessed_entry_date") or item.get("entry_date") or item.get("date")
            name, counter_account, memo = _details(item)
            lines.append(
                StatementLine(
                    row_number=number,
                    account_no=account,
                    txn_time=format_time(booked) if booked else None,
                    amount=format_amount(value) if value is not None else None,
                    currency=clean(item.get("currency")) or (amount.currency if amount is not None else None) or statement_currency,
                    counterparty_name=name,
                    counterparty_account=counter_account,
                    memo=memo,
                    bank_ref=_reference(item),
                )
            )
    return lines
