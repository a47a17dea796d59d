"""Ingest under hostile or unlucky input: giant cells and rows are bounded (a quarantined row
with its reason, or a clear file error), a landing file that changes while it is read is
read again or its drop fails alone, a file that vanishes mid-read fails its drop alone."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook

from recon_pipeline.ingest import loader
from recon_pipeline.ingest.loader import sync_landing
from recon_pipeline.settings import load_settings
from recon_pipeline.warehouse import connect

HEADER = "account_no,txn_id,txn_time,amount,memo\n"
DAY = "2025-03-01"


def _drop(tmp_path: Path, name: str, data: bytes, day: str = DAY) -> Path:
    folder = tmp_path / "landing" / "bank_transactions" / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def _sync(tmp_path: Path, *queries: str):
    with connect(tmp_path / "w.duckdb") as conn:
        report = sync_landing(conn, tmp_path / "landing", date(2025, 3, 31), load_settings())
        return report, [conn.execute(q).fetchall() for q in queries]


def test_a_giant_cell_quarantines_its_row_with_a_bounded_record(tmp_path):
    giant = "货款" * 50_000  # 100,000 characters: no export writes a memo like that
    _drop(tmp_path, "big.csv", (HEADER + f"6222,T1,2025-03-01 10:00:00,1.00,{giant}\n6222,T2,2025-03-01 11:00:00,2.00,ok\n").encode())
    report, (loaded, quarantined) = _sync(tmp_path, "SELECT txn_id FROM raw.bank_transactions",
                                          "SELECT _row_number, reason, raw_record FROM raw.quarantine")
    assert report.failed == [] and loaded == [("T2",)]
    number, reason, record = quarantined[0]
    assert number == 2 and "memo 字段过长（100000 字符，上限 32766）" in reason
    assert len(json.loads(record)["memo"]) < 33_000 and json.loads(record)["txn_id"] == "T1"


def test_a_field_beyond_the_csv_limit_fails_the_file_clearly(tmp_path):
    rows = HEADER + '6222,T1,2025-03-01,1.00,"a\nb"\n' + "6222,T2,2025-03-01,1.00," + "x" * (2 * 1024 * 1024) + "\n"
    _drop(tmp_path, "huge_field.csv", rows.encode())
    report, _ = _sync(tmp_path)
    assert len(report.failed) == 1 and "huge_field.csv" in report.failed[0] and "CSV" in report.failed[0]


def test_a_row_with_thousands_of_cells_is_quarantined(tmp_path):
    _drop(tmp_path, "wide.csv", (HEADER + "6222,T1,2025-03-01,1.00,m" + ",x" * 20_000 + "\n6222,T2,2025-03-01,2.00,m\n").encode())
    report, (loaded, reasons) = _sync(tmp_path, "SELECT txn_id FROM raw.bank_transactions", "SELECT reason FROM raw.quarantine")
    assert loaded == [("T2",)] and "字段数多于表头" in reasons[0][0]


def test_a_giant_excel_cell_is_quarantined(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["account_no", "txn_id", "txn_time", "amount", "memo"])
    sheet.append(["6222", "T1", "2025-03-01 10:00:00", "1.00", "y" * 40_000])
    sheet.append(["6222", "T2", "2025-03-01 10:00:00", "1.00", "fine"])
    folder = tmp_path / "landing" / "bank_transactions" / DAY
    folder.mkdir(parents=True)
    book.save(folder / "cells.xlsx")
    _, (loaded, reasons) = _sync(tmp_path, "SELECT txn_id FROM raw.bank_transactions", "SELECT reason FROM raw.quarantine")
    assert loaded == [("T2",)] and "memo 字段过长" in reasons[0][0]


def _growing_reader(times: int):
    """read_landing_file as it behaves while a transfer is still appending to the file:
    the file grows during the first `times` reads."""
    real = loader.read_landing_file
    calls = {"n": 0}

    def read(path, spec, settings):
        opened = real(path, spec, settings)
        calls["n"] += 1
        if calls["n"] <= times:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"6222,LATE{calls['n']},2025-03-01 12:00:00,9.00,arrived while reading\n")
        return opened

    return read, calls


def test_a_file_that_changes_while_read_is_read_again(tmp_path, monkeypatch):
    _drop(tmp_path, "growing.csv", (HEADER + "6222,T1,2025-03-01 10:00:00,1.00,first\n").encode())
    read, calls = _growing_reader(times=1)
    monkeypatch.setattr(loader, "read_landing_file", read)
    monkeypatch.setattr(loader, "STABLE_READ_WAIT_SECONDS", 0.01)
    report, (loaded,) = _sync(tmp_path, "SELECT txn_id FROM raw.bank_transactions ORDER BY 1")
    assert report.failed == [] and calls["n"] == 2
    assert loaded == [("LATE1",), ("T1",)]  # what the file finally holds, nothing half-read


def test_a_file_that_keeps_changing_fails_its_drop_alone(tmp_path, monkeypatch):
    _drop(tmp_path, "growing.csv", (HEADER + "6222,T1,2025-03-01 10:00:00,1.00,first\n").encode())
    _drop(tmp_path, "steady.csv", (HEADER + "6222,S1,2025-03-02 10:00:00,1.00,steady\n").encode(), day="2025-03-02")
    read, _ = _growing_reader(times=99)
    monkeypatch.setattr(loader, "read_landing_file", lambda p, s, c: read(p, s, c) if p.name == "growing.csv" else loader_real(p, s, c))
    monkeypatch.setattr(loader, "STABLE_READ_WAIT_SECONDS", 0.01)
    report, (loaded,) = _sync(tmp_path, "SELECT txn_id FROM raw.bank_transactions")
    assert loaded == [("S1",)]
    assert len(report.failed) == 1 and "growing.csv" in report.failed[0] and "仍在变化" in report.failed[0]


loader_real = loader.read_landing_file


def test_a_file_removed_while_read_fails_its_drop_alone(tmp_path, monkeypatch):
    _drop(tmp_path, "gone.csv", (HEADER + "6222,T1,2025-03-01 10:00:00,1.00,x\n").encode())

    def read_then_vanish(path, spec, settings):
        opened = loader_real(path, spec, settings)
        path.unlink()
        return opened

    monkeypatch.setattr(loader, "read_landing_file", read_then_vanish)
    report, _ = _sync(tmp_path)
    assert len(report.failed) == 1 and "gone.csv" in report.failed[0] and "消失" in report.failed[0]


@pytest.mark.parametrize("payload", ["=HYPERLINK(\"http://x\")", "<script>alert(1)</script>", "'; DROP TABLE raw.quarantine; --"])
def test_hostile_text_is_kept_as_text(tmp_path, payload):
    _drop(tmp_path, "text.csv", (HEADER + f'6222,T1,2025-03-01 10:00:00,1.00,"{payload.replace(chr(34), chr(34) * 2)}"\n').encode())
    report, (memo,) = _sync(tmp_path, "SELECT memo FROM raw.bank_transactions")
    assert report.failed == [] and memo == [(payload,)]
