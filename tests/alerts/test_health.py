"""Health board metrics, their thresholds, and customer collection health."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from recon_pipeline.alerts import health

AS_OF = datetime(2025, 3, 10, 12, 0)
SECOND = timedelta(seconds=1)



def board(wh, settings, as_of=AS_OF):
    frame = health.compute_health_metrics(wh.conn, as_of, settings)
    return {row.metric: row for row in frame.itertuples(index=False)}


def test_board_has_the_contract_metrics(wh, settings):
    metrics = board(wh, settings)
    assert set(metrics) >= {
        "contract_receipt_match_rate", "hours_to_cutoff", "unarchived_signed_contracts",
        "stalled_approvals", "avg_approval_hours", "high_risk_customers",
    }
    assert {m.status for m in metrics.values()} == {"green"}  # an empty warehouse is healthy


def test_match_rate_counts_credits_of_the_last_30_days_and_turns_red_below_95_percent(wh, settings):
    wh.order("25SH00001")
    recent = AS_OF - timedelta(days=2)
    for i in range(19):
        wh.credit(f"L{i:02d}", "10.00", recent, order_id="25SH00001")
    wh.credit("SUGGESTED", "10.00", recent, order_id="25SH00001", match_status="suggested")  # not linked
    wh.credit("TOO-OLD", "10.00", AS_OF - timedelta(days=30), order_id=None)  # window is (as_of - 30 d, as_of]
    wh.add("staging.stg_bank_transactions", account_no="6222000011112222", txn_id="DEBIT", txn_time=recent,
           amount="-50.00")  # money out is not a credit

    rate = board(wh, settings)["contract_receipt_match_rate"]
    assert rate.value == pytest.approx(0.95) and rate.threshold == pytest.approx(0.95)
    assert rate.status == "green"  # exactly 95% is not below

    wh.credit("JUST-INSIDE", "10.00", AS_OF - timedelta(days=30) + SECOND, order_id=None)
    rate = board(wh, settings)["contract_receipt_match_rate"]
    assert rate.value == pytest.approx(19 / 21) and rate.status == "red"


def test_cutoff_metrics_turn_red_only_inside_the_window_with_unarchived_contracts(wh, settings):
    cutoff = datetime(2025, 3, 31, 16, 0)
    wh.order("25SH00020", signed_at=datetime(2025, 3, 20, 10))

    outside = board(wh, settings, cutoff - timedelta(hours=72))
    inside = board(wh, settings, cutoff - timedelta(hours=10))

    assert outside["hours_to_cutoff"].value == 72 and outside["hours_to_cutoff"].status == "green"
    assert inside["hours_to_cutoff"].value == 10 and inside["hours_to_cutoff"].status == "red"
    assert inside["unarchived_signed_contracts"].value == 1 and inside["unarchived_signed_contracts"].status == "red"

    wh.archive("25SH00020", datetime(2025, 3, 25, 9))
    archived = board(wh, settings, cutoff - timedelta(hours=10))
    assert archived["unarchived_signed_contracts"].value == 0 and archived["hours_to_cutoff"].status == "green"


def test_approval_metrics(wh, settings):
    wh.order("25SH00050", approval_status="pending", approval_submitted_at=AS_OF - timedelta(hours=2))
    wh.order("25SH00051", approval_status="pending", approval_submitted_at=AS_OF - timedelta(hours=5))
    wh.order("25SH00052", approval_status="approved", approval_submitted_at=AS_OF - timedelta(hours=10),
             approval_updated_at=AS_OF - timedelta(hours=9))  # 1 h
    wh.order("25SH00053", approval_status="rejected", approval_submitted_at=AS_OF - timedelta(hours=10),
             approval_updated_at=AS_OF - timedelta(hours=6))  # 4 h

    metrics = board(wh, settings)

    assert metrics["stalled_approvals"].value == 1 and metrics["stalled_approvals"].status == "red"
    assert metrics["avg_approval_hours"].value == pytest.approx(2.5)
    assert metrics["avg_approval_hours"].status == "red"  # above the 2-hour target


def test_writing_keeps_one_row_per_metric_and_as_of(wh, settings):
    health.refresh_health(wh.conn, AS_OF, settings)
    health.refresh_health(wh.conn, AS_OF, settings)
    wh.order("25SH00051", approval_status="pending", approval_submitted_at=AS_OF - timedelta(hours=5))
    health.refresh_health(wh.conn, AS_OF, settings)  # same as-of: replaced with the new value
    health.refresh_health(wh.conn, AS_OF + timedelta(minutes=10), settings)

    rows = wh.conn.execute(
        "SELECT as_of, count(*), count(DISTINCT metric) FROM mart.health_metrics GROUP BY as_of ORDER BY as_of"
    ).fetchall()
    assert [(r[1], r[2]) for r in rows] == [(6, 6), (6, 6)]
    stalled = wh.conn.execute(
        "SELECT value, status FROM mart.health_metrics WHERE metric = 'stalled_approvals' AND as_of = ?", [AS_OF]
    ).fetchone()
    assert stalled == (1.0, "red")


@pytest.mark.parametrize(
    "signed, delays, expected",
    [
        ([1, 1, 1], [10.0, 20.0, 28.0], True),
        ([2, 1, 3], [10.0, 12.0, 17.0], True),  # grew by exactly the 7-day minimum
        ([1, 1, 1], [10.0, 12.0, 16.9], False),  # grew, but by less than 7 days
        ([1, 0, 1], [10.0, 20.0, 28.0], False),  # stopped signing for a window
        ([1, 1, 1], [10.0, 20.0, 20.0], False),  # stopped growing
        ([1, 1, 1], [None, 20.0, 28.0], False),  # nothing to measure in the first window
    ],
)
def test_collection_risk_rule(signed, delays, expected):
    assert health.collection_risk(signed, delays, min_growth_days=7) is expected


def test_customer_collection_health_flags_customers_signing_while_paying_later(wh, settings):
    as_of = datetime(2025, 6, 30, 12, 0)
    w1, w2, w3 = (start for start, _ in health.collection_windows(as_of, 30))
    wh.customer("C02", "北京稳定付款有限公司", owner="S02")
    wh.customer("C03", "广州不付款有限公司", owner="S02")
    # C01 pays each new order later: 10, 20, then 28 days after signing.
    for n, (start, delay) in enumerate([(w1, 10), (w2, 20), (w3, 28)]):
        signed = start + timedelta(days=1)
        wh.order(f"25SH1000{n}", customer_id="C01", amount="1000.00", signed_at=signed)
        wh.credit(f"C01-P{n}", "1000.00", signed + timedelta(days=delay), order_id=f"25SH1000{n}")
    # C02 always pays in 10 days.
    for n, start in enumerate([w1, w2, w3]):
        signed = start + timedelta(days=1)
        wh.order(f"25SH2000{n}", customer_id="C02", amount="1000.00", signed_at=signed)
        wh.credit(f"C02-P{n}", "1000.00", signed + timedelta(days=10), order_id=f"25SH2000{n}")
    # C03 keeps signing and has stopped paying: its open orders age window after window.
    wh.order("25SH30009", customer_id="C03", amount="5000.00", signed_at=w1 - timedelta(days=10))
    for n, start in enumerate([w1, w2, w3]):
        wh.order(f"25SH3000{n}", customer_id="C03", amount="1000.00", signed_at=start + timedelta(days=1))

    table = health.compute_customer_collection_health(wh.conn, as_of, settings).set_index("customer_id")

    assert bool(table.at["C01", "high_risk"]) and not bool(table.at["C02", "high_risk"])
    assert bool(table.at["C03", "high_risk"])
    assert "10.0 → 20.0 → 28.0 天" in table.at["C01", "reason"] and "1/1/1 单" in table.at["C01", "reason"]
    assert str(table.at["C03", "outstanding_amount"]) == "8000.00"
    assert table.at["C01", "customer_name"] == "上海某某科技有限公司"

    metrics = health.refresh_health(wh.conn, as_of, settings).set_index("metric")
    assert metrics.at["high_risk_customers", "value"] == 2 and metrics.at["high_risk_customers", "status"] == "red"
    stored = wh.conn.execute(
        "SELECT customer_id FROM mart.customer_collection_health WHERE high_risk ORDER BY 1"
    ).fetchall()
    assert stored == [("C01",), ("C03",)]


def test_collection_averages_are_exact_decimals_whatever_the_parallelism(wh, settings):
    # Float averages summed in another order by another thread count differ in the last digits;
    # the board must be the same bit for bit on every run.
    as_of = datetime(2025, 6, 30, 12, 0)
    w1, w2, w3 = (start for start, _ in health.collection_windows(as_of, 30))
    start = min(w1, w2, w3)
    # 3,000 orders of 7 customers over the three windows, each paid 3-13 days (and odd seconds) later.
    wh.conn.execute("""
        INSERT INTO staging.stg_crm_contracts (order_id, customer_id, salesperson_id, amount, status, signed_at)
        SELECT printf('25SH%05d', n), printf('C%02d', n % 7), 'S01', 1000.00, 'signed',
               ?::TIMESTAMP + INTERVAL 1 DAY + (n % 3) * INTERVAL 30 DAY + n * 7 * INTERVAL 1 SECOND
        FROM range(3000) t(n)""", [start])
    wh.conn.execute("""
        INSERT INTO mart.fct_receipt_matches (account_no, txn_id, customer_id, order_id, allocated_amount,
                                              match_method, match_score, match_status, txn_time, amount)
        SELECT 'A', printf('P%d', n), customer_id, order_id, amount, 'memo_order_id', 100, 'auto_linked',
               signed_at + (3 + n % 11) * INTERVAL 1 DAY + (n * 13 % 86400) * INTERVAL 1 SECOND, amount
        FROM (SELECT *, CAST(substr(order_id, 5) AS INTEGER) AS n FROM staging.stg_crm_contracts)""")
    tables = []
    for threads in (1, 2, 4):
        wh.conn.execute(f"SET threads = {threads}")
        health.refresh_health(wh.conn, as_of, settings)
        tables.append(wh.conn.execute("SELECT * FROM mart.customer_collection_health ORDER BY customer_id").fetchall())
    assert tables[0] == tables[1] == tables[2]
    types = dict(wh.conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'customer_collection_health' AND column_name LIKE 'avg_delay_days_%'").fetchall())
    assert set(types.values()) == {"DECIMAL(10,2)"}
    delay = health.compute_customer_collection_health(wh.conn, as_of, settings).iloc[0]["avg_delay_days_3"]
    assert isinstance(delay, Decimal) and delay.as_tuple().exponent == -2


def test_exact_average_rounds_half_up_at_the_stated_scale():
    assert health.exact_average(1, 8, 1, 2) == Decimal("0.13")  # 0.125
    assert health.exact_average(2, 3, 1, 2) == Decimal("0.67")
    assert health.exact_average(-5, 2, 1, 0) == Decimal("-3")
    assert health.exact_average(0, 0, 1, 2) is None
