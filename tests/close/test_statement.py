"""The 业绩确认单: what counted, what did not and why, the adjustments carried in, commission and clawback, XLSX."""

import dataclasses
from datetime import datetime
from decimal import Decimal
from io import BytesIO

import pytest
from openpyxl import load_workbook

from recon_pipeline.close.export import safe_text, statement_xlsx
from recon_pipeline.close.freeze import close_period
from recon_pipeline.close.periods import CloseError
from recon_pipeline.close.stage import refresh_close
from recon_pipeline.close.statement import build_statement


@pytest.fixture()
def with_commission(settings):
    raw = {**settings.raw, "close": {"commission": {"default_rate": 0.05, "rates": {"S02": 0.02}}}}
    return dataclasses.replace(settings, raw=raw)


@pytest.fixture()
def reversed_after_close(close_warehouse, with_commission, clock):
    """February closed on March 4; 25SH00001's write-off reversed, seen by the run of March 12."""
    close_warehouse.run("2025-03-04 09:00:00")
    with close_warehouse.connect() as conn:
        conn.execute("UPDATE mart.fct_order_reconciliation SET customer_name = '=HYPERLINK(\"http://x\")' "
                     "WHERE order_id = '25SH00002'")
        close_period(conn, "2025-02", with_commission, "财务王五", clock)
    close_warehouse.set_order("25SH00001", finance=None, received_amount=0, written_off_amount=0)
    moment = close_warehouse.run("2025-03-12 09:00:00")
    with close_warehouse.connect() as conn:
        refresh_close(conn, moment, with_commission)
    return close_warehouse


def test_a_closed_period_shows_what_was_frozen_and_what_came_after(reversed_after_close, with_commission):
    with reversed_after_close.connect() as conn:
        statement = build_statement(conn, "S01", "2025-02", with_commission)
    assert statement.status == "closed" and "已封账（版本 1）" in statement.status_text
    assert "财务王五" in statement.status_text
    # Frozen: 25SH00001 still counts in February's statement, the live mart no longer does.
    assert [(o.order_id, o.amount_cents) for o in statement.counted] == [("25SH00001", 10000000), ("25SH00002", 5000000)]
    assert statement.recognized_cents == 15000000 and statement.adjustments == []
    assert [(a.order_id, a.booked_period, a.amount_cents) for a in statement.later_adjustments] == [
        ("25SH00001", "2025-03", -10000000)]
    assert statement.commission.on_counted_cents == 750000  # 150,000 * 5%


def test_the_next_period_carries_the_adjustment_and_claws_back_its_commission(reversed_after_close, with_commission):
    with reversed_after_close.connect() as conn:
        statement = build_statement(conn, "S01", "2025-03", with_commission)
    assert statement.status == "open" and "未封账" in statement.status_text
    (adjustment,) = statement.adjustments
    assert (adjustment.original_period, adjustment.amount_cents, adjustment.kind_label) == ("2025-02", -10000000, "核销撤销")
    assert adjustment.commission_cents == -500000
    assert statement.total_cents == -10000000
    assert statement.commission.clawback_cents == -500000 and statement.commission.total_cents == -500000


def test_what_did_not_count_says_which_leg_is_missing(reversed_after_close, with_commission):
    with reversed_after_close.connect() as conn:
        february = build_statement(conn, "S02", "2025-02", with_commission)
        with pytest.raises(CloseError, match="没有销售 S99"):
            build_statement(conn, "S99", "2025-02", with_commission)
    assert [(o.order_id, o.note) for o in february.not_counted] == [
        ("25BJ00003", "法务未归档（审核通过并归档后才算完成）")]
    assert february.commission.plan == "固定比例 2%"


def test_the_xlsx_keeps_money_as_numbers_and_text_inert(reversed_after_close, with_commission):
    with reversed_after_close.connect() as conn:
        statement = build_statement(conn, "S01", "2025-02", with_commission)
    sheet = load_workbook(BytesIO(statement_xlsx(statement))).active
    cells = {cell.coordinate: cell for row in sheet.iter_rows() for cell in row if cell.value is not None}
    values = [cell.value for cell in cells.values()]
    assert sheet["A1"].value == "业绩确认单 2025-02 · 销售S01（S01）"
    assert "'=HYPERLINK(\"http://x\")" in values  # the customer name, neutralised
    assert not any(cell.data_type == "f" for cell in cells.values())
    amounts = [cell.value for cell in cells.values() if cell.number_format == "#,##0.00"]
    assert Decimal("150000.00") in [Decimal(str(v)) for v in amounts]
    assert all(isinstance(v, (int, float)) for v in amounts)
    assert -100000 in amounts  # the adjustment booked in March, listed for information


@pytest.mark.parametrize("text, shown", [
    ("=1+2", "'=1+2"), ("+86 138", "'+86 138"), ("-¥100", "'-¥100"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"), ("北京=公司", "北京=公司"),
])
def test_formula_prefixes_are_neutralised(text, shown):
    assert safe_text(text) == shown


def test_an_open_period_statement_is_live(close_warehouse, settings):
    close_warehouse.run("2025-03-04 09:00:00")
    with close_warehouse.connect() as conn:
        statement = build_statement(conn, "S03", "2025-01", settings)
    assert statement.status == "open" and statement.commission is None
    assert statement.as_of == datetime(2025, 3, 4, 9)
    assert [o.order_id for o in statement.counted] == ["25GZ00005"]
