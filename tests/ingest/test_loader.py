"""Landing drops -> raw history: encodings, formats, mapping, quarantine, idempotent reloads."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recon_pipeline.ingest.loader import DropError, load_drop, sync_landing
from recon_pipeline.settings import load_settings
from recon_pipeline.warehouse import connect

SETTINGS = load_settings()
BANK_HEADER = "account_no,txn_id,txn_time,amount,currency,counterparty_name,counterparty_account,memo\n"


def write(landing: Path, source: str, day: str, name: str, content: str | bytes, encoding="utf-8") -> Path:
    path = landing / source / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


@pytest.fixture
def landing(tmp_path):
    return tmp_path / "landing"


@pytest.fixture
def conn(tmp_path):
    with connect(tmp_path / "w.duckdb") as connection:
        yield connection


def bank_rows(conn):
    return conn.execute(
        "SELECT txn_id, amount, counterparty_name, memo, _source_file, _row_number "
        "FROM raw.bank_transactions ORDER BY _source_file, _row_number"
    ).fetchall()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encodings_keep_chinese_text_intact(landing, conn, encoding):
    write(landing, "bank_transactions", "2025-03-03", "b.csv",
          BANK_HEADER + "6222,T1,2025-03-03 10:00:00,\"1,234.50\",CNY,北京某某科技有限公司,,货款 订单25SH00137\n",
          encoding)
    load_drop(conn, landing, "bank_transactions", date(2025, 3, 3), SETTINGS)
    [(txn, amount, name, memo, _, row)] = bank_rows(conn)
    assert (txn, amount, name, memo, row) == ("T1", Decimal("1234.50"), "北京某某科技有限公司", "货款 订单25SH00137", 2)


def test_chinese_headers_are_mapped_and_unknown_columns_kept(landing, conn):
    write(landing, "bank_transactions", "2025-03-03", "export.csv",
          "账号,流水号,交易时间,交易金额,对方户名,附言,网点\n6222,T9,2025/03/03 09:30,88.00,上海某某贸易,结算,浦东支行\n",
          "gb18030")
    load_drop(conn, landing, "bank_transactions", date(2025, 3, 3), SETTINGS)
    row = conn.execute("SELECT txn_id, amount, counterparty_name, _extra_columns FROM raw.bank_transactions").fetchone()
    assert row[:3] == ("T9", Decimal("88.00"), "上海某某贸易")
    assert "浦东支行" in row[3]


def test_xlsx_and_parquet_drops(landing, conn):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["customer_id", "customer_name", "aliases", "updated_at"])
    sheet.append(["C1", "杭州某某网络科技有限公司", "某某网络;某某科技", "2025-03-01 08:00:00"])
    path = landing / "customers" / "2025-03-03" / "customers.xlsx"
    path.parent.mkdir(parents=True)
    book.save(path)
    table = pa.table({
        "account_no": ["6222"], "txn_id": ["P1"],
        "txn_time": pa.array([pa.scalar(0, pa.timestamp("s")).as_py().replace(year=2025, month=3, day=3)]),
        "amount": pa.array([Decimal("10.10")], pa.decimal128(18, 2)),
        "counterparty_name": ["某某"], "memo": [None],
    })
    (landing / "bank_transactions" / "2025-03-03").mkdir(parents=True)
    pq.write_table(table, landing / "bank_transactions" / "2025-03-03" / "b.parquet")
    report = sync_landing(conn, landing, date(2025, 3, 3), SETTINGS)
    assert report.failed == [] and report.rows_loaded == 2
    assert conn.execute("SELECT customer_name, aliases FROM raw.customers").fetchone() == ("杭州某某网络科技有限公司", "某某网络;某某科技")
    assert conn.execute("SELECT txn_id, amount, CAST(txn_time AS VARCHAR) FROM raw.bank_transactions").fetchone() == ("P1", Decimal("10.10"), "2025-03-03 00:00:00")


def test_bad_rows_are_quarantined_with_file_row_and_reason(landing, conn):
    write(landing, "bank_transactions", "2025-03-03", "b.csv", BANK_HEADER
          + "6222,T1,2025-03-03 10:00:00,100.00,CNY,甲,,\n"
          + "6222,T2,2025-13-45 10:00:00,100.00,CNY,乙,,\n"
          + "6222,T3,2025-03-03 10:00:00,一百元,CNY,丙,,\n"
          + "6222,,2025-03-03 10:00:00,5.00,CNY,丁,,\n"
          + "6222,T5,2025-03-03 10:00:00,1.005,CNY,戊,,\n")
    result = load_drop(conn, landing, "bank_transactions", date(2025, 3, 3), SETTINGS)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 4)
    quarantined = conn.execute("SELECT _source_file, _row_number, reason, raw_record FROM raw.quarantine ORDER BY _row_number").fetchall()
    assert [q[1] for q in quarantined] == [3, 4, 5, 6]
    assert all(q[0] == "bank_transactions/2025-03-03/b.csv" for q in quarantined)
    assert "txn_time" in quarantined[0][2] and "日期" in quarantined[0][2]
    assert "amount" in quarantined[1][2] and "一百元" in quarantined[1][3]
    assert "缺少必填字段 txn_id" in quarantined[2][2]
    assert "两位小数" in quarantined[3][2]


def test_amount_formats_and_offsets(landing, conn):
    write(landing, "bank_transactions", "2025-03-03", "b.csv", BANK_HEADER
          + '6222,A,2025-03-03T02:00:00Z,"¥1,000,000.5",CNY,,,\n'
          + "6222,B,2025-03-03T10:00:00+08:00,(20.00),CNY,,,\n"
          + "6222,C,2025年3月3日,-0.10,CNY,,,\n")
    load_drop(conn, landing, "bank_transactions", date(2025, 3, 3), SETTINGS)
    rows = conn.execute("SELECT txn_id, CAST(txn_time AS VARCHAR), amount FROM raw.bank_transactions ORDER BY txn_id").fetchall()
    assert rows == [
        ("A", "2025-03-03 10:00:00", Decimal("1000000.50")),  # UTC converted to Asia/Shanghai
        ("B", "2025-03-03 10:00:00", Decimal("-20.00")),
        ("C", "2025-03-03 00:00:00", Decimal("-0.10")),
    ]


def test_enum_values_are_normalized_or_quarantined(landing, conn):
    write(landing, "crm_contracts", "2025-03-03", "c.csv",
          "order_id,amount,status,approval_status,updated_at\n"
          "25SH00001,100.00,已签约,通过,2025-03-01\n25SH00002,100.00,Signed,pending,2025-03-01\n25SH00003,100.00,maybe,,2025-03-01\n")
    load_drop(conn, landing, "crm_contracts", date(2025, 3, 3), SETTINGS)
    assert conn.execute("SELECT order_id, status, approval_status FROM raw.crm_contracts ORDER BY 1").fetchall() == [
        ("25SH00001", "signed", "approved"), ("25SH00002", "signed", "pending")]
    assert "status" in conn.execute("SELECT reason FROM raw.quarantine").fetchone()[0]


def test_reloading_a_day_is_idempotent_and_late_drops_load(landing, conn):
    write(landing, "bank_transactions", "2025-03-05", "b.csv", BANK_HEADER + "6222,T5,2025-03-05 10:00:00,5.00,CNY,,,\n")
    first = sync_landing(conn, landing, date(2025, 3, 31), SETTINGS)
    assert len(first.loaded) == 1
    again = sync_landing(conn, landing, date(2025, 3, 31), SETTINGS)
    assert again.loaded == [] and again.unchanged == 1
    # A folder for an earlier date arrives after a later one was processed.
    write(landing, "bank_transactions", "2025-03-02", "b.csv", BANK_HEADER + "6222,T2,2025-03-02 10:00:00,2.00,CNY,,,\n")
    late = sync_landing(conn, landing, date(2025, 3, 31), SETTINGS)
    assert [(r.drop_date, r.rows_loaded) for r in late.loaded] == [(date(2025, 3, 2), 1)]
    # Reloading the same day explicitly replaces it instead of adding copies.
    load_drop(conn, landing, "bank_transactions", date(2025, 3, 5), SETTINGS)
    assert sorted(r[0] for r in bank_rows(conn)) == ["T2", "T5"]


def test_drops_after_the_as_of_date_are_not_loaded(landing, conn):
    write(landing, "bank_transactions", "2025-04-01", "b.csv", BANK_HEADER + "6222,T,2025-04-01 10:00:00,5.00,CNY,,,\n")
    report = sync_landing(conn, landing, date(2025, 3, 31), SETTINGS)
    assert report.loaded == [] and bank_rows(conn) == []


def test_every_version_is_kept_in_history(landing, conn):
    write(landing, "crm_contracts", "2025-03-01", "c.csv", "order_id,amount,status,updated_at\n25SH00001,100.00,draft,2025-03-01 09:00\n")
    write(landing, "crm_contracts", "2025-03-02", "c.csv", "order_id,amount,status,updated_at\n25SH00001,120.00,signed,2025-03-02 09:00\n")
    sync_landing(conn, landing, date(2025, 3, 31), SETTINGS)
    versions = conn.execute("SELECT amount, status, _drop_date FROM raw.crm_contracts ORDER BY _drop_date").fetchall()
    assert versions == [(Decimal("100.00"), "draft", date(2025, 3, 1)), (Decimal("120.00"), "signed", date(2025, 3, 2))]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "文件为空"),
        (b"\x00\x01\x02garbage\x00" * 10, "二进制"),
        ("流水号,金额\nT1,5.00\n".encode(), "缺少必需列 account_no"),
    ],
)
def test_unreadable_file_fails_the_drop_and_keeps_what_was_loaded(landing, conn, content, message):
    write(landing, "bank_transactions", "2025-03-03", "good.csv", BANK_HEADER + "6222,T1,2025-03-03 10:00:00,5.00,CNY,,,\n")
    load_drop(conn, landing, "bank_transactions", date(2025, 3, 3), SETTINGS)
    write(landing, "bank_transactions", "2025-03-03", "zz_bad.csv", content)
    with pytest.raises(DropError) as error:
        load_drop(conn, landing, "bank_transactions", date(2025, 3, 3), SETTINGS)
    assert message in str(error.value) and "zz_bad.csv" in str(error.value)
    assert [r[0] for r in bank_rows(conn)] == ["T1"]  # the earlier load is untouched


def test_sync_reports_failed_drops_and_loads_the_rest(landing, conn):
    write(landing, "bank_transactions", "2025-03-03", "bad.txt", b"\x00\x00binary")
    write(landing, "customers", "2025-03-03", "c.csv", "customer_id,customer_name\nC1,甲公司\n")
    (landing / "not_a_source").mkdir(parents=True)
    report = sync_landing(conn, landing, date(2025, 3, 31), SETTINGS)
    assert len(report.failed) == 1 and "bank_transactions/2025-03-03" in report.failed[0]
    assert report.rows_loaded == 1
    assert any("not_a_source" in w for w in report.warnings)


def test_row_numbers_stay_exact_with_blank_lines_quoted_breaks_and_extra_cells(landing, conn):
    write(landing, "bank_transactions", "2025-03-03", "b.csv", BANK_HEADER
          + "6222,T1,2025-03-03 10:00:00,1.00,CNY,甲,,\n"
          + "\n"
          + '6222,T2,2025-03-03 10:00:00,2.00,CNY,乙,,"两行\n附言"\n'
          + "6222,T3,2025-03-03 10:00:00,3.00,CNY,丙,,,多余\n"
          + "6222,T4,2025-03-03 10:00:00,4.00,CNY,丁,,\n")
    load_drop(conn, landing, "bank_transactions", date(2025, 3, 3), SETTINGS)
    rows = bank_rows(conn)
    assert [(r[0], r[5]) for r in rows] == [("T1", 2), ("T2", 4), ("T4", 7)]
    assert rows[1][3] == "两行\n附言"
    quarantined = conn.execute("SELECT _row_number, reason, raw_record FROM raw.quarantine").fetchone()
    assert quarantined[0] == 6 and "字段数多于表头" in quarantined[1]


def test_clean_files_take_the_fast_reader_with_the_same_result(landing, conn, tmp_path):
    body = "".join(f"6222,T{i},2025-03-03 10:00:00,{i}.50,CNY,客户{i},,备注{i}\n" for i in range(1, 2001))
    write(landing, "bank_transactions", "2025-03-03", "clean.csv", BANK_HEADER + body)
    write(landing, "bank_transactions", "2025-03-04", "blank.csv", BANK_HEADER + body + "\n\n")  # exact path
    sync_landing(conn, landing, date(2025, 3, 31), SETTINGS)
    by_day = conn.execute(
        "SELECT _drop_date, list(txn_id || ':' || CAST(amount AS VARCHAR) || ':' || _row_number ORDER BY _row_number) "
        "FROM raw.bank_transactions GROUP BY 1 ORDER BY 1").fetchall()
    assert len(by_day[0][1]) == 2000 and by_day[0][1] == by_day[1][1]
    assert by_day[0][1][0] == "T1:1.50:2"


def test_fast_reader_declines_what_it_cannot_number_exactly():
    from recon_pipeline.ingest.readers import _fast_csv_batches

    assert _fast_csv_batches("a,b\n1,2\n3,4\n", ",", 2) is not None
    assert _fast_csv_batches("a,b\n1,2\n\n3,4\n", ",", 2) is None  # blank line
    assert _fast_csv_batches('a,b\n1,"x\ny"\n', ",", 2) is None  # quoted line break
    assert _fast_csv_batches("a,b\n1,2,3\n", ",", 2) is None  # wider row


def test_delimiters_inside_cells_do_not_decide_the_files_delimiter(landing, conn):
    """A comma file whose cells are full of ; | and tabs (and a quoted line break) is still
    read as comma-separated: the delimiter is the one under which the rows agree on a width."""
    write(landing, "bank_transactions", "2025-03-03", "b.csv", BANK_HEADER
          + '6222,T1,2025-03-03 10:00:00,1.00,CNY,"甲;乙|丙;丁|戊;己|庚;辛|壬",,"a;b;c;d;e;f;g;h;i;j;k"\n'
          + '6222,T2,2025-03-03 10:00:00,2.00,CNY,乙,,"两行;\n附言|x|y|z"\n'
          + "6222,T3,2025-03-03 10:00:00,3.00,CNY,丙\t公司,,货款\n")
    report = sync_landing(conn, landing, date(2025, 3, 3), SETTINGS)
    assert not report.failed
    assert [(r[0], r[1]) for r in bank_rows(conn)] == [("T1", Decimal("1.00")), ("T2", Decimal("2.00")), ("T3", Decimal("3.00"))]


def test_a_row_wider_than_a_generic_exports_header_is_quarantined_and_the_rest_read(landing, conn):
    """A bank export read by the generic reader: the row with a cell more than its header is
    quarantined as such (its cells kept), and the other rows keep their own date and amount."""
    write(landing, "bank_transactions", "2025-03-03", "export.csv",
          "账号：6222000011112222\n"
          "交易日期,交易金额,余额,对方户名,摘要\n"
          "2025-03-01,\"1,234.00\",5000.00,上海某某科技有限公司,货款\n"
          "2025-03-02,-200.00,4800.00,某某银行,手续费,多出来的一格\n"
          "2025-03-03,300.00,5100.00,北京某某科技有限公司,货款 25SH00137\n")
    sync_landing(conn, landing, date(2025, 3, 3), SETTINGS)
    loaded = conn.execute("SELECT amount, counterparty_name FROM raw.bank_transactions ORDER BY _row_number").fetchall()
    assert loaded == [(Decimal("1234.00"), "上海某某科技有限公司"), (Decimal("300.00"), "北京某某科技有限公司")]
    [(row, reason, record)] = conn.execute("SELECT _row_number, reason, raw_record FROM raw.quarantine").fetchall()
    assert row == 4 and "字段数多于表头" in reason and "多出来的一格" in record
