"""Statement readers fail cleanly on files that are not statements, never crash on any input,
and give the same line the same txn_id in overlapping downloads."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recon_pipeline.ingest.statements import StatementError, detect_format, read_statement
from recon_pipeline.ingest.statements.cli import statements_app
from tests import SAMPLES_DIR

SAMPLES = SAMPLES_DIR
CAMT = SAMPLES / "camt053" / "camt053.v3.xml"
MT940 = SAMPLES / "mt940" / "cmxl" / "mt940.sta"
ICBC = SAMPLES / "cn_bank_exports" / "icbc" / "debit-v2" / "example-icbc-debit-v2-records.csv"
CMB = SAMPLES / "cn_bank_exports" / "cmb" / "debit" / "example-cmb-records.csv"
CCB = next((SAMPLES / "cn_bank_exports" / "ccb").glob("*.xls"))


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("empty.csv", b"", "为空"),
        ("blank.xml", b"  \n\n", "为空"),
        ("truncated.xml", CAMT.read_bytes()[: len(CAMT.read_bytes()) // 2], "XML 不完整"),
        ("garbage.bin", bytes(range(256)) * 8, "无法识别"),
        ("wrong_header.csv", "客户名称,地区,备注\n上海某某,华东,货款\n".encode(), "无法识别"),
        ("broken.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "无法读取表格文件"),
        ("no_statement.xml", (SAMPLES / "camt053" / "camt053.v2.wrong.xml").read_bytes(), "没有任何对账单"),
    ],
)
def test_unreadable_file_raises_statement_error_naming_the_file(tmp_path, name, data, says):
    path = _write(tmp_path, name, data)
    with pytest.raises(StatementError) as raised:
        read_statement(path)
    assert name in str(raised.value) and says in str(raised.value)


def test_unknown_format_error_lists_what_was_tried(tmp_path):
    path = _write(tmp_path, "notes.txt", "这不是对账单\n".encode())
    with pytest.raises(StatementError, match="已尝试 camt.053/052/054、MT940/MT942、工商银行明细"):
        read_statement(path)


def test_forcing_the_wrong_format_raises(tmp_path):
    with pytest.raises(StatementError, match="没有找到该格式的表头"):
        read_statement(ICBC, fmt="cn_alipay")


def test_canonical_csv_is_not_a_statement_format(tmp_path):
    path = tmp_path / "bank.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["account_no", "txn_id", "txn_time", "amount", "currency", "counterparty_name", "counterparty_account", "memo"])
        writer.writerow(["6222", "T1", "2025-01-02 10:00:00", "100.00", "CNY", "上海某某有限公司", "", "25SH00137"])
    assert detect_format(path) is None
    assert detect_format(_write(tmp_path, "empty.csv", b"")) is None


def test_format_comes_from_content_not_extension(tmp_path):
    assert detect_format(_write(tmp_path, "statement.csv", CAMT.read_bytes())) == "camt053"
    assert detect_format(_write(tmp_path, "statement.xlsx", MT940.read_bytes())) == "mt940"
    assert detect_format(_write(tmp_path, "download.txt", CCB.read_bytes())) == "cn_ccb"


def test_gb18030_export_reads_like_utf8(tmp_path):
    text = CMB.read_text(encoding="utf-8-sig")
    gbk = read_statement(_write(tmp_path, "cmb_gbk.csv", text.encode("gb18030")))
    utf8 = read_statement(CMB)
    assert gbk.equals(utf8)


def test_overlapping_downloads_give_the_same_txn_ids(tmp_path):
    """Two downloads of the same account covering overlapping days: the shared lines get the
    same derived txn_id, so ingestion stores them once; identical lines stay distinct."""
    header = "记账日期,货币,交易金额,联机余额,交易摘要,对手信息,客户摘要\n"
    day1 = "2024-01-01,CNY,100.00,100.00,转账汇款,上海某某有限公司 6222000011112222,25SH00137\n"
    day2 = "2024-01-02,CNY,50.00,150.00,转账汇款,北京某某有限公司 6222000033334444,货款\n"
    twin = "2024-01-02,CNY,50.00,200.00,转账汇款,北京某某有限公司 6222000033334444,货款\n"
    first = read_statement(_write(tmp_path, "a.csv", (header + day1 + day2).encode()), account_no="6214")
    second = read_statement(_write(tmp_path, "b.csv", (header + twin + day2 + day1).encode()), account_no="6214")
    assert set(first["txn_id"]) <= set(second["txn_id"])
    assert second["txn_id"].is_unique


def test_bank_reference_is_the_txn_id_when_there_is_one():
    frame = read_statement(SAMPLES / "camt053" / "camt053.v4.xml")
    assert frame["txn_id"].tolist() == ["AAAASESS-FP-CN_98765/01"]


def test_statement_account_wins_over_fallback():
    frame = read_statement(ICBC, account_no="FALLBACK")
    assert set(frame["account_no"]) == {"1234****9876"}


def _mutations(seed: bytes):
    """Damaged versions of a real statement: cut, spliced with junk, bytes flipped."""
    return st.one_of(
        st.integers(0, len(seed)).map(lambda n: seed[:n]),
        st.tuples(st.integers(0, len(seed)), st.binary(max_size=64)).map(lambda t: seed[: t[0]] + t[1] + seed[t[0]:]),
        st.lists(st.tuples(st.integers(0, max(len(seed) - 1, 0)), st.integers(0, 255)), max_size=8).map(
            lambda flips: bytes(
                b if i not in dict(flips) else dict(flips)[i] for i, b in enumerate(seed)
            )
        ),
    )


SEEDS = [CAMT, MT940, ICBC, CMB, SAMPLES / "cn_bank_exports" / "alipay" / "example-alipay-records.csv"]


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_readers_never_crash_on_damaged_files(tmp_path, seed, data):
    blob = data.draw(_mutations(seed.read_bytes()))
    path = _write(tmp_path, "fuzz" + seed.suffix, blob)
    try:
        frame = read_statement(path)
    except StatementError:
        return
    assert frame["txn_id"].notna().all()
    assert not frame.duplicated(["account_no", "txn_id"]).any()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=512) | st.text(max_size=300).map(lambda t: t.encode("utf-8")))
def test_readers_never_crash_on_arbitrary_bytes(tmp_path, blob):
    path = _write(tmp_path, "anything.dat", blob)
    try:
        read_statement(path)
    except StatementError:
        pass
    detect_format(path)  # never raises on content


def test_convert_command_writes_one_canonical_csv_per_file(tmp_path):
    bad = _write(tmp_path, "bad.xml", b"<Document>")
    result = CliRunner().invoke(statements_app, ["convert", str(CAMT), str(ICBC), str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "bad.xml" in result.output
    with open(tmp_path / "out" / f"{ICBC.stem}.csv", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 11
    assert rows[0]["amount"] == "-13.40" and rows[0]["counterparty_name"] == "深圳市财付通支付科技有限公司"
    assert (tmp_path / "out" / f"{CAMT.stem}.csv").exists()
    assert (tmp_path / "out" / f"{ICBC.stem}.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # Excel shows the Chinese text
