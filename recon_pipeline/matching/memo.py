"""Order IDs, contract numbers and credit codes written in bank memos (附言/摘要).

Order IDs follow `[YY][region code][5-digit serial]` (`25SH00137`); customers mangle them:
`25sh137`, `25-SH-00137`, `订单25SH00137`, `25SH00137/00138` (two orders, second one by serial
only). Long digit runs around them are something else: a token glued to more letters or digits
(bank references `HX25SH0013712345`, 18-digit serials, phone numbers) is never an order ID.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Not preceded by a letter or digit, not followed by a digit: a token of its own.
_ORDER_ID = re.compile(
    r"(?<![0-9a-z])(?P<year>\d{2})[-_ ./]?(?P<region>[a-z]{2})[-_ ./]?(?P<serial>\d{1,5})(?![0-9])"
)
# `25SH00137/00138`, `25SH00137、138`: further serials of the same year and region.
_MORE_SERIALS = re.compile(r"\s*[/、,，+&;；和及]\s*(?P<serial>\d{1,5})(?![0-9a-z])")
# 统一社会信用代码 (GB 32100-2015): 18 chars, no I/O/Z/S/V, last one a check character.
_CREDIT_CODE = re.compile(r"(?<![0-9A-Z])[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Z])")
_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@dataclass(frozen=True)
class MemoOrderRef:
    token: str  # the text as written in the memo
    order_id: str  # canonical form, e.g. 25SH00137


def order_refs_in_memo(memo: str | None, region_codes: frozenset[str] | None = None) -> list[MemoOrderRef]:
    """Order IDs in a memo, canonical, in order of appearance, without repeats.

    `region_codes` (upper case, e.g. {"SH", "BJ"}) keeps only IDs whose region exists, so
    that words such as `25kg` or `10pc` are not read as orders.
    """
    if not isinstance(memo, str) or not memo:
        return []
    text = unicodedata.normalize("NFKC", memo).lower()
    refs: list[MemoOrderRef] = []
    seen: set[str] = set()

    def add(token: str, year: str, region: str, serial: str) -> bool:
        region = region.upper()
        if region_codes is not None and region not in region_codes:
            return False
        order_id = f"{year}{region}{int(serial):05d}"
        if order_id not in seen:
            seen.add(order_id)
            refs.append(MemoOrderRef(token=token, order_id=order_id))
        return True

    position = 0
    while match := _ORDER_ID.search(text, position):
        year, region = match["year"], match["region"]
        if not add(memo_slice(memo, text, match.start(), match.end()), year, region, match["serial"]):
            position = match.start() + 1  # `25kg 25SH00137`: the rejected piece may start a real one
            continue
        position = match.end()
        while more := _MORE_SERIALS.match(text, position):
            add(memo_slice(memo, text, more.start("serial"), more.end()), year, region, more["serial"])
            position = more.end()
    return refs


# A contract number as printed in a memo: letters, digits and separators (HT-2025-SH-00137).
_CONTRACT_TOKEN = re.compile(r"[0-9A-Z][0-9A-Z\-_/.]*[0-9A-Z]")
_NOT_ALNUM = re.compile(r"[^0-9A-Z]")


def contract_key(contract_no) -> str:
    """A contract number compared without case and separators (HT-2025-001 = ht2025001); "" when it
    is too short or has no digit to be told from a word."""
    if not isinstance(contract_no, str):
        return ""
    key = _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", contract_no).upper())
    return key if len(key) >= 6 and any(c.isdigit() for c in key) else ""


def contract_tokens_in_memo(memo: str | None) -> list[tuple[str, str]]:
    """(token as written, contract_key) of every token of a memo that could be a contract number."""
    if not isinstance(memo, str) or not memo:
        return []
    tokens = _CONTRACT_TOKEN.findall(unicodedata.normalize("NFKC", memo).upper())
    return [(token, key) for token in tokens if (key := contract_key(token))]


def contract_refs_in_memo(memo: str | None, orders_by_contract: dict[str, tuple[str, ...]]) -> list[MemoOrderRef]:
    """Orders whose contract number (crm_contracts.contract_no) a memo writes: 合同号HT2025NJ00123."""
    if not orders_by_contract:
        return []
    return [MemoOrderRef(token=token, order_id=order_id)
            for token, key in contract_tokens_in_memo(memo) for order_id in orders_by_contract.get(key, ())]


def memo_slice(memo: str, normalized: str, start: int, end: int) -> str:
    """The token as the customer wrote it (NFKC keeps lengths for these characters)."""
    return memo[start:end] if len(memo) == len(normalized) else normalized[start:end]


def order_ids_in_memo(memo: str | None, region_codes: frozenset[str] | None = None) -> list[str]:
    """Canonical order IDs (`25SH00137`) written in a memo, in order of appearance."""
    return [ref.order_id for ref in order_refs_in_memo(memo, region_codes)]


def is_valid_credit_code(code: str) -> bool:
    code = code.upper()
    if len(code) != 18 or any(c not in _CREDIT_ALPHABET for c in code):
        return False
    total = sum(_CREDIT_ALPHABET.index(c) * w for c, w in zip(code[:17], _CREDIT_WEIGHTS))
    return _CREDIT_ALPHABET[(31 - total % 31) % 31] == code[17]


def credit_codes_in_text(text: str | None) -> list[str]:
    """Valid 统一社会信用代码 found in a memo or payer name."""
    if not isinstance(text, str) or not text:
        return []
    upper = unicodedata.normalize("NFKC", text).upper()
    return [c for c in _CREDIT_CODE.findall(upper) if is_valid_credit_code(c)]
