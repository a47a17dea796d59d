"""Score the matching engine's links against a ground truth (the demo generator's bank_truth.csv).

bank_truth columns: account_no, txn_id, true_customer_id, true_order_ids (`;`),
expected_allocations (`order_id:amount;...`, amounts in yuan; an empty order id = unapplied),
variant, is_duplicate_of_earlier_download.

`evaluate(links, bank_truth)` returns an `EvaluationReport`: overall figures, and per method
and per variant (tag: the messy case a line was made for) tables (precision = right customer among linked lines; recall = share of lines
with a true customer that were auto-linked to it; reached = share whose true customer was
auto-linked or suggested). `report.text()` is the printable summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

LINKED = ("auto_linked", "confirmed")
TARGETS = {"auto_link_precision": 0.995, "customer_reached": 0.95, "allocation_correct": 0.95}


def _text(value) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    return str(value).strip()


def _true(column: pd.Series) -> pd.Series:
    return column.astype(str).str.lower().isin(["true", "1", "yes"])


def parse_expected_allocations(text: str) -> dict[str | None, int]:
    """`25SH00137:1000.00;25SH00138:50.5;:20` -> {order_id or None: cents}."""
    out: dict[str | None, int] = {}
    for item in _text(text).split(";"):
        if not item.strip():
            continue
        order_id, _, amount = item.rpartition(":")
        order_id = order_id.strip()
        key = None if order_id.lower() in ("", "none", "null", "unapplied") else order_id
        out[key] = out.get(key, 0) + int(Decimal(amount.strip().replace(",", "")) * 100)
    return out


def per_transaction(links: pd.DataFrame) -> pd.DataFrame:
    """One row per bank line: its customer, method, status and allocation {order_id: cents}."""
    rows = []
    for (account_no, txn_id), group in links.groupby(["account_no", "txn_id"], sort=False):
        allocation: dict[str | None, int] = {}
        for order_id, cents in zip(group["order_id"], group["allocated_cents"]):
            key = order_id if isinstance(order_id, str) else None
            allocation[key] = allocation.get(key, 0) + int(cents)
        first = group.iloc[0]
        rows.append({"account_no": str(account_no), "txn_id": str(txn_id),
                     "customer_id": _text(first["customer_id"]) or None, "match_method": first["match_method"],
                     "match_status": first["match_status"], "allocation": allocation})
    return pd.DataFrame(rows, columns=["account_no", "txn_id", "customer_id", "match_method", "match_status",
                                       "allocation"])


@dataclass
class EvaluationReport:
    summary: dict[str, float | int]
    by_method: pd.DataFrame
    by_variant: pd.DataFrame
    scored: pd.DataFrame  # one row per truth line with the engine's answer

    def meets_targets(self) -> bool:
        return all(self.summary.get(k, 0) >= v for k, v in TARGETS.items()) and self.summary["confusable_auto_wrong"] == 0

    def text(self) -> str:
        s = self.summary
        lines = [
            f"lines evaluated: {s['lines']} (with a true customer: {s['with_customer']})",
            f"auto-link precision: {s['auto_link_precision']:.4f} ({s['auto_linked']} auto-linked, "
            f"{s['auto_wrong']} wrong; confusable pairs auto-linked wrong: {s['confusable_auto_wrong']})  target >= 0.995",
            f"auto-link recall: {s['auto_link_recall']:.4f}",
            f"true customer reached (auto or suggested): {s['customer_reached']:.4f}  target >= 0.95",
            f"suggestions: {s['suggested']} (right customer: {s['suggested_right']})",
            f"lines without a customer left unlinked: {s['no_customer_unlinked']}/{s['no_customer']}",
            f"allocation correct (unambiguous credits): {s['allocation_correct']:.4f} "
            f"of {s['allocation_lines']}  target >= 0.95",
            "",
            "by method:",
            self.by_method.to_string(index=False),
            "",
            "by variant (the messy case each line was made for; its tag in bank_truth.csv):",
            self.by_variant.to_string(index=False),
        ]
        return "\n".join(lines)


def _share(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 4) if denominator else 1.0


def evaluate(links: pd.DataFrame, bank_truth: pd.DataFrame) -> EvaluationReport:
    truth = bank_truth.copy()
    truth["account_no"] = truth["account_no"].astype(str)
    truth["txn_id"] = truth["txn_id"].astype(str)
    if "is_duplicate_of_earlier_download" in truth:
        duplicate = _true(truth["is_duplicate_of_earlier_download"])
        truth = truth[~duplicate]
    truth = truth.drop_duplicates(["account_no", "txn_id"])
    answers = per_transaction(links)
    scored = truth.merge(answers, on=["account_no", "txn_id"], how="left")
    scored["true_customer_id"] = scored["true_customer_id"].map(_text)
    scored["customer_id"] = scored["customer_id"].map(_text)
    scored["match_status"] = scored["match_status"].fillna("absent")
    scored["match_method"] = scored["match_method"].fillna("none")
    scored["has_customer"] = scored["true_customer_id"] != ""
    scored["linked"] = scored["match_status"].isin(LINKED) & (scored["customer_id"] != "")
    scored["suggested"] = (scored["match_status"] == "suggested") & (scored["customer_id"] != "")
    scored["right_customer"] = scored["has_customer"] & (scored["customer_id"] == scored["true_customer_id"])
    scored["reached"] = scored["right_customer"] & (scored["linked"] | scored["suggested"])

    expected = scored.get("expected_allocations", pd.Series([""] * len(scored), index=scored.index)).map(_text)
    scored["expected"] = expected.map(parse_expected_allocations)
    if "expected_unapplied" in scored:  # the surplus kept as unapplied cash (a row without order)
        for want, unapplied in zip(scored["expected"], scored["expected_unapplied"].map(_text)):
            if unapplied:
                cents = int(Decimal(unapplied.replace(",", "")) * 100)
                if cents:
                    want[None] = want.get(None, 0) + cents
    unambiguous = scored["has_customer"] & scored["expected"].map(bool)
    if "allocation_unambiguous" in scored:
        unambiguous &= scored["allocation_unambiguous"].astype(str).str.lower().isin(["true", "1"])
    if "strong_evidence" in scored and "written_off" in scored:
        # Only lines the engine should link without a human (or finance wrote off): a line that
        # is rightly only a suggestion has no allocation to be right about.
        unambiguous &= (scored["strong_evidence"].map(_text) != "") | _true(scored["written_off"])
    scored["allocation_correct"] = [
        bool(linked and isinstance(actual, dict) and {k: v for k, v in actual.items() if v}
             == {k: v for k, v in want.items() if v})
        for linked, actual, want in zip(scored["linked"], scored["allocation"], scored["expected"])
    ]

    auto = scored[scored["linked"]]
    variant = scored.get("variant", pd.Series(["?"] * len(scored), index=scored.index)).fillna("?")
    confusable_wrong = int(((variant == "confusable") & scored["linked"] & ~scored["right_customer"]).sum())
    with_customer = scored[scored["has_customer"]]
    no_customer = scored[~scored["has_customer"]]
    summary = {
        "lines": len(scored),
        "with_customer": len(with_customer),
        "auto_linked": len(auto),
        "auto_wrong": int((~auto["right_customer"]).sum()),
        "auto_link_precision": _share(int(auto["right_customer"].sum()), len(auto)),
        "auto_link_recall": _share(int((with_customer["linked"] & with_customer["right_customer"]).sum()),
                                   len(with_customer)),
        "customer_reached": _share(int(with_customer["reached"].sum()), len(with_customer)),
        "suggested": int(scored["suggested"].sum()),
        "suggested_right": int((scored["suggested"] & scored["right_customer"]).sum()),
        "no_customer": len(no_customer),
        "no_customer_unlinked": int((~no_customer["linked"]).sum()),
        "confusable_auto_wrong": confusable_wrong,
        "allocation_lines": int(unambiguous.sum()),
        "allocation_correct": _share(int(scored.loc[unambiguous, "allocation_correct"].sum()), int(unambiguous.sum())),
    }

    by_method = (scored.assign(linked_right=scored["linked"] & scored["right_customer"],
                               suggested_right=scored["suggested"] & scored["right_customer"])
                 .groupby("match_method")
                 .agg(lines=("txn_id", "size"), auto_linked=("linked", "sum"), right_auto=("linked_right", "sum"),
                      suggested=("suggested", "sum"), right_suggested=("suggested_right", "sum"))
                 .reset_index())
    by_method["precision"] = [_share(r, n) for r, n in zip(by_method["right_auto"], by_method["auto_linked"])]
    by_method["recall_share"] = [_share(r, summary["with_customer"]) for r in by_method["right_auto"]]

    scored["variant"] = variant
    by_variant = (scored.assign(linked_right=scored["linked"] & scored["right_customer"],
                                linked_wrong=scored["linked"] & ~scored["right_customer"],
                                suggested_right=scored["suggested"] & scored["right_customer"])
                  .groupby("variant")
                  .agg(lines=("txn_id", "size"), with_customer=("has_customer", "sum"), auto_linked=("linked", "sum"),
                       right_auto=("linked_right", "sum"), wrong_auto=("linked_wrong", "sum"),
                       reached=("reached", "sum"), suggested=("suggested", "sum"),
                       right_suggested=("suggested_right", "sum"))
                  .reset_index())
    by_variant["precision"] = [_share(r, n) for r, n in zip(by_variant["right_auto"], by_variant["auto_linked"])]
    by_variant["recall"] = [_share(r, n) for r, n in zip(by_variant["right_auto"], by_variant["with_customer"])]
    by_variant["reached_share"] = [_share(r, n) for r, n in zip(by_variant["reached"], by_variant["with_customer"])]
    alloc = scored[unambiguous].groupby("variant")["allocation_correct"].mean().round(4)
    by_variant["allocation_correct"] = by_variant["variant"].map(alloc)
    return EvaluationReport(summary, by_method, by_variant, scored)


def links_from_warehouse(warehouse) -> pd.DataFrame:
    """The seam table `matching.receipt_links` of a warehouse built by `recon run`."""
    import duckdb

    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        return conn.execute(
            """SELECT account_no, txn_id, customer_id, order_id,
                      CAST(allocated_amount * 100 AS BIGINT) AS allocated_cents,
                      match_method, match_score, match_status, evidence
               FROM matching.receipt_links""").df()
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m recon_pipeline.matching.evaluation WAREHOUSE BANK_TRUTH_CSV`: print the report."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("用法: python -m recon_pipeline.matching.evaluation <数据仓库.duckdb> <bank_truth.csv>")
        return 2
    truth = pd.read_csv(args[1], dtype=str, keep_default_na=False)
    report = evaluate(links_from_warehouse(args[0]), truth)
    print(report.text())
    return 0 if report.meets_targets() else 1


if __name__ == "__main__":
    raise SystemExit(main())
