"""The exported review queue, filled in by finance, reads back as match_feedback decisions."""

import csv
import json
from datetime import date

import pandas as pd

from recon_pipeline.ingest.loader import load_drop
from recon_pipeline.matching.review_queue import export_review_queue
from recon_pipeline.settings import load_settings
from recon_pipeline.warehouse import connect


def test_filled_in_queue_is_read_back_as_decisions(tmp_path):
    links = pd.DataFrame([{
        "account_no": "6222", "txn_id": "T1", "customer_id": "C1", "order_id": None, "allocated_cents": 44673_24,
        "match_method": "fuzzy", "match_score": 90, "match_status": "suggested",
        "evidence": json.dumps({"candidates": [{"customer_id": "C1", "score": 90}]}),
    }])
    bank = pd.DataFrame([{"account_no": "6222", "txn_id": "T1", "txn_time": "2025-02-13 10:30:58", "amount_cents": 44673_24,
                          "counterparty_name": "广***泽科技股份有限公司", "counterparty_account": "1100****9760", "memo": "服务费"}])
    customers = pd.DataFrame([{"customer_id": "C1", "customer_name": "广州星泽科技股份有限公司"}])
    csv_path, _ = export_review_queue(links, bank, customers, tmp_path / "queue")

    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["金额"] == "44673.24"
    rows[0]["决定(confirm/reject)"] = "确认"  # finance fills in the decision in Chinese
    rows[0]["确认人"] = "王会计"
    drop = tmp_path / "landing" / "match_feedback" / "2025-02-14"
    drop.mkdir(parents=True)
    with (drop / "queue.csv").open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    with connect(tmp_path / "w.duckdb") as conn:
        result = load_drop(conn, tmp_path / "landing", "match_feedback", date(2025, 2, 14), load_settings())
        decision = conn.execute(
            "SELECT feedback_id, account_no, txn_id, customer_id, decision, decided_by FROM raw.match_feedback").fetchall()
    assert result.rows_quarantined == 0
    assert decision == [("RQ-6222-T1", "6222", "T1", "C1", "confirm", "王会计")]


def test_a_payers_name_or_memo_never_becomes_a_formula_in_the_exported_queue(tmp_path):
    links = pd.DataFrame([{
        "account_no": "6222", "txn_id": "T1", "customer_id": "C1", "order_id": None, "allocated_cents": 100,
        "match_method": "fuzzy", "match_score": 90, "match_status": "suggested", "evidence": None,
    }])
    bank = pd.DataFrame([{"account_no": "6222", "txn_id": "T1", "txn_time": "2025-02-13 10:30:58", "amount_cents": 100,
                          "counterparty_name": "=HYPERLINK(\"http://evil.example\",\"点我\")", "counterparty_account": "1",
                          "memo": "@SUM(1+1)"}])
    customers = pd.DataFrame([{"customer_id": "C1", "customer_name": "+86 公司"}])
    csv_path, xlsx_path = export_review_queue(links, bank, customers, tmp_path / "queue")

    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["对方户名"][:2], row["附言"][:2], row["建议客户名称"][:2]) == ("'=", "'@", "'+")
    assert row["流水号"] == "T1" and row["金额"] == "1.00"  # keys and amounts untouched: it is read back
    from openpyxl import load_workbook

    sheet = load_workbook(xlsx_path).active
    assert not any(cell.data_type == "f" for line in sheet.iter_rows() for cell in line)
