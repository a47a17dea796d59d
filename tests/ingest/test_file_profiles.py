"""File profiles: exports with preambles, split amount columns, debit flags, own date formats."""

from datetime import date
from decimal import Decimal

import pytest
import yaml

from recon_pipeline.ingest.loader import load_drop
from recon_pipeline.settings import load_settings
from recon_pipeline.warehouse import connect


def settings_with(tmp_path, formats: dict):
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"file_formats": formats}, allow_unicode=True), encoding="utf-8")
    return load_settings(path)


def drop(tmp_path, name: str, content: str, encoding="gb18030"):
    folder = tmp_path / "landing" / "bank_transactions" / "2025-03-03"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content.encode(encoding))
    return tmp_path / "landing"


def loaded(tmp_path, settings):
    with connect(tmp_path / "w.duckdb") as conn:
        result = load_drop(conn, tmp_path / "landing", "bank_transactions", date(2025, 3, 3), settings)
        rows = conn.execute(
            "SELECT account_no, txn_id, CAST(txn_time AS VARCHAR), amount, counterparty_name, _row_number "
            "FROM raw.bank_transactions ORDER BY _row_number").fetchall()
        reasons = [r[0] for r in conn.execute("SELECT reason FROM raw.quarantine").fetchall()]
    return result, rows, reasons


def test_preamble_split_amounts_constants_and_date_format(tmp_path):
    settings = settings_with(tmp_path, {"bank_transactions": [{
        "name": "网银导出", "files": "网银*.csv", "header_contains": ["交易日期", "收入金额"],
        "date_formats": ["%Y%m%d %H%M%S"],
        "columns": {"交易日期": "txn_time", "凭证号": "txn_id", "对方单位": "counterparty_name"},
        "amount": {"credit_column": "收入金额", "debit_column": "支出金额"},
        "constants": {"account_no": "6222020200001234567", "currency": "CNY"},
    }]})
    drop(tmp_path, "网银流水0303.csv",
         "某某银行账户明细\n查询日期: 2025-03-03\n\n"
         "交易日期,凭证号,收入金额,支出金额,对方单位\n"
         "20250303 101500,V1,\"1,200.00\",,北京某某科技有限公司\n"
         "20250303 111500,V2,,300.50,上海某某物流有限公司\n"
         "合计,,1200.00,300.50,\n")
    result, rows, reasons = loaded(tmp_path, settings)
    assert rows[:2] == [
        ("6222020200001234567", "V1", "2025-03-03 10:15:00", Decimal("1200.00"), "北京某某科技有限公司", 5),
        ("6222020200001234567", "V2", "2025-03-03 11:15:00", Decimal("-300.50"), "上海某某物流有限公司", 6),
    ]
    # The footer line is not a transaction: it is quarantined with its reason, not lost.
    assert result.rows_quarantined == 1 and "txn_time" in reasons[0]


def test_debit_flag_column_makes_money_out_negative(tmp_path):
    settings = settings_with(tmp_path, {"bank_transactions": [{
        "name": "借贷标志", "header_contains": ["借贷标志"], "skip_rows": 1,
        "amount": {"column": "发生额", "sign_column": "借贷标志", "debit_values": ["借"]},
        "columns": {"发生额": "ignored_raw_amount"},
    }]})
    drop(tmp_path, "flags.csv",
         "导出时间 2025-03-03\naccount_no,txn_id,txn_time,发生额,借贷标志\n"
         "6222,F1,2025-03-03 09:00:00,500.00,贷\n6222,F2,2025-03-03 10:00:00,20.00,借\n", "utf-8")
    _, rows, _ = loaded(tmp_path, settings)
    assert [(r[1], r[3]) for r in rows] == [("F1", Decimal("500.00")), ("F2", Decimal("-20.00"))]


def test_file_without_matching_profile_is_read_plainly(tmp_path):
    settings = settings_with(tmp_path, {"bank_transactions": [{"name": "x", "files": "other*.csv", "skip_rows": 2}]})
    drop(tmp_path, "plain.csv", "account_no,txn_id,txn_time,amount\n6222,P1,2025-03-03,5.00\n", "utf-8")
    _, rows, _ = loaded(tmp_path, settings)
    assert [(r[1], r[3], r[5]) for r in rows] == [("P1", Decimal("5.00"), 2)]


def test_profile_naming_a_missing_column_is_a_clear_error(tmp_path):
    from recon_pipeline.ingest.loader import DropError

    settings = settings_with(tmp_path, {"bank_transactions": [{
        "name": "坏配置", "files": "*.csv", "amount": {"credit_column": "收入", "debit_column": "支出"}}]})
    drop(tmp_path, "b.csv", "account_no,txn_id,txn_time,金额\n6222,P1,2025-03-03,5.00\n", "utf-8")
    with pytest.raises(DropError, match="坏配置.*收入"):
        loaded(tmp_path, settings)
