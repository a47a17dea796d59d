"""The close on the demo, end to end through `recon run` and the close commands.

January to April are closed after the run of May 2. Then finance reverses the write-off of an
order counted in a closed month, and a late archive record arrives for an April order that
lacked only its archive; the run of May 8 books both as adjustments in May. Checked: the closed figures do not move, closed +
adjustments = the live recompute for every salesperson and period, a rerun books nothing new,
reopen + close gives version 2, and BI sees it all in the publication.
"""

import csv
import os
import subprocess
import sys

import duckdb
import pytest

from recon_pipeline.close.periods import period_states

# One worker runs the module in order: the scenario is built once and the last test reopens a month.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("close_demo")]

RECON = [sys.executable, "-m", "recon_pipeline.cli"]


def recon(*args, env=None):
    result = subprocess.run([*RECON, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return result


def rows(path, sql, params=None):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def reversal_candidate(warehouse):
    """An order counted in a closed month whose only money came through fuzzy links finance wrote off."""
    found = rows(warehouse, """
        WITH links AS (
          SELECT order_id, bool_and(match_method = 'fuzzy' AND match_status = 'confirmed') AS only_written_off
          FROM mart.fct_receipt_matches WHERE order_id IS NOT NULL AND match_status IN ('auto_linked', 'confirmed')
          GROUP BY order_id)
        SELECT o.order_id, o.recognized_period, o.salesperson_id, o.contract_amount
        FROM mart.fct_order_reconciliation o JOIN links USING (order_id)
        WHERE links.only_written_off AND o.is_closed AND o.recognized_period <= '2025-04'
        ORDER BY o.recognized_period, o.order_id LIMIT 1""")
    assert found, "the demo has no order paid only through confirmed fuzzy links"
    return found[0]


def write_reversal(landing, warehouse, order_id):
    writeoffs = rows(warehouse, """
        SELECT writeoff_id, txn_id, order_id, invoice_no, CAST(amount AS VARCHAR), confirmed_by,
               strftime(confirmed_at, '%Y-%m-%d %H:%M:%S')
        FROM staging.stg_finance_writeoffs WHERE order_id = ? AND status = 'active' ORDER BY writeoff_id""", [order_id])
    assert writeoffs
    folder = landing / "finance_writeoffs" / "2025-05-07"
    folder.mkdir(parents=True)
    with open(folder / "reversal.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["writeoff_id", "txn_id", "order_id", "invoice_no", "amount", "confirmed_by", "confirmed_at", "status"])
        for writeoff in writeoffs:
            writer.writerow([*["" if v is None else v for v in writeoff], "reversed"])
    return [w[0] for w in writeoffs]


def archive_only_missing(warehouse):
    """An order that did not count in April only because its archive was missing (its other legs were in time)."""
    found = rows(warehouse, """
        SELECT order_id, salesperson_id, contract_amount FROM mart.period_close_excluded_orders
        WHERE period = '2025-04' AND reason = '法务未归档（审核通过并归档后才算完成）'
          AND finance_leg_closed_at <= TIMESTAMP '2025-04-30 16:00:00'
        ORDER BY order_id LIMIT 1""")
    assert found, "the demo has no April order missing only its archive"
    return found[0]


def write_late_archive(landing, order_id):
    folder = landing / "legal_archive" / "2025-05-07"
    folder.mkdir(parents=True)
    (folder / "late.csv").write_text(
        "archive_no,order_id,review_status,submitted_at,reviewed_at,archived_at,updated_at\n"
        f"AR-LATE-{order_id},{order_id},approved,2025-04-28 10:00:00,2025-04-29 09:00:00,2025-04-29 10:00:00,"
        "2025-05-07 09:00:00\n", encoding="utf-8")


@pytest.fixture(scope="module")
def demo_close(tmp_path_factory):
    from recon_pipeline.demo.generator import generate_demo

    root = tmp_path_factory.mktemp("close-demo")
    generate_demo(root, seed=7)
    landing, warehouse = root / "landing", root / "recon.duckdb"
    env = {"RECON_WAREHOUSE": str(warehouse), "RECON_LANDING_DIR": str(landing)}
    recon("run", "--as-of", "2025-05-02T09:00:00", env=env)
    for period in ("2025-01", "2025-02", "2025-03", "2025-04"):
        recon("close-period", period, "--by", "财务张三", env=env)
    frozen = {table: rows(warehouse, f"SELECT * FROM mart.{table} ORDER BY ALL")
              for table in ("period_close", "period_close_orders", "period_close_excluded_orders")}
    before = rows(warehouse, "SELECT order_id, recognized_period FROM mart.fct_order_reconciliation WHERE is_closed")

    candidate = reversal_candidate(warehouse)
    reversed_ids = write_reversal(landing, warehouse, candidate[0])
    late = archive_only_missing(warehouse)
    write_late_archive(landing, late[0])
    recon("run", "--as-of", "2025-05-08T09:00:00", env=env)
    return {"root": root, "landing": landing, "warehouse": warehouse, "env": env, "frozen": frozen,
            "candidate": candidate, "reversed_ids": reversed_ids, "late": late, "closed_before": dict(before)}


def test_closed_figures_do_not_move(demo_close):
    warehouse = demo_close["warehouse"]
    for table, frozen in demo_close["frozen"].items():
        assert rows(warehouse, f"SELECT * FROM mart.{table} ORDER BY ALL") == frozen, table


def test_the_reversal_is_booked_in_may_against_its_closed_month(demo_close):
    order_id, period, salesperson_id, contract = demo_close["candidate"]
    found = rows(demo_close["warehouse"], """
        SELECT original_period, booked_period, salesperson_id, amount, adjustment_type, reason
        FROM mart.period_adjustments WHERE order_id = ?""", [order_id])
    assert len(found) == 1
    original, booked, person, amount, kind, reason = found[0]
    assert (original, booked, person, amount, kind) == (period, "2025-05", salesperson_id, -contract, "writeoff_reversed")
    assert all(writeoff_id in reason for writeoff_id in demo_close["reversed_ids"])


def test_a_late_archive_record_closes_an_april_order_as_an_adjustment(demo_close):
    order_id, salesperson_id, contract = demo_close["late"]
    assert order_id not in demo_close["closed_before"]
    found = rows(demo_close["warehouse"], """
        SELECT original_period, booked_period, salesperson_id, amount, adjustment_type, reason
        FROM mart.period_adjustments WHERE order_id = ?""", [order_id])
    assert [f[:5] for f in found] == [("2025-04", "2025-05", salesperson_id, contract, "late_archive")]
    assert "归档时间 2025-04-29 10:00" in found[0][5]


def test_closed_plus_adjustments_equals_the_live_recompute_for_every_salesperson_and_period(demo_close):
    warehouse = demo_close["warehouse"]
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        versions = {p: s.version for p, s in period_states(conn).items() if s.is_closed}
    assert sorted(versions) == ["2025-01", "2025-02", "2025-03", "2025-04"]
    live = rows(warehouse, "SELECT salesperson_id, period, recognized_amount FROM mart.salesperson_period_summary")
    closed = {(sp, p): amount for p, v, sp, amount in rows(
        warehouse, "SELECT period, version, salesperson_id, recognized_amount FROM mart.period_close")
        if versions.get(p) == v}
    adjusted = {}
    for p, v, sp, amount in rows(warehouse, "SELECT original_period, original_version, salesperson_id, amount "
                                            "FROM mart.period_adjustments"):
        assert versions.get(p) == v
        adjusted[(sp, p)] = adjusted.get((sp, p), 0) + amount
    assert adjusted, "the scenario books adjustments"
    checked = 0
    for sp, p, amount in live:
        if p in versions:
            assert closed[(sp, p)] + adjusted.get((sp, p), 0) == amount, (sp, p)
            checked += 1
        else:
            assert (sp, p) not in adjusted
    assert checked == len(closed) >= 4 * 9
    assert rows(warehouse, "SELECT count(*) FROM mart.period_close_reconciliation WHERE unexplained_amount <> 0") == [(0,)]


def test_a_rerun_books_nothing_new_and_bi_sees_the_same(demo_close):
    warehouse, env = demo_close["warehouse"], demo_close["env"]
    ledger = "SELECT * EXCLUDE (as_of) FROM mart.period_adjustments ORDER BY adjustment_id"
    first = rows(warehouse, ledger)
    recon("run", "--as-of", "2025-05-08T09:00:00", env=env)
    assert rows(warehouse, ledger) == first
    published = warehouse.with_name("recon.published.duckdb")
    assert rows(published, ledger) == first
    assert rows(published, "SELECT count(DISTINCT period) FROM mart.period_close") == [(4,)]


def test_reopen_then_close_gives_version_two_and_keeps_version_one(demo_close):
    warehouse, env = demo_close["warehouse"], demo_close["env"]
    order_id, period, salesperson_id, contract = demo_close["candidate"]
    recon("reopen-period", period, "--reason", "核销撤销，重新确认", "--by", "财务经理", env=env)
    assert rows(warehouse, "SELECT count(*) FROM mart.period_adjustments WHERE original_period = ?", [period]) == [(0,)]
    recon("close-period", period, "--by", "财务张三", env=env)
    versions = rows(warehouse, """
        SELECT version, recognized_amount FROM mart.period_close WHERE period = ? AND salesperson_id = ?
        ORDER BY version""", [period, salesperson_id])
    assert [v for v, _ in versions] == [1, 2]
    assert versions[1][1] == rows(warehouse, "SELECT recognized_amount FROM mart.salesperson_period_summary "
                                             "WHERE period = ? AND salesperson_id = ?", [period, salesperson_id])[0][0]
    assert rows(warehouse, "SELECT count(*) FROM mart.period_close_orders WHERE period = ? AND version = 1 AND order_id = ?",
                [period, order_id]) == [(1,)]
    assert rows(warehouse, "SELECT count(*) FROM mart.period_close_orders WHERE period = ? AND version = 2 AND order_id = ?",
                [period, order_id]) == [(0,)]
