"""The dashboard's 业绩确认单 page and the health board's close status, served from a real publication."""

import urllib.error
import urllib.request
from io import BytesIO

from openpyxl import load_workbook

from recon_pipeline.close.freeze import close_period
from recon_pipeline.close.stage import refresh_close
from recon_pipeline.dashboard import DashboardConfig
from recon_pipeline.publish.publication import publish_mart
from tests.conftest import running_dashboard


def get(url):
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_statement_page_xlsx_and_close_status(close_warehouse, settings, clock):
    close_warehouse.run("2025-03-04 09:00:00")
    with close_warehouse.connect() as conn:
        close_period(conn, "2025-02", settings, "财务王五", clock)
    close_warehouse.set_order("25SH00001", finance=None, received_amount=0, written_off_amount=0)
    moment = close_warehouse.run("2025-03-12 09:00:00")
    with close_warehouse.connect() as conn:
        refresh_close(conn, moment, settings)
    published = publish_mart(close_warehouse.path, as_of=moment).published_path

    with running_dashboard(DashboardConfig.from_settings(published, settings=settings)) as base:
        status, _, body = get(f"{base}/salespeople/S01/statement?period=2025-03")
        page = body.decode()
        assert status == 200
        assert "业绩确认单 2025-03" in page and "未封账" in page
        assert "核销撤销" in page and "-¥100,000.00" in page and "2025-02" in page

        status, _, body = get(f"{base}/salespeople/S01/statement?period=2025-02")
        assert status == 200 and "已封账（版本 1）" in body.decode() and "¥150,000.00" in body.decode()

        status, headers, body = get(f"{base}/salespeople/S01/statement?period=2025-02&format=xlsx")
        assert status == 200 and "spreadsheetml" in headers["Content-Type"]
        assert "%E4%B8%9A%E7%BB%A9%E7%A1%AE%E8%AE%A4%E5%8D%95_2025-02_S01.xlsx" in headers["Content-Disposition"]
        assert load_workbook(BytesIO(body)).active["A1"].value.startswith("业绩确认单 2025-02")

        # 「我的业绩」 links to the statement of the period shown, and to its Excel file.
        status, _, body = get(f"{base}/salespeople/S01?period=2025-03")
        assert status == 200
        assert "/salespeople/S01/statement?period=2025-03" in body.decode()
        assert "/salespeople/S01/statement?period=2025-03&amp;format=xlsx" in body.decode()

        status, _, body = get(f"{base}/salespeople/S99/statement?period=2025-02")
        assert status == 404 and "没有销售 S99" in body.decode()

        status, _, body = get(f"{base}/health")
        health = body.decode()
        assert status == 200 and "封账状态" in health
        assert 'data-period="2025-02" data-close-status="closed"' in health
        assert 'data-period="2025-03" data-close-status="running"' in health
        assert "财务王五" in health
