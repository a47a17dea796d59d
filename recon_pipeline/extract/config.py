"""The `extract:` settings: one entry per source to pull, validated into typed specs.

Credentials never live in the settings file: an entry names the environment variables that
hold them (`url_env`, `key_file_env`, `auth_env`, ...), and they are read only when the
extraction runs. Unknown options are errors, so a typo never silently changes what is pulled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from recon_pipeline.settings import Settings
from recon_pipeline.sources import SOURCES

KINDS = ("sql", "sftp", "http")


class ExtractError(Exception):
    """An extraction failed; the message is one line for the user (Chinese) and names the entry."""


@dataclass(frozen=True, kw_only=True)
class ExtractSpec:
    name: str  # the entry's name: its state, lock and Dagster asset
    source: str  # the landing source its drops go to (the name, unless `source:` says otherwise)
    kind: str
    timeout: float  # seconds for connecting and for each network operation


@dataclass(frozen=True, kw_only=True)
class SqlSpec(ExtractSpec):
    url_env: str
    table: str | None = None
    db_schema: str | None = None
    query: str | None = None
    incremental: str | None = None  # a column that grows with every change (updated_at, an id)
    batch_rows: int = 50_000


@dataclass(frozen=True, kw_only=True)
class SftpSpec(ExtractSpec):
    host: str
    port: int
    user: str
    remote_dir: str
    glob: str
    key_file_env: str | None = None
    password_env: str | None = None
    passphrase_env: str | None = None
    known_hosts: str | None = None  # an OpenSSH known_hosts file; else the first key seen is pinned
    settle_seconds: float = 2.0  # a file's size must stay the same this long before it is fetched
    settle_timeout: float = 120.0  # give up on a file still growing after this long


@dataclass(frozen=True, kw_only=True)
class HttpRequest:
    url: str
    method: str = "GET"
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    records: str | None = None  # dotted path to the records (list call) or the record (detail call)


@dataclass(frozen=True, kw_only=True)
class Pagination:
    type: str = "none"  # none | cursor | page_number
    location: str | None = None  # where the page/cursor goes: params | body (default: body for POST)
    cursor_path: str | None = None  # where the next cursor is in a response
    cursor_param: str | None = None  # the request field that carries it
    page_param: str | None = None
    start: int = 1
    size_param: str | None = None
    size: int | None = None
    has_more_path: str | None = None
    max_pages: int = 10_000


@dataclass(frozen=True, kw_only=True)
class FormValues:
    """A list of {name, value} objects (DingTalk's formComponentValues) turned into columns."""

    path: str
    name: str = "name"
    value: str = "value"


@dataclass(frozen=True, kw_only=True)
class HttpSpec(ExtractSpec):
    request: HttpRequest
    format: str = "json"  # json | csv
    pagination: Pagination = field(default_factory=Pagination)
    detail: HttpRequest | None = None  # fetch each listed record (list ids, then get each one)
    detail_id: str | None = None  # path of the id in a listed record; default: the record itself
    form_values: FormValues | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth_header: str | None = None
    auth_env: str | None = None
    auth_prefix: str = ""
    lookback_days: int = 1
    retries: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0


class _Entry:
    """One settings mapping read key by key; `finish()` rejects what nobody asked for."""

    def __init__(self, where: str, data: Any):
        if not isinstance(data, dict):
            raise ExtractError(f"设置 {where}: 应为键值对（YAML mapping）")
        self.where, self.data, self.seen = where, data, set()

    def get(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        self.seen.add(key)
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise ExtractError(f"设置 {self.where}: 缺少 {key}")
            return default
        return value

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.get(key, default, required=required)
        return None if value is None else str(value)

    def number(self, key: str, default: float, *, integer: bool = False, minimum: float = 0) -> Any:
        value = self.get(key, default)
        try:
            number = int(value) if integer else float(value)
        except (TypeError, ValueError):
            raise ExtractError(f"设置 {self.where}.{key}: 应为数字，实际为 {value!r}") from None
        if number < minimum:
            raise ExtractError(f"设置 {self.where}.{key}: 不能小于 {minimum}")
        return number

    def mapping(self, key: str) -> dict:
        value = self.get(key, {})
        if not isinstance(value, dict):
            raise ExtractError(f"设置 {self.where}.{key}: 应为键值对（YAML mapping）")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = str(self.get(key, default)).strip()
        if value.lower() not in options:
            raise ExtractError(f"设置 {self.where}.{key}: 应为 {' / '.join(options)} 之一，实际为 {value!r}")
        return value.lower()

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise ExtractError(
                f"设置 {self.where}: 未知的选项 {', '.join(map(str, unknown))}（可用: {', '.join(sorted(self.seen))}）"
            )


def _common(name: str, entry: _Entry) -> dict[str, Any]:
    source = entry.text("source", name)
    if source not in SOURCES:
        raise ExtractError(
            f"设置 {entry.where}: 数据源 {source} 不存在；条目名或 source: 应为 {', '.join(SOURCES)} 之一"
        )
    return {"name": name, "source": source, "timeout": entry.number("timeout", 30, minimum=0.1)}


def _sql(name: str, entry: _Entry) -> SqlSpec:
    common = _common(name, entry)
    table, query = entry.text("table"), entry.text("query")
    if bool(table) == bool(query):
        raise ExtractError(f"设置 {entry.where}: 需要 table 或 query 之一（只能一个）")
    return SqlSpec(
        **common, kind="sql", url_env=entry.text("url_env", required=True), table=table, query=query,
        db_schema=entry.text("schema"), incremental=entry.text("incremental"),
        batch_rows=entry.number("batch_rows", 50_000, integer=True, minimum=1),
    )


def _sftp(name: str, entry: _Entry) -> SftpSpec:
    common = _common(name, entry)
    spec = SftpSpec(
        **common, kind="sftp", host=entry.text("host", required=True),
        port=entry.number("port", 22, integer=True, minimum=1), user=entry.text("user", required=True),
        remote_dir=entry.text("remote_dir", "."), glob=entry.text("glob", "*"),
        key_file_env=entry.text("key_file_env"), password_env=entry.text("password_env"),
        passphrase_env=entry.text("passphrase_env"), known_hosts=entry.text("known_hosts"),
        settle_seconds=entry.number("settle_seconds", 2.0), settle_timeout=entry.number("settle_timeout", 120.0),
    )
    if not spec.key_file_env and not spec.password_env:
        raise ExtractError(f"设置 {entry.where}: 需要 key_file_env（私钥路径所在的环境变量）或 password_env")
    return spec


def _http(name: str, entry: _Entry) -> HttpSpec:
    common = _common(name, entry)
    request = HttpRequest(
        url=entry.text("url", required=True), method=entry.choice("method", ("get", "post"), "get").upper(),
        params=entry.mapping("params"), body=entry.get("body"), records=entry.text("records"),
    )
    paging = _Entry(f"{entry.where}.pagination", entry.get("pagination", {}))
    pagination = Pagination(
        type=paging.choice("type", ("none", "cursor", "page_number"), "none"),
        location=paging.choice("location", ("params", "body"), "body" if request.method == "POST" else "params"),
        cursor_path=paging.text("cursor_path"), cursor_param=paging.text("cursor_param"),
        page_param=paging.text("page_param"), start=paging.number("start", 1, integer=True),
        size_param=paging.text("size_param"),
        size=paging.number("size", 0, integer=True) or None,
        has_more_path=paging.text("has_more_path"),
        max_pages=paging.number("max_pages", 10_000, integer=True, minimum=1),
    )
    paging.finish()
    if pagination.type == "cursor" and not (pagination.cursor_path and pagination.cursor_param):
        raise ExtractError(f"设置 {entry.where}.pagination: 游标分页需要 cursor_path 与 cursor_param")
    if pagination.type == "page_number" and not pagination.page_param:
        raise ExtractError(f"设置 {entry.where}.pagination: 页码分页需要 page_param")
    detail = detail_id = None
    if entry.get("detail") is not None:
        details = _Entry(f"{entry.where}.detail", entry.get("detail"))
        detail = HttpRequest(
            url=details.text("url", required=True), method=details.choice("method", ("get", "post"), "get").upper(),
            params=details.mapping("params"), body=details.get("body"), records=details.text("record"),
        )
        detail_id = details.text("id")
        details.finish()
    form_values = None
    raw_form = entry.get("form_values")
    if raw_form is not None:
        if isinstance(raw_form, str):
            form_values = FormValues(path=raw_form)
        else:
            form = _Entry(f"{entry.where}.form_values", raw_form)
            form_values = FormValues(path=form.text("path", required=True), name=form.text("name", "name"),
                                     value=form.text("value", "value"))
            form.finish()
    headers = {str(k): str(v) for k, v in entry.mapping("headers").items()}
    spec = HttpSpec(
        **common, kind="http", request=request, format=entry.choice("format", ("json", "csv"), "json"),
        pagination=pagination, detail=detail, detail_id=detail_id, form_values=form_values, headers=headers,
        auth_header=entry.text("auth_header"), auth_env=entry.text("auth_env"),
        auth_prefix=entry.text("auth_prefix", ""),
        lookback_days=entry.number("lookback_days", 1, integer=True),
        retries=entry.number("retries", 4, integer=True), backoff_seconds=entry.number("backoff_seconds", 1.0),
        max_backoff_seconds=entry.number("max_backoff_seconds", 60.0),
    )
    if bool(spec.auth_header) != bool(spec.auth_env):
        raise ExtractError(f"设置 {entry.where}: auth_header 与 auth_env 需同时配置")
    return spec


_PARSERS = {"sql": _sql, "sftp": _sftp, "http": _http}


def extract_specs(settings: Settings) -> list[ExtractSpec]:
    """Every configured extraction, in the settings' order; raises ExtractError on a bad entry."""
    section = settings.raw.get("extract") or {}
    if not isinstance(section, dict):
        raise ExtractError("设置 extract: 应为键值对（每个数据源一项）")
    specs = []
    for name, data in section.items():
        if data is None:  # `crm_contracts: ~` in a user's file switches a default entry off
            continue
        entry = _Entry(f"extract.{name}", data)
        kind = str(entry.get("kind", required=True)).strip().lower()
        if kind not in _PARSERS:
            raise ExtractError(f"设置 extract.{name}: 未知的 kind {kind!r}（可用: {', '.join(KINDS)}）")
        spec = _PARSERS[kind](str(name), entry)
        entry.finish()
        specs.append(spec)
    return specs


def secret(spec: ExtractSpec, variable: str, what: str) -> str:
    """A credential from the environment variable the settings name (never from the file)."""
    value = os.environ.get(variable, "")
    if not value.strip():
        raise ExtractError(f"{spec.name}: 环境变量 {variable} 未设置（{what}）")
    return value.strip()
