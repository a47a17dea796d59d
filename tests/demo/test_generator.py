"""The demo generator: reproducible drops, every messy case, promised encodings, honest truth."""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from recon_pipeline.demo.generator import ALL_VARIANTS, generate_demo
from recon_pipeline.sources import SOURCES

AS_OF = pd.Timestamp("2025-05-06 09:00:00")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return generate_demo(out)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _truth(demo, name: str) -> pd.DataFrame:
    return pd.read_csv(demo.ground_truth_dir / name, dtype=str, keep_default_na=False)


def _read_drop(path: Path) -> pd.DataFrame:
    """A landing file as text, headers mapped like the pipeline maps them (Chinese -> canonical)."""
    from recon_pipeline.ingest.readers import read_canonical_frame
    from recon_pipeline.settings import load_settings

    source = path.relative_to(path.parents[2]).parts[0]
    return read_canonical_frame(path, SOURCES[source], load_settings())


def _all_rows(demo, source: str) -> pd.DataFrame:
    frames = []
    for path in sorted((demo.landing_dir / source).rglob("*.*")):
        frame = _read_drop(path)
        frame["_file"] = str(path.relative_to(demo.landing_dir))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path, demo):
    again = generate_demo(tmp_path / "again", seed=7)
    assert _digest(again.out_dir) == _digest(demo.out_dir)
    other = generate_demo(tmp_path / "other", seed=8)
    assert _digest(other.out_dir) != _digest(demo.out_dir)


def test_layout_covers_every_contract_source_by_drop_date(demo):
    sources = {p.name for p in demo.landing_dir.iterdir()}
    assert sources == {"customers", "salespeople", "crm_contracts", "erp_invoices", "bank_transactions",
                       "legal_archive", "finance_writeoffs"}
    for path in demo.landing_dir.rglob("*.*"):
        source, day, _ = path.relative_to(demo.landing_dir).parts
        pd.Timestamp(day)  # the folder is a date
        assert day <= "2025-05-06", "no drop after the suggested as-of"
    assert not (demo.landing_dir / "ground_truth").exists()
    assert demo.as_of == "2025-05-06 09:00:00"
    assert 50 <= demo.n_customers <= 70 and 300 <= demo.n_orders <= 400
    assert 600 <= demo.n_bank_transactions <= 900
    assert demo.n_bank_rows > demo.n_bank_transactions  # overlapping downloads


def test_encodings_and_formats_as_promised(demo):
    bank_files = sorted((demo.landing_dir / "bank_transactions").rglob("icbc_*.csv"))
    assert bank_files
    data = bank_files[0].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert data.decode("gb18030").startswith("交易时间,流水号,交易金额")
    customers = sorted((demo.landing_dir / "customers").rglob("*.csv"))[0].read_bytes()
    assert customers.startswith(b"\xef\xbb\xbf")
    assert customers.decode("utf-8-sig").startswith("客户编号,客户名称")
    xlsx = list(demo.landing_dir.rglob("*.xlsx"))
    assert [p.parent.name for p in xlsx] == ["2025-03-03"]
    assert len(_read_drop(xlsx[0])) > 0
    writeoffs = sorted((demo.landing_dir / "finance_writeoffs").rglob("*.parquet"))
    assert str(pq.read_schema(writeoffs[0]).field("amount").type) == "decimal128(18, 2)"
    # The month-end archive drop arrived late: after drops dated after it.
    late = list((demo.landing_dir / "legal_archive" / "2025-04-30").glob("*resent*"))
    later = [p for p in (demo.landing_dir / "legal_archive").rglob("*.csv") if "2025-05-01" <= p.parent.name <= "2025-05-02"]
    assert late and later
    assert all(late[0].stat().st_mtime > p.stat().st_mtime for p in later)


def test_every_messy_case_is_present(demo):
    bank = _truth(demo, "bank_truth.csv")
    unique = bank[bank["is_duplicate_of_earlier_download"] == "false"]
    counts = unique["variant"].value_counts()
    missing = [v for v in ALL_VARIANTS if counts.get(v, 0) == 0]
    assert not missing, f"variants without a line: {missing}"
    assert (bank["is_duplicate_of_earlier_download"] == "true").any()
    orders = _truth(demo, "orders_truth.csv")
    assert {"sign_1559", "sign_1601", "legal_1559", "legal_1601", "finance_1559", "finance_1601",
            "legal_next_day"} <= set(orders["edge_case"])
    assert {"installments", "red_reissue", "void_reissue"} <= set(orders["invoice_pattern"])
    assert {"pre", "post"} <= set(orders["amount_correction"])
    assert {"draft", "submitted", "cancelled", "signed"} <= set(orders["status"])
    # Approvals pending at the as-of: most for more than two hours, at least one fresher.
    crm = _all_rows(demo, "crm_contracts")
    crm = crm[crm["order_id"] != ""].sort_values("updated_at", kind="stable").drop_duplicates("order_id", keep="last")
    waiting = AS_OF - pd.to_datetime(crm.loc[crm["approval_status"] == "pending", "approval_submitted_at"])
    assert (waiting > pd.Timedelta(hours=2)).sum() >= 3 and (waiting < pd.Timedelta(hours=2)).any()
    customers = _truth(demo, "customers_truth.csv")
    kinds = set(";".join(customers["confusable_kind"]).split(";"))
    assert {"region", "industry"} <= kinds
    names = set(customers["customer_name"])
    assert {"北京华信科技有限公司", "上海华信科技有限公司"} <= names
    assert any(n.startswith("北京华信信息科技") for n in names)
    # Confusable customers are active payers.
    confusable_ids = set(customers.loc[customers["confusable_with"] != "", "customer_id"])
    paying = set(unique.loc[unique["amount"].map(Decimal) > 0, "true_customer_id"])
    assert confusable_ids <= paying
    # The memo cases read as promised; decoys carry no order ID of the truth.
    memos = _bank_rows(demo).set_index(["account_no", "txn_id"])["memo"]
    for _, row in unique[unique["variant"] == "memo_decoy"].iterrows():
        memo = memos[(row["account_no"], row["txn_id"])]
        assert row["true_order_ids"] not in memo or memo.startswith("HX")


def _bank_rows(demo) -> pd.DataFrame:
    return _all_rows(demo, "bank_transactions").drop_duplicates(["account_no", "txn_id"])


def test_invoices_of_each_order_net_to_the_contract_amount(demo):
    invoices = _all_rows(demo, "erp_invoices")
    invoices = invoices[invoices["invoice_no"] != ""]
    invoices = invoices[~invoices["total_amount"].str.contains("O")]  # the malformed row
    current = invoices.sort_values("updated_at", kind="stable").drop_duplicates("invoice_no", keep="last")
    money = lambda s: s.map(lambda v: Decimal(str(v)))  # noqa: E731
    assert (money(current["amount_excl_tax"]) + money(current["tax_amount"]) == money(current["total_amount"])).all()
    red = current[current["invoice_type"] == "red"]
    assert (money(red["total_amount"]) < 0).all() and len(red) > 0
    live = current[current["status"] == "issued"]
    net = live.assign(total=money(live["total_amount"])).groupby("order_id")["total"].sum()
    orders = _truth(demo, "orders_truth.csv").set_index("order_id")
    complete = orders[orders["invoiced_amount"].map(Decimal) == orders["contract_amount"].map(Decimal)]
    complete = complete[complete["invoiced_amount"].map(Decimal) > 0]
    assert len(complete) > 0.6 * (orders["status"] == "signed").sum()
    for order_id, row in complete.iterrows():
        assert net[order_id] == Decimal(row["contract_amount"]), order_id


def test_ground_truth_agrees_with_the_files(demo):
    bank = _truth(demo, "bank_truth.csv")
    files = _all_rows(demo, "bank_transactions")
    keyed = files.set_index(["_file", "_row_number"])
    for _, row in bank.sample(min(300, len(bank)), random_state=0).iterrows():
        line = keyed.loc[(row["source_file"], int(row["row_number"]))]
        assert (line["account_no"], line["txn_id"]) == (row["account_no"], row["txn_id"])
        assert Decimal(line["amount"].replace(",", "")) == Decimal(row["amount"])
    # Allocations never exceed the credit; refunds allocate negative amounts.
    for _, row in bank[bank["expected_allocations"] != ""].iterrows():
        allocated = sum(Decimal(part.split(":")[1]) for part in row["expected_allocations"].split(";"))
        assert allocated + Decimal(row["expected_unapplied"]) == Decimal(row["amount"]), row["txn_id"]
    # Every quarantine row is in its file at that row number, and looks broken the promised way.
    quarantine = _truth(demo, "quarantine_truth.csv")
    assert set(quarantine["reason_kind"]) == {"bad_date", "bad_amount", "missing_key"}
    for _, q in quarantine.iterrows():
        path = demo.landing_dir / q["file"]
        encoding = "gb18030" if "icbc" in path.name else "utf-8-sig"
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))
        broken = rows[int(q["row_number"]) - 1]
        if q["reason_kind"] == "missing_key":
            assert "" in broken[:2]
        elif q["reason_kind"] == "bad_amount":
            assert any("O" in cell and cell[:1].isdigit() for cell in broken)
        else:
            assert any(c.startswith(("2025-02-30", "2025-04-31")) for c in broken)


def test_order_truth_follows_the_contract_rules(demo):
    orders = _truth(demo, "orders_truth.csv")
    closed = orders[orders["is_closed"] == "true"]
    assert len(closed) > 50
    for _, row in closed.iterrows():
        legs = [pd.Timestamp(row[c]) for c in ("sales_leg_closed_at", "legal_leg_closed_at", "finance_leg_closed_at")]
        last = max(legs)
        assert last <= AS_OF
        month_end_cutoff = (last + pd.offsets.MonthEnd(0)).normalize() + pd.Timedelta(hours=16)
        expected = last.to_period("M") if last <= month_end_cutoff else (last.to_period("M") + 1)
        assert row["recognized_period"] == str(expected), row["order_id"]
    for _, row in orders[orders["edge_case"].isin(["legal_1559", "finance_1559"])].iterrows():
        assert row["recognized_period"] == row[[c for c in row.index if c.endswith("_leg_closed_at")]].max()[:7]
    for _, row in orders[orders["edge_case"].isin(["legal_1601", "finance_1601", "legal_next_day"])].iterrows():
        last = max(pd.Timestamp(row[c]) for c in ("sales_leg_closed_at", "legal_leg_closed_at", "finance_leg_closed_at"))
        assert row["recognized_period"] == str(last.to_period("M") + (0 if last.day == 1 else 1))
    assert (orders.loc[orders["status"] != "signed", "is_closed"] == "false").all()


def test_receipts_counted_only_when_the_pipeline_links_them(demo):
    """An order closed in the truth is covered by strongly linked receipts; one whose answer
    needs fuzzy suggestions says so."""
    bank = _truth(demo, "bank_truth.csv")
    unique = bank[bank["is_duplicate_of_earlier_download"] == "false"]
    linked = unique[(unique["strong_evidence"] != "") | (unique["written_off"] == "true")]
    received = defaultdict(Decimal)
    for allocations in linked["expected_allocations"]:
        for part in filter(None, allocations.split(";")):
            order_id, amount = part.split(":")
            received[order_id] += Decimal(amount)
    orders = _truth(demo, "orders_truth.csv")
    for _, row in orders[orders["is_closed"] == "true"].iterrows():
        assert received[row["order_id"]] >= Decimal(row["contract_amount"]) - 1, row["order_id"]
    fuzzy = orders[orders["depends_on_fuzzy"] == "true"]
    differs = (fuzzy["is_closed"] != fuzzy["is_closed_if_all_linked"]) | (
        fuzzy["finance_leg_closed_at"] != fuzzy["finance_leg_closed_at_if_all_linked"])
    assert differs.all()
    # Confusable payers are never linked by anything weaker than their own registered name.
    conf = unique[unique["variant"] == "confusable"]
    assert (conf.loc[conf["name_form"] != "exact_name", "name_evidence"] != "exact").all()


def test_benchmark_scale_is_fast_and_proportionate(tmp_path):
    started = time.perf_counter()
    summary = generate_demo(tmp_path / "bench", seed=3, n_bank_lines=100_000)
    seconds = time.perf_counter() - started
    print(f"\n100k bank lines generated in {seconds:.1f}s: {summary.stage_seconds}")
    assert summary.n_bank_transactions == pytest.approx(100_000, rel=0.02)
    assert summary.n_orders == 50_000 and summary.n_customers == 5_000
    truth = pd.read_csv(summary.ground_truth_dir / "bank_truth.csv", dtype=str, keep_default_na=False,
                        usecols=["variant", "is_duplicate_of_earlier_download"])
    counts = truth.loc[truth["is_duplicate_of_earlier_download"] == "false", "variant"].value_counts()
    assert all(counts.get(v, 0) >= 10 for v in ALL_VARIANTS), counts.to_dict()
    assert summary.quarantine_rows >= 8
