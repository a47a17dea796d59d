"""What kind of payer and money a bank line shows: a payment intermediary, and what its memo says the money is.

Payment intermediaries (支付宝（中国）网络技术有限公司, 财付通支付科技有限公司, 银联商务股份有限公司,
...; `payer_matching.payment_intermediaries` in the settings) only carry someone else's money:
their name says nothing about the customer and their account is shared by everybody who pays
through them, so neither is ever learned, and the memo's order ID is the evidence.

Refunds: words such as 多付, 多汇, 重复付款 (`surplus_refund_memo_words`) say a debit gives back
an over-payment, so it takes the customer's unapplied cash before any order's receipts.

Memo purpose: words such as 押金, 保证金, 利息, 工资, 报销, 借款, 投标
(`payer_matching.non_sales_memo_words`) say the credit is not a payment for goods, unless a
sales word (货款, 合同款, ...; `sales_memo_words`) is written too.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from recon_pipeline.matching.inputs import MatchOptions
from recon_pipeline.matching.names import NameParts, parse_company_name


@dataclass(frozen=True)
class Intermediaries:
    full_keys: tuple[str, ...]
    cores: frozenset[str]

    @classmethod
    def from_options(cls, options: MatchOptions) -> "Intermediaries":
        return _intermediaries(options.payment_intermediaries, options.channel_prefixes)

    def covers(self, payer: NameParts) -> bool:
        """The payer is a payment intermediary itself (not `支付宝－某某公司`, a customer paying through one)."""
        if payer.channel:
            return not payer.core  # the channel's bare name (支付宝), not 支付宝－某某公司
        if payer.is_empty:
            return False
        key = payer.full_key
        return payer.core in self.cores or any(key.startswith(k) for k in self.full_keys)


@lru_cache(maxsize=8)
def _intermediaries(names: tuple[str, ...], channel_prefixes: tuple[str, ...]) -> Intermediaries:
    parts = [parse_company_name(n, channel_prefixes) for n in names]
    return Intermediaries(tuple(sorted({p.full_key for p in parts if p.full_key}, key=lambda k: (-len(k), k))),
                          frozenset(p.core for p in parts if p.core))


def memo_purpose(memo: str | None, options: MatchOptions) -> str:
    """The non-sales word a memo starts its purpose with (押金 in 退押金), or "" for a payment for goods."""
    if not memo:
        return ""
    return _memo_purpose(memo, options.non_sales_memo_words, options.sales_memo_words)


@lru_cache(maxsize=65_536)
def _memo_purpose(memo: str, non_sales: tuple[str, ...], sales: tuple[str, ...]) -> str:
    text = unicodedata.normalize("NFKC", memo)
    if any(word in text for word in sales):
        return ""
    return next((word for word in non_sales if word in text), "")


def says_surplus_refund(memo: str | None, options: MatchOptions) -> bool:
    """A refund memo that gives back an over-payment (退多付款, 多汇款退回, 重复付款退回)."""
    if not memo:
        return False
    text = unicodedata.normalize("NFKC", memo)
    return any(word in text for word in options.surplus_refund_memo_words)
