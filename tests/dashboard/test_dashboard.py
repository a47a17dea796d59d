"""The dashboard over HTTP on the fixture mart: figures and formats, search, detail pages,
exports (opened back with openpyxl), actions and review decisions written into the landing
zone, hostile text, and who may see and do what."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import openpyxl
import pytest

from recon_pipeline.as_of import cutoff_period, duration_text
from recon_pipeline.dashboard import DashboardConfig, DashboardRefused, serve
from recon_pipeline.dashboard.access import accounts_from_settings, hash_password
from recon_pipeline.dashboard.details import evidence_sentences, risk_warnings
from recon_pipeline.dashboard.export import neutralise
from recon_pipeline.dashboard.feedback import FEEDBACK_COLUMNS
from recon_pipeline.dashboard.formatting import percent, wan, yuan
from recon_pipeline.dashboard.labels import METRICS, breaches
from recon_pipeline.dashboard.landing import business_now
from recon_pipeline.dashboard.queries import parse_evidence
from recon_pipeline.dashboard.runbook import runbook_link
from recon_pipeline.dashboard.search import parse_amount
from recon_pipeline.publish.publication import publish_mart
from tests.conftest import AS_OF, EXPECTED, HOSTILE_FORMULA, build_fixture_warehouse, running_dashboard
from tests.dashboard.conftest import Client

# ------------------------------------------------------------------ formats (pure)


def test_amounts_and_durations_are_shown_as_people_write_them():
    assert yuan(Decimal("1234567.891")) == "¥1,234,567.89"
    assert yuan(Decimal("-1234")) == "-¥1,234.00"
    assert yuan(None) == "—"
    assert wan(Decimal("1234567.89")) == "123.46万元"
    assert percent(0.953) == "95.3%"
    assert duration_text(2543 * 3600) == "105 天"  # never "2543 小时"
    assert duration_text(54 * 3600) == "2 天 6 小时"
    assert duration_text(5 * 60) == "5 分钟"
    assert duration_text(3 * 3600 + 20 * 60) == "3 小时 20 分钟"


def test_a_receipt_after_the_month_end_cutoff_counts_in_the_next_period():
    assert cutoff_period(datetime(2025, 1, 31, 16, 0), 16) == "2025-01"
    assert cutoff_period(datetime(2025, 1, 31, 16, 0, 1), 16) == "2025-02"
    assert cutoff_period(datetime(2025, 12, 31, 17, 0), 16) == "2026-01"


def test_evidence_is_told_in_words_with_its_risks():
    shown = parse_evidence(
        '{"payer": {"raw": "华联商贸", "normalized": "华联商贸", "core": "华联"}, '
        '"candidates": [{"customer_id": "C002", "score": 91}, {"customer_id": "C009", "score": 88}]}'
    )
    assert (shown["payer_normalized"], shown["payer_core"], shown["candidate_id"], shown["score"]) == ("华联商贸", "华联", "C002", 91)
    assert parse_evidence("not json")["raw"] == "not json"
    said = evidence_sentences('{"memo": "定金25CD00009", "memo_tokens": {"25CD00009": "25CD00009"}, "writeoff_ids": ["WO1"], '
                              '"confirmed_by": "财务-陈静"}', "memo_order_id", 100)
    assert said[0].startswith("附言「定金25CD00009」写有订单号") and "财务已核销（WO1，财务-陈静）" in said
    fuzzy = evidence_sentences('{"payer": {"core": "华联"}, "candidates": [{"customer_id": "C002", "score": 91}, '
                               '{"customer_id": "C009", "score": 88}]}', "fuzzy", 91, {"C009": "华联超市"})
    assert "相似度 91 分" in fuzzy[0] and fuzzy[1] == "其他候选：华联超市（88 分）"
    assert risk_warnings({"risk_flags": ["non_goods_memo", {"code": "x", "message": "附言为工资"}],
                          "allocation": {"amount_mismatch": True}}) == [
        "附言写的不是货款（如押金、利息、工资、退款、借款）", "附言为工资", "金额与该客户任何未结金额（单笔或组合）都对不上"]
    assert risk_warnings({}) == []


def test_search_reads_amounts_as_finance_types_them():
    assert parse_amount("¥12,345.67") == Decimal("12345.67")
    assert parse_amount("8万") == Decimal("80000.00")
    assert parse_amount("6.264万") == Decimal("62640.00") and parse_amount("1.23456万元") == Decimal("12345.60")
    assert parse_amount("12345.678") is None  # no such amount: cents at most
    assert parse_amount("25sz300") is None


def test_formula_prefixes_are_neutralised():
    assert [neutralise(t) for t in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "正常")] == ["'=1+2", "'+1", "'-1", "'@SUM(A1)", "'\tx", "正常"]


def test_a_metric_is_red_exactly_when_it_breaks_its_threshold():
    assert breaches("contract_receipt_match_rate", 0.80, 0.95) and not breaches("contract_receipt_match_rate", 0.95, 0.95)
    assert breaches("unarchived_signed_contracts", 3, 0) and not breaches("unarchived_signed_contracts", 68, None)
    assert set(METRICS) >= {"contract_receipt_match_rate", "hours_to_cutoff", "unarchived_signed_contracts"}


def test_the_business_clock_runs_from_the_publication_as_of():
    as_of, published = datetime(2025, 5, 6, 9), datetime(2026, 1, 1, 10)
    assert business_now(as_of, published, datetime(2026, 1, 1, 10, 3)) == datetime(2025, 5, 6, 9, 3)
    assert business_now(as_of, None, datetime(2026, 1, 1)) == as_of
    assert business_now(as_of, published, datetime(2025, 12, 31)) == as_of  # a clock set back never goes before


def test_runbook_links_resolve_inside_the_dashboard():
    assert runbook_link("docs/runbook.md#amount_mismatch", "amount_mismatch") == "/runbook#amount_mismatch"
    assert runbook_link(None, "approval_stalled") == "/runbook#approval_stalled"
    assert runbook_link("https://wiki.example.com/x#y", "x") == "https://wiki.example.com/x#y"


def test_a_figure_wanted_by_two_requests_at_once_is_computed_once_per_publication(published):
    import threading
    import time

    from recon_pipeline.dashboard.app import Publication
    from recon_pipeline.dashboard.pages import LEARNED_PAYER_NAMES, Memo

    memo, calls = Memo(), []
    slow = lambda: (calls.append(1), time.sleep(0.2), 42)[2]  # noqa: E731
    threads = [threading.Thread(target=memo.get, args=(("k",), slow)) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert memo.get(("k",), slow) == 42 and len(calls) == 1
    publication = Publication(published)
    publication.warm(LEARNED_PAYER_NAMES, lambda reader: ["warmed"])
    with publication.reader() as reader:
        assert reader.memo.get(LEARNED_PAYER_NAMES, lambda: ["again"]) == ["warmed"]


# ------------------------------------------------------------------ pages over HTTP


def test_every_page_answers_with_names_not_codes(config):
    with running_dashboard(config) as base:
        client = Client(base)
        pages = {path: client.get(path) for path in (
            "/", "/orders", "/orders/25SH00002", "/customers", "/customers/C002", "/salespeople/S02",
            "/alerts", "/diff-list", "/health", "/review", "/runbook", "/search?q=华联")}
    assert {p: r[0] for p, r in pages.items()} == dict.fromkeys(pages, 200)
    assert "李四" in pages["/salespeople/S02"][1] and "北京" in pages["/orders"][1]
    order = pages["/orders/25SH00002"][1]
    for said in ("法务审核中（GD-002", "还差 ¥30,000.00 回款", "CRM 状态：草稿 → 已签约", "合同金额修改：¥45,000.00 → ¥50,000.00"):
        assert said in order
    assert "¥130,000.00" in pages["/"][1]  # this period's signed amount
    assert "2 天 6 小时" in pages["/health"][1]
    assert not re.search(r"\d{2,}(\.\d)? 小时", pages["/health"][1])  # days, never "54 小时"


def test_search_finds_an_order_from_a_mangled_id_and_everything_else(config):
    with running_dashboard(config) as base:
        client = Client(base)
        found = {q: client.get(f"/search?q={q}")[1] for q in (
            "25sh2", "25-SH-00002", "订单25SH00002", "HT-2025-003", "华联商贸", "T005", "¥12,345.67", "8万", "张三")}
    assert 'href="/orders/25SH00002"' in found["25sh2"]
    assert 'href="/orders/25SH00002"' in found["25-SH-00002"] and 'href="/orders/25SH00002"' in found["订单25SH00002"]
    assert 'href="/orders/25BJ00003"' in found["HT-2025-003"]  # contract number
    assert 'href="/customers/C002"' in found["华联商贸"]  # an alias
    assert "T005" in found["T005"] and "北京华联商贸" in found["T005"]  # bank txn id
    assert "T007" in found["¥12,345.67"]  # amount of a receipt
    assert 'href="/orders/25BJ00003"' in found["8万"]  # 80,000 contract
    assert 'href="/salespeople/S01"' in found["张三"]


def test_search_finds_an_order_from_its_documents_and_a_customer_from_a_payer_name_finance_confirmed(config):
    with duckdb.connect(str(config.published_path)) as conn:  # a payer finance confirmed under another name
        conn.execute("UPDATE mart.fct_receipt_matches SET match_status = 'confirmed', counterparty_name = '康健器械广州分部' "
                     "WHERE txn_id = 'T004'")
    with running_dashboard(config) as base:
        client = Client(base)
        found = {q: client.get(f"/search?q={q}")[1] for q in ("inv-004r", "GD-005", "康健器械", "3.0万")}
    assert 'href="/orders/25BJ00004"' in found["inv-004r"]  # a red-letter invoice's number
    assert 'href="/orders/25GZ00005"' in found["GD-005"]  # a legal archive number
    assert 'href="/customers/C003"' in found["康健器械"] and "财务确认过的付款户名：康健器械广州分部" in found["康健器械"]
    assert "T004" in found["3.0万"]


def test_a_salespersons_page_says_for_each_order_whether_it_counts_and_why(config):
    with running_dashboard(config) as base:
        status, body, _ = Client(base).get("/salespeople/S01?period=2025-03")
    assert status == 200
    assert "¥50,000.00" in body  # signed in March: 25SH00002
    assert "未确认：法务未归档；回款未到齐（差 ¥30,000.00）" in body
    assert 'data-testid="sp-collected">¥20,000.00<' in body  # T002, confirmed in March
    assert "25SH00007" not in body  # a draft of his is not part of any total
    with running_dashboard(config) as base:
        february = Client(base).get("/salespeople/S01?period=2025-02")[1]
    assert "计入本期确认" in february and 'data-testid="sp-recognized">¥100,000.00<' in february


def test_an_export_opens_in_excel_with_chinese_headers_numbers_and_inert_formulas(config):
    with running_dashboard(config) as base:
        client = Client(base)
        status, body, headers = client.get_bytes("/orders?region=SH&sort=contract_amount&dir=desc&format=xlsx")
        csv_status, csv_body, _ = client.get_bytes("/orders?region=SH&format=csv")
        alerts_status, alerts_body, _ = client.get_bytes("/alerts?level=1&format=xlsx")
        diff_status, diff_body, _ = client.get_bytes("/diff-list?format=xlsx")
    assert (status, csv_status, alerts_status, diff_status) == (200, 200, 200, 200)
    assert "filename*=UTF-8''%E8%AE%A2%E5%8D%95-2025-03-29.xlsx" in headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:6] == ("订单号", "合同编号", "客户", "销售", "区域", "合同金额")
    assert [r[0] for r in rows[1:]] == ["25SH00001", "25SH00002", "25SH00007"]  # the filter and the order kept
    amount = sheet.cell(row=2, column=6)
    assert amount.value == 100000 and amount.data_type == "n" and amount.number_format == "#,##0.00"
    hostile = next(r for r in rows if r[0] == "25SH00007")
    assert hostile[1] == "'" + HOSTILE_FORMULA and hostile[4] == "上海"
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)
    text = csv_body.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("订单号,合同编号,客户") and "'=HYPERLINK" in text
    alerts_sheet = list(openpyxl.load_workbook(io.BytesIO(alerts_body)).active.iter_rows(values_only=True))
    assert alerts_sheet[0][:3] == ("级别", "类型", "对象") and alerts_sheet[1][:3] == ("一级", "金额不符", "T003")
    diff_sheet = list(openpyxl.load_workbook(io.BytesIO(diff_body)).active.iter_rows(values_only=True))
    assert len(diff_sheet) == 1 + 4 and diff_sheet[0][0] == "差异类型"


def test_a_customers_page_lists_each_receipt_and_exports_it_apart_from_the_orders(config):
    with running_dashboard(config) as base:
        client = Client(base)
        status, body, _ = client.get("/customers/C002?r_sort=amount&r_dir=desc")
        receipts = client.get_bytes("/customers/C002?format=xlsx&table=r_")[1]
        orders = client.get_bytes("/customers/C002?format=xlsx")[1]
    assert status == 200
    shown = body[body.index('data-testid="customer-receipts"'):]
    assert shown.index("T003") < shown.index("T005")  # ¥120,000 before ¥80,000
    assert "待财务确认" in shown and 'href="?r_sort=amount&amp;r_dir=asc' in shown  # its own sort keys
    rows = list(openpyxl.load_workbook(io.BytesIO(receipts)).active.iter_rows(values_only=True))
    assert rows[0][:3] == ("到账时间", "流水号", "本方账号") and sorted(r[1] for r in rows[1:]) == ["T003", "T005"]
    assert list(openpyxl.load_workbook(io.BytesIO(orders)).active.iter_rows(values_only=True))[0][0] == "订单号"


def test_the_overview_health_and_order_pages_download_their_tables_as_one_workbook(config):
    with running_dashboard(config) as base:
        client = Client(base)
        books = {path: client.get_bytes(path) for path in (
            "/orders/25BJ00004?format=xlsx", "/?period=2025-02&format=xlsx", "/health?format=xlsx")}
        page = client.get("/orders/25BJ00004")[1]
    assert 'href="?format=xlsx" data-testid="page-xlsx"' in page
    order, overview, health = (openpyxl.load_workbook(io.BytesIO(body)) for _, body, _ in books.values())
    assert "filename*=UTF-8''%E8%AE%A2%E5%8D%95-25BJ00004-2025-03-29.xlsx" in books["/orders/25BJ00004?format=xlsx"][2]["content-disposition"]
    assert order.sheetnames == ["三联单", "还差什么", "发票", "回款", "核销", "法务", "状态变化"]
    invoices = list(order["发票"].iter_rows(values_only=True))
    assert invoices[0] == ("发票号", "开票日期", "类型", "价税合计", "计入开票") and "红字发票" in {r[2] for r in invoices[1:]}
    red = next(r for r in order["发票"].iter_rows(min_row=2) if r[2].value == "红字发票")
    assert red[3].value < 0 and red[3].number_format == "#,##0.00"
    trend = {r[0]: r for r in overview["签约确认回款趋势"].iter_rows(values_only=True)}
    assert trend["2025-02"][1:] == (120000, 100000, 220000)
    assert [r[0] for r in overview["订单生命周期漏斗"].iter_rows(values_only=True)][1:] == ["已签约", "已归档", "已开票", "已回款", "已闭环"]
    metrics = {r[0]: r for r in health["指标"].iter_rows(values_only=True)}
    assert metrics["合同回款匹配率（近30天）"][1:4] == ("80.0%", "≥ 95.0%", "异常")
    assert health.sheetnames[1:] == ["响应与修复（近30天）", "已签约未归档订单"]
    assert not any(c.data_type == "f" for book in (order, overview, health) for ws in book for row in ws.iter_rows() for c in row)


def test_long_tables_page_and_sort(config):
    with running_dashboard(config) as base:
        client = Client(base)
        by_amount = client.get("/orders?sort=contract_amount&dir=desc")[1]
        reverse = client.get("/orders?sort=contract_amount&dir=asc")[1]
        nonsense = client.get("/orders?sort=1;DROP%20TABLE%20x&dir=sideways&page=-3")
    assert by_amount.index("25BJ00004") < by_amount.index("25GZ00005")
    assert reverse.index("25GZ00005") < reverse.index("25BJ00004")
    assert nonsense[0] == 200  # unknown sort keys fall back to the default, never reach the SQL


def test_hostile_names_and_memos_are_shown_as_text(config):
    with running_dashboard(config) as base:
        client = Client(base)
        bodies = [client.get(p) for p in ("/orders", "/customers/C004", "/search?q=恶意", "/review", "/orders/25SH00007")]
    for status, body, headers in bodies:
        assert status == 200
        assert "<script>window.__xss" not in body and "<img src=x" not in body
        assert "script-src 'self'" in headers["content-security-policy"]
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in bodies[1][1]


# ------------------------------------------------------------------ access and forms


def test_without_the_token_every_page_answers_401(config):
    secured = DashboardConfig(**{**config.__dict__, "token": "s3cret"})
    with running_dashboard(secured) as base:
        client = Client(base)
        assert client.get("/")[0] == 401
        assert client.get("/review?token=wrong")[0] == 401
        assert client.get("/static/dashboard.css")[0] == 401
        status, body, _ = client.get("/?token=s3cret")
        assert status == 200 and EXPECTED["signed_this_period"] in body
        assert client.get("/health", headers={"X-Recon-Token": "s3cret"})[0] == 200


def test_an_open_dashboard_binds_only_to_localhost(config):
    with pytest.raises(DashboardRefused, match="不能绑定到 0.0.0.0"):
        serve(config.published_path, host="0.0.0.0", port=1)


def test_before_the_first_publication_the_dashboard_says_so(tmp_path):
    with running_dashboard(DashboardConfig(published_path=tmp_path / "none.duckdb")) as base:
        status, body, _ = Client(base).get("/")
    assert status == 503 and "尚未发布数据" in body


def test_tables_not_published_yet_give_empty_states_not_errors(tmp_path):
    warehouse = build_fixture_warehouse(
        tmp_path / "recon.duckdb",
        skip=("mart.customer_collection_health", "mart.diff_list", "mart.health_metrics", "mart.alerts",
              "mart.dim_customers", "mart.fct_invoices", "mart.fct_order_events", "mart.fct_alert_actions"),
    )
    published = publish_mart(warehouse).published_path
    with running_dashboard(DashboardConfig(published_path=published, runbook_path=tmp_path / "none.md")) as base:
        client = Client(base)
        pages = {p: client.get(p) for p in ("/", "/health", "/alerts", "/diff-list", "/customers", "/review",
                                              "/runbook", "/orders/25SH00001", "/search?q=25sh1")}
    assert {p: r[0] for p, r in pages.items()} == dict.fromkeys(pages, 200)
    assert "客户回款健康表尚未生成" in pages["/customers"][1]
    assert "差额清单尚未生成" in pages["/diff-list"][1]
    assert "健康指标表尚未生成" in pages["/health"][1]
    assert "运行手册（docs/runbook.md）尚未提供" in pages["/runbook"][1]


def test_a_new_publication_shows_on_the_next_page_load(tmp_path, config):
    warehouse = tmp_path / "recon.duckdb"
    with running_dashboard(config) as base:
        client = Client(base)
        assert EXPECTED["signed_this_period"] in client.get("/")[1]
        build_fixture_warehouse(warehouse, signed_scale=10)  # 25BJ00003: 80k -> 800k
        publish_mart(warehouse, config.published_path, as_of=AS_OF)
        assert "¥850,000.00" in client.get("/")[1]


def test_every_post_needs_the_csrf_token_and_the_same_origin(config):
    valid = {"account_no": "6222001", "txn_id": "T005", "customer_id": "C002", "order_id": "25BJ00003",
             "decision": "confirm", "decided_by": "王会计"}
    with running_dashboard(config) as base:
        client = Client(base)
        assert client.post("/review/decide", valid)[0] == 403  # no token at all (no cookie either)
        client.csrf("/review")
        assert client.post("/review/decide", {**valid, "csrftoken": "forged"})[0] == 403
        assert client.form("/review", "/review/decide", valid, {"Origin": "http://evil.example"})[0] == 403
        assert client.form("/alerts", "/actions", {"target_type": "alert", "target_id": "a1", "action": "acknowledge",
                                                   "acted_by": "x"}, {"Origin": "http://evil.example"})[0] == 403
    assert not (config.landing_dir / "match_feedback").exists() and not (config.landing_dir / "alert_actions").exists()


def test_a_decision_must_name_a_suggestion_of_the_publication(config):
    forged = {"account_no": "6222001", "txn_id": "T001", "customer_id": "C001", "order_id": "25SH00001",
              "decision": "confirm", "decided_by": "王会计"}
    with running_dashboard(config) as base:
        client = Client(base)
        status, body, _ = client.form("/review", "/review/decide", forged)
        assert (status, body) == (400, "该匹配建议已不在当前发布的数据中，请刷新页面")
        valid = {**forged, "txn_id": "T005", "customer_id": "C002", "order_id": "25BJ00003"}
        assert client.form("/review", "/review/decide", {**valid, "decided_by": " "})[0] == 400
    assert not (config.landing_dir / "match_feedback").exists()


def test_confirm_then_undo_updates_the_queue_at_once_and_writes_both_records(config):
    suggestion = {"account_no": "6222001", "txn_id": "T005", "customer_id": "C002", "order_id": "25BJ00003",
                  "decided_by": "王会计"}
    with running_dashboard(config) as base:
        client = Client(base)
        assert 'data-testid="queue-count">3 条' in client.get("/review")[1]
        status, _, headers = client.form("/review", "/review/decide", {**suggestion, "decision": "confirm"})
        assert status == 303 and headers["location"].startswith("/review?notice=")
        after = client.get("/review")[1]
        assert 'data-testid="queue-count">2 条' in after and "已确认，待运行" in after
        client.form("/review", "/review/decide", {**suggestion, "decision": "undo"})
        assert 'data-testid="queue-count">3 条' in client.get("/review")[1]
    files = sorted((config.landing_dir / "match_feedback" / "2025-03-29").glob("decision-*.csv"))
    assert len(files) == 2
    decisions = []
    for path in files:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames[: len(FEEDBACK_COLUMNS)] == FEEDBACK_COLUMNS
            decisions += list(reader)
    assert [d["decision"] for d in decisions] == ["confirm", "undo"]  # file order is decision order
    assert all(d["decided_at"] == AS_OF and d["decided_by"] == "王会计" for d in decisions)


def test_an_acknowledgement_is_written_to_the_landing_zone_and_shown_at_once(config):
    with running_dashboard(config) as base:
        client = Client(base)
        status, _, headers = client.form("/alerts", "/actions", {
            "target_type": "alert", "target_id": "a2", "action": "acknowledge", "acted_by": "王会计",
            "note": '含逗号, "引号"\n和换行', "next": "/alerts?level=2"})
        assert status == 303 and headers["location"].startswith("/alerts?level=2&notice=")
        page = client.get("/alerts?level=2")[1]
        assert "已确认 · 王会计" in page and "待下次运行入库" in page
        assert client.form("/alerts", "/actions", {"target_type": "alert", "target_id": "a2", "action": "assign",
                                                   "acted_by": "王会计"})[0] == 400  # assign needs someone
        assert client.form("/alerts", "/actions", {"target_type": "../../etc", "target_id": "x", "action": "acknowledge",
                                                   "acted_by": "王会计"})[0] == 400
        escaped = client.form("/alerts", "/actions", {"target_type": "diff", "target_id": "../../../../tmp/evil",
                                                      "action": "comment", "note": "x", "acted_by": "王会计",
                                                      "next": "//evil.example/phish"})
    assert escaped[0] == 303 and escaped[2]["location"].startswith("/diff-list?")  # no open redirect
    written = sorted(Path(config.landing_dir).rglob("*.csv"))
    assert all(p.parent == config.landing_dir / "alert_actions" / "2025-03-29" for p in written) and len(written) == 2
    with open(written[0], encoding="utf-8-sig", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["target_id"], row["action"], row["acted_by"], row["note"]) == ("a2", "acknowledge", "王会计", '含逗号, "引号"\n和换行')
    assert row["acted_at"] >= AS_OF  # business time: just after the publication's as-of


# ------------------------------------------------------------------ accounts and roles

PASSWORD = "correct horse"


@pytest.fixture
def with_accounts(config) -> DashboardConfig:
    hashed = hash_password(PASSWORD)
    accounts = accounts_from_settings([
        {"username": "wang", "name": "王会计", "role": "finance", "password_hash": hashed},
        {"username": "boss", "name": "赵经理", "role": "manager", "email": "boss@example.com", "password_hash": hashed},
        {"username": "lisi", "name": "李四", "role": "sales", "salesperson_id": "S02", "password_hash": hashed},
    ])
    return DashboardConfig(**{**config.__dict__, "accounts": accounts})


def login(client: Client, username: str, password: str = PASSWORD) -> int:
    return client.form("/login", "/login", {"username": username, "password": password, "next": "/"})[0]


def test_with_accounts_everyone_logs_in_and_passwords_are_checked(with_accounts):
    with running_dashboard(with_accounts) as base:
        client = Client(base)
        status, _, headers = client.get("/orders?region=SH")
        assert status == 303 and headers["location"] == "/login?next=%2Forders%3Fregion%3DSH"
        assert login(client, "wang", "wrong password") == 401
        assert login(client, "nobody") == 401
        assert login(client, "wang") == 303
        assert client.get("/orders")[0] == 200
        client.form("/", "/logout", {})
        assert client.get("/orders")[0] == 303


def test_password_guessing_is_locked_out_and_a_forged_login_refused(with_accounts):
    from recon_pipeline.dashboard.access import LoginThrottle

    locked = DashboardConfig(**{**with_accounts.__dict__, "login_max_failures": 3})
    with running_dashboard(locked) as base:
        client = Client(base)
        status, page, _ = client.get("/login")
        assert status == 200 and 'href="/orders"' not in page and 'action="/search"' not in page  # no way in but the form
        assert client.post("/login", {"username": "wang", "password": PASSWORD})[0] == 403  # no CSRF token
        assert [login(client, "wang", f"guess {n}") for n in range(3)] == [401, 401, 401]
        status, body, _ = client.form("/login", "/login", {"username": "wang", "password": PASSWORD, "next": "/"})
        assert status == 429 and "登录失败次数过多，请 15 分钟后再试" in body  # even the right password, for now
        assert login(client, "boss") == 429  # the same address guessing
    clock = [0.0]
    throttle = LoginThrottle(2, 60, clock=lambda: clock[0])
    throttle.failed("Wang", "10.0.0.1")
    throttle.failed("wang", "10.0.0.2")
    assert throttle.wait_seconds("wang", "10.0.0.3") == 60 and throttle.wait_seconds("boss", "10.0.0.3") == 0
    clock[0] = 61
    assert throttle.wait_seconds("wang", "10.0.0.1") == 0  # the window passed


def test_a_salesperson_sees_only_their_own_orders_and_customers(with_accounts):
    with running_dashboard(with_accounts) as base:
        client = Client(base)
        login(client, "lisi")
        orders = client.get("/orders")[1]
        assert "25BJ00003" in orders and "25BJ00004" in orders and "25SH00001" not in orders
        assert client.get("/orders/25SH00001")[0] == 404 and client.get("/orders/25BJ00003")[0] == 200
        assert client.get("/customers/C001")[0] == 404 and client.get("/customers/C002")[0] == 200
        assert client.get("/salespeople/S01")[0] == 404
        assert "25SH00002" not in client.get("/search?q=25sh2")[1]
        assert client.get("/review")[0] == 403
        exported = client.get_bytes("/orders?format=xlsx")[1]
        assert [r[0] for r in list(openpyxl.load_workbook(io.BytesIO(exported)).active.iter_rows(values_only=True))[1:]] \
            == ["25BJ00003", "25BJ00004"]
        assert client.form("/orders", "/review/decide", {"account_no": "6222001", "txn_id": "T005", "customer_id": "C002",
                                                         "order_id": "25BJ00003", "decision": "confirm"})[0] == 403


def test_a_manager_sees_the_team_and_actions_carry_the_logged_in_user(with_accounts):
    with running_dashboard(with_accounts) as base:
        client = Client(base)
        login(client, "boss")
        orders = client.get("/orders")[1]
        assert "25SH00001" in orders and "25BJ00003" in orders and "25GZ00005" not in orders  # S01, S02; not S03
        assert client.form("/health", "/actions", {"target_type": "health", "target_id": "board", "action": "acknowledge",
                                                   "acted_by": "冒名顶替"})[0] == 303
        wang = Client(base)
        login(wang, "wang")
        assert wang.form("/review", "/review/decide", {"account_no": "6222001", "txn_id": "T005", "customer_id": "C002",
                                                       "order_id": "25BJ00003", "decision": "confirm",
                                                       "decided_by": "冒名顶替"})[0] == 303
    (action,) = (with_accounts.landing_dir / "alert_actions").rglob("*.csv")
    (decision,) = (with_accounts.landing_dir / "match_feedback").rglob("*.csv")
    assert "赵经理(boss)" in action.read_text(encoding="utf-8-sig") and "冒名顶替" not in action.read_text(encoding="utf-8-sig")
    assert "王会计(wang)" in decision.read_text(encoding="utf-8-sig")


def test_runbook_headings_get_the_alert_type_as_anchor(tmp_path):
    from recon_pipeline.dashboard.runbook import render_runbook

    runbook = tmp_path / "runbook.md"
    runbook.write_text("# 预警处理手册（Runbook）\n\n## amount_mismatch\n\n## 通知发送失败\n", encoding="utf-8")
    html = render_runbook(runbook)
    assert '<h2 id="amount_mismatch">' in html
    assert '<h1 id="预警处理手册runbook">' in html
    assert '<h2 id="通知发送失败">' in html


def test_recon_dashboard_prints_its_url_and_serves_the_acceptance_urls(tmp_path):
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.conftest import free_port

    warehouse = build_fixture_warehouse(tmp_path / "recon.duckdb")
    publish_mart(warehouse, as_of=AS_OF)
    port = free_port()
    recon = Path(sys.executable).parent / "recon"
    server = subprocess.Popen([str(recon), "dashboard", "--warehouse", str(warehouse), "--landing", str(tmp_path / "landing"),
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith(f"销售对账看板已启动: http://127.0.0.1:{port}/"), line + server.stderr.read()
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/search?q=25sh2", timeout=5) as response:
                    body = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert 'href="/orders/25SH00002"' in body
        for path in ("/orders", "/orders/25SH00002", "/customers/C001", "/salespeople/S01", "/alerts", "/diff-list",
                     "/health", "/review", "/orders?format=xlsx", "/alerts?format=xlsx", "/diff-list?format=xlsx"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
                assert response.status == 200, path
    finally:
        server.terminate()
        server.wait(timeout=20)
