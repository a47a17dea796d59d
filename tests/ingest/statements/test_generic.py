"""The generic reader: bank, card and payment exports of banks without a reader of their own,
built after the column lists banks publish for their downloads. It finds the header under any
preamble, infers the sign convention, drops summary rows, reads the date forms, and what it
infers is a profile a user can paste to pin the layout."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from recon_pipeline.ingest.file_profiles import parse_datetime, parse_money
from recon_pipeline.ingest.inspection import inspect_file
from recon_pipeline.ingest.loader import sync_landing
from recon_pipeline.ingest.readers import FileReadError, read_canonical_frame
from recon_pipeline.ingest.statements import StatementError, read_statement_file
from recon_pipeline.settings import load_settings
from recon_pipeline.sources import SOURCES
from recon_pipeline.warehouse import connect

BANK = SOURCES["bank_transactions"]


def _file(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _rows(frame, *columns):
    return frame[list(columns)].values.tolist()


JOINT_STOCK = """某某银行对公账户交易明细
账号：8110701012345678901,户名：上海某某科技有限公司
查询期间：2024-01-01 至 2024-01-31,,,,,,,,
交易日期,交易时间,借方发生额,贷方发生额,账户余额,对方账号,对方户名,摘要,柜员流水号
2024-01-02,10:15:00,,"12,000.00","112,000.00",6222000011112222,北京某某有限公司,货款 25SH00137,A0001
2024-01-03,11:00:01,500.00,,"111,500.00",6222000033334444,上海某某物流有限公司,运费,A0002
2024-01-03,,,,"111,500.00",,,期末余额,
本页小计,,500.00,"12,000.00",,,,,
合计,,500.00,"12,000.00",,,,,
"""


def test_split_columns_under_a_preamble_with_totals(tmp_path):
    read = read_statement_file(_file(tmp_path, "对公明细.csv", JOINT_STOCK))
    assert read.format == "generic" and read.inference.convention == "in_out"
    assert _rows(read.frame, "account_no", "txn_id", "txn_time", "amount", "counterparty_name", "counterparty_account", "memo") == [
        ["8110701012345678901", "A0001", "2024-01-02 10:15:00", "12000.00", "北京某某有限公司", "6222000011112222", "货款 25SH00137"],
        ["8110701012345678901", "A0002", "2024-01-03 11:00:01", "-500.00", "上海某某物流有限公司", "6222000033334444", "运费"],
    ]
    assert read.frame["_row_number"].tolist() == [5, 6]
    assert read.inference.header_row == 4
    assert read.sources["amount"] == "贷方发生额（收入）/ 借方发生额（支出）"
    assert any("跳过 3 行" in note for note in read.inference.notes)


def test_amount_with_a_debit_credit_flag_in_gb18030(tmp_path):
    text = ("账户明细查询\n账号:6228480012345678\n"
            "交易日期,交易时间,交易金额,借贷标志,余额,对方户名,对方账号,用途,附言\n"
            "20240105,101500,1000.00,贷,5000.00,杭州某某网络科技有限公司,330100001111,货款,25SH00137\n"
            "20240106,093000,200.00,借,4800.00,上海某某物流有限公司,310100002222,运费,\n"
            "20240107,093000,1.00,冲,4801.00,某某,3101,?,\n")
    read = read_statement_file(_file(tmp_path, "flags.csv", text, "gb18030"))
    assert read.encoding == "gb18030" and read.inference.convention == "flag"
    assert _rows(read.frame, "txn_time", "amount", "memo")[:2] == [
        ["2024-01-05 10:15:00", "1000.00", "货款 25SH00137"], ["2024-01-06 09:30:00", "-200.00", "运费"]]
    # A flag that says neither: the amount is kept with the reason, so that row is quarantined.
    assert "借贷标志“冲”无法判断" in read.frame.iloc[2]["amount"]


def test_signed_amount_with_payer_payee_columns(tmp_path):
    text = ("交易类型,付款人账号,付款人名称,收款人账号,收款人名称,交易日期,交易时间,交易货币,交易金额,交易流水号,摘要\n"
            "来账,6222111,深圳某某电子有限公司,8110701,我司,2024/1/5,09:01:02,CNY,\"3,000.00\",T20240105001,25SZ00042\n"
            "往账,8110701,我司,6222333,广州某某贸易有限公司,2024/1/6,14:00:00,CNY,-450.00,T20240106001,退款\n")
    read = read_statement_file(_file(tmp_path, "payer_payee.csv", text), account_no="8110701")
    assert read.inference.convention == "signed"
    assert _rows(read.frame, "account_no", "txn_id", "txn_time", "amount", "currency", "counterparty_name", "counterparty_account") == [
        ["8110701", "T20240105001", "2024-01-05 09:01:02", "3000.00", "CNY", "深圳某某电子有限公司", "6222111"],
        ["8110701", "T20240106001", "2024-01-06 14:00:00", "-450.00", "CNY", "广州某某贸易有限公司", "6222333"],
    ]


def test_credit_card_bill_makes_purchases_money_out(tmp_path):
    text = ("某某银行信用卡电子账单\n账单周期：2024年01月\n本期应还金额：1,288.00\n\n"
            "交易日,记账日,交易摘要,交易金额,卡号末四位\n"
            "12/28,12/29,某某超市,288.00,1234\n"
            "01/05,01/06,某某航空,\"1,000.00\",1234\n"
            "01/10,01/10,还款,-2000.00,1234\n")
    read = read_statement_file(_file(tmp_path, "card.csv", text))
    assert read.inference.convention == "card"
    assert _rows(read.frame, "txn_time", "amount") == [
        ["2023-12-28 00:00:00", "-288.00"], ["2024-01-05 00:00:00", "-1000.00"], ["2024-01-10 00:00:00", "2000.00"]]


def test_english_export_with_day_first_dates_and_balance_rows(tmp_path):
    text = ("Account Statement\nAccount Number: 400-123456-001\n"
            "Date,Value Date,Description,Debit,Credit,Balance\n"
            "01/02/2024,01/02/2024,Opening Balance,,,\"10,000.00\"\n"
            "05/02/2024,05/02/2024,PAYMENT FROM ACME LTD INV 25HK00017,,\"2,500.00\",\"12,500.00\"\n"
            "13/02/2024,14/02/2024,TRANSFER TO SUPPLIER,300.00,,\"12,200.00\"\n"
            "29/02/2024,29/02/2024,Closing Balance,,,\"12,200.00\"\n")
    read = read_statement_file(_file(tmp_path, "hsbc_like.csv", text))
    assert _rows(read.frame, "account_no", "txn_time", "amount", "memo") == [
        ["400123456001", "2024-02-05 00:00:00", "2500.00", "PAYMENT FROM ACME LTD INV 25HK00017"],
        ["400123456001", "2024-02-13 00:00:00", "-300.00", "TRANSFER TO SUPPLIER"],
    ]
    assert read.inference.profile.txn_time["day_first"] is True


def test_unsigned_amounts_take_their_direction_from_the_balance(tmp_path):
    text = ("日期,摘要,金额,余额\n2024-03-01,期初,,1000.00\n2024-03-02,收货款,500.00,1500.00\n"
            "2024-03-03,付运费,200.00,1300.00\n2024-03-04,收货款,50.00,1350.00\n")
    read = read_statement_file(_file(tmp_path, "balance.csv", text), account_no="A1")
    assert read.inference.convention == "balance"
    assert read.frame["amount"].tolist() == ["500.00", "-200.00", "50.00"]


def test_dr_cr_suffixes_and_european_decimals():
    assert parse_money("1.234,56") == Decimal("1234.56") and parse_money("(12.00)") == Decimal("-12.00")
    assert parse_money("¥1,000.00") == Decimal("1000.00") and parse_money("100.00-") == Decimal("-100.00")


def test_dr_cr_suffix_amounts(tmp_path):
    text = "Txn Date,Description,Amount\n02 Jan 2024,SALARY,\"5,000.00 CR\"\n03-Jan-2024,COFFEE,35.00 DR\n"
    read = read_statement_file(_file(tmp_path, "suffix.csv", text), account_no="A1")
    assert _rows(read.frame, "txn_time", "amount") == [["2024-01-02 00:00:00", "5000.00"], ["2024-01-03 00:00:00", "-35.00"]]


@pytest.mark.parametrize(
    ("text", "day_first", "expected"),
    [
        ("20240105", True, "2024-01-05 00:00:00"),
        ("2024/1/5", True, "2024-01-05 00:00:00"),
        ("2024-01-05 10:00", True, "2024-01-05 10:00:00"),
        ("2024年1月5日", True, "2024-01-05 00:00:00"),
        ("05/01/2024", True, "2024-01-05 00:00:00"),
        ("01/05/2024", False, "2024-01-05 00:00:00"),
        ("05.01.2024", True, "2024-01-05 00:00:00"),
        ("Jan 5, 2024", True, "2024-01-05 00:00:00"),
        ("2024-01-05T10:00:00+08:00", True, "2024-01-05 10:00:00"),
        ("20240105 101500", True, "2024-01-05 10:15:00"),
        ("45296", True, "2024-01-05 00:00:00"),  # an Excel serial day left unformatted
        ("2024-02-30", True, None),
        ("昨天", True, None),
    ],
)
def test_date_forms(text, day_first, expected):
    assert parse_datetime(text, day_first=day_first) == expected


def test_xlsx_export_with_a_title_row(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["某某银行账户交易明细"])
    sheet.append(["卡号：6217000010001234567"])
    sheet.append(["记账日期", "收入金额", "支出金额", "余额", "对方账户名称", "对方账号", "摘要"])
    sheet.append(["2024-04-01", 800, None, 1800, "成都某某有限公司", "5101", "货款"])
    sheet.append(["2024-04-02", None, 55.5, 1744.5, "某某快递", "5102", "快递费"])
    sheet.append(["合计", 800, 55.5, None, None, None, None])
    path = tmp_path / "明细.xlsx"
    book.save(path)
    read = read_statement_file(path)
    assert _rows(read.frame, "account_no", "txn_time", "amount", "counterparty_name") == [
        ["6217000010001234567", "2024-04-01 00:00:00", "800.00", "成都某某有限公司"],
        ["6217000010001234567", "2024-04-02 00:00:00", "-55.50", "某某快递"],
    ]


def test_unreadable_table_says_which_row_it_took_and_what_is_missing(tmp_path):
    path = _file(tmp_path, "notes.csv", "说明\n客户,地区,备注,余额\n上海某某,华东,张三,1.00\n")
    with pytest.raises(StatementError, match="通用识别：表头取第 2 行，未找到 交易日期、金额"):
        read_statement_file(path)
    with pytest.raises(FileReadError, match="通用识别: 表头取第 2 行，未找到 交易日期、金额"):
        read_canonical_frame(path, BANK, load_settings())


def _drop(tmp_path: Path, name: str, text: str, day: str = "2024-01-31") -> Path:
    folder = tmp_path / "landing" / "bank_transactions" / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(text.encode("utf-8"))
    return folder / name


def test_generic_export_in_the_landing_zone_keeps_extra_columns_and_quarantines_bad_rows(tmp_path):
    _drop(tmp_path, "对公明细.csv", JOINT_STOCK.replace("2024-01-03,11:00:01,500.00", "2024-01-03,11:00:01,5OO.00"))
    with connect(tmp_path / "w.duckdb") as conn:
        report = sync_landing(conn, tmp_path / "landing", date(2024, 1, 31), load_settings())
        assert report.failed == [] and report.rows_loaded == 1 and report.rows_quarantined == 1
        row = conn.execute("SELECT account_no, txn_id, amount, _row_number, _extra_columns FROM raw.bank_transactions").fetchone()
        reason, number = conn.execute("SELECT reason, _row_number FROM raw.quarantine").fetchone()
    assert row[:4] == ("8110701012345678901", "A0001", Decimal("12000.00"), 5)
    assert '"账户余额":"112,000.00"' in row[4]
    assert number == 6 and "amount 金额无法识别" in reason


def test_the_printed_profile_pinned_in_the_settings_reads_the_same_rows(tmp_path):
    path = _drop(tmp_path, "对公明细.csv", JOINT_STOCK)
    inspected = inspect_file(path, load_settings())
    assert inspected.convention == "收入/支出分列" and inspected.header_row == 4
    assert inspected.mapped["贷方发生额（收入）/ 借方发生额（支出）"] == "amount"
    pinned = tmp_path / "settings.yaml"
    pinned.write_text(inspected.profile_yaml, encoding="utf-8")
    settings = load_settings(pinned)
    inferred = read_canonical_frame(path, BANK, load_settings())
    from_profile = read_canonical_frame(path, BANK, settings)
    assert yaml.safe_load(inspected.profile_yaml)["file_formats"]["bank_transactions"][0]["amount"] == {
        "credit_column": "贷方发生额", "debit_column": "借方发生额"}
    assert inferred.equals(from_profile) and len(inferred) == 2


def test_built_in_readers_show_the_files_own_headers_and_encoding(tmp_path):
    from tests import SAMPLES_DIR

    alipay = inspect_file(SAMPLES_DIR / "cn_bank_exports" / "alipay" / "example-alipay-records.csv", load_settings())
    assert alipay.encoding == "gb18030" and alipay.mapped["交易时间"] == "txn_time"
    assert alipay.mapped["金额 + 收/支"] == "amount" and alipay.profile_yaml is None
    camt = inspect_file(SAMPLES_DIR / "camt053" / "camt053.v3.xml", load_settings())
    assert camt.encoding == "utf-8" and camt.mapped["Ntry/BookgDt（无则 ValDt）"] == "txn_time"


def test_an_account_with_a_few_refunds_is_not_taken_for_a_card_bill(tmp_path):
    text = ("交易日期,交易金额,余额,对方户名,摘要\n2024-05-01,1000.00,1000.00,甲公司,货款\n2024-05-02,2000.00,3000.00,乙公司,货款\n"
            "2024-05-03,3000.00,6000.00,丙公司,货款\n2024-05-04,-100.00,5900.00,甲公司,退款\n")
    read = read_statement_file(_file(tmp_path, "merchant.csv", text), account_no="A1")
    assert read.inference.convention == "signed" and read.frame["amount"].tolist() == ["1000.00", "2000.00", "3000.00", "-100.00"]


HTML_XLS = """<html><head><meta charset="utf-8"></head><body>
<table><tr><td colspan="6">账户交易明细</td></tr><tr><td colspan="6">账号：6222600110012345678</td></tr>
<tr><th>交易日期/Transaction Date</th><th>摘要/Description</th><th>存入/Deposit</th><th>支取/Withdrawal</th>
<th>余额/Balance</th><th>对方户名/Counterparty</th></tr>
<tr><td>2024-06-01</td><td>货款</td><td>1,000.00</td><td></td><td>1,000.00</td><td>甲公司</td></tr>
<tr><td>2024-06-02</td><td>手续费</td><td></td><td>5.00</td><td>995.00</td><td></td></tr></table></body></html>"""


def test_an_html_table_saved_as_xls_with_bilingual_headers(tmp_path):
    read = read_statement_file(_file(tmp_path, "download.xls", HTML_XLS))
    assert _rows(read.frame, "account_no", "txn_time", "amount", "counterparty_name") == [
        ["6222600110012345678", "2024-06-01 00:00:00", "1000.00", "甲公司"],
        ["6222600110012345678", "2024-06-02 00:00:00", "-5.00", None]]
    path = _drop(tmp_path, "download.xls", HTML_XLS, day="2024-06-30")
    assert read_canonical_frame(path, BANK, load_settings())["amount"].tolist() == ["1000.00", "-5.00"]


def test_an_excel_2003_xml_workbook(tmp_path):
    rows = [["交易日期", "收入金额", "支出金额", "余额", "摘要"], ["2024-07-01", "300.00", "", "300.00", "货款"],
            ["2024-07-02", "", "20.00", "280.00", "运费"]]
    cells = "".join("<Row>" + "".join(f'<Cell><Data ss:Type="String">{v}</Data></Cell>' for v in row) + "</Row>" for row in rows)
    xml = ('<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
           'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="明细"><Table>'
           f"{cells}</Table></Worksheet></Workbook>")
    read = read_statement_file(_file(tmp_path, "export.xls", xml), account_no="A1")
    assert read.frame["amount"].tolist() == ["300.00", "-20.00"]


def test_in_out_words_in_an_unnamed_column_sign_the_amount(tmp_path):
    text = ("交易日期,交易类型,交易金额,对方户名,用途\n2024-08-01,来账,500.00,甲公司,货款\n2024-08-02,往账,80.00,乙公司,运费\n"
            "2024-08-03,来账,20.00,丙公司,货款\n")
    read = read_statement_file(_file(tmp_path, "types.csv", text), account_no="A1")
    assert read.inference.convention == "flag" and read.frame["amount"].tolist() == ["500.00", "-80.00", "20.00"]


def test_unsigned_amounts_with_payer_and_payee_accounts(tmp_path):
    text = ("交易日期,付款人账号,付款人名称,收款人账号,收款人名称,交易金额,摘要\n"
            "2024-09-01,6222111,甲公司,8110701,本公司,900.00,货款\n"
            "2024-09-02,8110701,本公司,6222333,乙公司,120.00,运费\n")
    read = read_statement_file(_file(tmp_path, "payer.csv", text))
    assert read.inference.convention == "payer"
    assert _rows(read.frame, "account_no", "amount", "counterparty_name") == [
        ["8110701", "900.00", "甲公司"], ["8110701", "-120.00", "乙公司"]]


def test_a_row_wider_than_its_header_keeps_every_column_in_place(tmp_path):
    """A damaged header (two names run together) leaves data rows one cell wider than the
    header: the computed date, amount and memo must still come from the right cells, and the
    extra cell is kept in the row rather than dropped."""
    path = _file(tmp_path, "damaged.csv", (
        "交易日期,交易金额,余额,摘要对方户名\n"
        "2024-01-05,\"1,234.00\",5000.00,货款,上海某某科技有限公司\n"
        "2024-01-06,-200.00,4800.00,手续费\n"
    ))
    frame = read_statement_file(path).frame
    assert _rows(frame, "txn_time", "amount") == [["2024-01-05 00:00:00", "1234.00"], ["2024-01-06 00:00:00", "-200.00"]]
    assert frame["txn_id"].notna().all()
