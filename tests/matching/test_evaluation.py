"""The evaluation scores links against a ground truth the way the issue's targets read."""

import json

import pandas as pd

from recon_pipeline.matching.evaluation import evaluate, parse_expected_allocations


def links_frame(rows):
    return pd.DataFrame(rows, columns=["account_no", "txn_id", "customer_id", "order_id", "allocated_cents",
                                       "match_method", "match_score", "match_status", "evidence"])


def test_expected_allocations_parse_to_cents():
    assert parse_expected_allocations("25SH00137:1000.50;25SH00138:20;:3.5") == {
        "25SH00137": 100_050, "25SH00138": 2_000, None: 350}
    assert parse_expected_allocations("") == {}


def test_precision_recall_reach_and_allocation():
    ev = json.dumps({})
    links = links_frame([
        ("A", "T1", "C1", "O1", 100_000, "exact_name", 100, "auto_linked", ev),
        ("A", "T2", "C2", "O2", 50_000, "memo_order_id", 100, "auto_linked", ev),
        ("A", "T2", "C2", "O3", 50_000, "memo_order_id", 100, "auto_linked", ev),
        ("A", "T3", "C9", None, 10_000, "exact_name", 100, "auto_linked", ev),  # wrong customer, confusable
        ("A", "T4", "C4", None, 10_000, "fuzzy", 90, "suggested", ev),
        ("A", "T5", None, None, 10_000, "none", 0, "unmatched", ev),
    ])
    truth = pd.DataFrame([
        ("A", "T1", "C1", "O1", "O1:1000.00", "exact_name", "false"),
        ("A", "T2", "C2", "O2;O3", "O2:500;O3:500", "memo_two_ids", "false"),
        ("A", "T3", "C3", "", "", "confusable", "false"),
        ("A", "T4", "C4", "", "", "short_name", "false"),
        ("A", "T5", "", "", "", "unrelated", "false"),
        ("A", "T1", "C1", "O1", "O1:1000.00", "exact_name", "true"),  # second download of T1
    ], columns=["account_no", "txn_id", "true_customer_id", "true_order_ids", "expected_allocations", "variant",
                "is_duplicate_of_earlier_download"])
    report = evaluate(links, truth)
    s = report.summary
    assert s["lines"] == 5 and s["with_customer"] == 4
    assert s["auto_linked"] == 3 and s["auto_wrong"] == 1
    assert s["auto_link_precision"] == round(2 / 3, 4)
    assert s["confusable_auto_wrong"] == 1
    assert s["customer_reached"] == 0.75
    assert s["allocation_lines"] == 2 and s["allocation_correct"] == 1.0
    assert not report.meets_targets()
    variants = report.by_variant.set_index("variant")
    assert variants.at["confusable", "precision"] == 0.0
    assert "by variant" in report.text()
