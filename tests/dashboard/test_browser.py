"""The dashboard in a real headless Chromium: every page, the charts and their tooltips, search
and drill-down, an export downloaded and opened with openpyxl, confirm and undo, an alert
acknowledged; and on the demo, end to end: the acknowledgement reaches the next run, which
escalates the still-open alert to the manager by e-mail at a later as-of."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import duckdb
import openpyxl
import pytest

from recon_pipeline.dashboard import DashboardConfig
from recon_pipeline.dashboard.formatting import yuan
from recon_pipeline.publish.publication import default_published_path
from tests.conftest import EXPECTED, running_dashboard
from tests.dashboard.conftest import cells, visit

pytestmark = pytest.mark.e2e


def test_every_page_shows_the_fixture_figures_and_draws_its_charts(page, config):
    with running_dashboard(config) as base:
        visit(page, base + "/", "overview")
        assert page.get_by_test_id("kpi-signed").inner_text() == EXPECTED["signed_this_period"]
        assert page.get_by_test_id("kpi-recognized").inner_text() == EXPECTED["recognized_this_period"]
        assert page.get_by_test_id("kpi-collected").inner_text() == EXPECTED["collected_this_period"]
        trend = {row[0]: row for row in cells(page, "[data-testid=trend-table]")}
        assert trend["2025-02"][1:] == [EXPECTED["signed_2025_02"], "¥100,000.00", EXPECTED["collected_2025_02"]]
        assert min(trend) == "2024-12"  # starts at the first period with figures, not with empty ones
        funnel = {row[0]: row for row in cells(page, "[data-testid=funnel-table]")}
        assert funnel["已签约"][1:3] == list(EXPECTED["funnel_reached_signed"])
        assert funnel["已签约"][3:] == list(EXPECTED["funnel_stuck_signed"])
        assert funnel["已闭环"][1:3] == list(EXPECTED["funnel_done"])
        page.wait_for_selector("[data-chart][data-drawn] svg")
        assert page.locator("[data-chart][data-drawn]").count() == 2
        bars = page.locator("[data-chart] svg path")
        assert bars.count() > 10
        box = page.locator("[data-chart]").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.6)
        page.wait_for_function("() => [...document.querySelectorAll('div')].some(d => d.innerText.includes('签约金额：¥'))")

        visit(page, base + "/health", "health")
        assert page.get_by_test_id("hours-to-cutoff").inner_text() == EXPECTED["hours_to_cutoff"]
        assert page.get_by_test_id("at-risk-count").inner_text() == EXPECTED["at_risk_count"]
        match_rate = page.locator("tr[data-metric=contract_receipt_match_rate]")
        assert EXPECTED["match_rate"] in match_rate.inner_text() and "异常" in match_rate.inner_text()
        assert page.get_by_test_id("health-banner").inner_text() == "5 项指标异常"
        page.wait_for_selector("tr[data-metric] [data-drawn] svg")

        visit(page, base + "/alerts", "alerts")
        assert [page.get_by_test_id(f"alerts-level-{k}").inner_text() for k in ("1", "2", "3", "reminder")] == ["1", "1", "1", "5"]
        page.get_by_test_id("alerts-level-2").click()  # a level card is the level filter
        page.wait_for_url("**/alerts?level=2")
        assert [page.get_by_test_id(f"alerts-level-{k}").inner_text() for k in ("1", "2", "3", "reminder")] == ["1", "1", "1", "5"]
        assert [row[0] for row in cells(page, "[data-testid=alerts-table]")] == ["二级"]
        visit(page, base + "/diff-list", "diff-list")
        assert page.get_by_test_id("diff-receipt_without_contract").inner_text() == EXPECTED["diff_receipt_without_contract"]
        assert len(cells(page, "[data-testid=diff-table]")) == 4  # today's list only

        visit(page, base + "/customers", "customers")
        rows = cells(page, "[data-testid=customers-table]")
        assert [row[1] for row in rows] == [EXPECTED["high_risk_customer"]] and rows[0][5] == "¥80,000.00"

        visit(page, base + "/review", "review")
        assert page.get_by_test_id("queue-count").inner_text() == EXPECTED["queue_count"]
        t005 = page.locator("tr[data-txn=T005]").inner_text()
        for evidence in ("北京华联商贸", "华联商贸", "91", "C001（70）", "¥80,000.00", "3月货款"):
            assert evidence in t005
        risky = page.locator("tr[data-txn=T008] [data-testid=risk]").all_inner_texts()
        assert risky == ["⚠ 附言写的不是货款（如押金、利息、工资、退款、借款）", "⚠ 金额与该客户任何未结金额（单笔或组合）都对不上"]

        for path, name in (("/orders", "orders"), ("/customers/C004", "hostile-customer"), ("/orders/25SH00007", "hostile-order"),
                           ("/search?q=恶意", "hostile-search"), ("/runbook", "runbook")):
            visit(page, base + path, name)
            assert page.evaluate("window.__xss") is None  # the hostile name never ran
            if name.startswith("hostile"):
                assert "<script>window.__xss=1</script>" in page.locator("main").inner_text()  # shown as text
    assert page.problems == []


def test_search_then_drill_down_from_order_to_customer_to_salesperson(page, config):
    with running_dashboard(config) as base:
        visit(page, base + "/alerts", "before-search")
        page.get_by_role("searchbox", name="搜索").fill("25sh2")
        page.get_by_role("searchbox", name="搜索").press("Enter")
        page.wait_for_url("**/search?q=25sh2")
        page.get_by_role("link", name="25SH00002").click()
        page.wait_for_url("**/orders/25SH00002")
        missing = page.get_by_test_id("missing").inner_text()
        assert "法务审核中（GD-002" in missing and "还差 ¥30,000.00 回款" in missing
        assert "已确认付款账号" in page.locator("[data-testid=receipts]").inner_text()
        visit(page, page.url, "order")
        page.locator("main .kpi a", has_text="上海星辰制造有限公司").click()
        page.wait_for_url("**/customers/C001")
        assert page.get_by_test_id("aliases").inner_text() == "星辰制造"
        receipts = {row[1]: row for row in cells(page, "[data-testid=customer-receipts]")}
        assert set(receipts) == {"T001", "T002", "T008"} and receipts["T002"][10] == "财务已确认"
        visit(page, page.url, "customer")
        page.locator("main dd a", has_text="张三").click()
        page.wait_for_url("**/salespeople/S01")
        page.select_option("select[name=period]", "2025-03")
        page.get_by_role("button", name="查看").click()
        page.wait_for_url("**period=2025-03")
        assert page.get_by_test_id("sp-signed").inner_text() == "¥50,000.00"
        assert "未确认：法务未归档" in page.locator("[data-testid=salesperson-orders]").inner_text()
        visit(page, page.url, "salesperson")
    assert page.problems == []


def test_an_exported_table_opens_with_openpyxl(page, config, tmp_path):
    with running_dashboard(config) as base:
        visit(page, base + "/orders?region=BJ", "orders-bj")
        with page.expect_download() as download:
            page.get_by_test_id("orders-table-xlsx").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        visit(page, base + "/orders/25SH00002", "order-for-workbook")
        with page.expect_download() as whole_order:
            page.get_by_test_id("page-xlsx").click()
        book = tmp_path / whole_order.value.suggested_filename
        whole_order.value.save_as(book)
    assert saved.name == "订单-2025-03-29.xlsx"
    missing = [r[1] for r in openpyxl.load_workbook(book)["还差什么"].iter_rows(min_row=2, values_only=True)]
    assert book.name == "订单-25SH00002-2025-03-29.xlsx" and any("还差 ¥30,000.00 回款" in m for m in missing)
    rows = list(openpyxl.load_workbook(saved).active.iter_rows(values_only=True))
    assert rows[0][:3] == ("订单号", "合同编号", "客户")
    assert sorted(r[0] for r in rows[1:]) == ["25BJ00003", "25BJ00004"] and {r[4] for r in rows[1:]} == {"北京"}
    assert page.problems == []


def test_confirm_undo_and_acknowledge_change_the_page_at_once(page, config):
    with running_dashboard(config) as base:
        visit(page, base + "/review", "review-before")
        row = page.locator("tr[data-txn=T005]")
        row.locator("input[name=decided_by]").fill("王会计")
        row.get_by_role("button", name="确认").click()
        page.wait_for_url("**/review?notice=**")
        assert "已确认流水 T005" in page.get_by_test_id("notice").inner_text()
        assert page.locator("tr[data-txn=T005] [data-testid=decided]").inner_text() == "已确认，待运行"
        assert page.get_by_test_id("queue-count").inner_text() == "2 条"
        page.locator("tr[data-txn=T005]").first.get_by_role("button", name="撤销").click()
        page.wait_for_url("**/review?notice=**")
        assert page.get_by_test_id("queue-count").inner_text() == "3 条"
        assert page.locator("tr[data-txn=T007] input[name=decided_by]").input_value() == "王会计"  # remembered
        visit(page, page.url, "review-after-undo")

        visit(page, base + "/alerts?level=2", "alert-before-ack")
        alert = page.locator("tr[data-alert=a2]")
        alert.locator("summary").click()
        alert.locator("select[name=action]").select_option("acknowledge")
        alert.locator("input[name=note]").fill("已联系财务核销")
        alert.get_by_role("button", name="提交").click()
        page.wait_for_url("**/alerts?level=2&notice=**")
        state = page.locator("tr[data-alert=a2] [data-testid=state]").inner_text()
        assert "已确认 · 王会计" in state and "已联系财务核销" in state and "待下次运行入库" in state
        visit(page, page.url, "alert-after-ack")
    assert page.problems == []


# ------------------------------------------------------------------ the demo, end to end


def recon(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The `recon` command as a user runs it (its own process, one-line error on failure)."""
    import os

    executable = Path(sys.executable).parent / "recon"
    completed = subprocess.run([str(executable), *args], capture_output=True, text=True, timeout=1200,
                               env={**os.environ, **(env or {})})
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed


def test_demo_acknowledged_alert_escalates_at_a_later_as_of_and_decisions_reach_the_engine(page, tmp_path, smtp_server):
    mail, port = smtp_server
    demo, warehouse = tmp_path / "demo", tmp_path / "recon.duckdb"
    recon("demo", "--out", str(demo))
    landing = demo / "landing"
    recon("run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", "2025-05-06T09:00:00")
    published = default_published_path(warehouse)  # `recon run` publishes at its end
    config = DashboardConfig(published_path=published, landing_dir=landing)

    with duckdb.connect(str(published), read_only=True) as conn:
        account_no, txn_id, customer_id = conn.execute(
            "SELECT account_no, txn_id, customer_id FROM mart.fct_receipt_matches "
            "WHERE match_status = 'suggested' ORDER BY txn_time, txn_id LIMIT 1").fetchone()
        alert_id, entity, manager = conn.execute(
            "SELECT alert_id, entity_id, escalate_to FROM mart.alerts WHERE alert_type = 'receipt_not_written_off' "
            "AND escalate_to IS NOT NULL ORDER BY entity_id LIMIT 1").fetchone()
        order_id = conn.execute("SELECT order_id FROM mart.fct_order_reconciliation WHERE is_closed ORDER BY order_id LIMIT 1").fetchone()[0]
        signed_may = conn.execute("SELECT sum(signed_amount) FROM mart.salesperson_period_summary WHERE period = '2025-05'").fetchone()[0]
        closed = conn.execute("SELECT count(*) FROM mart.fct_order_reconciliation WHERE is_closed").fetchone()[0]

    with running_dashboard(config) as base:
        visit(page, base + "/", "demo-overview")
        if signed_may is not None:
            assert page.get_by_test_id("kpi-signed").inner_text() == yuan(signed_may)
        funnel = {row[0]: row for row in cells(page, "[data-testid=funnel-table]")}
        assert funnel["已闭环"][1] == str(closed)  # the same closed count as `recon run`
        mangled = order_id[:4].lower() + str(int(order_id[4:]))  # 25BJ00035 -> 25bj35
        visit(page, base + f"/search?q={mangled}", "demo-search")
        page.get_by_role("link", name=order_id).first.click()
        page.wait_for_url(f"**/orders/{order_id}")
        assert "三联单已闭环" in page.get_by_test_id("missing").inner_text()
        for name, path in (("customers", "/customers"), ("diff", "/diff-list"), ("health", "/health")):
            visit(page, base + path, f"demo-{name}")

        visit(page, base + "/review", "demo-review")
        row = page.locator(f"tr[data-txn='{txn_id}']").first
        row.locator("input[name=decided_by]").fill("王会计")
        row.get_by_role("button", name="确认").click()
        page.wait_for_url("**/review?notice=**")

        visit(page, base + "/alerts?level=2", "demo-alerts")
        alert = page.locator(f"tr[data-alert='{alert_id}']")
        alert.locator("summary").click()
        alert.locator("input[name=acted_by]").fill("李销售")
        alert.get_by_role("button", name="提交").click()  # 确认收到 is the default action
        page.wait_for_url("**notice=**")
        assert "已确认 · 李销售" in page.locator(f"tr[data-alert='{alert_id}'] [data-testid=state]").inner_text()
    assert page.problems == []

    # Four days later nothing has been written off: the acknowledged alert is still open, so its
    # three-day limit has passed and it escalates to the manager, once; the acknowledgement kept
    # it from escalating at 24 hours.
    env = {"RECON_SMTP_HOST": "127.0.0.1", "RECON_SMTP_PORT": str(port), "RECON_SMTP_TLS": "none",
           "RECON_SMTP_SENDER": "recon@example.com"}
    recon("run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", "2025-05-10T09:00:00", "--notify", env=env)
    escalations = [m for m in mail.messages if m["subject"].startswith("【销售对账·升级】") and entity in m["subject"]]
    assert [(m["rcpt"], "未处理完毕" in m["subject"]) for m in escalations] == [([manager], True)]
    with duckdb.connect(str(published), read_only=True) as conn:
        steps = dict(conn.execute(
            "SELECT step, status FROM mart.alert_sla WHERE item_id = ? AND item_open", [alert_id]).fetchall())
        acted_by = conn.execute("SELECT acted_by FROM mart.fct_alert_actions WHERE target_id = ?", [alert_id]).fetchone()[0]
        statuses = {s for (s,) in conn.execute(
            "SELECT DISTINCT match_status FROM mart.fct_receipt_matches WHERE account_no = ? AND txn_id = ?",
            [account_no, txn_id]).fetchall()}
    assert steps == {"acknowledge": "met", "resolve": "overdue"} and acted_by == "李销售"
    assert statuses == {"confirmed"}

    with running_dashboard(config) as base:
        visit(page, base + "/alerts?level=2", "demo-alerts-escalated")
        state = page.locator(f"tr[data-alert='{alert_id}'] [data-testid=state]").inner_text()
        assert "确认收到：按时" in state and "处理完毕：已超时" in state
        visit(page, base + "/health", "demo-health-response")
        level2 = cells(page, "[data-testid=response-table]")
        (level2,) = [row for row in level2 if row[0] == "二级预警"]
        assert level2[2] == "1" and level2[3].endswith("分钟")  # one acknowledged, minutes after it was seen
        assert int(level2[1]) >= int(level2[7]) >= 1  # items, of which overdue
        # Undo the confirmation: the next run treats the line as a suggestion again.
        visit(page, base + "/review", "demo-review-history")
        before = int(page.get_by_test_id("queue-count").inner_text().split()[0])
        page.locator(f"[data-testid=history-table] tr[data-txn='{txn_id}']").get_by_role("button", name="撤销").click()
        page.wait_for_url("**/review?notice=**")
        assert page.get_by_test_id("queue-count").inner_text() == f"{before + 1} 条"  # counted again at once
        assert page.get_by_test_id("reopened").is_visible()
    recon("run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", "2025-05-10T12:00:00")
    with duckdb.connect(str(published), read_only=True) as conn:
        again = {s for (s,) in conn.execute(
            "SELECT DISTINCT match_status FROM mart.fct_receipt_matches WHERE account_no = ? AND txn_id = ?",
            [account_no, txn_id]).fetchall()}
    assert again == {"suggested"}
    assert page.problems == []
