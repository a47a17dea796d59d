"""Close, adjust, reopen on a hand-built mart: the behaviour finance relies on, run by run."""

from datetime import datetime
from decimal import Decimal

import pytest

from recon_pipeline.close.freeze import close_period, reopen_period
from recon_pipeline.close.periods import CloseError, period_states
from recon_pipeline.close.stage import refresh_close


def table(conn, sql):
    return conn.execute(sql).fetchall()


def frozen(conn):
    return (table(conn, "SELECT * FROM mart.period_close ORDER BY ALL"),
            table(conn, "SELECT * FROM mart.period_close_orders ORDER BY ALL"))


def identity_breaks(conn):
    """(period, salesperson) where closed recognized + adjustments != live recognized."""
    return table(conn, """
        WITH active AS (
          SELECT period, max(version) AS version FROM mart.period_close_log GROUP BY period
          HAVING arg_max(action, version * 2 + CASE action WHEN 'close' THEN 0 ELSE 1 END) = 'close'
        ), adj AS (
          SELECT original_period AS period, original_version AS version, salesperson_id, sum(amount) AS amount
          FROM mart.period_adjustments GROUP BY ALL
        )
        SELECT c.period, c.salesperson_id, c.recognized_amount, coalesce(a.amount, 0), s.recognized_amount
        FROM mart.period_close c JOIN active USING (period, version)
        LEFT JOIN adj a USING (period, version, salesperson_id)
        JOIN mart.salesperson_period_summary s USING (period, salesperson_id)
        WHERE c.recognized_amount + coalesce(a.amount, 0) <> s.recognized_amount""")


def run(warehouse, as_of, settings):
    moment = warehouse.run(as_of)
    with warehouse.connect() as conn:
        return refresh_close(conn, moment, settings)


def close_february(warehouse, settings, clock):
    """The run of March 4, then February closed by 财务王五."""
    run(warehouse, "2025-03-04 09:00:00", settings)
    with warehouse.connect() as conn:
        close_period(conn, "2025-02", settings, "财务王五", clock)


def test_close_freezes_the_period_and_refuses_what_is_not_over(close_warehouse, settings, clock):
    close_warehouse.run("2025-03-04 09:00:00")
    with close_warehouse.connect() as conn:
        with pytest.raises(CloseError, match="当前未结束的期间"):
            close_period(conn, "2025-03", settings, "财务", clock)
        with pytest.raises(CloseError, match="尚未过封关时点"):
            close_period(conn, "2025-04", settings, "财务", clock)
        with pytest.raises(CloseError, match="YYYY-MM"):
            close_period(conn, "2025/02", settings, "财务", clock)
        with pytest.raises(CloseError, match="没有任何业绩数据"):
            close_period(conn, "2024-06", settings, "财务", clock)
        assert period_states(conn) == {}

        outcome = close_period(conn, "2025-02", settings, "财务王五", clock)
        assert outcome.changed and outcome.version == 1 and outcome.orders == 3
        rows = table(conn, "SELECT salesperson_id, recognized_amount, as_of, closed_at, closed_by FROM mart.period_close ORDER BY 1")
        assert rows == [
            ("S01", Decimal("150000.00"), datetime(2025, 3, 4, 9), clock.moment, "财务王五"),
            ("S02", Decimal("120000.00"), datetime(2025, 3, 4, 9), clock.moment, "财务王五"),
            ("S03", Decimal("0.00"), datetime(2025, 3, 4, 9), clock.moment, "财务王五"),
        ]
        assert table(conn, "SELECT order_id FROM mart.period_close_orders ORDER BY 1") == [
            ("25BJ00004",), ("25SH00001",), ("25SH00002",)]
        # 25BJ00003 did not count: its archive is missing, and the statement says so.
        assert table(conn, "SELECT order_id, reason FROM mart.period_close_excluded_orders") == [
            ("25BJ00003", "法务未归档（审核通过并归档后才算完成）")]


def test_closing_twice_changes_nothing(close_warehouse, settings, clock):
    close_warehouse.run("2025-03-04 09:00:00")
    with close_warehouse.connect() as conn:
        close_period(conn, "2025-02", settings, "财务王五", clock)
        before = frozen(conn), table(conn, "SELECT * FROM mart.period_close_log")
        clock.moment = datetime(2025, 3, 5, 10, 0)
        again = close_period(conn, "2025-02", settings, "别人", clock)
        assert not again.changed and again.closed_by == "财务王五" and "未作任何更改" in again.message()
        assert (frozen(conn), table(conn, "SELECT * FROM mart.period_close_log")) == before


def test_a_reversal_after_close_books_an_adjustment_and_leaves_the_close_untouched(close_warehouse, settings, clock):
    close_february(close_warehouse, settings, clock)
    with close_warehouse.connect() as conn:
        closed = frozen(conn)
    # March 12: the write-off of 25SH00001's payment is reversed, its finance leg re-opens.
    close_warehouse.set_order("25SH00001", finance=None, received_amount=0, written_off_amount=0)
    report = run(close_warehouse, "2025-03-12 09:00:00", settings)
    assert report.booked == 1 and report.booked_cents == -10000000
    with close_warehouse.connect() as conn:
        assert frozen(conn) == closed
        (adjustment,) = table(conn, "SELECT original_period, booked_period, order_id, salesperson_id, amount, adjustment_type, as_of FROM mart.period_adjustments")
        assert adjustment == ("2025-02", "2025-03", "25SH00001", "S01", Decimal("-100000.00"), "writeoff_reversed",
                              datetime(2025, 3, 12, 9))
        (reason,) = table(conn, "SELECT reason FROM mart.period_adjustments")[0]
        assert "核销" in reason and "财务联重新打开" in reason
        assert identity_breaks(conn) == []
        first_id = table(conn, "SELECT adjustment_id FROM mart.period_adjustments")

    # The same as-of again, and a later run in the same month: the same adjustment, the same id.
    run(close_warehouse, "2025-03-12 09:00:00", settings)
    run(close_warehouse, "2025-03-20 09:00:00", settings)
    with close_warehouse.connect() as conn:
        assert table(conn, "SELECT adjustment_id FROM mart.period_adjustments") == first_id

    # Undone within March: nothing is left to adjust.
    close_warehouse.set_order("25SH00001", finance="2025-02-05 10:00", received_amount=100000, written_off_amount=100000)
    run(close_warehouse, "2025-03-25 09:00:00", settings)
    with close_warehouse.connect() as conn:
        assert table(conn, "SELECT count(*) FROM mart.period_adjustments") == [(0,)]
        assert identity_breaks(conn) == []


def test_adjustments_of_a_past_month_stay_and_a_later_recovery_is_booked_now(close_warehouse, settings, clock):
    close_february(close_warehouse, settings, clock)
    close_warehouse.set_order("25SH00001", finance=None, received_amount=0, written_off_amount=0)
    run(close_warehouse, "2025-03-12 09:00:00", settings)
    close_warehouse.set_order("25SH00001", finance="2025-02-05 10:00", received_amount=100000, written_off_amount=100000)
    run(close_warehouse, "2025-04-08 09:00:00", settings)
    with close_warehouse.connect() as conn:
        rows = table(conn, "SELECT booked_period, amount, adjustment_type FROM mart.period_adjustments ORDER BY booked_period")
        assert rows == [("2025-03", Decimal("-100000.00"), "writeoff_reversed"),
                        ("2025-04", Decimal("100000.00"), "adjustment_reversed")]
        assert identity_breaks(conn) == []


def test_a_late_archive_closes_an_order_in_the_closed_month(close_warehouse, settings, clock):
    close_february(close_warehouse, settings, clock)
    # The archive record of 25BJ00003, archived on Feb 25, arrives on March 6.
    close_warehouse.set_order("25BJ00003", legal="2025-02-25 09:00")
    run(close_warehouse, "2025-03-06 09:00:00", settings)
    with close_warehouse.connect() as conn:
        (row,) = table(conn, "SELECT original_period, booked_period, salesperson_id, amount, adjustment_type, reason FROM mart.period_adjustments")
        assert row[:5] == ("2025-02", "2025-03", "S02", Decimal("80000.00"), "late_archive")
        assert "归档时间 2025-02-25 09:00" in row[5]
        assert identity_breaks(conn) == []


def test_cancellation_move_and_reassignment_are_adjusted_per_salesperson(close_warehouse, settings, clock):
    close_february(close_warehouse, settings, clock)
    close_warehouse.set_order("25SH00002", crm_status="cancelled")
    close_warehouse.set_order("25BJ00004", salesperson_id="S03")
    close_warehouse.set_order("25SH00001", finance="2025-03-03 10:00")  # a red-letter note and a new invoice
    run(close_warehouse, "2025-03-06 09:00:00", settings)
    with close_warehouse.connect() as conn:
        rows = table(conn, "SELECT order_id, salesperson_id, amount, adjustment_type, current_recognized_period "
                           "FROM mart.period_adjustments ORDER BY order_id, salesperson_id")
        assert rows == [
            ("25BJ00004", "S02", Decimal("-120000.00"), "salesperson_changed", "2025-02"),
            ("25BJ00004", "S03", Decimal("120000.00"), "salesperson_changed", "2025-02"),
            ("25SH00001", "S01", Decimal("-100000.00"), "period_moved", "2025-03"),
            ("25SH00002", "S01", Decimal("-50000.00"), "order_cancelled", None),
        ]
        assert identity_breaks(conn) == []


def test_reopen_then_close_gives_a_new_version_and_keeps_the_old(close_warehouse, settings, clock):
    close_february(close_warehouse, settings, clock)
    with close_warehouse.connect() as conn:
        with pytest.raises(CloseError, match="原因"):
            reopen_period(conn, "2025-02", " ", "财务经理", clock)
        with pytest.raises(CloseError, match="尚未封账"):
            reopen_period(conn, "2025-01", "x", "财务经理", clock)
    close_warehouse.set_order("25SH00001", finance=None, received_amount=0, written_off_amount=0)
    run(close_warehouse, "2025-03-12 09:00:00", settings)
    clock.moment = datetime(2025, 3, 12, 15, 30)
    with close_warehouse.connect() as conn:
        reopened = reopen_period(conn, "2025-02", "核销撤销，重新确认二月业绩", "财务经理", clock)
        assert reopened.version == 1
        with pytest.raises(CloseError, match="已于 2025-03-12 15:30 由 财务经理 重开"):
            reopen_period(conn, "2025-02", "again", "财务经理", clock)
        refresh_close(conn, datetime(2025, 3, 12, 9), settings)
        # Reopened: February is live again, the adjustment booked against it this month is gone.
        assert table(conn, "SELECT count(*) FROM mart.period_adjustments") == [(0,)]
        second = close_period(conn, "2025-02", settings, "财务王五", clock)
        assert second.version == 2
        assert table(conn, "SELECT version, salesperson_id, recognized_amount FROM mart.period_close "
                           "WHERE salesperson_id = 'S01' ORDER BY version") == [
            (1, "S01", Decimal("150000.00")), (2, "S01", Decimal("50000.00"))]
        log = table(conn, "SELECT version, action, action_by, reason FROM mart.period_close_log ORDER BY version, action")
        assert log == [(1, "close", "财务王五", None), (1, "reopen", "财务经理", "核销撤销，重新确认二月业绩"),
                       (2, "close", "财务王五", None)]
        assert identity_breaks(conn) == []


def test_a_run_at_an_as_of_inside_a_closed_period_books_nothing(close_warehouse, settings, clock):
    close_february(close_warehouse, settings, clock)
    close_warehouse.set_order("25SH00002", crm_status="cancelled")
    report = run(close_warehouse, "2025-02-26 09:00:00", settings)
    assert report.skipped and "已封账" in report.skipped and report.booked == 0


def test_the_automatic_close_closes_each_due_month_once_stamped_with_the_as_of(close_warehouse, settings):
    import dataclasses

    auto = dataclasses.replace(settings, raw={**settings.raw, "close": {**settings.raw["close"], "auto_close": True}})
    # February ends on Friday the 28th: due on Wednesday March 5 at 18:00 (third working day).
    assert run(close_warehouse, "2025-03-05 17:59:00", auto).auto_closed[0].period == "2025-01"
    with close_warehouse.connect() as conn:
        assert sorted(period_states(conn)) == ["2025-01"]
    report = run(close_warehouse, "2025-03-05 18:00:00", auto)
    assert [o.period for o in report.auto_closed] == ["2025-02"] and report.closed_periods == ["2025-01", "2025-02"]
    assert run(close_warehouse, "2025-03-06 09:00:00", auto).auto_closed == []
    with close_warehouse.connect() as conn:
        assert table(conn, "SELECT period, action_at, action_by, trigger FROM mart.period_close_log ORDER BY period") == [
            ("2025-01", datetime(2025, 3, 5, 17, 59), "系统自动封账", "auto"),
            ("2025-02", datetime(2025, 3, 5, 18, 0), "系统自动封账", "auto"),
        ]
