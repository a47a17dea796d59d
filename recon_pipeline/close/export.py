"""The 业绩确认单 as an Excel workbook (openpyxl): one printable sheet, money as numbers, text never read as a formula."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from recon_pipeline.close.statement import Statement
from recon_pipeline.money import cents_to_decimal

MONEY_FORMAT = "#,##0.00"
TIME_FORMAT = "yyyy-mm-dd hh:mm"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
HEADER_FILL = PatternFill("solid", fgColor="DDE7F0")


def safe_text(value: str) -> str:
    """A text cell Excel will not evaluate: a leading = + - @ (or tab / CR) gets an apostrophe."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _cell(value: Any) -> Any:
    return safe_text(value) if isinstance(value, str) else value


def statement_filename(statement: Statement) -> str:
    return f"业绩确认单_{statement.period}_{statement.salesperson_id}.xlsx"


def statement_xlsx(statement: Statement) -> bytes:
    """The statement as XLSX bytes."""
    book = Workbook()
    sheet = book.active
    sheet.title = f"业绩确认单 {statement.period}"
    bold = Font(bold=True)

    def line(*values: Any, money: tuple[int, ...] = (), time: tuple[int, ...] = (), style: Font | None = None,
             fill: PatternFill | None = None) -> None:
        sheet.append([_cell(v) for v in values])
        for index, cell in enumerate(sheet[sheet.max_row], start=1):
            if index in money:
                cell.number_format = MONEY_FORMAT
            if index in time:
                cell.number_format = TIME_FORMAT
            if style:
                cell.font = style
            if fill:
                cell.fill = fill

    def yuan(cents: int | None):
        return None if cents is None else cents_to_decimal(cents)

    line(statement.title, style=Font(bold=True, size=14))
    line(statement.status_text)
    line()
    line("签约金额", yuan(statement.signed_cents), money=(2,))
    line("确认业绩（本期计入）", yuan(statement.recognized_cents), money=(2,))
    line("回款金额", yuan(statement.collected_cents), money=(2,))
    line("本期记入的调整", yuan(statement.adjustments_cents), money=(2,))
    line("本期业绩合计（确认业绩 + 调整）", yuan(statement.total_cents), money=(2,), style=bold)
    if statement.commission:
        c = statement.commission
        line("提成方案", c.plan)
        line("确认业绩提成", yuan(c.on_counted_cents), money=(2,))
        line("调整对应提成（其中追回）", yuan(c.adjustments_cents), yuan(c.clawback_cents), money=(2, 3))
        line("应发提成合计", yuan(c.total_cents), money=(2,), style=bold)

    for title, orders, headers in (
        (f"一、计入业绩的订单（{len(statement.counted)} 笔）", statement.counted, ("确认金额", "三联单闭环时间", "说明")),
        (f"二、未计入业绩的订单（{len(statement.not_counted)} 笔）", statement.not_counted,
         ("合同金额", "签约时间", "未计入原因（缺哪一联）")),
    ):
        line()
        line(title, style=bold)
        line("订单号", "合同编号", "客户", *headers, style=bold, fill=HEADER_FILL)
        for order in orders:
            line(order.order_id, order.contract_no, order.customer_name, yuan(order.amount_cents), order.moment,
                 order.note, money=(4,), time=(5,))

    adjustment_header = ["调整编号", "原期间", "订单号", "客户", "调整金额", "类型", "原因"]
    with_commission = statement.commission is not None
    if with_commission:
        adjustment_header.append("对应提成")
    for title, adjustments in (
        (f"三、本期记入的调整（{len(statement.adjustments)} 笔，来自已封账期间）", statement.adjustments),
        (f"四、本期封账后发生、记入以后期间的调整（{len(statement.later_adjustments)} 笔，仅供参考）",
         statement.later_adjustments),
    ):
        line()
        line(title, style=bold)
        line(*adjustment_header, style=bold, fill=HEADER_FILL)
        for a in adjustments:
            period = a.original_period if adjustments is statement.adjustments else f"记入 {a.booked_period}"
            values = [a.adjustment_id, period, a.order_id, a.customer_name, yuan(a.amount_cents), a.kind_label, a.reason]
            if with_commission:
                values.append(yuan(a.commission_cents))
            line(*values, money=(5, 8))

    line()
    line("销售确认签字：", None, None, "财务确认签字：")
    for index, width in enumerate((16, 20, 28, 16, 18, 60, 60, 14), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    for row in sheet.iter_rows():
        for cell in row:
            cell.alignment = Alignment(vertical="top", wrap_text=cell.column in (6, 7))
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()
