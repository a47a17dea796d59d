"""`kind: http`: a JSON or CSV API, page by page, as one Parquet drop of text columns.

The documented example is DingTalk's approval flow: list the instance ids of a process
(`POST /v1.0/workflow/processes/instanceIds/query`, cursor `nextToken`), then fetch each one
(`GET /v1.0/workflow/processInstances?processInstanceId=...`). A record's nested objects become
dotted columns (`originator.name`), and a list of {name, value} form fields (`form_values:
formComponentValues`) becomes one column per field, named as the form names it, so the
column mapping maps `订单号` to `order_id` as it does for a file's header. Values stay text
exactly as the API sent them (JSON numbers are read as decimals, never floats); ingest types them.

Requests carry an auth header from an environment variable; 429 and 5xx answers, timeouts
and refused connections are retried a bounded number of times with exponential backoff
(honouring Retry-After). Request values (and URLs) may use the run's as-of: `{as_of}`, `{as_of_date}`,
`{as_of_iso}`, `{as_of_ms}`, `{as_of_s}` and the same for `since` (as-of minus `lookback_days`).
"""

from __future__ import annotations

import csv
import io
import json
import string
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import pyarrow as pa

from recon_pipeline.extract.config import ExtractError, HttpRequest, HttpSpec, secret
from recon_pipeline.extract.landing import table_digest, write_parquet_drop
from recon_pipeline.extract.stage import ExtractContext, ExtractResult, relative


def extract_http(spec: HttpSpec, context: ExtractContext) -> ExtractResult:
    import httpx

    result = ExtractResult(spec.name, spec.source, spec.kind)
    variables = _variables(spec, context.as_of, context.settings.timezone)
    headers = dict(spec.headers)
    if spec.auth_header:
        headers[spec.auth_header] = spec.auth_prefix + secret(spec, spec.auth_env, f"接口认证头 {spec.auth_header} 的值")
    with httpx.Client(timeout=spec.timeout, headers=headers, follow_redirects=True) as client:
        caller = _Caller(spec, client)
        if spec.format == "csv":
            rows = [row for page in _pages(spec, caller, spec.request, variables) for row in page]
        else:
            records = [r for page in _pages(spec, caller, spec.request, variables) for r in page]
            if spec.detail is not None:
                records = [_detail_record(spec, caller, record, variables) for record in records]
            rows = [_flatten(spec, record) for record in records]
    table = _text_table(rows)
    if table.num_rows == 0:
        result.note = "接口没有返回记录"
        return result
    digest = table_digest(table)
    if digest == context.state.data.get("digest"):
        result.note = "与上次提取相同"
        return result
    path = write_parquet_drop(table, context.landing, spec.source, context.as_of)
    result.files, result.rows = [relative(context.landing, path)], table.num_rows
    context.state.data.update(digest=digest, last_file=result.files[0])
    context.state.save()
    return result


# ---------------------------------------------------------------------------- requests


class _Caller:
    """Requests with bounded retries: 429 / 5xx / timeouts / refused, backoff doubling each time."""

    def __init__(self, spec: HttpSpec, client):
        self.spec, self.client = spec, client

    def call(self, request: HttpRequest, url: str, params: dict, body: Any):
        import httpx

        spec = self.spec
        shown = str(httpx.URL(url).copy_with(query=None))  # a query may carry a token
        for attempt in range(spec.retries + 1):
            wait = None
            try:
                response = self.client.request(
                    request.method, url, params=params or None,
                    json=body if request.method == "POST" else None,
                )
            except httpx.TimeoutException:
                problem = f"{spec.timeout:g} 秒内没有响应"
            except httpx.TransportError as exc:
                problem = f"无法连接（{type(exc).__name__}: {exc}）"
            else:
                code = response.status_code
                if code < 400:
                    return response
                if code in (401, 403):
                    raise ExtractError(
                        f"{spec.name}: 接口 {shown} 拒绝访问（HTTP {code}），请检查环境变量 {spec.auth_env or '(未配置 auth_env)'} 中的令牌"
                    )
                if code != 429 and code < 500:
                    raise ExtractError(f"{spec.name}: 接口 {shown} 返回 HTTP {code}: {_snippet(response)}")
                problem, wait = f"返回 HTTP {code}", _retry_after(response)
            if attempt == spec.retries:
                raise ExtractError(f"{spec.name}: 接口 {shown} {problem}，已重试 {spec.retries} 次仍失败；本次未写入任何文件")
            delay = wait if wait is not None else spec.backoff_seconds * 2 ** attempt
            time.sleep(min(delay, spec.max_backoff_seconds))
        raise AssertionError("unreachable")

    def json(self, request: HttpRequest, url: str, params: dict, body: Any) -> Any:
        response = self.call(request, url, params, body)
        try:
            return json.loads(response.text, parse_float=Decimal)
        except ValueError:
            shown = url.split("?")[0]
            raise ExtractError(f"{self.spec.name}: 接口 {shown} 返回的不是 JSON: {_snippet(response)}") from None


def _retry_after(response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _snippet(response) -> str:
    return " ".join(response.text[:200].split()) or "(空)"


def _pages(spec: HttpSpec, caller: _Caller, request: HttpRequest, variables: dict) -> Iterator[list]:
    """Each page's records (JSON objects, or CSV rows as dicts) until the pagination ends."""
    paging = spec.pagination
    url = str(_render(request.url, variables, spec.name))
    params, body = _render(request.params, variables, spec.name), _render(request.body, variables, spec.name)
    cursor, page, seen = None, paging.start, set()
    header = None
    for _ in range(paging.max_pages):
        if paging.type == "cursor" and cursor is not None:
            params, body = _put(paging.location, params, body, paging.cursor_param, cursor)
        elif paging.type == "page_number":
            params, body = _put(paging.location, params, body, paging.page_param, page)
            if paging.size_param and paging.size:
                params, body = _put(paging.location, params, body, paging.size_param, paging.size)
        if spec.format == "csv":
            header, records = _csv_page(spec, caller.call(request, url, params, body), header)
            data = None
        else:
            data = caller.json(request, url, params, body)
            records = _at(data, request.records) if request.records else data
            if records is None:
                records = []
            if not isinstance(records, list):
                raise ExtractError(f"{spec.name}: 接口返回中 {request.records or '(整个响应)'} 不是列表")
        yield records
        if paging.type == "none" or not records:
            return
        if paging.type == "cursor":
            cursor = _at(data, paging.cursor_path) if data is not None else None
            if cursor is None or cursor == "" or json.dumps(cursor, default=str) in seen:
                return
            seen.add(json.dumps(cursor, default=str))
        else:
            if paging.has_more_path and data is not None:
                if not _truthy(_at(data, paging.has_more_path)):
                    return
            elif paging.size and len(records) < paging.size:
                return
            page += 1
    raise ExtractError(f"{spec.name}: 超过 {paging.max_pages} 页仍未结束（请检查分页设置）")


def _detail_record(spec: HttpSpec, caller: _Caller, listed: Any, variables: dict) -> Any:
    identifier = _at(listed, spec.detail_id) if spec.detail_id else listed
    if identifier is None or isinstance(identifier, (dict, list)):
        raise ExtractError(f"{spec.name}: 列表记录中找不到编号（detail.id: {spec.detail_id or '(记录本身)'}）")
    scope = {**variables, "id": identifier}
    request = spec.detail
    data = caller.json(request, str(_render(request.url, scope, spec.name)), _render(request.params, scope, spec.name),
                       _render(request.body, scope, spec.name))
    record = _at(data, request.records) if request.records else data
    if not isinstance(record, dict):
        raise ExtractError(f"{spec.name}: 详情接口返回中 {request.records or '(整个响应)'} 不是 JSON 对象（编号 {identifier}）")
    return record


def _csv_page(spec: HttpSpec, response, header: list[str] | None) -> tuple[list[str], list[dict]]:
    from recon_pipeline.ingest.readers import FileReadError, detect_encoding

    data = response.content
    if not data.strip():
        return header or [], []
    try:
        text = data.decode(detect_encoding(data))
    except (FileReadError, UnicodeDecodeError, LookupError) as exc:
        raise ExtractError(f"{spec.name}: 接口返回的 CSV 无法解码（{exc}）") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    page_header = [cell.replace("\ufeff", "").strip() for cell in rows[0]] if rows else []
    if header is not None and page_header and page_header != header:
        raise ExtractError(f"{spec.name}: 各页 CSV 的表头不同（第一页: {', '.join(header[:8])}）")
    records = [dict(zip(page_header, row)) for row in rows[1:] if "".join(row).strip()]
    return page_header, records


# ---------------------------------------------------------------------------- records -> table


def _flatten(spec: HttpSpec, record: Any) -> dict[str, str | None]:
    if not isinstance(record, dict):
        raise ExtractError(f"{spec.name}: 记录不是 JSON 对象（{str(record)[:40]}）；列表接口只返回编号时请配置 detail")
    form = None
    if spec.form_values is not None:
        *parents, last = spec.form_values.path.split(".")
        holder = _at(record, ".".join(parents)) if parents else record
        if isinstance(holder, dict):
            form = holder.get(last)
            holder = {k: v for k, v in holder.items() if k != last}
            record = _replace(record, parents, holder)
    row: dict[str, str | None] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            row[prefix] = _text(value)

    walk("", record)
    for item in form or []:
        if isinstance(item, dict) and item.get(spec.form_values.name) not in (None, ""):
            row[str(item[spec.form_values.name]).strip()] = _text(item.get(spec.form_values.value))
    return row


def _replace(record: dict, parents: list[str], holder: dict) -> dict:
    if not parents:
        return holder
    head, *rest = parents
    return {**record, head: _replace(record[head], rest, holder)}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _text_table(rows: list[dict[str, str | None]]) -> pa.Table:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return pa.table({name: pa.array([row.get(name) for row in rows], pa.string()) for name in columns})


# ---------------------------------------------------------------------------- values


def _at(data: Any, path: str | None) -> Any:
    """`result.list`, `items.0.id`: a dotted path into JSON; None where it leads nowhere."""
    if not path:
        return data
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.lstrip("-").isdigit() and -len(data) <= int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", "false", "False", "0")


def _put(location: str, params: dict, body: Any, key: str, value: Any) -> tuple[dict, Any]:
    if location == "params":
        return {**params, key: value}, body
    return params, {**(body or {}), key: value}


def _variables(spec: HttpSpec, as_of: datetime, timezone: str) -> dict[str, Any]:
    zone = ZoneInfo(timezone)
    since = as_of - timedelta(days=spec.lookback_days)
    values: dict[str, Any] = {}
    for name, moment in (("as_of", as_of), ("since", since)):
        aware = moment.replace(tzinfo=zone)
        values.update({
            name: moment.strftime("%Y-%m-%d %H:%M:%S"), f"{name}_date": moment.date().isoformat(),
            f"{name}_iso": aware.isoformat(), f"{name}_ms": int(aware.timestamp() * 1000),
            f"{name}_s": int(aware.timestamp()),
        })
    return values


def _render(value: Any, variables: dict[str, Any], name: str = "") -> Any:
    """Fill `{placeholders}`; a value that is only a placeholder keeps its type (ms stay numbers)."""
    if isinstance(value, dict):
        return {k: _render(v, variables, name) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, variables, name) for v in value]
    if not isinstance(value, str) or "{" not in value:
        return value
    fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    unknown = [f for f in fields if f not in variables]
    if unknown:
        raise ExtractError(f"{name}: 未知的占位符 {{{unknown[0]}}}（可用: {', '.join('{' + k + '}' for k in variables)}）")
    if len(fields) == 1 and value == "{" + fields[0] + "}":
        return variables[fields[0]]
    return value.format_map(variables)
