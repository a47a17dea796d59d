"""The 业绩确认单 in a real headless Chromium: from 「我的业绩」 to the statement, a closed period picked
from the list, and its Excel file downloaded and opened with openpyxl."""

from __future__ import annotations

import openpyxl
import pytest

from recon_pipeline.close.freeze import close_period
from recon_pipeline.close.stage import refresh_close
from recon_pipeline.dashboard import DashboardConfig
from recon_pipeline.publish.publication import publish_mart
from tests.close.conftest import CloseWarehouse, FixedClock
from tests.conftest import running_dashboard
from tests.dashboard.conftest import cells, visit

pytestmark = pytest.mark.e2e


def test_a_salesperson_reads_and_downloads_the_statement(page, settings, tmp_path):
    warehouse = CloseWarehouse(tmp_path / "recon.duckdb")
    warehouse.run("2025-03-04 09:00:00")
    with warehouse.connect() as conn:
        close_period(conn, "2025-02", settings, "财务王五", FixedClock())
    warehouse.set_order("25SH00001", finance=None, received_amount=0, written_off_amount=0)
    moment = warehouse.run("2025-03-12 09:00:00")
    with warehouse.connect() as conn:
        refresh_close(conn, moment, settings)
    published = publish_mart(warehouse.path, as_of=moment).published_path

    with running_dashboard(DashboardConfig.from_settings(published, settings=settings)) as base:
        visit(page, base + "/salespeople/S01?period=2025-03", "salesperson-statement-link")
        page.get_by_text("查看 2025-03 期业绩确认单").click()
        page.wait_for_load_state("load")
        assert page.get_by_test_id("statement-title").inner_text().startswith("业绩确认单 2025-03")
        (adjustment,) = cells(page, "[data-testid=statement-adjustments-in]")
        assert adjustment[1:3] == ["2025-02", "2025-03"] and adjustment[5] == "-¥100,000.00" and adjustment[6] == "核销撤销"
        visit(page, page.url, "statement-open")

        page.select_option("select[name=period]", "2025-02")
        page.get_by_role("button", name="查看").click()
        page.wait_for_load_state("load")
        assert "已封账（版本 1）" in page.get_by_test_id("statement-status").inner_text()
        assert [row[0] for row in cells(page, "[data-testid=statement-counted]")] == ["25SH00001", "25SH00002"]
        visit(page, page.url, "statement-closed")

        with page.expect_download() as download:
            page.get_by_test_id("statement-xlsx").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
    assert saved.name == "业绩确认单_2025-02_S01.xlsx"
    sheet = openpyxl.load_workbook(saved).active
    assert sheet["A1"].value == "业绩确认单 2025-02 · 销售S01（S01）"
    assert page.problems == []
