"""Alert rules at their boundaries, stable ids, and the alert history."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from recon_pipeline.alerts import rules as alerts
from recon_pipeline.as_of import last_closed_periods, next_cutoff
from recon_pipeline.settings import load_settings

# Mid-month: far from the 2025-03-31 16:00 cutoff, so no cutoff reminders interfere.
AS_OF = datetime(2025, 3, 10, 12, 0)
SECOND = timedelta(seconds=1)



def of_type(frame, alert_type):
    return frame[frame["alert_type"] == alert_type].reset_index(drop=True)


def test_receipt_not_written_off_only_after_strictly_72_hours(wh, settings):
    wh.order("25SH00001", salesperson_id="S02")
    wh.archive("25SH00001", datetime(2025, 1, 11))
    limit = AS_OF - timedelta(hours=72)
    wh.credit("T-EXACT", "1000.00", limit, order_id="25SH00001")  # exactly 72 h: not yet
    wh.credit("T-OLD", "2000.00", limit - SECOND, order_id="25SH00001")  # 72 h + 1 s: alert
    wh.credit("T-DONE", "3000.00", limit - timedelta(days=5), order_id="25SH00001")
    wh.writeoff("W1", "T-DONE", "25SH00001", "3000.00")
    wh.credit("T-REVERSED", "4000.00", limit - timedelta(days=5), order_id="25SH00001")
    wh.writeoff("W2", "T-REVERSED", "25SH00001", "4000.00", status="reversed")
    wh.credit("T-NOORDER", "5000.00", limit - timedelta(days=5), order_id=None)  # not linked to an order
    wh.credit("T-SUGGESTED", "6000.00", limit - timedelta(days=5), order_id="25SH00001", match_status="suggested")

    found = of_type(alerts.evaluate_alerts(wh.conn, AS_OF, settings), "receipt_not_written_off")

    assert sorted(found["entity_id"]) == ["T-OLD", "T-REVERSED"]
    row = found[found["entity_id"] == "T-OLD"].iloc[0]
    assert row["alert_level"] == 2
    assert row["recipient"] == "lisi@example.com"  # the order's salesperson, not the customer owner
    assert row["escalate_to"] == "boss.li@example.com"
    assert str(row["amount"]) == "2000.00"
    assert "¥2,000.00" in row["message"] and "25SH00001" in row["message"] and "到账已 3 天" in row["message"]
    assert row["runbook_url"] == "docs/runbook.md#receipt_not_written_off"


def test_split_credit_alerts_per_order_still_open(wh, settings):
    wh.order("25SH00001", salesperson_id="S01")
    wh.order("25SH00002", salesperson_id="S02")
    old = AS_OF - timedelta(days=4)
    wh.credit("T-SPLIT", "300.00", old, allocations=[("25SH00001", "100.00"), ("25SH00002", "200.00")])
    wh.writeoff("W1", "T-SPLIT", "25SH00001", "100.00")

    found = of_type(alerts.evaluate_alerts(wh.conn, AS_OF, settings), "receipt_not_written_off")

    assert list(found["order_id"]) == ["25SH00002"]
    assert list(found["recipient"]) == ["lisi@example.com"]


def test_approval_stalled_only_after_strictly_2_hours(wh, settings):
    wh.order("25SH00010", approval_status="pending", approval_submitted_at=AS_OF - timedelta(hours=2))
    wh.order("25SH00011", approval_status="pending", approval_submitted_at=AS_OF - timedelta(hours=2) - SECOND)
    wh.order("25SH00012", approval_status="approved", approval_submitted_at=AS_OF - timedelta(hours=9))
    wh.order("25SH00013", status="cancelled", approval_status="pending",
             approval_submitted_at=AS_OF - timedelta(hours=9))
    wh.order("25SH00014", approval_status="pending", approval_submitted_at=AS_OF + timedelta(hours=1))
    for order_id in ("25SH00010", "25SH00011", "25SH00012", "25SH00013", "25SH00014"):
        wh.archive(order_id, datetime(2025, 1, 11))

    found = of_type(alerts.evaluate_alerts(wh.conn, AS_OF, settings), "approval_stalled")

    assert list(found["entity_id"]) == ["25SH00011"]
    row = found.iloc[0]
    assert row["recipient"] == "zhangsan@example.com" and row["cc"] == "boss.li@example.com"
    assert pd.isna(row["alert_level"])  # a reminder, not a level-1/2/3 alert
    assert "审批已等待 2 小时" in row["message"]  # durations in words, never thousands of hours


def test_last_closed_periods_switch_exactly_at_the_cutoff():
    cutoff = datetime(2025, 2, 28, 16, 0)
    assert last_closed_periods(cutoff - SECOND, 16) == ["2025-01", "2024-12"]
    assert last_closed_periods(cutoff, 16) == ["2025-02", "2025-01"]
    assert next_cutoff(cutoff, 16) == cutoff
    assert next_cutoff(cutoff + SECOND, 16) == datetime(2025, 3, 31, 16, 0)


def test_salesperson_discrepancy_needs_both_last_closed_periods_above_10_percent(wh, settings):
    for sid, name in [("S03", "王五"), ("S04", "赵六"), ("S05", "钱七")]:
        wh.salesperson(sid, name, f"{sid.lower()}@example.com", "vp.sales@example.com")
    # As of 2025-03-10 the last two closed periods are 2025-02 and 2025-01.
    wh.period("S01", "2025-01", "100000.00", "80000.00")  # 20%
    wh.period("S01", "2025-02", "100000.00", "89999.99")  # 10.00001%
    wh.period("S02", "2025-01", "100000.00", "90000.00")  # exactly 10%: not above
    wh.period("S02", "2025-02", "100000.00", "50000.00")
    wh.period("S03", "2024-12", "100000.00", "50000.00")  # two bad periods, but not the last two
    wh.period("S03", "2025-01", "100000.00", "50000.00")
    wh.period("S03", "2025-02", "100000.00", "95000.00")
    wh.period("S04", "2025-02", "100000.00", "10000.00")  # only one period
    wh.period("S05", "2025-02", "100000.00", "10000.00")
    wh.period("S05", "2025-03", "100000.00", "10000.00", closed=False)  # March is still open

    found = of_type(alerts.evaluate_alerts(wh.conn, AS_OF, settings), "salesperson_discrepancy")

    assert list(found["entity_id"]) == ["S01"]
    row = found.iloc[0]
    assert row["alert_level"] == 3
    assert row["recipient"] == "boss.li@example.com"  # management: the salesperson's manager
    assert "2025-01 差异率 20.0%" in row["message"] and "2025-02" in row["message"] and "张三" in row["message"]


def test_cutoff_unarchived_only_strictly_within_72_hours(wh, settings):
    cutoff = datetime(2025, 3, 31, 16, 0)
    wh.order("25SH00020", signed_at=datetime(2025, 3, 20, 10))  # signed, not archived
    wh.order("25SH00021", signed_at=datetime(2025, 3, 20, 10))
    wh.archive("25SH00021", datetime(2025, 3, 21, 10))  # archived
    wh.order("25SH00022", signed_at=datetime(2025, 3, 20, 10))
    wh.archive("25SH00022", None, review_status="rejected")  # reviewed but not archived
    wh.order("25SH00023", status="draft", signed_at=None)

    at_72h = of_type(alerts.evaluate_alerts(wh.conn, cutoff - timedelta(hours=72), settings), "cutoff_unarchived")
    inside = of_type(alerts.evaluate_alerts(wh.conn, cutoff - timedelta(hours=72) + SECOND, settings), "cutoff_unarchived")

    assert at_72h.empty
    assert sorted(inside["entity_id"]) == ["25SH00020", "25SH00022"]
    row = inside.iloc[0]
    assert row["recipient"] == "zhangsan@example.com" and row["cc"] == "boss.li@example.com"
    assert "2025-03-31 16:00" in row["message"] and "封关还有 2 天 23 小时" in row["message"]


def _credits_with_rate(wh, linked: int, unlinked: int, when: datetime) -> None:
    wh.order("25SH00030")
    for i in range(linked):
        wh.credit(f"L{i:03d}", "10.00", when, order_id="25SH00030")
    for i in range(unlinked):
        wh.credit(f"U{i:03d}", "10.00", when, order_id=None)


def test_match_rate_low_strictly_below_95_percent(wh, settings):
    recent = AS_OF - timedelta(hours=1)
    _credits_with_rate(wh, linked=19, unlinked=1, when=recent)  # 95.0%: no alert
    wh.credit("OLD-UNLINKED", "10.00", AS_OF - timedelta(days=30), order_id=None)  # outside the 30-day window
    assert of_type(alerts.evaluate_alerts(wh.conn, AS_OF, settings), "match_rate_low").empty

    wh.credit("U-EXTRA", "10.00", recent, order_id=None)  # 19/21 = 90.5%
    found = of_type(alerts.evaluate_alerts(wh.conn, AS_OF, settings), "match_rate_low")
    assert list(found["entity_id"]) == ["contract_receipt_match_rate"]
    assert "90.5%" in found.iloc[0]["message"] and "21 笔" in found.iloc[0]["message"]


def test_amount_mismatch_goes_to_the_customer_owner(wh, settings):
    wh.credit("T-ODD", "12345.67", AS_OF - timedelta(hours=1), amount_mismatch=True, allocations=[(None, "12345.67")])
    wh.credit("T-FINE", "500.00", AS_OF - timedelta(hours=1), order_id=None)

    found = of_type(alerts.evaluate_alerts(wh.conn, AS_OF, settings), "amount_mismatch")

    assert list(found["entity_id"]) == ["T-ODD"]
    row = found.iloc[0]
    assert row["alert_level"] == 1 and row["recipient"] == "zhangsan@example.com"
    assert "¥12,345.67" in row["message"]


def test_alert_id_is_stable_across_runs_and_differs_between_facts(wh, settings):
    wh.order("25SH00001")
    wh.archive("25SH00001", datetime(2025, 1, 11))
    wh.credit("T-OLD", "2000.00", AS_OF - timedelta(days=4), order_id="25SH00001")
    wh.credit("T-OLD2", "2000.00", AS_OF - timedelta(days=4), order_id="25SH00001")

    first = alerts.evaluate_alerts(wh.conn, AS_OF, settings)
    later = alerts.evaluate_alerts(wh.conn, AS_OF + timedelta(hours=5), settings)

    assert set(first["alert_id"]) == set(later["alert_id"])
    assert first["alert_id"].is_unique and len(first) == 2


def test_history_resolves_instead_of_deleting_and_reruns_change_nothing(wh, settings):
    wh.order("25SH00001")
    wh.archive("25SH00001", datetime(2025, 1, 11))
    wh.credit("T-A", "100.00", AS_OF - timedelta(days=4), order_id="25SH00001")
    wh.credit("T-B", "200.00", AS_OF - timedelta(days=4), order_id="25SH00001")
    day1, day2, day3 = AS_OF, AS_OF + timedelta(days=1), AS_OF + timedelta(days=2)

    alerts.refresh_alerts(wh.conn, day1, settings)
    wh.writeoff("W-B", "T-B", "25SH00001", "200.00")  # finance writes T-B off
    alerts.refresh_alerts(wh.conn, day2, settings)
    snapshot = wh.conn.execute("SELECT * FROM mart.alert_history ORDER BY entity_id").fetchall()
    open_now = wh.conn.execute("SELECT * FROM mart.alerts").fetchall()
    alerts.refresh_alerts(wh.conn, day2, settings)  # same as-of again

    assert wh.conn.execute("SELECT * FROM mart.alert_history ORDER BY entity_id").fetchall() == snapshot
    assert wh.conn.execute("SELECT * FROM mart.alerts").fetchall() == open_now
    history = wh.conn.execute(
        "SELECT entity_id, first_seen_as_of, last_seen_as_of, resolved_as_of FROM mart.alert_history ORDER BY entity_id"
    ).fetchall()
    assert history == [("T-A", day1, day2, None), ("T-B", day1, day1, day2)]
    assert [r[0] for r in wh.conn.execute("SELECT entity_id FROM mart.alerts").fetchall()] == ["T-A"]
    assert wh.conn.execute("SELECT first_seen_as_of FROM mart.alerts").fetchone()[0] == day1

    # The write-off is reversed: the same fact holds again and opens a new episode.
    wh.conn.execute("UPDATE staging.stg_finance_writeoffs SET status = 'reversed' WHERE writeoff_id = 'W-B'")
    alerts.refresh_alerts(wh.conn, day3, settings)
    episodes = wh.conn.execute(
        "SELECT first_seen_as_of, resolved_as_of FROM mart.alert_history WHERE entity_id = 'T-B' ORDER BY 1"
    ).fetchall()
    assert episodes == [(day1, day2), (day3, None)]
    assert alerts.open_alert_counts(wh.conn)["receipt_not_written_off"] == 2


def test_recipients_and_links_follow_settings(wh, tmp_path):
    custom = tmp_path / "settings.yaml"
    custom.write_text(
        "alerts:\n  approval_stalled_hours: 4\n"
        "notify:\n  runbook_base_url: https://wiki.example.com/runbook\n  fallback_recipient: ops@example.com\n",
        encoding="utf-8",
    )
    settings = load_settings(custom)
    wh.order("25SH00040", salesperson_id="S99", approval_status="pending",
             approval_submitted_at=AS_OF - timedelta(hours=3))  # 3 h < 4 h: no alert
    wh.order("25SH00041", salesperson_id="S99", approval_status="pending",
             approval_submitted_at=AS_OF - timedelta(hours=5))
    wh.archive("25SH00040", datetime(2025, 1, 11))
    wh.archive("25SH00041", datetime(2025, 1, 11))

    found = of_type(alerts.evaluate_alerts(wh.conn, AS_OF, settings), "approval_stalled")

    assert list(found["entity_id"]) == ["25SH00041"]
    assert found.iloc[0]["recipient"] == "ops@example.com"  # unknown salesperson: the fallback
    assert found.iloc[0]["runbook_url"] == "https://wiki.example.com/runbook#approval_stalled"
