"""The dashboard (对账看板): figures, formats, access token, the finance review queue, and
every page in a real headless Chromium."""

from __future__ import annotations

import csv
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from recon_pipeline.as_of import cutoff_period
from recon_pipeline.dashboard import DashboardConfig
from recon_pipeline.dashboard.feedback import FEEDBACK_COLUMNS
from recon_pipeline.dashboard.formatting import percent, wan, yuan
from recon_pipeline.dashboard.queries import parse_evidence
from recon_pipeline.dashboard.runbook import runbook_link
from recon_pipeline.publish.publication import default_published_path, publish_mart
from tests import REPO_ROOT
from tests.conftest import AS_OF, EXPECTED, build_fixture_warehouse, running_dashboard

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
RUNBOOK = "# 处理手册\n\n" + "".join(
    f"## {alert_type}（说明）\n\n处理 {alert_type} 的步骤。\n\n"
    for alert_type in ("amount_mismatch", "receipt_not_written_off", "salesperson_discrepancy",
                       "cutoff_unarchived", "approval_stalled", "match_rate_low")
)


@pytest.fixture
def published(tmp_path) -> Path:
    warehouse = build_fixture_warehouse(tmp_path / "recon.duckdb")
    return publish_mart(warehouse, as_of=AS_OF).published_path


@pytest.fixture
def config(tmp_path, published) -> DashboardConfig:
    runbook = tmp_path / "runbook.md"
    runbook.write_text(RUNBOOK, encoding="utf-8")
    return DashboardConfig(published_path=published, landing_dir=tmp_path / "landing", runbook_path=runbook)


def fetch(url: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


# ------------------------------------------------------------------ formats (pure)


def test_amounts_are_shown_as_finance_writes_them():
    assert yuan(Decimal("1234567.891")) == "¥1,234,567.89"
    assert yuan(Decimal("-1234")) == "-¥1,234.00"
    assert yuan(None) == "—"
    assert wan(Decimal("1234567.89")) == "123.46万元"
    assert percent(0.953) == "95.3%"


def test_a_receipt_after_the_month_end_cutoff_counts_in_the_next_period():
    assert cutoff_period(datetime(2025, 1, 31, 16, 0), 16) == "2025-01"
    assert cutoff_period(datetime(2025, 1, 31, 16, 0, 1), 16) == "2025-02"
    assert cutoff_period(datetime(2025, 12, 31, 17, 0), 16) == "2026-01"
    assert cutoff_period(datetime(2024, 2, 29, 9, 0), 16) == "2024-02"


def test_evidence_shows_payer_core_and_candidates_from_the_engines_json():
    shown = parse_evidence(
        '{"payer": {"raw": "华联商贸", "normalized": "华联商贸", "core": "华联"}, '
        '"candidates": [{"customer_id": "C002", "score": 91}, {"customer_id": "C009", "score": 88}]}'
    )
    assert (shown["payer_normalized"], shown["payer_core"], shown["candidate_id"], shown["score"]) == ("华联商贸", "华联", "C002", 91)
    assert shown["others"] == [("C009", 88)]
    flat = parse_evidence('{"payer_normalized": "华联", "payer_core": "华联", "candidate_name": "北京华联商贸有限公司", "score": 90}')
    assert (flat["candidate"], flat["score"]) == ("北京华联商贸有限公司", 90)
    assert parse_evidence("not json")["raw"] == "not json"
    assert parse_evidence(None)["candidate"] is None


def test_runbook_links_resolve_inside_the_dashboard():
    assert runbook_link("docs/runbook.md#amount_mismatch", "amount_mismatch") == "/runbook#amount_mismatch"
    assert runbook_link(None, "approval_stalled") == "/runbook#approval_stalled"
    assert runbook_link("https://wiki.example.com/x#y", "x") == "https://wiki.example.com/x#y"


# ------------------------------------------------------------------ HTTP (real server)


def test_without_the_token_every_page_answers_401(config):
    secured = DashboardConfig(**{**config.__dict__, "token": "s3cret"})
    with running_dashboard(secured) as base:
        assert fetch(base + "/")[0] == 401
        assert fetch(base + "/review?token=wrong")[0] == 401
        assert fetch(base + "/static/dashboard.css")[0] == 401
        status, body = fetch(base + "/?token=s3cret")
        assert status == 200 and EXPECTED["signed_this_period"] in body
        assert fetch(base + "/health", headers={"X-Recon-Token": "s3cret"})[0] == 200
        assert fetch(base + "/alerts", headers={"Authorization": "Bearer s3cret"})[0] == 200


def test_before_the_first_publication_the_dashboard_says_so(tmp_path):
    with running_dashboard(DashboardConfig(published_path=tmp_path / "none.duckdb")) as base:
        status, body = fetch(base + "/")
    assert status == 503
    assert "尚未发布数据" in body


def test_tables_not_published_yet_give_empty_states_not_errors(tmp_path):
    warehouse = build_fixture_warehouse(
        tmp_path / "recon.duckdb",
        skip=("mart.customer_collection_health", "mart.diff_list", "mart.health_metrics", "mart.alerts"),
    )
    published = publish_mart(warehouse).published_path
    no_runbook = tmp_path / "missing-runbook.md"
    with running_dashboard(DashboardConfig(published_path=published, runbook_path=no_runbook)) as base:
        pages = {path: fetch(base + path) for path in ("/", "/health", "/alerts", "/customers", "/review", "/runbook")}
    assert {path: status for path, (status, _) in pages.items()} == dict.fromkeys(pages, 200)
    assert "客户回款健康表尚未生成" in pages["/customers"][1]
    assert "差额清单尚未生成" in pages["/alerts"][1]
    assert "健康指标表尚未生成" in pages["/health"][1]
    assert "运行手册（docs/runbook.md）尚未提供" in pages["/runbook"][1]


def test_a_new_publication_shows_on_the_next_page_load(tmp_path, config):
    warehouse = tmp_path / "recon.duckdb"
    with running_dashboard(config) as base:
        assert EXPECTED["signed_this_period"] in fetch(base + "/")[1]
        build_fixture_warehouse(warehouse, signed_scale=10)  # 25BJ00003: 80k -> 800k
        publish_mart(warehouse, config.published_path, as_of=AS_OF)
        assert "¥850,000.00" in fetch(base + "/")[1]


def test_a_decision_must_name_a_suggestion_of_the_publication(config):
    with running_dashboard(config) as base:
        forged = {"account_no": "6222001", "txn_id": "T001", "customer_id": "C001", "order_id": "25SH00001",
                  "decision": "confirm", "decided_by": "王会计"}
        status, body = fetch(base + "/review/decide", data=forged)
        assert (status, body) == (400, "该匹配建议已不在当前发布的数据中，请刷新页面")
        valid = {**forged, "txn_id": "T005", "customer_id": "C002", "order_id": "25BJ00003"}
        assert fetch(base + "/review/decide", data={**valid, "decided_by": " "})[0] == 400
        assert fetch(base + "/review/decide", data=valid, headers={"Origin": "http://evil.example"})[0] == 403
    assert not (config.landing_dir / "match_feedback").exists()


# ------------------------------------------------------------------ real browser


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("需要 Debian 的 chromium（apt-get install -y chromium）才能运行浏览器测试")
    sync_api = pytest.importorskip("playwright.sync_api", reason="需要 playwright（pip install playwright）")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.problems = []
    page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.on("requestfailed", lambda request: page.problems.append(f"failed: {request.url}"))
    page.on("response", lambda response: response.status >= 400 and page.problems.append(f"{response.status}: {response.url}"))
    yield page
    context.close()


def visit(page, url: str, screenshot: str):
    response = page.goto(url)
    assert response.status == 200
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{screenshot}.png"), full_page=True)
    return page


def cells(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )


@pytest.mark.e2e
def test_every_page_shows_the_fixture_figures_without_console_errors(page, config):
    with running_dashboard(config) as base:
        visit(page, base + "/", "overview")
        assert page.get_by_test_id("kpi-signed").inner_text() == EXPECTED["signed_this_period"]
        assert page.get_by_test_id("kpi-recognized").inner_text() == EXPECTED["recognized_this_period"]
        assert page.get_by_test_id("kpi-collected").inner_text() == EXPECTED["collected_this_period"]
        trend = {row[0]: row for row in cells(page, "[data-testid=trend-table]")}
        assert trend["2025-02"][1:] == [EXPECTED["signed_2025_02"], "¥100,000.00", EXPECTED["collected_2025_02"]]
        assert len(trend) == 7
        funnel = {row[0]: row for row in cells(page, "[data-testid=funnel-table]")}
        assert funnel["已签约"][1:3] == list(EXPECTED["funnel_reached_signed"])
        assert funnel["已签约"][3:] == list(EXPECTED["funnel_stuck_signed"])
        assert funnel["已开票"][3:] == list(EXPECTED["funnel_stuck_invoiced"])
        assert funnel["已回款"][3:] == list(EXPECTED["funnel_stuck_received"])
        assert funnel["已归档"][1:3] == list(EXPECTED["funnel_done"])
        assert page.locator("svg.chart rect").count() > 10  # the charts drew

        visit(page, base + "/health", "health")
        assert page.get_by_test_id("hours-to-cutoff").inner_text() == EXPECTED["hours_to_cutoff"]
        assert page.get_by_test_id("at-risk-count").inner_text() == EXPECTED["at_risk_count"]
        assert EXPECTED["at_risk_amount"] in page.inner_text("main")
        match_rate = page.locator("tr[data-metric=contract_receipt_match_rate]")
        assert EXPECTED["match_rate"] in match_rate.inner_text() and "异常" in match_rate.inner_text()
        assert match_rate.locator("svg.sparkline polyline").count() == 1
        assert page.get_by_test_id("health-banner").inner_text() == "5 项指标异常"

        visit(page, base + "/alerts", "alerts")
        assert [page.get_by_test_id(f"alerts-level-{k}").inner_text() for k in ("1", "2", "3", "reminder")] == ["1", "1", "1", "5"]
        assert page.get_by_test_id("diff-receipt_without_contract").inner_text() == EXPECTED["diff_receipt_without_contract"]
        assert len(cells(page, "[data-testid=diff-table]")) == 4  # today's list only

        visit(page, base + "/customers", "customers")
        rows = cells(page, "[data-testid=customers-table]")
        assert [row[1] for row in rows] == [EXPECTED["high_risk_customer"]]
        assert rows[0][4] == "¥80,000.00"

        visit(page, base + "/review", "review")
        assert page.get_by_test_id("queue-count").inner_text() == EXPECTED["queue_count"]
        t005 = page.locator("tr[data-txn=T005]").inner_text()
        for evidence in ("北京华联商贸", "华联商贸", "北京华联商贸有限公司", "91", "C001（70）", "¥80,000.00", "3月货款"):
            assert evidence in t005

        visit(page, base + "/runbook", "runbook")
    assert page.problems == []


@pytest.mark.e2e
def test_overview_and_alert_filters_narrow_the_figures(page, config):
    with running_dashboard(config) as base:
        visit(page, base + "/", "overview-filter")
        page.select_option("select[name=region]", "BJ")
        page.get_by_role("button", name="筛选").click()
        page.wait_for_url("**region=BJ**")
        assert page.get_by_test_id("kpi-signed").inner_text() == "¥80,000.00"
        page.select_option("select[name=group_by]", "salesperson")
        page.get_by_role("button", name="筛选").click()
        page.wait_for_url("**group_by=salesperson**")
        assert [row[0] for row in cells(page, "[data-testid=breakdown-table]")] == ["S02"]

        visit(page, base + "/alerts", "alerts-filter")
        page.locator("form.filters").first.locator("select[name=level]").select_option("1")
        page.locator("form.filters").first.get_by_role("button", name="筛选").click()
        page.wait_for_url("**level=1**")
        rows = cells(page, "[data-testid=alerts-table]")
        assert [(row[0], row[1], row[2]) for row in rows] == [("一级", "金额不符", "T003")]
        page.get_by_role("link", name="处理步骤").click()
        page.wait_for_url("**/runbook#amount_mismatch")
        assert page.locator("#amount_mismatch").inner_text().startswith("amount_mismatch")
    assert page.problems == []


@pytest.mark.e2e
def test_confirming_a_suggestion_writes_the_decision_file_into_the_landing_zone(page, config):
    with running_dashboard(config) as base:
        visit(page, base + "/review", "review-before")
        row = page.locator("tr[data-txn=T005]")
        row.locator("input[name=decided_by]").fill("王会计")
        row.get_by_role("button", name="确认").click()
        page.wait_for_url("**/review?notice=**")
        assert "已确认流水 T005" in page.get_by_test_id("notice").inner_text()
        assert page.locator("tr[data-txn=T005] [data-testid=decided]").inner_text() == "已确认，待运行"
        # The name is remembered for the next decision.
        assert page.locator("tr[data-txn=T007] input[name=decided_by]").input_value() == "王会计"
        visit(page, page.url, "review-after")

    files = list((config.landing_dir / "match_feedback" / "2025-03-29").glob("decision-*.csv"))
    assert len(files) == 1
    with open(files[0], encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames[: len(FEEDBACK_COLUMNS)] == FEEDBACK_COLUMNS
        (decision,) = list(reader)
    assert {k: decision[k] for k in FEEDBACK_COLUMNS[1:]} == {
        "account_no": "6222001", "txn_id": "T005", "customer_id": "C002", "order_id": "25BJ00003",
        "decision": "confirm", "decided_by": "王会计",
        # Business time: the publication's as-of, so the next run (later as-of) applies it.
        "decided_at": AS_OF,
    }
    assert datetime.strptime(decision["recorded_at"], "%Y-%m-%d %H:%M:%S")  # wall clock, for audit
    assert len(decision["feedback_id"]) == 32
    assert page.problems == []


@pytest.mark.e2e
def test_a_token_in_the_link_opens_every_page_of_the_session(page, config):
    secured = DashboardConfig(**{**config.__dict__, "token": "s3cret"})
    with running_dashboard(secured) as base:
        visit(page, base + "/?token=s3cret", "token")
        page.get_by_role("link", name="财务复核队列").click()
        page.wait_for_url("**/review")
        assert page.get_by_test_id("queue-count").inner_text() == EXPECTED["queue_count"]
    assert page.problems == []


def test_runbook_headings_get_the_alert_type_as_anchor(tmp_path):
    from recon_pipeline.dashboard.runbook import render_runbook

    runbook = tmp_path / "runbook.md"
    runbook.write_text("# 预警处理手册（Runbook）\n\n## amount_mismatch\n\n## 通知发送失败\n", encoding="utf-8")
    html = render_runbook(runbook)
    assert '<h2 id="amount_mismatch">' in html
    assert '<h1 id="预警处理手册runbook">' in html
    assert '<h2 id="通知发送失败">' in html


# ------------------------------------------------------------------ the demo, end to end


def recon(*args: str) -> None:
    """The `recon` command as a user runs it (its own process, one-line error on failure)."""
    executable = Path(sys.executable).parent / "recon"
    completed = subprocess.run([str(executable), *args], capture_output=True, text=True, timeout=1200)
    assert completed.returncode == 0, completed.stderr[-2000:]


@pytest.mark.e2e
def test_demo_review_decision_reaches_the_next_run_while_a_reader_holds_the_publication(page, tmp_path):
    demo, warehouse = tmp_path / "demo", tmp_path / "recon.duckdb"
    recon("demo", "--out", str(demo))
    landing = demo / "landing"
    recon("run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", "2025-05-06T09:00:00")
    published = default_published_path(warehouse)  # `recon run` publishes at its end
    config = DashboardConfig(published_path=published, landing_dir=landing)

    with duckdb.connect(str(published), read_only=True) as conn:
        suggested = conn.execute(
            "SELECT account_no, txn_id, customer_id FROM mart.fct_receipt_matches "
            "WHERE match_status = 'suggested' ORDER BY txn_time, txn_id"
        ).fetchall()
        signed_may = conn.execute(
            "SELECT sum(signed_amount) FROM mart.salesperson_period_summary WHERE period = '2025-05'"
        ).fetchone()[0]
    assert suggested, "the demo should leave at least one suggestion for finance"
    account_no, txn_id, customer_id = suggested[0]

    with running_dashboard(config) as base:
        for name, path in (("overview", "/"), ("health", "/health"), ("alerts", "/alerts"),
                           ("customers", "/customers"), ("review", "/review")):
            visit(page, base + path, f"demo-{name}")
        visit(page, base + "/", "demo-overview")
        if signed_may is not None:
            assert page.get_by_test_id("kpi-signed").inner_text() == yuan(signed_may)
        visit(page, base + "/review", "demo-review")
        assert page.get_by_test_id("queue-count").inner_text() == f"{len(suggested)} 条"
        row = page.locator(f"tr[data-txn='{txn_id}']").first
        row.locator("input[name=decided_by]").fill("王会计")
        row.get_by_role("button", name="确认").click()
        page.wait_for_url("**/review?notice=**")
    assert page.problems == []
    (decision_file,) = (landing / "match_feedback" / "2025-05-06").glob("decision-*.csv")

    # A BI tool holds the publication while the next run runs to completion and publishes.
    holder = duckdb.connect(str(published), read_only=True)
    try:
        recon("run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", "2025-05-06T12:00:00")
        held = holder.execute("SELECT max(as_of) FROM meta.publication").fetchone()[0]
        assert str(held) == "2025-05-06 09:00:00"
    finally:
        holder.close()
    with duckdb.connect(str(published), read_only=True) as fresh:
        assert str(fresh.execute("SELECT max(as_of) FROM meta.publication").fetchone()[0]) == "2025-05-06 12:00:00"
        statuses = {
            status for (status,) in fresh.execute(
                "SELECT DISTINCT match_status FROM mart.fct_receipt_matches WHERE account_no = ? AND txn_id = ?",
                [account_no, txn_id],
            ).fetchall()
        }
    assert decision_file.exists() and statuses == {"confirmed"}
