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

# Defaults of the settings lists below (config/settings.yaml `payer_matching` repeats them).
DEFAULT_PAYMENT_INTERMEDIARIES = (
    "支付宝（中国）网络技术有限公司", "财付通支付科技有限公司", "银联商务股份有限公司", "中国银联股份有限公司",
    "通联支付网络服务股份有限公司", "拉卡拉支付股份有限公司", "快钱支付清算信息有限公司", "易宝支付有限公司",
    "汇付天下有限公司", "连连银通电子支付有限公司", "网银在线（北京）科技有限公司", "北京度小满支付科技有限公司",
    "平安付电子支付有限公司", "随行付支付有限公司", "宝付网络科技（上海）有限公司",
)
DEFAULT_NON_SALES_MEMO_WORDS = ("押金", "保证金", "退款", "利息", "结息", "工资", "薪资", "奖金", "报销", "借款",
                                "投标", "标书", "社保", "公积金", "补贴", "退税", "赔款", "罚款", "捐款")
DEFAULT_SURPLUS_REFUND_MEMO_WORDS = ("多付", "多汇", "多打", "多转", "多缴", "溢缴", "重复付款", "重复支付", "多收")
DEFAULT_SALES_MEMO_WORDS = ("货款", "合同款", "项目款", "服务费", "设备款", "工程款", "尾款", "预付款", "首付款",
                            "进度款", "定金", "订金")


@dataclass
class MatchingInputs:
    """Current state of the sources the engine reads (one frame per staging model).

    bank:       account_no, txn_id, txn_time, amount_cents, currency, counterparty_name,
                counterparty_account, memo
    customers:  customer_id, customer_name, credit_code, aliases, region_code, industry
    contracts:  order_id, customer_id, customer_name, salesperson_id, amount_cents, status,
                signed_at, contract_no (optional: memos naming the contract number)
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
    # Payers that only carry someone else's money (the memo's order ID says whose).
    payment_intermediaries: tuple[str, ...] = DEFAULT_PAYMENT_INTERMEDIARIES
    # Memo words that say a credit is not a payment for goods, unless a sales word is there too.
    non_sales_memo_words: tuple[str, ...] = DEFAULT_NON_SALES_MEMO_WORDS
    sales_memo_words: tuple[str, ...] = DEFAULT_SALES_MEMO_WORDS
    # A refund memo saying an over-payment is given back (退多付款): it takes the unapplied cash.
    surplus_refund_memo_words: tuple[str, ...] = DEFAULT_SURPLUS_REFUND_MEMO_WORDS
    # Score of a suggestion that is not a fuzzy name score (branch, learned person, memo
    # order paid by someone unknown): the suggestion threshold unless said otherwise.
    relation_suggest_score: int = 0

    @classmethod
    def from_settings(cls, settings: Settings | None) -> "MatchOptions":
        if settings is None:
            return cls()
        own = dict((settings.raw or {}).get("payer_matching") or {})
        values: dict[str, Any] = {"suggest_threshold": int(settings.matching.get("fuzzy_suggest_threshold", 85))}
        for name, spec in cls.__dataclass_fields__.items():
            if name in own and name != "suggest_threshold" and own[name] is not None:
                values[name] = (tuple(str(v) for v in own[name]) if spec.type.startswith("tuple")
                                else int(own[name]))
        return cls(**values)

    @property
    def relation_score(self) -> int:
        return self.relation_suggest_score or self.suggest_threshold



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
