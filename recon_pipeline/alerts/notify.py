"""Notifications: e-mail over SMTP and chat webhooks (WeCom, DingTalk, Feishu, Slack).

`dispatch_alerts` sends every open alert of `mart.alerts` once per channel and recipient.
Each message is recorded in `mart.alert_dispatch_log` (inside the warehouse, committed)
right after the channel accepted it, so a repeated run - or one after a crash half-way -
sends only what is not logged yet. The one window left is a crash between the server's
acceptance and the log commit (a round trip and a commit, about a millisecond): that single
message is sent again, with the same Message-ID, so mail clients and servers that
de-duplicate on it show it once.

A step of the alert workflow not done in time (`mart.alert_sla` status overdue, see
workflow.py: e.g. a level-2 alert not acknowledged within 24 hours or not handled within 3
days, the red health board not acknowledged within 5 minutes, a diff-list item without a
response for 24 hours) sends one escalation message to the manager (`escalate_to`).

Plain `smtplib` / `urllib` on purpose: apprise would hide the SMTP conversation and the
webhooks' error codes that the tests check against real servers; the four payloads are a few
lines each.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import smtplib
import ssl
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, getaddresses
from typing import Any, Callable, Mapping

import duckdb
import pandas as pd

from recon_pipeline.alerts.rules import ensure_alert_tables
from recon_pipeline.as_of import as_naive_datetime, duration_text
from recon_pipeline.faults import crash_point
from recon_pipeline.settings import Settings

WEBHOOK_KINDS = ("wecom", "dingtalk", "feishu", "slack")
TYPE_LABELS = {
    "amount_mismatch": "到账金额不符",
    "receipt_not_written_off": "回款未核销",
    "salesperson_discrepancy": "销售差异率超标",
    "cutoff_unarchived": "封关前未归档",
    "approval_stalled": "审批停滞",
    "match_rate_low": "回款匹配率偏低",
}
LEVEL_LABELS = {1: "一级预警", 2: "二级预警", 3: "三级预警"}

DISPATCH_LOG_DDL = """
CREATE TABLE IF NOT EXISTS mart.alert_dispatch_log (
  dispatch_key VARCHAR NOT NULL PRIMARY KEY,
  alert_id VARCHAR NOT NULL,
  first_seen_as_of TIMESTAMP NOT NULL,
  kind VARCHAR NOT NULL,          -- alert / escalation
  channel VARCHAR NOT NULL,       -- email / webhook:<kind>:<url hash>
  recipient VARCHAR NOT NULL,     -- e-mail address, or the webhook channel
  cc VARCHAR,
  alert_type VARCHAR NOT NULL,
  subject VARCHAR NOT NULL,
  body VARCHAR NOT NULL,
  as_of TIMESTAMP NOT NULL        -- the run that sent it
)
"""


class NotificationError(RuntimeError):
    """A configuration problem (message in Chinese, shown to the user)."""


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailConfig:
    host: str
    port: int
    tls: str  # starttls / ssl / none
    user: str | None
    password: str | None
    sender: str
    timeout: float = 10.0


@dataclass(frozen=True)
class WebhookConfig:
    kind: str
    url: str
    secret: str | None = None

    @property
    def channel(self) -> str:
        # The URL carries the access token: log a hash of it, never the URL itself.
        return f"webhook:{self.kind}:{hashlib.sha1(self.url.encode()).hexdigest()[:10]}"


def _tls_mode(value: Any) -> str:
    text = str(value).strip().lower()
    if text in ("ssl", "smtps", "implicit"):
        return "ssl"
    if text in ("none", "false", "no", "0", "off", "plain"):
        return "none"
    if text in ("starttls", "true", "yes", "1", "on", "tls"):
        return "starttls"
    raise NotificationError(f"无法识别的 SMTP TLS 设置：{value}（可选 starttls / ssl / none）")


def email_config(settings: Settings, env: Mapping[str, str] | None = None) -> EmailConfig | None:
    """SMTP settings from `notify.email`, overridden by RECON_SMTP_* variables; None if no host."""
    env = os.environ if env is None else env
    conf = dict((settings.raw.get("notify") or {}).get("email") or {})
    for key in ("host", "port", "user", "password", "sender", "tls"):
        if env.get(f"RECON_SMTP_{key.upper()}"):
            conf[key] = env[f"RECON_SMTP_{key.upper()}"]
    if not conf.get("host"):
        return None
    sender = conf.get("sender") or conf.get("user")
    if not sender:
        raise NotificationError("已配置 SMTP 服务器但缺少发件人：请设置 RECON_SMTP_SENDER 或 notify.email.sender")
    return EmailConfig(
        host=str(conf["host"]),
        port=int(conf.get("port") or 587),
        tls=_tls_mode(conf.get("tls", "starttls")),
        user=conf.get("user") or None,
        password=conf.get("password") or None,
        sender=str(sender),
        timeout=float(conf.get("timeout_seconds") or 10),
    )


def webhook_configs(settings: Settings, env: Mapping[str, str] | None = None) -> list[WebhookConfig]:
    """Webhooks of `notify.webhooks` plus RECON_WEBHOOK_URL (kind RECON_WEBHOOK_KIND, default wecom)."""
    env = os.environ if env is None else env
    entries = list((settings.raw.get("notify") or {}).get("webhooks") or [])
    if env.get("RECON_WEBHOOK_URL"):
        entries.append(
            {"url": env["RECON_WEBHOOK_URL"], "kind": env.get("RECON_WEBHOOK_KIND") or "wecom",
             "secret": env.get("RECON_WEBHOOK_SECRET")}
        )
    configs = []
    for entry in entries:
        kind = str(entry.get("kind") or "").lower()
        if kind not in WEBHOOK_KINDS:
            raise NotificationError(f"不支持的 webhook 类型：{kind}（可选 {' / '.join(WEBHOOK_KINDS)}）")
        configs.append(WebhookConfig(kind=kind, url=str(entry["url"]), secret=entry.get("secret") or None))
    return configs


# --- messages (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMessage:
    dispatch_key: str
    alert_id: str
    first_seen_as_of: datetime
    kind: str
    channel: str
    recipient: str
    cc: tuple[str, ...]
    alert_type: str
    subject: str
    body: str

    def describe(self) -> str:
        target = "邮件" if self.channel == "email" else self.channel.split(":")[1]
        copy = f"（抄送 {'、'.join(self.cc)}）" if self.cc else ""
        return f"{target} → {self.recipient}{copy}：{self.subject}"


def dispatch_key(alert_id: str, first_seen: datetime, kind: str, channel: str, recipient: str) -> str:
    text = "|".join([alert_id, pd.Timestamp(first_seen).isoformat(), kind, channel, recipient])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def split_addresses(value: Any) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and pd.isna(value)) or not str(value).strip():
        return ()
    text = str(value).replace(";", ",").replace("；", ",").replace("，", ",")
    return tuple(addr for _, addr in getaddresses([text]) if addr)


def _text(value: Any) -> str | None:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def compose(alert: Mapping[str, Any], as_of: datetime, kind: str, open_hours: float) -> tuple[str, str]:
    """Subject and body of one alert message, in short Chinese with owner and runbook link."""
    level = alert.get("alert_level")
    level = None if level is None or pd.isna(level) else int(level)
    label = LEVEL_LABELS.get(level, "提醒")
    type_label = TYPE_LABELS.get(alert["alert_type"], alert["alert_type"])
    owner = _text(alert.get("owner_name")) or "未指定"
    owner_mail = _text(alert.get("recipient"))
    lines = []
    subject = f"【销售对账·{label}】{type_label} {alert['entity_id']}"
    lines.append(str(alert["message"]))
    lines.append(f"负责人：{owner}" + (f"（{owner_mail}）" if owner_mail else ""))
    lines.append(f"处理手册：{alert.get('runbook_url') or ''}")
    lines.append(
        f"预警编号 {alert['alert_id']} · 首次发现 {pd.Timestamp(alert['first_seen_as_of']):%Y-%m-%d %H:%M}"
        f" · 数据截至 {as_of:%Y-%m-%d %H:%M}"
    )
    return subject, "\n".join(lines)


def plan_messages(
    alerts: pd.DataFrame,
    as_of: datetime,
    settings: Settings,
    channels: list[str],
) -> list[OutgoingMessage]:
    """Every message the open alerts call for on these channels (before the log is consulted)."""
    messages = []
    ordered = alerts.sort_values(["alert_level", "alert_type", "entity_id", "alert_id"], na_position="last")
    for alert in ordered.to_dict("records"):
        first_seen = pd.Timestamp(alert["first_seen_as_of"]).to_pydatetime()
        open_hours = (as_of - first_seen).total_seconds() / 3600
        subject, body = compose(alert, as_of, "alert", open_hours)
        messages += _addressed(
            channels, split_addresses(alert.get("recipient")), split_addresses(alert.get("cc")),
            lambda channel, recipient: dispatch_key(alert["alert_id"], first_seen, "alert", channel, recipient),
            alert_id=alert["alert_id"], first_seen_as_of=first_seen, kind="alert", alert_type=alert["alert_type"],
            subject=subject, body=body,
        )
    return messages


def _addressed(channels: list[str], to: tuple[str, ...], cc: tuple[str, ...], key, **fields) -> list[OutgoingMessage]:
    """One message per channel: e-mail to the first address (the others and cc in copy),
    chat to the channel itself."""
    messages = []
    for channel in channels:
        if channel == "email":
            if not to:
                continue  # nobody to mail (no owner e-mail, no fallback); chat still gets it
            recipient, copy = to[0], tuple(to[1:]) + cc
        else:
            recipient, copy = channel, ()
        messages.append(OutgoingMessage(dispatch_key=key(channel, recipient), channel=channel, recipient=recipient,
                                        cc=copy, **fields))
    return messages


ITEM_LABELS = {"alert": "预警", "diff": "差额清单", "health": "健康看板"}
STEP_LABELS = {"acknowledge": "确认收到", "respond": "响应", "triage": "开始排查", "resolve": "处理完毕"}
DIFF_LABELS = {"contract_without_receipt": "有合同无回款", "receipt_without_contract": "有回款无合同",
               "archive_without_order": "有归档无订单"}


def escalation_title(row: Mapping[str, Any]) -> str:
    """`回款未核销 T-001`, `差额清单 有合同无回款 25SH00001`, `健康看板红灯`."""
    if row["item_type"] == "health":
        return "健康看板红灯"
    kind, _, entity = str(row.get("title") or "").partition(" ")
    if row["item_type"] == "diff":
        return f"差额清单 {DIFF_LABELS.get(kind, kind)} {entity}".strip()
    return f"{TYPE_LABELS.get(kind, kind)} {entity}".strip()


def plan_escalations(sla: pd.DataFrame, as_of: datetime, settings: Settings, channels: list[str]) -> list[OutgoingMessage]:
    """One escalation per overdue step (mart.alert_sla) to the item's manager, on every channel."""
    dashboard_url = str((settings.raw.get("notify") or {}).get("dashboard_url") or "").rstrip("/")
    pages = {"alert": "/alerts", "diff": "/diff-list", "health": "/health"}
    messages = []
    overdue = sla[(sla["status"] == "overdue") & sla["due_at"].notna()] if len(sla) else sla
    for row in overdue.sort_values(["item_type", "item_id", "episode_start", "step"]).to_dict("records"):
        start = pd.Timestamp(row["episode_start"]).to_pydatetime()
        due = pd.Timestamp(row["due_at"]).to_pydatetime()
        step = STEP_LABELS.get(row["step"], row["step"])
        title = escalation_title(row)
        subject = f"【销售对账·升级】{title}（{duration_text((as_of - start).total_seconds())}未{step}）"
        lines = [
            f"以下{ITEM_LABELS.get(row['item_type'], '事项')}在时限内未{step}，请督办：",
            f"{title}：{duration_text((due - start).total_seconds())}内应{step}，期限 {due:%Y-%m-%d %H:%M}，"
            f"已超时 {duration_text((as_of - due).total_seconds())}。",
            f"负责人：{row.get('owner') or '未指定'}",
            f"首次发现 {start:%Y-%m-%d %H:%M} · 数据截至 {as_of:%Y-%m-%d %H:%M}",
        ]
        if dashboard_url:
            lines.append(f"在看板处理：{dashboard_url}{pages.get(row['item_type'], '/')}")
        kind = f"escalation:{row['step']}"
        messages += _addressed(
            channels, split_addresses(row.get("escalate_to")), (),
            lambda channel, recipient, row=row, start=start, kind=kind: dispatch_key(
                f"{row['item_type']}:{row['item_id']}", start, kind, channel, recipient),
            alert_id=str(row["item_id"]), first_seen_as_of=start, kind=kind,
            alert_type=str(row["item_type"] if row["item_type"] != "alert" else (row.get("title") or "").split(" ")[0]),
            subject=subject, body="\n".join(lines),
        )
    return messages


def webhook_payload(kind: str, title: str, text: str) -> dict[str, Any]:
    """The JSON body each chat robot expects for a short markdown/text message."""
    if kind == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": f"**{title}**\n{text}"}}
    if kind == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": title, "text": f"#### {title}\n\n" + text.replace("\n", "\n\n")}}
    if kind == "feishu":
        return {"msg_type": "text", "content": {"text": f"{title}\n{text}"}}
    if kind == "slack":
        return {"text": f"*{title}*\n{text}"}
    raise NotificationError(f"不支持的 webhook 类型：{kind}")


# --- channels (I/O) --------------------------------------------------------------------------


class ChannelDown(Exception):
    """The channel itself failed (connection, auth, rate limit): stop using it in this run."""


class MessageRejected(Exception):
    """This one message was refused (e.g. unknown recipient); others may still go through."""


class EmailChannel:
    def __init__(self, config: EmailConfig):
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        if c.tls == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
            if c.tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        if c.user:
            smtp.login(c.user, c.password or "")
        return smtp

    def send(self, message: OutgoingMessage) -> None:
        email = EmailMessage()
        email["Subject"] = message.subject
        email["From"] = formataddr(("销售对账", self.config.sender))
        email["To"] = message.recipient
        if message.cc:
            email["Cc"] = ", ".join(message.cc)
        if message.dispatch_key:
            # The same alert message always carries the same Message-ID: should a crash fall between
            # the server's acceptance and our log, the resent copy is recognisably the same mail.
            email["Message-ID"] = f"<{message.dispatch_key}@recon-pipeline>"
        email.set_content(message.body, charset="utf-8")
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(email, from_addr=self.config.sender, to_addrs=[message.recipient, *message.cc])
        except smtplib.SMTPRecipientsRefused as error:
            raise MessageRejected(f"收件人被拒绝：{', '.join(error.recipients)}") from error
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise ChannelDown(f"SMTP 发送失败：{error}") from error

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._smtp = None


def _signed_url(config: WebhookConfig) -> tuple[str, dict[str, Any]]:
    """DingTalk signs in the query, Feishu in the body. The robots check the signature against
    their own clock, so this uses the real time (a transport detail, not a business rule)."""
    if not config.secret:
        return config.url, {}
    if config.kind == "dingtalk":
        timestamp = str(int(time.time() * 1000))
        digest = hmac.new(config.secret.encode(), f"{timestamp}\n{config.secret}".encode(), hashlib.sha256).digest()
        sign = urllib.parse.quote_plus(base64.b64encode(digest))
        joiner = "&" if "?" in config.url else "?"
        return f"{config.url}{joiner}timestamp={timestamp}&sign={sign}", {}
    if config.kind == "feishu":
        timestamp = str(int(time.time()))
        digest = hmac.new(f"{timestamp}\n{config.secret}".encode(), b"", hashlib.sha256).digest()
        return config.url, {"timestamp": timestamp, "sign": base64.b64encode(digest).decode()}
    return config.url, {}


class WebhookChannel:
    def __init__(self, config: WebhookConfig, timeout: float = 10.0):
        self.config = config
        self.timeout = timeout

    def send(self, message: OutgoingMessage) -> None:
        url, extra = _signed_url(self.config)
        payload = {**webhook_payload(self.config.kind, message.subject, message.body), **extra}
        request = urllib.request.Request(
            url,
            data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read().decode("utf-8", errors="replace")
        except OSError as error:  # URLError, HTTPError, timeouts
            raise ChannelDown(f"webhook 发送失败：{error}") from error
        _check_webhook_answer(self.config.kind, body)

    def close(self) -> None:
        pass


def _check_webhook_answer(kind: str, body: str) -> None:
    """WeCom/DingTalk/Feishu answer HTTP 200 with an error code in the JSON body."""
    if kind == "slack":
        if body.strip() not in ("ok", ""):
            raise ChannelDown(f"Slack webhook 返回错误：{body[:200]}")
        return
    try:
        answer = json.loads(body) if body.strip() else {}
    except ValueError as error:
        raise ChannelDown(f"webhook 返回无法解析：{body[:200]}") from error
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
    if code not in (0, None):
        message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
        raise ChannelDown(f"{kind} webhook 返回错误 {code}：{message}")


# --- dispatch ----------------------------------------------------------------------------------


@dataclass
class DispatchSummary:
    as_of: datetime
    dry_run: bool
    channels: list[str]
    planned: list[OutgoingMessage] = field(default_factory=list)  # not sent before this run
    sent: int = 0
    already_sent: int = 0
    failed: list[tuple[OutgoingMessage, str]] = field(default_factory=list)
    skipped_channel_down: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped_channel_down

    def to_text(self) -> str:
        if self.dry_run:
            return f"通知预演：将发送 {len(self.planned)} 条，已发送过 {self.already_sent} 条（未实际发送）"
        text = f"通知：新发送 {self.sent} 条，已发送过 {self.already_sent} 条"
        if self.failed or self.skipped_channel_down:
            text += f"，失败 {len(self.failed)} 条，因渠道故障暂缓 {self.skipped_channel_down} 条（下次运行补发）"
        return text


def ensure_dispatch_log(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS mart")
    conn.execute(DISPATCH_LOG_DDL)


def _log_sent(conn: duckdb.DuckDBPyConnection, message: OutgoingMessage, as_of: datetime) -> None:
    conn.execute(
        "INSERT INTO mart.alert_dispatch_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [
            message.dispatch_key, message.alert_id, message.first_seen_as_of, message.kind, message.channel,
            message.recipient, ", ".join(message.cc) or None, message.alert_type, message.subject, message.body, as_of,
        ],
    )


def dispatch_alerts(
    conn: duckdb.DuckDBPyConnection,
    as_of: datetime | str,
    settings: Settings,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
) -> DispatchSummary:
    """Send the open alerts of mart.alerts (evaluated at as_of) that were not sent yet.

    Channels come from settings `notify:` and RECON_SMTP_* / RECON_WEBHOOK_* (`env`, default
    os.environ). A channel that fails stops being used for this run; its remaining messages
    are sent by the next run. Dry-run prints what would be sent and writes nothing.
    """
    as_of = as_naive_datetime(as_of)
    ensure_alert_tables(conn)
    ensure_dispatch_log(conn)
    other = conn.execute("SELECT min(as_of) FROM mart.alerts WHERE as_of <> ?", [as_of]).fetchone()[0]
    if other is not None:
        raise NotificationError(f"mart.alerts 的数据截至 {other}，与本次 {as_of} 不一致：请先评估本次预警再发送")

    mail = email_config(settings, env)
    hooks = webhook_configs(settings, env)
    channels = (["email"] if mail else []) + [hook.channel for hook in hooks]
    if not channels:
        if not dry_run:
            raise NotificationError("未配置通知渠道：请设置 RECON_SMTP_HOST 或 RECON_WEBHOOK_URL（或 settings 的 notify:）")
        channels = ["email"]  # preview as e-mail

    alerts = conn.execute("SELECT * FROM mart.alerts WHERE as_of = ?", [as_of]).df()
    messages = plan_messages(alerts, as_of, settings, channels)
    if conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
                    "AND table_schema = 'mart' AND table_name = 'alert_sla'").fetchone()[0]:
        sla = conn.execute("SELECT * FROM mart.alert_sla WHERE as_of = ?", [as_of]).df()
        messages += plan_escalations(sla, as_of, settings, channels)
    logged = {row[0] for row in conn.execute("SELECT dispatch_key FROM mart.alert_dispatch_log").fetchall()}
    summary = DispatchSummary(as_of=as_of, dry_run=dry_run, channels=channels)
    summary.already_sent = sum(1 for m in messages if m.dispatch_key in logged)
    summary.planned = [m for m in messages if m.dispatch_key not in logged]

    if dry_run:
        for message in summary.planned:
            echo(f"[预演] {message.describe()}")
        echo(summary.to_text())
        return summary

    timeout = float((settings.raw.get("notify") or {}).get("webhook_timeout_seconds") or 10)
    senders: dict[str, Any] = {hook.channel: WebhookChannel(hook, timeout) for hook in hooks}
    if mail:
        senders["email"] = EmailChannel(mail)
    down: dict[str, str] = {}
    try:
        for message in summary.planned:
            if message.channel in down:
                summary.skipped_channel_down += 1
                continue
            try:
                senders[message.channel].send(message)
            except MessageRejected as error:
                summary.failed.append((message, str(error)))
                continue
            except ChannelDown as error:
                down[message.channel] = str(error)
                summary.failed.append((message, str(error)))
                continue
            crash_point("notify:sent")  # the window the Message-ID covers
            _log_sent(conn, message, as_of)  # committed right away: a crash after this never resends it
            summary.sent += 1
    finally:
        for sender in senders.values():
            sender.close()
    for message, error in summary.failed:
        echo(f"发送失败：{message.describe()}：{error}")
    echo(summary.to_text())
    return summary


def send_operator_message(settings: Settings, subject: str, body: str, env: Mapping[str, str] | None = None) -> int:
    """A one-off message to the data engineers (e.g. a failed Dagster run) on every channel.

    Not an alert: nothing is logged, a failing channel is skipped. Returns how many channels
    accepted it.
    """
    conf = settings.raw.get("notify") or {}
    operators = list(conf.get("operator_recipients") or conf.get("health_recipients") or [])
    channels: list[Any] = []
    mail = email_config(settings, env)
    if mail and operators:
        channels.append(("email", EmailChannel(mail)))
    timeout = float(conf.get("webhook_timeout_seconds") or 10)
    channels += [(hook.channel, WebhookChannel(hook, timeout)) for hook in webhook_configs(settings, env)]
    delivered = 0
    for name, channel in channels:
        message = OutgoingMessage(
            dispatch_key="", alert_id="", first_seen_as_of=datetime.min, kind="operator", channel=name,
            recipient=operators[0] if operators else "", cc=tuple(operators[1:]), alert_type="run_failure",
            subject=subject, body=body,
        )
        try:
            channel.send(message)
            delivered += 1
        except (ChannelDown, MessageRejected, OSError):
            continue
        finally:
            channel.close()
    return delivered
