"""Bank statement files dropped into the landing zone go through the same ingestion."""

import shutil
from datetime import date

from recon_pipeline.ingest.loader import sync_landing
from recon_pipeline.settings import load_settings
from recon_pipeline.warehouse import connect
from tests import SAMPLES_DIR

SAMPLES = SAMPLES_DIR


def test_statements_in_landing_zone_load_with_their_account_and_dedupe_keys(tmp_path):
    landing = tmp_path / "landing"
    camt = SAMPLES / "camt053" / "camt053.v2.multi.statement.xml"
    icbc = SAMPLES / "cn_bank_exports" / "icbc" / "debit-v1" / "example-icbc-debit-v1-records.csv"
    for day in ("2025-03-01", "2025-03-02"):  # overlapping downloads: the same file twice
        folder = landing / "bank_transactions" / day
        folder.mkdir(parents=True)
        shutil.copy(camt, folder / "statement.xml")
        shutil.copy(icbc, folder / "icbc.csv")
    with connect(tmp_path / "w.duckdb") as conn:
        report = sync_landing(conn, landing, date(2025, 3, 31), load_settings())
        assert report.failed == [] and report.rows_quarantined == 0
        rows = conn.execute(
            "SELECT _drop_date, account_no, txn_id FROM raw.bank_transactions ORDER BY 1, 2, 3").fetchall()
    first = [(a, t) for d, a, t in rows if d == date(2025, 3, 1)]
    second = [(a, t) for d, a, t in rows if d == date(2025, 3, 2)]
    assert first and first == second  # same keys, so staging keeps one copy of each line
    assert {a for a, _ in first} >= {"NL26VAYB8060476890", "1234****9876"}  # account from the statement
