"""`kind: http` against a real HTTP server shaped like DingTalk's approval API, and the bad cases."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from recon_pipeline.extract.stage import extract_sources
from recon_pipeline.ingest.readers import read_canonical_frame
from recon_pipeline.sources import SOURCES
from tests.extract import servers
from tests.extract.conftest import landed

AS_OF = datetime(2025, 5, 6, 0, 30)


def dingtalk_entry(base_url: str, **overrides) -> dict:
    """The README's DingTalk example, pointed at the test server."""
    return {
        "kind": "http", "method": "POST", "url": f"{base_url}/v1.0/workflow/processes/instanceIds/query",
        "body": {"processCode": "PROC-LEGAL-REVIEW", "startTime": "{since_ms}", "endTime": "{as_of_ms}",
                 "maxResults": 20, "nextToken": 0},
        "records": "result.list",
        "pagination": {"type": "cursor", "cursor_path": "result.nextToken", "cursor_param": "nextToken"},
        "detail": {"url": f"{base_url}/v1.0/workflow/processInstances",
                   "params": {"processInstanceId": "{id}"}, "record": "result"},
        "form_values": "formComponentValues",
        "auth_header": "x-acs-dingtalk-access-token", "auth_env": "RECON_DINGTALK_TOKEN",
        "backoff_seconds": 0.01, **overrides,
    }


def legal_form(n: int, status: str = "approved") -> dict:
    return {"归档编号": f"GD25{n:06d}", "订单号": f"25SH{n:05d}", "审核状态": status,
            "提交时间": "2025-05-01 09:00:00", "审核时间": "2025-05-02 10:00:00", "归档时间": None,
            "更新时间": f"2025-05-02 10:{n % 60:02d}:00"}


@pytest.fixture()
def dingtalk(approvals, settings_from, monkeypatch):
    monkeypatch.setenv("RECON_DINGTALK_TOKEN", approvals.token)
    approvals.instances = {f"proc-{n:06d}": servers.dingtalk_instance(f"proc-{n:06d}", legal_form(n)) for n in range(45)}

    def settings(**overrides):
        return settings_from({"extract": {"legal_archive": dingtalk_entry(approvals.base_url, **overrides)}})

    return settings


def test_dingtalk_ids_then_each_instance_land_as_one_drop(dingtalk, approvals, landing):
    report = extract_sources(landing, AS_OF, dingtalk())
    assert not report.failed
    assert landed(landing) == ["legal_archive/2025-05-06/extract-003000.parquet"]
    path = landing / "legal_archive/2025-05-06/extract-003000.parquet"
    table = pq.read_table(path)
    assert table.num_rows == 45
    assert {"title", "businessId", "status", "result", "createTime", "归档编号", "订单号", "审核状态"} <= set(table.column_names)
    assert "formComponentValues" not in table.column_names  # the form became its fields' columns
    # Three list pages (20 + 20 + 5, cursor nextToken), then one request per instance.
    assert [p for m, p in approvals.requests].count("/v1.0/workflow/processes/instanceIds/query") == 3
    assert [p for m, p in approvals.requests].count("/v1.0/workflow/processInstances") == 45
    assert [b["nextToken"] for b in approvals.list_bodies] == [0, "20", "40"]
    as_of_ms = int(AS_OF.replace(tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000)
    assert approvals.list_bodies[0]["startTime"] == as_of_ms - 86_400_000  # numbers stay numbers
    # The default column mapping reads the form's labels as for a file's headers.
    frame = read_canonical_frame(path, SOURCES["legal_archive"], dingtalk())
    assert frame.loc[0, ["archive_no", "order_id", "review_status"]].tolist() == ["GD25000000", "25SH00000", "approved"]

    again = extract_sources(landing, AS_OF, dingtalk())
    assert again.files == [] and again.results[0].note == "与上次提取相同"
    approvals.instances["proc-000007"] = servers.dingtalk_instance("proc-000007", legal_form(7, "rejected"))
    changed = extract_sources(landing, AS_OF, dingtalk())
    assert changed.files == ["legal_archive/2025-05-06/extract-003000_2.parquet"]


def test_page_number_pagination_for_json_and_csv(approvals, landing, settings_from, monkeypatch):
    monkeypatch.setenv("RECON_API_TOKEN", approvals.token)
    approvals.items = [{"invoice_no": f"{n:08d}", "total_amount": 100.10 + n, "extra": {"seller": "本公司"}} for n in range(23)]
    items = {"kind": "http", "url": f"{approvals.base_url}/api/items", "records": "data.items",
             "pagination": {"type": "page_number", "page_param": "page", "size_param": "size", "size": 10,
                            "has_more_path": "data.hasMore"},
             "auth_header": "Authorization", "auth_prefix": "Bearer ", "auth_env": "RECON_API_TOKEN"}
    report = extract_sources(landing, AS_OF, settings_from({"extract": {"erp_invoices": items}}))
    table = pq.read_table(landing / report.files[0])
    assert table.num_rows == 23 and table.column_names == ["invoice_no", "total_amount", "extra.seller"]
    assert table.column("total_amount").to_pylist()[:2] == ["100.1", "101.1"]  # as sent, never through a float

    approvals.csv_pages = ["发票号码,价税合计\n00000001,\"1,000.00\"\n00000002,5.00\n".encode("gb18030"),
                           "发票号码,价税合计\n00000003,7.00\n".encode("gb18030")]
    export = {"kind": "http", "format": "csv", "url": f"{approvals.base_url}/export.csv",
              "pagination": {"type": "page_number", "page_param": "page"},
              "auth_header": "Authorization", "auth_prefix": "Bearer ", "auth_env": "RECON_API_TOKEN"}
    settings = settings_from({"extract": {"erp_export": {**export, "source": "erp_invoices"}}})
    report = extract_sources(landing, datetime(2025, 5, 7), settings)
    frame = read_canonical_frame(landing / report.files[0], SOURCES["erp_invoices"], settings)
    assert frame[["invoice_no", "total_amount"]].values.tolist() == [["00000001", "1,000.00"], ["00000002", "5.00"],
                                                                     ["00000003", "7.00"]]


def test_429_and_5xx_are_retried_with_backoff(dingtalk, approvals, landing):
    approvals.planned_failures = [429, 503, 502]
    report = extract_sources(landing, AS_OF, dingtalk())
    assert not report.failed and report.results[0].rows == 45


def test_an_api_that_keeps_failing_gives_up_after_bounded_retries_and_writes_nothing(dingtalk, approvals, landing):
    approvals.always_fail = 503
    started = time.monotonic()
    message = extract_sources(landing, AS_OF, dingtalk(retries=3, backoff_seconds=0.05)).failed[0].error
    elapsed = time.monotonic() - started
    assert message == (f"legal_archive: 接口 {approvals.base_url}/v1.0/workflow/processes/instanceIds/query "
                       "返回 HTTP 503，已重试 3 次仍失败；本次未写入任何文件")
    assert len(approvals.requests) == 4 and 0.3 <= elapsed < 5  # 0.05 + 0.1 + 0.2 s of backoff
    assert landed(landing) == []

    # Failing halfway (after the list, on an instance) leaves no partial drop either.
    approvals.always_fail = None
    del approvals.instances["proc-000030"]
    approvals.instances["proc-000099"] = None  # listed, but the detail call answers 404
    message = extract_sources(landing, AS_OF, dingtalk()).failed[0].error
    assert "HTTP 404" in message and landed(landing) == []


def test_a_wrong_token_is_not_retried_and_names_the_variable(dingtalk, approvals, landing, monkeypatch):
    monkeypatch.setenv("RECON_DINGTALK_TOKEN", "expired-token")
    message = extract_sources(landing, AS_OF, dingtalk()).failed[0].error
    assert "拒绝访问（HTTP 401）" in message and "RECON_DINGTALK_TOKEN" in message and "expired-token" not in message
    assert len(approvals.requests) == 1


def test_an_unreachable_api_fails_within_bounded_retries(landing, settings_from, monkeypatch):
    monkeypatch.setenv("RECON_DINGTALK_TOKEN", "t")
    entry = dingtalk_entry(f"http://127.0.0.1:{servers.free_port()}", retries=2, timeout=1)
    message = extract_sources(landing, AS_OF, settings_from({"extract": {"legal_archive": entry}})).failed[0].error
    assert "无法连接" in message and "已重试 2 次仍失败" in message
    with servers.silent_server() as port:
        entry = dingtalk_entry(f"http://127.0.0.1:{port}", retries=1, timeout=1)
        started = time.monotonic()
        message = extract_sources(landing, AS_OF, settings_from({"extract": {"legal_archive": entry}})).failed[0].error
        assert "1 秒内没有响应" in message and time.monotonic() - started < 10
    assert landed(landing) == []
