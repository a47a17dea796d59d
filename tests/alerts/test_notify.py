"""Notifications against a real SMTP server (aiosmtpd) and a real HTTP endpoint on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from recon_pipeline.alerts import notify, workflow
from recon_pipeline.alerts import rules as alerts
from recon_pipeline.settings import load_settings
from tests.alerts.conftest import FixtureWarehouse, standard_people
from tests.conftest import MailRecorder, free_port

AS_OF = datetime(2025, 3, 10, 12, 0)


# --- real servers on loopback -------------------------------------------------------------


class ChatEndpoint:
    """A webhook endpoint: records posted JSON; after `fail_after` posts answers an error code
    (WeCom style), after `hang_after` posts never answers (to kill the sender mid-run)."""

    def __init__(self, ok_body: str = '{"errcode": 0, "errmsg": "ok"}'):
        self.posts: list[dict] = []
        self.paths: list[str] = []
        self.ok_body = ok_body
        self.fail_after: int | None = None
        self.hang_after: int | None = None
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if endpoint.hang_after is not None and len(endpoint.posts) >= endpoint.hang_after:
                    endpoint.release.wait(30)
                    return
                if endpoint.fail_after is not None and len(endpoint.posts) >= endpoint.fail_after:
                    answer = '{"errcode": 45009, "errmsg": "api freq out of limit"}'
                else:
                    endpoint.posts.append(json.loads(body))
                    endpoint.paths.append(self.path)
                    answer = endpoint.ok_body
                data = answer.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/webhook/send?key=test-key"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def chat():
    endpoint = ChatEndpoint()
    yield endpoint
    endpoint.close()


# --- a warehouse with open alerts ------------------------------------------------------------


@pytest.fixture()
def settings():
    return load_settings()


def build_alerts(path: Path, settings) -> int:
    """Four open alerts at AS_OF: two unwritten-off receipts (level 2), a stalled approval and
    an amount mismatch. Returns how many alerts are open."""
    wh = FixtureWarehouse(path)
    with wh.batch():
        standard_people(wh)
        wh.order("25SH00001", salesperson_id="S02")
        wh.archive("25SH00001", datetime(2025, 1, 11))
        wh.credit("T-001", "1000.00", AS_OF - timedelta(days=4), order_id="25SH00001")
        wh.credit("T-002", "2000.00", AS_OF - timedelta(days=5), order_id="25SH00001")
        wh.order("25SH00002", approval_status="pending", approval_submitted_at=AS_OF - timedelta(hours=3))
        wh.archive("25SH00002", datetime(2025, 1, 11))
        wh.credit("T-ODD", "77.77", AS_OF - timedelta(hours=1), amount_mismatch=True, allocations=[(None, "77.77")])
        for i in range(40):  # fresh linked credits keep the match rate above 95%
            wh.credit(f"T-NEW{i:02d}", "10.00", AS_OF - timedelta(hours=1), order_id="25SH00001")
    count = len(alerts.refresh_alerts(wh.conn, AS_OF, settings))
    wh.close()
    return count


def env_for(smtp_port: int | None = None, webhook: str | None = None, kind: str = "wecom") -> dict[str, str]:
    env = {}
    if smtp_port:
        env |= {"RECON_SMTP_HOST": "127.0.0.1", "RECON_SMTP_PORT": str(smtp_port), "RECON_SMTP_TLS": "none",
                "RECON_SMTP_SENDER": "recon@example.com"}
    if webhook:
        env |= {"RECON_WEBHOOK_URL": webhook, "RECON_WEBHOOK_KIND": kind}
    return env


def dispatch(path: Path, settings, env, as_of=AS_OF, **kwargs) -> notify.DispatchSummary:
    import duckdb

    conn = duckdb.connect(str(path))
    try:
        return notify.dispatch_alerts(conn, as_of, settings, env=env, echo=lambda _line: None, **kwargs)
    finally:
        conn.close()


def logged(path: Path) -> int:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute("SELECT count(*) FROM mart.alert_dispatch_log").fetchone()[0]


# --- tests -----------------------------------------------------------------------------------


def test_each_alert_reaches_the_right_people_once(tmp_path, settings, smtp_server, chat):
    mail, port = smtp_server
    path = tmp_path / "warehouse.duckdb"
    assert build_alerts(path, settings) == 4
    env = env_for(port, chat.url)

    first = dispatch(path, settings, env)

    assert first.sent == 8 and first.ok  # 4 alerts x (e-mail + chat)
    lisi = mail.received_by("lisi@example.com")
    assert sorted(m["subject"] for m in lisi) == [
        "【销售对账·二级预警】回款未核销 T-001",
        "【销售对账·二级预警】回款未核销 T-002",
    ]
    assert "处理手册：docs/runbook.md#receipt_not_written_off" in lisi[0]["body"]
    assert "负责人：李四（lisi@example.com）" in lisi[0]["body"]
    stalled = [m for m in mail.messages if "审批停滞" in m["subject"]]
    assert len(stalled) == 1
    assert stalled[0]["rcpt"] == ["boss.li@example.com", "zhangsan@example.com"]  # owner, manager in copy
    assert stalled[0]["cc"] == "boss.li@example.com"
    assert len(mail.received_by("zhangsan@example.com")) == 2  # the stalled approval and the amount mismatch
    assert len(chat.posts) == 4 and all(p["msgtype"] == "markdown" for p in chat.posts)
    assert any("¥77.77" in p["markdown"]["content"] for p in chat.posts)

    again = dispatch(path, settings, env)  # same as-of again: nothing new

    assert again.sent == 0 and again.already_sent == 8
    assert len(mail.messages) == 4 and len(chat.posts) == 4


def test_the_same_alert_mail_always_carries_the_same_message_id(tmp_path, settings, smtp_server):
    # Should a crash fall between the server's acceptance and the dispatch log, the copy sent
    # again is the same mail to de-duplicating servers and clients.
    mail, port = smtp_server
    for attempt in ("first", "second"):
        path = tmp_path / f"{attempt}.duckdb"
        build_alerts(path, settings)
        dispatch(path, settings, env_for(port))
    first, second = mail.messages[:4], mail.messages[4:]
    assert len(second) == 4
    assert sorted(m["message_id"] for m in first) == sorted(m["message_id"] for m in second)
    assert len({m["message_id"] for m in first}) == 4
    assert all(m["message_id"].endswith("@recon-pipeline>") for m in first)


def test_level_2_alert_not_acknowledged_in_24_hours_escalates_once_to_the_manager(tmp_path, settings, smtp_server):
    mail, port = smtp_server
    path = tmp_path / "warehouse.duckdb"
    build_alerts(path, settings)
    env = env_for(port)
    dispatch(path, settings, env)
    before = len(mail.messages)

    import duckdb

    def refresh(as_of):
        with duckdb.connect(str(path)) as conn:
            alerts.refresh_alerts(conn, as_of, settings)
            workflow.refresh_workflow(conn, as_of, settings)

    refresh(AS_OF + timedelta(hours=23, minutes=59))
    assert dispatch(path, settings, env, as_of=AS_OF + timedelta(hours=23, minutes=59)).sent == 0

    later = AS_OF + timedelta(hours=24)
    refresh(later)
    escalated = dispatch(path, settings, env, as_of=later)

    new = mail.messages[before:]
    assert escalated.sent == 2 and len(new) == 2  # one per open level-2 alert, nothing else resent
    assert all(m["rcpt"] == ["boss.li@example.com"] for m in new)
    assert all(m["subject"].startswith("【销售对账·升级】回款未核销") and "1 天未确认收到" in m["subject"] for m in new)
    assert all("24 小时内应确认收到" not in m["body"] and "1 天内应确认收到" in m["body"] for m in new)
    refresh(later + timedelta(hours=1))
    assert dispatch(path, settings, env, as_of=later + timedelta(hours=1)).sent == 0


def test_smtp_server_refusing_half_way_then_repeat_sends_only_the_rest(tmp_path, settings, smtp_server):
    mail, port = smtp_server
    path = tmp_path / "warehouse.duckdb"
    build_alerts(path, settings)
    env = env_for(port)
    mail.refuse_after = 2

    broken = dispatch(path, settings, env)

    assert broken.sent == 2 and not broken.ok and logged(path) == 2
    assert "SMTP" in broken.failed[0][1]
    first_subjects = {m["subject"] for m in mail.messages}

    mail.refuse_after = None
    repaired = dispatch(path, settings, env)

    assert repaired.sent == 2 and repaired.already_sent == 2 and repaired.ok
    subjects = [m["subject"] for m in mail.messages]
    assert len(subjects) == 4 and len(set(subjects)) == 4
    assert first_subjects.isdisjoint(m["subject"] for m in mail.messages[2:])


def test_chat_error_code_is_not_counted_as_sent(tmp_path, settings, chat):
    path = tmp_path / "warehouse.duckdb"
    build_alerts(path, settings)
    chat.fail_after = 1  # HTTP 200 with errcode 45009, as WeCom does when rate-limited

    result = dispatch(path, settings, env_for(webhook=chat.url))

    assert result.sent == 1 and logged(path) == 1 and result.skipped_channel_down == 2
    assert "45009" in result.failed[0][1]
    chat.fail_after = None
    assert dispatch(path, settings, env_for(webhook=chat.url)).sent == 3
    assert len(chat.posts) == 4


KILLED_RUN = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    import duckdb
    from recon_pipeline.alerts import notify
    from recon_pipeline.settings import load_settings
    conn = duckdb.connect(sys.argv[1])
    notify.dispatch_alerts(conn, datetime(2025, 3, 10, 12, 0), load_settings())
    """
)


def test_run_killed_half_way_sends_only_the_other_half_when_repeated(tmp_path, settings, chat):
    path = tmp_path / "warehouse.duckdb"
    build_alerts(path, settings)
    chat.hang_after = 2  # the third post never gets an answer: the run is stuck mid-way
    env = {**os.environ, **env_for(webhook=chat.url)}
    env.pop("RECON_SMTP_HOST", None)
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(path)], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(chat.posts) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # let it reach the hanging third post
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert len(chat.posts) == 2 and child.returncode == -signal.SIGKILL

    chat.hang_after = None
    chat.release.set()
    repeated = dispatch(path, settings, env_for(webhook=chat.url))

    assert repeated.already_sent == 2 and repeated.sent == 2
    contents = [p["markdown"]["content"] for p in chat.posts]
    assert len(contents) == 4 and len(set(contents)) == 4  # every alert exactly once


def test_dry_run_prints_what_would_be_sent_and_sends_nothing(tmp_path, settings, smtp_server):
    mail, port = smtp_server
    path = tmp_path / "warehouse.duckdb"
    build_alerts(path, settings)
    lines: list[str] = []
    import duckdb

    with duckdb.connect(str(path)) as conn:
        summary = notify.dispatch_alerts(conn, AS_OF, settings, dry_run=True, env=env_for(port), echo=lines.append)

    assert len(summary.planned) == 4 and summary.sent == 0
    assert mail.messages == [] and logged(path) == 0
    assert any(line.startswith("[预演] 邮件 → lisi@example.com：【销售对账·二级预警】回款未核销") for line in lines)
    assert lines[-1] == "通知预演：将发送 4 条，已发送过 0 条（未实际发送）"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_uses_credentials_from_the_environment(tmp_path, settings):
    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    recorder = MailRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        path = tmp_path / "warehouse.duckdb"
        build_alerts(path, settings)
        env = env_for(controller.port) | {"RECON_SMTP_USER": "robot", "RECON_SMTP_PASSWORD": "s3cret"}
        assert dispatch(path, settings, env).sent == 4
        bad = env | {"RECON_SMTP_PASSWORD": "wrong"}
        path2 = tmp_path / "other.duckdb"
        build_alerts(path2, settings)
        # aiosmtpd lets smtplib's next AUTH attempt time out after a refusal: keep it short.
        quick = tmp_path / "quick.yaml"
        quick.write_text("notify:\n  email:\n    timeout_seconds: 1\n", encoding="utf-8")
        refused = dispatch(path2, load_settings(quick), bad)
    finally:
        controller.stop()
    assert seen[0] == (b"robot", b"s3cret") and len(recorder.messages) == 4
    assert refused.sent == 0 and logged(path2) == 0


@pytest.mark.parametrize(
    "kind, ok_body, check",
    [
        ("wecom", '{"errcode":0,"errmsg":"ok"}', lambda p: p["msgtype"] == "markdown" and "content" in p["markdown"]),
        ("dingtalk", '{"errcode":0,"errmsg":"ok"}', lambda p: p["msgtype"] == "markdown" and p["markdown"]["title"]),
        ("feishu", '{"code":0,"msg":"success"}', lambda p: p["msg_type"] == "text" and p["content"]["text"]),
        ("slack", "ok", lambda p: p["text"].startswith("*【销售对账")),
    ],
)
def test_each_chat_kind_gets_its_payload_shape(tmp_path, settings, kind, ok_body, check):
    endpoint = ChatEndpoint(ok_body=ok_body)
    try:
        path = tmp_path / "warehouse.duckdb"
        build_alerts(path, settings)
        result = dispatch(path, settings, env_for(webhook=endpoint.url, kind=kind) | {"RECON_WEBHOOK_SECRET": "sec"})
    finally:
        endpoint.close()
    assert result.sent == 4 and len(endpoint.posts) == 4
    assert all(check(post) for post in endpoint.posts)
    if kind == "dingtalk":  # signed in the query string
        query = urllib.parse.parse_qs(urllib.parse.urlparse(endpoint.paths[0]).query)
        assert {"timestamp", "sign", "key"} <= set(query)
    if kind == "feishu":  # signed in the body
        assert {"timestamp", "sign"} <= set(endpoint.posts[0])


def test_without_any_channel_the_run_says_so_in_chinese(tmp_path, settings):
    path = tmp_path / "warehouse.duckdb"
    build_alerts(path, settings)
    with pytest.raises(notify.NotificationError, match="未配置通知渠道"):
        dispatch(path, settings, env={})


def test_dispatch_refuses_alerts_of_another_as_of(tmp_path, settings, smtp_server):
    _, port = smtp_server
    path = tmp_path / "warehouse.duckdb"
    build_alerts(path, settings)
    with pytest.raises(notify.NotificationError, match="不一致"):
        dispatch(path, settings, env_for(port), as_of=AS_OF + timedelta(days=1))
