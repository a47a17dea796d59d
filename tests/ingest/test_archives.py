"""Archive deliveries (.zip, .gz, .tar.gz): every member is read, a member that is not a
statement is reported by name while the others load, nothing is written outside the landing
zone whatever the member names say, and zip bombs are refused by size and ratio."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from datetime import date
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from recon_pipeline.ingest.archives import ArchiveError, IngestLimits, read_members, safe_member_name
from recon_pipeline.ingest.loader import sync_landing
from recon_pipeline.ingest.statements.cli import statements_app
from recon_pipeline.settings import load_settings
from recon_pipeline.warehouse import connect
from tests import SAMPLES_DIR

CAMT = SAMPLES_DIR / "camt053" / "camt053.v2.multi.statement.xml"
CAMT_V4 = SAMPLES_DIR / "camt053" / "camt053.v4.xml"
MT940 = SAMPLES_DIR / "mt940" / "cmxl" / "mt940.sta"
DAY = "2025-03-01"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "landing" / "bank_transactions" / DAY
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _sync(tmp_path: Path, settings=None, *queries: str):
    """Run the ingest over the landing zone; the report and each query's rows."""
    with connect(tmp_path / "w.duckdb") as conn:
        report = sync_landing(conn, tmp_path / "landing", date(2025, 3, 31), settings or load_settings())
        return report, [conn.execute(q).fetchall() for q in queries]


def _settings(tmp_path: Path, **limits) -> object:
    path = tmp_path / "limits.yaml"
    path.write_text(yaml.safe_dump({"ingest_limits": limits}), encoding="utf-8")
    return load_settings(path)


def test_zip_of_statements_reads_every_member_and_reports_the_odd_one(tmp_path):
    _zip(_folder(tmp_path) / "camt_delivery.zip", {
        "2025-03-01/stmt1.xml": CAMT.read_bytes(),
        "2025-03-01/stmt2.xml": CAMT_V4.read_bytes(),
        "readme.txt": "本压缩包由网银导出".encode(),
    })
    report, (files, quarantine) = _sync(tmp_path, None, "SELECT _source_file, count(*) FROM raw.bank_transactions GROUP BY 1 ORDER BY 1",
                                        "SELECT _source_file, _row_number, reason FROM raw.quarantine")
    assert report.failed == []
    assert files == [("bank_transactions/2025-03-01/camt_delivery.zip/2025-03-01/stmt1.xml", 2),
                     ("bank_transactions/2025-03-01/camt_delivery.zip/2025-03-01/stmt2.xml", 1)]
    assert [(f, n) for f, n, _ in quarantine] == [("bank_transactions/2025-03-01/camt_delivery.zip/readme.txt", None)]
    assert "压缩包中的文件无法读取" in quarantine[0][2]
    assert any("readme.txt" in w for w in report.warnings)


def test_gzip_and_tar_gz_deliveries(tmp_path):
    folder = _folder(tmp_path)
    (folder / "statement.sta.gz").write_bytes(gzip.compress(MT940.read_bytes()))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("camt/one.xml")
        data = CAMT_V4.read_bytes()
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("camt/passwd.xml")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    (folder / "more.tar.gz").write_bytes(buffer.getvalue())
    _, (counts, reasons) = _sync(tmp_path, None, "SELECT _source_file, count(*) FROM raw.bank_transactions GROUP BY 1",
                                 "SELECT _source_file, reason FROM raw.quarantine")
    counts = dict(counts)
    assert counts == {"bank_transactions/2025-03-01/statement.sta.gz/statement.sta": 16,
                      "bank_transactions/2025-03-01/more.tar.gz/camt/one.xml": 1}
    assert reasons == [("bank_transactions/2025-03-01/more.tar.gz/camt/passwd.xml", "压缩包中的文件无法读取: 是链接或特殊文件，未读取")]


def test_chinese_member_names_from_windows_zips(tmp_path):
    """Without the UTF-8 flag the name bytes are the system code page (GBK on Chinese Windows)."""
    name = "对账单.xml".encode("gb18030")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("X" * len(name), CAMT_V4.read_bytes())
    path = tmp_path / "gbk.zip"
    path.write_bytes(buffer.getvalue().replace(b"X" * len(name), name))
    assert [m.name for m in read_members(path, IngestLimits())] == ["对账单.xml"]


@pytest.mark.parametrize("name", ["../../escaped.csv", "/tmp/absolute.csv", "C:\\Windows\\escaped.csv", "a/../../../b/escaped.csv"])
def test_member_names_never_point_outside(tmp_path, name):
    cleaned = safe_member_name(name)
    assert ".." not in cleaned.split("/") and not cleaned.startswith("/") and ":" not in cleaned
    landing_parent = tmp_path
    before = set(landing_parent.rglob("*"))
    _zip(_folder(tmp_path) / "evil.zip", {name: CAMT_V4.read_bytes()})
    report, (sources,) = _sync(tmp_path, None, "SELECT DISTINCT _source_file FROM raw.bank_transactions")
    sources = [r[0] for r in sources]
    assert report.failed == [] and sources == [f"bank_transactions/{DAY}/evil.zip/{cleaned}"]
    created = {p for p in landing_parent.rglob("*") if p not in before}
    assert all(p.is_relative_to(tmp_path / "landing") or p.name.startswith("w.duckdb") for p in created), created
    assert not Path("/tmp/absolute.csv").exists() and not (tmp_path.parent / "escaped.csv").exists()


def test_zip_bomb_is_refused_by_ratio_and_the_other_drops_load(tmp_path):
    _zip(_folder(tmp_path) / "bomb.zip", {"zeros.csv": b"0" * (40 * 1024 * 1024)})
    other = tmp_path / "landing" / "bank_transactions" / "2025-03-02"
    other.mkdir(parents=True)
    (other / "ok.xml").write_bytes(CAMT_V4.read_bytes())
    report, (count,) = _sync(tmp_path, None, "SELECT count(*) FROM raw.bank_transactions")
    assert count == [(1,)]
    assert len(report.failed) == 1 and "bomb.zip" in report.failed[0] and "压缩炸弹" in report.failed[0]


def test_zip_bomb_is_refused_by_total_size(tmp_path):
    settings = _settings(tmp_path, max_archive_mb=1)
    _zip(_folder(tmp_path) / "big.zip", {f"m{i}.xml": os.urandom(300_000) for i in range(5)}, zipfile.ZIP_STORED)
    report, _ = _sync(tmp_path, settings)
    assert "超过 1 MB" in report.failed[0]


def test_gzip_bomb_stops_while_decompressing(tmp_path):
    """A gzip stream declares no size: it is cut off as soon as it produces too much."""
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb", compresslevel=9) as stream:
        for _ in range(64):
            stream.write(b"\0" * (1024 * 1024))
    with pytest.raises(ArchiveError, match="压缩炸弹"):
        list(read_members(path, IngestLimits(max_file_mb=8)))


def test_workbook_and_parquet_bombs_are_refused_before_reading(tmp_path):
    folder = _folder(tmp_path)
    _zip(folder / "bomb.xlsx", {"[Content_Types].xml": b"<Types/>", "xl/worksheets/sheet1.xml": b" " * (40 * 1024 * 1024)})
    report, _ = _sync(tmp_path)
    assert "bomb.xlsx" in report.failed[0] and "压缩炸弹" in report.failed[0]

    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "bomb.xlsx").unlink()
    pq.write_table(pa.table({"memo": ["x" * 1000] * 5000}), folder / "bomb.parquet")
    report, _ = _sync(tmp_path, _settings(tmp_path, max_archive_mb=1))
    assert "Parquet" in report.failed[0] and "上限" in report.failed[0]


def test_nested_archives_are_reported_not_opened(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("deep.xml", CAMT_V4.read_bytes())
    members = list(read_members(_zip(tmp_path / "outer.zip", {"inner.zip": inner.getvalue(), "top.xml": CAMT_V4.read_bytes()}),
                                IngestLimits()))
    assert [(m.name, m.problem is None) for m in members] == [("inner.zip", False), ("top.xml", True)]


def test_a_file_too_large_is_refused_with_the_limit(tmp_path):
    (_folder(tmp_path) / "huge.csv").write_bytes(b"account_no,txn_id,txn_time,amount\n" + b"a,b,2025-03-01,1.00\n" * 80_000)
    report, _ = _sync(tmp_path, _settings(tmp_path, max_file_mb=1))
    assert "文件过大" in report.failed[0] and "ingest_limits.max_file_mb" in report.failed[0]


def test_convert_reads_archives_and_writes_member_names_into_the_output_folder_only(tmp_path):
    delivery = _zip(tmp_path / "delivery.zip", {"../../a.xml": CAMT_V4.read_bytes(), "sub/a.sta": MT940.read_bytes(),
                                                "notes.txt": b"hello"})
    out = tmp_path / "out"
    result = CliRunner().invoke(statements_app, ["convert", str(delivery), "--out", str(out)])
    assert result.exit_code == 1 and "notes.txt" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["a-2.csv", "a.csv"]
    assert not (tmp_path.parent / "a.csv").exists() and not (tmp_path / "a.csv").exists()
