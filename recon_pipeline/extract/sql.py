"""`kind: sql`: a table or a query of any database SQLAlchemy reaches, as one Parquet drop.

The result keeps the database's column names (ingest's column mapping applies to them as to a
file's headers) and its types: money stays DECIMAL, times stay timestamps (converted to local
time when they carry an offset). Rows are streamed in batches; a column whose values change
type within a result, or between runs, stops the extraction before anything is written.

With `incremental: <column>` each run asks only for rows at or above the highest value seen
(`>=`, so a row committed later with the same value is not lost) and leaves out the rows at
that value it already delivered. Without it each run is a full snapshot, written only when
its content differs from the last one.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from recon_pipeline.extract.config import ExtractError, SqlSpec, secret
from recon_pipeline.extract.landing import (
    localize_timestamps,
    row_hashes,
    table_digest,
    type_family,
    write_parquet_drop,
)
from recon_pipeline.extract.stage import ExtractContext, ExtractResult, relative

URL_HINT = "SQLAlchemy 连接串，如 postgresql://user:password@host:5432/db"

_LOGIN = re.compile(r"password authentication failed|authentication failed|access denied|login failed|"
                    r"no password supplied|role \S+ does not exist", re.IGNORECASE)
_TIMEOUT = re.compile(r"timeout expired|timed out|timeout", re.IGNORECASE)
_UNREACHABLE = re.compile(r"connection refused|could not connect|could not translate host name|"
                          r"name or service not known|no route to host|network is unreachable|"
                          r"can't connect|unable to open database", re.IGNORECASE)
_NO_DATABASE = re.compile(r"database \S+ does not exist|unknown database", re.IGNORECASE)


def extract_sql(spec: SqlSpec, context: ExtractContext) -> ExtractResult:
    result = ExtractResult(spec.name, spec.source, spec.kind)
    state = context.state.data
    watermark = _from_json(state.get("watermark")) if spec.incremental else None
    table = _fetch(spec, watermark)

    if spec.incremental and spec.incremental not in table.column_names:
        raise ExtractError(f"{spec.name}: 增量列 {spec.incremental} 不在查询结果中（结果的列: {', '.join(table.column_names)}）")
    families = _checked_families(spec, table, state.get("columns") or {}, context.accept_schema_change)

    new_watermark, boundary = None, []
    if spec.incremental:
        table, new_watermark, boundary = _only_new_rows(spec, table, watermark, set(state.get("boundary_rows") or []))
    if table.num_rows == 0:
        result.note = "没有新行" if spec.incremental else "源表没有数据"
        _remember(context, families, new_watermark, boundary)
        return result

    local = localize_timestamps(table, context.settings.timezone)
    digest = table_digest(local)
    if not spec.incremental and digest == state.get("digest"):
        result.note = "与上次提取相同"
        return result
    path = write_parquet_drop(local, context.landing, spec.source, context.as_of)
    result.files, result.rows = [relative(context.landing, path)], local.num_rows
    state["digest"] = digest
    state["last_file"] = result.files[0]
    _remember(context, families, new_watermark, boundary)
    return result


def _remember(context: ExtractContext, families: dict[str, str], watermark: Any, boundary: list[str]) -> None:
    state = context.state.data
    state["columns"] = families
    if watermark is not None:
        state["watermark"] = _to_json(watermark)
        state["boundary_rows"] = boundary
    context.state.save()


# ---------------------------------------------------------------------------- reading


def _engine(spec: SqlSpec, url_text: str):
    """One engine per URL and timeout for the process: a dialect learns the server once (its
    first connection runs set-up queries); NullPool keeps no connection open in between."""
    return _cached_engine(spec.name, spec.url_env, url_text, spec.timeout)


@functools.lru_cache(maxsize=32)
def _cached_engine(name: str, url_env: str, url_text: str, timeout: float):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    from sqlalchemy.pool import NullPool

    try:
        url = make_url(url_text)
    except ArgumentError:
        raise ExtractError(f"{name}: 环境变量 {url_env} 中的连接串无效（应为 {URL_HINT}）") from None
    try:
        return create_engine(url, poolclass=NullPool, connect_args=_timeout_args(url, timeout)), url
    except (NoSuchModuleError, ImportError) as exc:
        raise ExtractError(f"{name}: 不支持的数据库类型 {url.drivername}（缺少驱动: {exc}）") from None


def _timeout_args(url, seconds: float) -> dict[str, Any]:
    """Each driver names its connect timeout differently; one in the URL itself wins."""
    backend, driver = url.get_backend_name(), url.get_driver_name()
    name = {"postgresql": "connect_timeout", "mysql": "connect_timeout", "mariadb": "connect_timeout"}.get(backend)
    if backend == "mssql" and driver == "pyodbc":
        name = "timeout"
    if name is None or name in url.query:
        return {}
    return {name: max(2, int(round(seconds)))}  # libpq ignores values below 2 seconds


def _statement(spec: SqlSpec, watermark: Any):
    from sqlalchemy import bindparam, column, literal_column, select, table, text

    if spec.incremental is None:
        if spec.query:
            return text(spec.query), {}
        return select(literal_column("*")).select_from(table(spec.table, schema=spec.db_schema)), {}
    source = (table(spec.table, schema=spec.db_schema) if spec.table
              else text(spec.query).columns().subquery("recon_source"))
    statement = select(literal_column("*")).select_from(source)
    if watermark is None:
        return statement, {}
    return statement.where(column(spec.incremental) >= bindparam("watermark")), {"watermark": watermark}


def _fetch(spec: SqlSpec, watermark: Any) -> pa.Table:
    from sqlalchemy.exc import SQLAlchemyError

    url_text = secret(spec, spec.url_env, URL_HINT)
    engine, url = _engine(spec, url_text)
    try:
        with engine.connect() as conn:
            statement, params = _statement(spec, watermark)
            rows = conn.execution_options(stream_results=True, yield_per=spec.batch_rows).execute(statement, params)
            names = list(rows.keys())
            declared = _declared_decimals(rows.cursor.description if rows.cursor is not None else None)
            chunks = [_chunk(spec, names, batch) for batch in rows.partitions(spec.batch_rows)]
    except SQLAlchemyError as exc:
        raise ExtractError(_database_message(spec, url, exc)) from None
    if not chunks:
        return pa.table({name: pa.nulls(0) for name in names}) if names else pa.table({})
    try:
        table = pa.concat_tables(chunks, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ExtractError(f"{spec.name}: 查询结果中同一列的值类型前后不一致（{_first_line(exc)}）") from None
    return _with_declared_decimals(table, declared)


def _declared_decimals(description) -> list[tuple[int | None, int | None]]:
    """(precision, scale) the driver reports per column (PEP 249), e.g. (18, 2) for numeric(18,2)."""
    declared = []
    for column in description or []:
        precision, scale = (column[4], column[5]) if len(column) > 5 else (None, None)
        declared.append((precision if isinstance(precision, int) and 0 < precision <= 38 else None,
                         scale if isinstance(scale, int) and 0 <= scale <= 38 else None))
    return declared


def _with_declared_decimals(table: pa.Table, declared: list[tuple[int | None, int | None]]) -> pa.Table:
    """Decimals get the column's declared type, not one inferred from this run's values (a
    day's amounts would otherwise be DECIMAL(7,2) one day and DECIMAL(9,2) the next)."""
    for position, column_field in enumerate(table.schema):
        if not pa.types.is_decimal(column_field.type):
            continue
        precision, scale = declared[position] if position < len(declared) else (None, None)
        scale = column_field.type.scale if scale is None else max(scale, column_field.type.scale)
        target = pa.decimal128(precision or 38, scale) if (precision or 38) >= scale else column_field.type
        try:
            table = table.set_column(position, column_field.name, table.column(position).cast(target))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass  # a value wider than the declaration (it happens): keep what was read
    return table


def _chunk(spec: SqlSpec, names: list[str], rows: list) -> pa.Table:
    columns = list(zip(*rows)) if rows else [() for _ in names]
    return pa.table({name: _array(spec, name, list(values)) for name, values in zip(names, columns)})


def _array(spec: SqlSpec, name: str, values: list) -> pa.Array:
    """Arrow infers the type from the driver's Python values (Decimal, datetime, date, str, ...);
    values it cannot hold (JSON documents, UUIDs, huge integers) are kept as text."""
    import json

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        pass
    kinds = {type(v).__name__ for v in values if v is not None}
    if all(isinstance(v, (dict, list)) for v in values if v is not None):
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in values], pa.string())
    if len(kinds) == 1:
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    raise ExtractError(f"{spec.name}: 列 {name} 的值类型不一致（{'、'.join(sorted(kinds))}），无法确定列类型")


def _database_message(spec: SqlSpec, url, exc: Exception) -> str:
    detail = _first_line(getattr(exc, "orig", None) or exc)
    where = f"{url.host or 'localhost'}:{url.port}" if url.port else (url.host or url.database or url.drivername)
    if _LOGIN.search(detail):
        return f"{spec.name}: 数据库登录失败（{where}，用户 {url.username}）：用户名或密码错误，请检查 {spec.url_env}"
    if _NO_DATABASE.search(detail):
        return f"{spec.name}: 数据库 {url.database} 不存在（{where}）"
    if _UNREACHABLE.search(detail):
        return f"{spec.name}: 无法连接数据库 {where}（{_reason(detail)}）"
    if _TIMEOUT.search(detail):
        return f"{spec.name}: 连接数据库 {where} 超时（{spec.timeout:g} 秒内没有响应）"
    return f"{spec.name}: 查询失败: {detail}"


def _reason(detail: str) -> str:
    return detail.split("failed:")[-1].strip() if "failed:" in detail else detail


def _first_line(exc: object) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


# ---------------------------------------------------------------------------- types and watermark


def _checked_families(spec: SqlSpec, table: pa.Table, known: dict[str, str], accept: bool) -> dict[str, str]:
    """Column types (by family) of this result, after refusing a change from the last run's."""
    families = dict(known)
    for column_field in table.schema:
        family = type_family(column_field.type)
        if family == "null":  # only NULLs in this result: says nothing about the column's type
            continue
        before = known.get(column_field.name)
        if before and before != family and not accept:
            raise ExtractError(
                f"{spec.name}: 列 {column_field.name} 的类型变了（上次 {before}，这次 {family}）；"
                f"确认源表改动无误后运行 recon extract --source {spec.name} --accept-schema-change"
            )
        families[column_field.name] = family
    return families


def _only_new_rows(spec: SqlSpec, table: pa.Table, watermark: Any, delivered: set[str]):
    """Drop the rows at the previous watermark already delivered; the new watermark and the
    hashes of the rows at it (to leave out next time)."""
    values = table.column(spec.incremental).to_pylist()
    if watermark is not None and table.num_rows:
        at_previous = [v is not None and _not_above(v, watermark) for v in values]
        hashes = row_hashes(table.filter(pa.array(at_previous)))
        seen = iter(h in delivered for h in hashes)
        keep = [not next(seen) if flag else True for flag in at_previous]
        table = table.filter(pa.array(keep))
        values = [v for v, k in zip(values, keep) if k]
    present = [v for v in values if v is not None]
    if not present:
        return table, watermark, sorted(delivered)
    highest = max(present)
    if watermark is not None and _not_above(highest, watermark):
        highest = watermark
    at_highest = pa.array([v is not None and v == highest for v in values])
    boundary = set(row_hashes(table.filter(at_highest)))
    if highest == watermark:
        boundary |= delivered
    return table, highest, sorted(boundary)


def _not_above(value: Any, watermark: Any) -> bool:
    try:
        return value <= watermark
    except TypeError:  # e.g. the column's type changed under an old watermark
        return str(value) <= str(watermark)


def _to_json(value: Any) -> dict[str, str]:
    if isinstance(value, datetime):
        return {"type": "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, bool):
        return {"type": "text", "value": str(value)}
    if isinstance(value, int):
        return {"type": "int", "value": str(value)}
    if isinstance(value, Decimal):
        return {"type": "decimal", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": repr(value)}
    return {"type": "text", "value": str(value)}


def _from_json(data: dict | None) -> Any:
    if not data:
        return None
    parse = {"datetime": datetime.fromisoformat, "date": date.fromisoformat, "int": int, "decimal": Decimal,
             "float": float}.get(data.get("type"), str)
    return parse(data["value"])

