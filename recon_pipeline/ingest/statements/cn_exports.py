"""Readers for Chinese bank and payment-platform exports (ICBC, CMB, CCB, BOC, BOCOM, ABC,
Alipay, WeChat Pay).

Each export is a table under a preamble (title, card number, period) and above a footer
(`合计`, `以上数据仅供参考`). A format is known by the set of headers it prints; a small
row function per format maps its cells onto a canonical line, because banks differ in how
they sign money (one signed column, income/expense columns, a 借/贷 flag, or nothing at all
on credit-card bills) and where they put the counterparty. No library covers these exports
(double-entry-generator, which the samples come from, is Go), so they are written here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recon_pipeline.ingest.file_profiles import split_name_account as run_together_name_account

from .canonical import (
    StatementLine,
    amount_as_printed,
    clean,
    currency_code,
    join_text,
    parse_amount,
    parse_local_time,
    signed_amount,
)

Row = dict[str, str]


@dataclass
class ExportContext:
    """What the preamble says about the whole file."""

    preamble: str
    account_no: str | None
    statement_year: int | None = None
    statement_month: int | None = None


RowReader = Callable[[Row, ExportContext, int], StatementLine | None]


@dataclass(frozen=True)
class ExportFormat:
    name: str
    label: str  # what a user calls it, for messages
    signature: frozenset[str]  # headers that identify the format
    date_column: str  # a data row has a date (or day) here; other rows are preamble/footer
    read_row: RowReader
    account_pattern: str | None = None  # regex on the preamble; group 1 is the account

    @property
    def sources(self) -> dict[str, str]:
        """The file's own headers each canonical column is read from (for `recon inspect`)."""
        return COLUMN_SOURCES.get(self.name, {})

    def matches(self, header: set[str]) -> bool:
        return self.signature <= header


def normalize_header(cell: str) -> str:
    return re.sub(r"[\s\u3000]+", "", cell or "")


_FOOTER_WORDS = ("合计", "以上数据", "总计", "注：")
def split_name_account(text: str | None) -> tuple[str | None, str | None]:
    """`对手信息` runs the name and account together (`张三 6666...`, `北京住房公积金管理中心1111111111`)."""
    value = clean(text)
    if value is None:
        return None, None
    name, account = run_together_name_account(value)
    return clean(name), account or None


def _sign_from_columns(income: str | None, expense: str | None) -> str | None:
    """Separate income/expense columns: whichever holds a non-zero number wins."""
    income_value, expense_value = parse_amount(income), parse_amount(expense)
    if income_value not in (None, 0):
        return signed_amount(income, negative=False)
    if expense_value not in (None, 0):
        return signed_amount(expense, negative=True)
    if income_value is not None or expense_value is not None:
        return "0.00"
    return clean(income) or clean(expense)


def _icbc(row: Row, ctx: ExportContext, number: int) -> StatementLine:
    income = row.get("记账金额(收入)") if clean(row.get("记账金额(收入)")) or clean(row.get("记账金额(支出)")) else row.get("交易金额(收入)")
    expense = row.get("记账金额(支出)") if clean(row.get("记账金额(收入)")) or clean(row.get("记账金额(支出)")) else row.get("交易金额(支出)")
    name = clean(row.get("对方户名"))
    place = clean(row.get("交易场所"))
    return StatementLine(
        row_number=number,
        account_no=ctx.account_no,
        txn_time=parse_local_time(row.get("交易日期")),
        amount=_sign_from_columns(income, expense),
        currency=currency_code(row.get("记账币种") or row.get("交易币种"), "CNY"),
        counterparty_name=name or place,  # credit-card bills name the merchant only
        counterparty_account=clean(row.get("对方账户")),
        memo=join_text(row.get("摘要"), row.get("交易详情"), place if name else None),
    )


def _cmb_debit(row: Row, ctx: ExportContext, number: int) -> StatementLine:
    name, account = split_name_account(row.get("对手信息"))
    return StatementLine(
        row_number=number,
        account_no=ctx.account_no,
        txn_time=parse_local_time(row.get("记账日期")),
        amount=amount_as_printed(row.get("交易金额")),
        currency=currency_code(row.get("货币"), "CNY"),
        counterparty_name=name,
        counterparty_account=account,
        memo=join_text(row.get("交易摘要"), row.get("客户摘要")),
    )


def _month_day(text: str | None, ctx: ExportContext) -> str | None:
    """CMB credit bills print `MM/DD`; the year comes from the bill month in the title (a
    December day on a January bill belongs to the year before)."""
    value = clean(text)
    match = re.match(r"^(\d{1,2})/(\d{1,2})$", value or "")
    if not match or ctx.statement_year is None or ctx.statement_month is None:
        return parse_local_time(value)
    month, day = int(match[1]), int(match[2])
    year = ctx.statement_year if month <= ctx.statement_month else ctx.statement_year - 1
    return parse_local_time(f"{year:04d}-{month:02d}-{day:02d}")


def _cmb_credit(row: Row, ctx: ExportContext, number: int) -> StatementLine:
    # A credit-card bill prints spending positive and repayments/refunds negative.
    raw = row.get("人民币金额")
    value = parse_amount(raw)
    return StatementLine(
        row_number=number,
        account_no=clean(row.get("卡号末四位")) or ctx.account_no,
        txn_time=_month_day(row.get("交易日") or row.get("记账日"), ctx),
        amount=signed_amount(raw, negative=value > 0) if value is not None else clean(raw),
        currency="CNY",
        memo=join_text(row.get("交易摘要")),
    )


def _ccb(row: Row, ctx: ExportContext, number: int) -> StatementLine:
    return StatementLine(
        row_number=number,
        account_no=ctx.account_no,
        txn_time=parse_local_time(row.get("交易日期") or row.get("记账日"), row.get("交易时间")),
        amount=_sign_from_columns(row.get("收入"), row.get("支出")),
        currency=currency_code(row.get("币种"), "CNY"),
        counterparty_name=clean(row.get("对方户名")),
        counterparty_account=clean(row.get("对方账号")),
        memo=join_text(row.get("摘要"), row.get("交易地点")),
    )


def _boc_debit(row: Row, ctx: ExportContext, number: int) -> StatementLine:
    return StatementLine(
        row_number=number,
        account_no=clean(row.get("借记卡号")) or ctx.account_no,
        txn_time=parse_local_time(row.get("记账日期"), row.get("记账时间")),
        amount=amount_as_printed(row.get("金额")),
        currency=currency_code(row.get("币别"), "CNY"),
        counterparty_name=clean(row.get("对方账户名")),
        counterparty_account=clean(row.get("对方卡号/账号")),
        memo=join_text(row.get("交易名称"), row.get("附言")),
    )


def _boc_credit(row: Row, ctx: ExportContext, number: int) -> StatementLine:
    return StatementLine(
        row_number=number,
        account_no=clean(row.get("卡号后四位")) or ctx.account_no,
        txn_time=parse_local_time(row.get("银行记账日") or row.get("交易日")),
        amount=_sign_from_columns(row.get("存入"), row.get("支出")),
        currency=currency_code(row.get("币种"), "CNY"),
        memo=join_text(row.get("交易描述")),
    )


def _bocom_debit(row: Row, ctx: ExportContext, number: int) -> StatementLine:
    flag = clean(row.get("借贷")) or ""
    return StatementLine(
        row_number=number,
        account_no=ctx.account_no,
        txn_time=parse_local_time(row.get("交易日期"), row.get("交易时间")),
        amount=signed_amount(row.get("交易金额"), negative="借" in flag or "DR" in flag.upper()),
        currency="CNY",
        counterparty_name=clean(row.get("对方户名")),
        counterparty_account=clean(row.get("对方账号")),
        memo=join_text(row.get("交易类型"), row.get("交易地点"), row.get("摘要")),
    )


_CARD_CREDIT_WORDS = ("退货", "退款", "还款", "返现", "溢缴", "存入")
_CURRENCY_AMOUNT = re.compile(r"^([A-Za-z]{3})\s*(.+)$")


def _bocom_credit(row: Row, ctx: ExportContext, number: int) -> StatementLine:
    # The bill prints no sign: refunds and repayments credit the card, the rest is spending.
    text = clean(row.get("入账币种/金额")) or clean(row.get("交易币种/金额")) or ""
    match = _CURRENCY_AMOUNT.match(text)
    currency, raw = (match[1].upper(), match[2]) if match else ("CNY", text)
    description = clean(row.get("交易说明")) or ""
    money_in = description.startswith(_CARD_CREDIT_WORDS) or any(w in description.split(" ")[0] for w in _CARD_CREDIT_WORDS)
    return StatementLine(
        row_number=number,
        account_no=ctx.account_no,
        txn_time=parse_local_time(row.get("交易日期") or row.get("记账日期")),
        amount=signed_amount(raw, negative=not money_in),
        currency=currency,
        memo=join_text(description),
    )


def _abc(row: Row, ctx: ExportContext, number: int) -> StatementLine:
    name, account = split_name_account(row.get("对手信息"))
    if name and account is None and name.isdigit():
        name, account = None, name  # a bare account number
    txn_time = parse_local_time(row.get("交易日期"), row.get("交易时间"))
    log_number = clean(row.get("日志号"))
    # The log number is the bank's id, but placeholders (0000000000) repeat; and it is only
    # unique within a day, so it is qualified by the date.
    bank_ref = f"{(clean(row.get('交易日期')) or '')}/{log_number}" if log_number and log_number.strip("0") else None
    return StatementLine(
        row_number=number,
        account_no=ctx.account_no,
        txn_time=txn_time,
        amount=amount_as_printed(row.get("交易金额")),
        currency="CNY",
        counterparty_name=name,
        counterparty_account=account,
        memo=join_text(row.get("交易摘要"), row.get("交易附言"), sep=" - "),
        bank_ref=bank_ref,
    )


def _wallet_sign(direction: str | None, *texts: str | None) -> bool:
    """Alipay/WeChat: 收入 is money in, 支出 money out; neutral lines (不计收支, `/`) are
    transfers between the user's own funds: refunds and top-ups count as money in."""
    if direction == "收入":
        return False
    if direction == "支出":
        return True
    joined = " ".join(t for t in texts if t)
    return not any(word in joined for word in ("退款", "充值", "转出-到零钱"))


def _alipay(row: Row, ctx: ExportContext, number: int) -> StatementLine | None:
    status = clean(row.get("交易状态"))
    if status == "交易关闭":
        return None  # closed trades moved no money
    negative = _wallet_sign(clean(row.get("收/支")), row.get("交易分类"), row.get("商品说明"), status)
    return StatementLine(
        row_number=number,
        account_no=ctx.account_no,
        txn_time=parse_local_time(row.get("交易时间")),
        amount=signed_amount(row.get("金额") or row.get("金额(元)"), negative=negative),
        currency="CNY",
        counterparty_name=clean(row.get("交易对方")),
        counterparty_account=clean(row.get("对方账号")),
        memo=join_text(row.get("商品说明"), row.get("备注")),
        bank_ref=clean(row.get("交易订单号")),
    )


def _wechat(row: Row, ctx: ExportContext, number: int) -> StatementLine | None:
    kind = clean(row.get("交易类型"))
    negative = _wallet_sign(clean(row.get("收/支")), kind, clean(row.get("当前状态")))
    return StatementLine(
        row_number=number,
        account_no=ctx.account_no,
        txn_time=parse_local_time(row.get("交易时间")),
        amount=signed_amount(row.get("金额(元)"), negative=negative),
        currency="CNY",
        counterparty_name=clean(row.get("交易对方")),
        memo=join_text(row.get("商品"), row.get("备注"), kind),
        bank_ref=clean(row.get("交易单号")),
    )


def _sig(*headers: str) -> frozenset[str]:
    return frozenset(headers)


CARD_NUMBER = r"(?:卡号|账号|帐号)\s*[:：]\s*([0-9A-Za-z*xX]+)"

EXPORT_FORMATS: list[ExportFormat] = [
    ExportFormat("cn_icbc", "工商银行明细", _sig("交易日期", "摘要", "交易场所", "记账金额(收入)", "记账金额(支出)", "记账币种"),
                 "交易日期", _icbc, CARD_NUMBER),
    ExportFormat("cn_cmb_debit", "招商银行储蓄卡流水", _sig("记账日期", "货币", "交易金额", "联机余额", "交易摘要", "对手信息"),
                 "记账日期", _cmb_debit, CARD_NUMBER),
    ExportFormat("cn_cmb_credit", "招商银行信用卡对账单", _sig("交易日", "记账日", "交易摘要", "人民币金额", "卡号末四位"),
                 "记账日", _cmb_credit, CARD_NUMBER),
    ExportFormat("cn_ccb", "建设银行交易明细", _sig("记账日", "交易日期", "交易时间", "支出", "收入", "账户余额", "摘要", "对方账号", "对方户名"),
                 "交易日期", _ccb, CARD_NUMBER),
    ExportFormat("cn_boc_debit", "中国银行交易流水", _sig("记账日期", "记账时间", "币别", "金额", "交易名称", "附言", "对方账户名", "对方卡号/账号"),
                 "记账日期", _boc_debit, CARD_NUMBER),
    ExportFormat("cn_boc_credit", "中国银行信用卡账单", _sig("交易日", "银行记账日", "卡号后四位", "交易描述", "存入", "支出"),
                 "银行记账日", _boc_credit, CARD_NUMBER),
    ExportFormat("cn_bocom_debit", "交通银行借记卡明细", _sig("交易日期", "交易时间", "交易类型", "借贷", "交易金额", "对方账号", "对方户名", "摘要"),
                 "交易日期", _bocom_debit, CARD_NUMBER),
    ExportFormat("cn_bocom_credit", "交通银行信用卡账单", _sig("交易日期", "记账日期", "交易说明", "入账币种/金额"),
                 "交易日期", _bocom_credit, CARD_NUMBER),
    ExportFormat("cn_abc", "农业银行明细", _sig("交易日期", "交易时间", "交易摘要", "交易金额", "本次余额", "对手信息", "日志号"),
                 "交易日期", _abc, CARD_NUMBER),
    ExportFormat("cn_alipay", "支付宝账单", _sig("交易时间", "交易分类", "交易对方", "收/支", "金额", "交易状态", "交易订单号"),
                 "交易时间", _alipay, r"支付宝账户\s*[:：]\s*(\S+)"),
    ExportFormat("cn_wechat", "微信支付账单", _sig("交易时间", "交易类型", "交易对方", "收/支", "金额(元)", "当前状态", "交易单号"),
                 "交易时间", _wechat, r"微信昵称\s*[:：]\s*\[?([^\]\s,]+)\]?"),
]
FORMATS_BY_NAME = {fmt.name: fmt for fmt in EXPORT_FORMATS}
_PREAMBLE_ACCOUNT = "表头上方的 卡号/账号"
COLUMN_SOURCES: dict[str, dict[str, str]] = {
    "cn_icbc": {"account_no": _PREAMBLE_ACCOUNT, "txn_time": "交易日期", "amount": "记账金额(收入)/记账金额(支出)（或交易金额）",
                "currency": "记账币种", "counterparty_name": "对方户名（或交易场所）", "counterparty_account": "对方账户",
                "memo": "摘要 + 交易详情"},
    "cn_cmb_debit": {"account_no": _PREAMBLE_ACCOUNT, "txn_time": "记账日期", "amount": "交易金额", "currency": "货币",
                     "counterparty_name": "对手信息（名称部分）", "counterparty_account": "对手信息（账号部分）",
                     "memo": "交易摘要 + 客户摘要"},
    "cn_cmb_credit": {"account_no": "卡号末四位", "txn_time": "交易日（月/日，年份取自账单月）",
                      "amount": "人民币金额（消费为正，记为支出）", "memo": "交易摘要"},
    "cn_ccb": {"account_no": _PREAMBLE_ACCOUNT, "txn_time": "交易日期 + 交易时间", "amount": "收入/支出", "currency": "币种",
               "counterparty_name": "对方户名", "counterparty_account": "对方账号", "memo": "摘要 + 交易地点"},
    "cn_boc_debit": {"account_no": "借记卡号", "txn_time": "记账日期 + 记账时间", "amount": "金额", "currency": "币别",
                     "counterparty_name": "对方账户名", "counterparty_account": "对方卡号/账号", "memo": "交易名称 + 附言"},
    "cn_boc_credit": {"account_no": "卡号后四位", "txn_time": "银行记账日", "amount": "存入/支出", "currency": "币种",
                      "memo": "交易描述"},
    "cn_bocom_debit": {"account_no": _PREAMBLE_ACCOUNT, "txn_time": "交易日期 + 交易时间", "amount": "交易金额 + 借贷",
                       "counterparty_name": "对方户名", "counterparty_account": "对方账号", "memo": "交易类型 + 交易地点 + 摘要"},
    "cn_bocom_credit": {"account_no": _PREAMBLE_ACCOUNT, "txn_time": "交易日期", "amount": "入账币种/金额（按交易说明判断收支）",
                        "currency": "入账币种/金额", "memo": "交易说明"},
    "cn_abc": {"account_no": _PREAMBLE_ACCOUNT, "txn_id": "交易日期 + 日志号", "txn_time": "交易日期 + 交易时间",
               "amount": "交易金额", "counterparty_name": "对手信息（名称部分）", "counterparty_account": "对手信息（账号部分）",
               "memo": "交易摘要 - 交易附言"},
    "cn_alipay": {"account_no": "表头上方的 支付宝账户", "txn_id": "交易订单号", "txn_time": "交易时间",
                  "amount": "金额 + 收/支", "counterparty_name": "交易对方", "counterparty_account": "对方账号",
                  "memo": "商品说明 + 备注"},
    "cn_wechat": {"account_no": "表头上方的 微信昵称", "txn_id": "交易单号", "txn_time": "交易时间", "amount": "金额(元) + 收/支",
                  "counterparty_name": "交易对方", "memo": "商品 + 备注 + 交易类型"},
}
HEADER_SEARCH_ROWS = 60  # preambles are short; never scan a whole 100k-line file for a header


def find_header(rows: list[list[str]]) -> tuple[ExportFormat, int, list[str]] | None:
    """The first row (within the preamble window) whose headers identify a known export."""
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        header = [normalize_header(cell) for cell in row]
        names = set(header)
        for fmt in EXPORT_FORMATS:
            if fmt.matches(names):
                return fmt, index, header
    return None


def _preamble_context(fmt: ExportFormat, rows: list[list[str]]) -> ExportContext:
    preamble = "\n".join(" ".join(cell.replace("\u3000", "") for cell in row) for row in rows)
    account = None
    if fmt.account_pattern:
        match = re.search(fmt.account_pattern, preamble)
        account = match[1] if match else None
    period = re.search(r"(\d{4})年(\d{1,2})月", preamble)
    return ExportContext(
        preamble=preamble,
        account_no=account,
        statement_year=int(period[1]) if period else None,
        statement_month=int(period[2]) if period else None,
    )


def _is_footer(row: list[str]) -> bool:
    first = next((c for c in (clean(cell) for cell in row) if c), None)
    return first is not None and any(word in first for word in _FOOTER_WORDS)


def read_export(path: Path, rows: list[list[str]], fmt: ExportFormat, header_index: int,
                header: list[str], first_row_number: int = 1) -> list[StatementLine]:
    """Canonical lines of an export whose header is at `header_index`. `_row_number` is the
    1-based line (CSV) or sheet row (Excel) so a user can find it in the file."""
    context = _preamble_context(fmt, rows[:header_index])
    positions = {name: i for i, name in reversed(list(enumerate(header))) if name}
    lines: list[StatementLine] = []
    for offset, cells in enumerate(rows[header_index + 1:], start=header_index + 1):
        if not any(clean(cell) for cell in cells):
            continue
        if _is_footer(cells):
            break
        row = {name: (cells[i] if i < len(cells) else "") for name, i in positions.items()}
        line = fmt.read_row(row, context, offset + first_row_number)
        if line is not None:
            lines.append(line)
    return lines
