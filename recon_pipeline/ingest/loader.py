"""Load landing-zone drops into the warehouse's raw history.

A drop is one (source, extraction date) folder. Loading it replaces that partition in
`raw.<source>` and `raw.quarantine` inside one transaction, so re-running a day changes
nothing and a file that cannot be read leaves what was loaded before untouched. Typing and
validation run in SQL over the text cells: rows that fail go to `raw.quarantine` with the
reasons, the file and the row number.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Collection

import duckdb
import pyarrow as pa

from recon_pipeline.ingest.archives import IngestLimits, is_archive
from recon_pipeline.ingest.readers import (
    FileReadError,
    file_batch_schema,
    position_column,
    read_landing_file,
    read_landing_members,
)
from recon_pipeline.progress import start_tracking
from recon_pipeline.settings import Settings
from recon_pipeline.sources import SOURCES, Column, SourceSpec
from recon_pipeline.warehouse import ensure_schema
from recon_pipeline.faults import crash_point

DROP_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
IGNORED_FILES = re.compile(r"^(\.|~\$)|\.(tmp|part|crdownload)$", re.IGNORECASE)

TIMESTAMP_FORMATS = [
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d",
    "%Y/%m/%d", "%Y%m%d", "%Y%m%d%H%M%S", "%Y%m%d %H:%M:%S", "%Y.%m.%d", "%Y.%m.%d %H:%M:%S",
    "%Y年%m月%d日", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日%H:%M:%S",
]


class DropError(Exception):
    """A drop could not be loaded; its message names the source, date and file."""


@dataclass
class DropResult:
    source: str
    drop_date: date
    files: list[str]
    rows_loaded: int
    rows_quarantined: int
    warnings: list[str] = field(default_factory=list)  # archive members that could not be read


@dataclass
class IngestReport:
    loaded: list[DropResult] = field(default_factory=list)
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)  # one message per failed drop
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(r.rows_loaded for r in self.loaded)

    @property
    def rows_quarantined(self) -> int:
        return sum(r.rows_quarantined for r in self.loaded)


# ---------------------------------------------------------------------------- landing zone


def drop_files(landing_dir: Path, source: str, drop_date: date) -> list[Path]:
    folder = Path(landing_dir) / source / drop_date.isoformat()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not IGNORED_FILES.search(p.name))


def list_drops(landing_dir: Path, until: date | None = None) -> tuple[list[tuple[str, date]], list[str]]:
    """All (source, drop date) folders dated on or before `until`, and warnings for the rest."""
    drops, warnings = [], []
    landing_dir = Path(landing_dir)
    for source_dir in sorted(p for p in landing_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if source_dir.name not in SOURCES:
            warnings.append(f"未知的数据源目录已忽略: {source_dir.name}")
            continue
        for day_dir in sorted(p for p in source_dir.iterdir() if p.is_dir()):
            if not DROP_DATE.match(day_dir.name):
                warnings.append(f"目录名不是日期 (YYYY-MM-DD)，已忽略: {source_dir.name}/{day_dir.name}")
                continue
            try:
                day = date.fromisoformat(day_dir.name)
            except ValueError:
                warnings.append(f"无效日期目录，已忽略: {source_dir.name}/{day_dir.name}")
                continue
            if until is None or day <= until:
                drops.append((source_dir.name, day))
    return drops, warnings


def drop_fingerprint(files: list[Path], spec: SourceSpec, settings: Settings) -> str:
    """Changes when a file or the settings that shape this source's rows change."""
    digest = hashlib.sha256()
    shaping = {
        "mapping": settings.column_mappings.get(spec.name),
        "values": settings.value_mappings,
        "profiles": (settings.raw.get("file_formats") or {}).get(spec.name),
        "accounts": settings.raw.get("statement_accounts"),
        "timezone": settings.timezone,
        "version": 2,  # bumped when the readers change what a file yields (2: statement readers of #11)
    }
    digest.update(json.dumps(shaping, sort_keys=True, ensure_ascii=False).encode())
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- typing in SQL


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _typed_expression(column: Column, settings: Settings, date_formats: tuple[str, ...] = ()) -> str:
    """SQL turning the trimmed text `"<column>"` (NULL when empty) into the column's type;
    NULL when the text cannot be read."""
    raw = f'"{column.name}"'
    if column.type == "decimal":
        # Thousands separators, currency marks and spaces are decoration; (1.00) is negative.
        cleaned = (
            f"regexp_replace(regexp_replace({raw}, '[,，\\s¥￥]|CNY|RMB|元', '', 'g'), "
            f"'^\\((.*)\\)$', '-\\1')"
        )
        valid = f"regexp_full_match({cleaned}, '[+-]?[0-9]{{1,16}}(\\.[0-9]{{0,2}}0*)?')"
        return f"CASE WHEN {valid} THEN CAST({cleaned} AS DECIMAL(18,2)) END"
    if column.type in ("timestamp", "date"):
        offset = f"regexp_matches({raw}, '(Z|[+-][0-9]{{2}}:?[0-9]{{2}})$')"
        formats = "[" + ", ".join(_quote(f) for f in [*date_formats, *TIMESTAMP_FORMATS]) + "]"
        # The native cast reads ISO text fast; the format list covers what exports write.
        local = f"coalesce(TRY_CAST({raw} AS TIMESTAMP), try_strptime({raw}, {formats}))"
        if date_formats:  # a profile's own formats come first (e.g. day-first dates)
            local = f"try_strptime({raw}, {formats})"
        value = f"CASE WHEN {offset} THEN timezone({_quote(settings.timezone)}, TRY_CAST({raw} AS TIMESTAMPTZ)) ELSE {local} END"
        return f"CAST({value} AS DATE)" if column.type == "date" else value
    if column.type == "enum":
        lowered = f"lower({raw})"
        aliases = {k.strip().lower(): v for k, v in (settings.value_mappings.get(column.name) or {}).items()}
        if aliases:
            cases = " ".join(f"WHEN {_quote(k)} THEN {_quote(v)}" for k, v in sorted(aliases.items()))
            lowered = f"CASE {lowered} {cases} ELSE {lowered} END"
        allowed = ", ".join(_quote(v) for v in column.values)
        return f"CASE WHEN {lowered} IN ({allowed}) THEN {lowered} END"
    return raw


_ERROR_TEXT = {
    "decimal": "金额无法识别（最多两位小数）",
    "timestamp": "日期时间无法识别",
    "date": "日期时间无法识别",
}


def typing_sql(
    spec: SourceSpec, present: list[str], settings: Settings, staging_table: str, date_formats: tuple[str, ...] = ()
) -> str:
    """SELECT over the text staging table: typed columns, meta columns, `_errors` and
    `_raw_record`, in three layers so that each value is parsed once."""
    meta = "_drop_date, _source_file, _row_number, _extra_columns"
    texts = ", ".join(
        f"NULLIF(trim(\"{c.name}\"), '') AS \"{c.name}\"" if c.name in present else f'CAST(NULL AS VARCHAR) AS "{c.name}"'
        for c in spec.columns
    )
    typed = ", ".join(
        f'{_typed_expression(c, settings, date_formats)} AS "{c.name}", "{c.name}" AS "_text_{c.name}"' for c in spec.columns
    )
    errors = []
    for c in spec.columns:
        if c.required:
            errors.append(f"CASE WHEN \"_text_{c.name}\" IS NULL THEN '缺少必填字段 {c.name}' END")
        if c.type != "text":
            reason = _ERROR_TEXT.get(c.type) or f"取值不在允许范围（{'/'.join(c.values)}）"
            errors.append(
                f"CASE WHEN \"_text_{c.name}\" IS NOT NULL AND \"{c.name}\" IS NULL "
                f"THEN '{c.name} {reason}: ' || \"_text_{c.name}\" END"
            )
    errors.append("CASE WHEN json_exists(_extra_columns, '$._overflow_cells') THEN '字段数多于表头' END")
    # Giant cells are bounded: such a row is quarantined, and its record keeps the start of the cell.
    limit = IngestLimits.from_settings(settings).max_cell_chars
    for c in present:
        # `>=`: the spreadsheet reader cuts a longer cell at Excel's limit; a full cell was cut.
        errors.append(f"CASE WHEN length(\"_text_{c}\") >= {limit} THEN '{c} 字段过长（' || length(\"_text_{c}\") || ' 字符，上限 {limit - 1}）' END")
    errors.append(f"CASE WHEN length(_extra_columns) > {limit * 4} THEN '未映射的列内容过长（' || length(_extra_columns) || ' 字符）' END")
    raw_record = "json_object(" + ", ".join(
        f"{_quote(c)}, CASE WHEN length(\"_text_{c}\") >= {limit} THEN left(\"_text_{c}\", {limit}) || '…（已截断）' "
        f"ELSE \"_text_{c}\" END" for c in present) + ")"
    # Unmapped columns and cells beyond the header belong to the received record too.
    extra = (f"CASE WHEN length(_extra_columns) <= {limit * 4} THEN json(_extra_columns) "
             f"ELSE to_json(left(_extra_columns, {limit * 4}) || '…（已截断）') END")
    raw_record = f"CASE WHEN _extra_columns IS NULL THEN {raw_record} ELSE json_merge_patch({raw_record}, json_object('_extra_columns', {extra})) END"
    columns = ", ".join(f'"{c.name}"' for c in spec.columns)
    text_columns = ", ".join(f'"_text_{c}"' for c in present)
    # The raw record (for the quarantine) is built only for rows that fail.
    return (
        f"SELECT {columns}, {meta}, _errors, CASE WHEN _errors <> '' THEN {raw_record} END AS _raw_record "
        f"FROM (SELECT {columns}, {text_columns}{', ' if text_columns else ''}{meta}, "
        f"concat_ws('; ', {', '.join(errors)}) AS _errors "
        f"FROM (SELECT {typed}, {meta} FROM (SELECT {texts}, {meta} FROM {staging_table})))"
    )


# ---------------------------------------------------------------------------- loading
#
# Loading runs in two phases. First every changed drop is read into a temp text table per
# source (reading is where a file fails, and a failed drop is simply left out). Then one
# transaction replaces the partitions of all drops that were read: a rerun of the same day
# replaces instead of adding, and a crash leaves the previous state.


def profile_date_formats(spec: SourceSpec, settings: Settings) -> tuple[str, ...]:
    """Date formats of the source's file profiles, tried before the built-in ones."""
    from recon_pipeline.ingest.file_profiles import load_profiles

    formats: list[str] = []
    for profile in load_profiles(spec.name, settings):
        formats += [f for f in profile.date_formats if f not in formats]
    return tuple(formats)


def _extra_columns_sql(opened) -> str:
    """JSON of the columns the mapping does not know (and of cells beyond the header)."""
    overflow = "json_object('_overflow_cells', json(_overflow))"
    if not opened.extra_headers:
        return f"CASE WHEN _overflow IS NULL THEN NULL ELSE {overflow} END"
    pairs = ", ".join(f"{_quote(name)}, {position_column(p)}" for p, name in opened.extra_headers.items())
    known = f"json_object({pairs})"
    return f"CASE WHEN _overflow IS NULL THEN {known} ELSE json_merge_patch({known}, {overflow}) END"


class Staging:
    """Files read for loading, kept as Arrow tables in canonical columns (all text), one list
    per source. DuckDB scans them in place through a view: no copy into a temp table."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, settings: Settings):
        self.conn = conn
        self.settings = settings
        self.tables: dict[str, list[tuple[date, pa.Table]]] = {}
        # Files that are not rows (an archive member that cannot be read): one quarantine
        # record each, so the drop loads and the problem stays on record.
        self.unreadable: dict[str, list[tuple[date, str, str]]] = {}

    def add_file(self, opened, spec: SourceSpec, drop_date: date, name: str) -> None:
        table = pa.Table.from_batches(list(opened.batches), schema=file_batch_schema(len(opened.headers)))
        rows = table.num_rows
        by_canonical = {column: position_column(p) for p, column in opened.mapping.items()}
        columns = [
            table.column(by_canonical[c]) if c in by_canonical else pa.nulls(rows, pa.string()) for c in spec.column_names
        ]
        if opened.extra_headers or table.column("_overflow").null_count < rows:
            # Unmapped columns become one JSON text per row (rare: only files with such columns).
            self.conn.register("_file", table)
            extra = self.conn.sql(f"SELECT CAST({_extra_columns_sql(opened)} AS VARCHAR) AS e FROM _file").to_arrow_table()
            self.conn.unregister("_file")
            extra = extra.column("e")
        else:
            extra = pa.nulls(rows, pa.string())
        canonical = pa.table(
            columns + [
                table.column("_row_number"),
                extra,
                pa.repeat(pa.scalar(drop_date, pa.date32()), rows),
                pa.repeat(pa.scalar(name, pa.string()), rows),
            ],
            schema=_canonical_schema(spec),
        )
        self.tables.setdefault(spec.name, []).append((drop_date, canonical))

    def release(self, source: str) -> None:
        """Free a source's staged text once it has been typed (keeps peak memory down)."""
        self.conn.execute(f"DROP VIEW IF EXISTS {typed_view_name(SOURCES[source])}")
        try:
            self.conn.unregister(f"_landing_{source}")
        except duckdb.Error:
            pass
        self.tables[source] = []

    def add_unreadable(self, spec: SourceSpec, drop_date: date, name: str, reason: str) -> None:
        self.unreadable.setdefault(spec.name, []).append((drop_date, name, reason))

    def discard(self, source: str, drop_date: date) -> None:
        self.tables[source] = [(d, t) for d, t in self.tables.get(source, []) if d != drop_date]
        self.unreadable[source] = [u for u in self.unreadable.get(source, []) if u[0] != drop_date]

    def typed_view(self, spec: SourceSpec) -> str:
        """Register the source's staged text and the typed, validated view over it."""
        staged = [t for _, t in self.tables.get(spec.name, [])]
        text = pa.concat_tables(staged) if staged else _canonical_schema(spec).empty_table()
        self.conn.register(f"_landing_{spec.name}", text)
        sql = typing_sql(spec, spec.column_names, self.settings, f"_landing_{spec.name}", profile_date_formats(spec, self.settings))
        self.conn.execute(f"CREATE OR REPLACE TEMP VIEW {typed_view_name(spec)} AS {sql}")
        return typed_view_name(spec)

    def close(self) -> None:
        for source in list(self.tables):
            self.release(source)
        self.tables.clear()


def typed_view_name(spec: SourceSpec) -> str:
    return f"_typed_{spec.name}"


def _canonical_schema(spec: SourceSpec) -> pa.Schema:
    return pa.schema(
        [(c, pa.string()) for c in spec.column_names]
        + [("_row_number", pa.int32()), ("_extra_columns", pa.string()), ("_drop_date", pa.date32()), ("_source_file", pa.string())]
    )


@dataclass
class _PendingDrop:
    source: str
    drop_date: date
    fingerprint: str
    names: list[str]
    warnings: list[str] = field(default_factory=list)


STABLE_READ_ATTEMPTS = 3  # a file still being written is read again this many times
STABLE_READ_WAIT_SECONDS = 0.5


def _file_state(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError as exc:
        raise FileReadError(f"{path.name}: 读取时文件消失或无法访问（{exc.strerror or exc}）") from None
    return stat.st_size, stat.st_mtime_ns


def _read_stable(path: Path, name: str, spec: SourceSpec, settings: Settings) -> list[tuple[str, object, str | None]]:
    """The file's contents as (name, file read, problem) triples (several for an archive),
    read again while its size or modification time changes during the read (a transfer
    still writing it); still changing after the last attempt, it fails its drop alone."""
    for attempt in range(STABLE_READ_ATTEMPTS):
        before = _file_state(path)
        if is_archive(path):
            read = [(f"{name}/{member}", opened, problem) for member, opened, problem in read_landing_members(path, spec, settings)]
        else:
            read = [(name, read_landing_file(path, spec, settings), None)]
        if _file_state(path) == before:
            return read
        time.sleep(STABLE_READ_WAIT_SECONDS * (attempt + 1))
    raise FileReadError(f"{path.name}: 文件在读取过程中仍在变化（大小或修改时间改变，可能仍在写入），"
                        f"重试 {STABLE_READ_ATTEMPTS} 次后本批次跳过，下次运行再读")


def _stage_drop(staging: Staging, landing_dir: Path, source: str, day: date, settings: Settings, fingerprint: str | None) -> _PendingDrop:
    spec = SOURCES[source]
    files = drop_files(landing_dir, source, day)
    names = [p.relative_to(landing_dir).as_posix() for p in files]
    warnings = []
    try:
        for path, name in zip(files, names):
            for part_name, opened, problem in _read_stable(path, name, spec, settings):
                if opened is None:
                    staging.add_unreadable(spec, day, part_name, f"压缩包中的文件无法读取: {problem}")
                    warnings.append(f"{part_name}: {problem}")
                else:
                    staging.add_file(opened, spec, day, part_name)
        files_fingerprint = fingerprint or drop_fingerprint(files, spec, settings)
    except (FileReadError, OSError) as exc:
        staging.discard(source, day)
        raise DropError(f"{source}/{day}: {exc}") from None
    return _PendingDrop(source, day, files_fingerprint, names, warnings)


def _replace_partitions(conn, staging: Staging, pending: list[_PendingDrop]) -> list[DropResult]:
    """One transaction: replace every staged (source, drop date) partition."""
    results = []
    conn.execute("BEGIN TRANSACTION")
    try:
        for source in sorted({p.source for p in pending}):
            spec = SOURCES[source]
            drops = [p for p in pending if p.source == source]
            days = [p.drop_date for p in drops]
            conn.execute(f"DELETE FROM raw.{source} WHERE _drop_date IN (SELECT unnest(?::DATE[]))", [days])
            conn.execute("DELETE FROM raw.quarantine WHERE source = ? AND _drop_date IN (SELECT unnest(?::DATE[]))", [source, days])
            conn.execute("DELETE FROM raw.ingest_log WHERE source = ? AND _drop_date IN (SELECT unnest(?::DATE[]))", [source, days])
            # Type and validate once (regexes and date parsing are the costly part), then split.
            typed = f"_typed_rows_{source}"
            conn.execute(f"CREATE OR REPLACE TEMP TABLE {typed} AS SELECT * FROM {staging.typed_view(spec)}")
            staging.release(source)
            columns = ", ".join(f'"{c}"' for c in spec.column_names)
            conn.execute(
                f"INSERT INTO raw.{source} SELECT {columns}, _drop_date, _source_file, _row_number, _extra_columns "
                f"FROM {typed} WHERE _errors = ''"
            )
            conn.execute(
                f"INSERT INTO raw.quarantine SELECT ?, _drop_date, _source_file, _row_number, _errors, "
                f"CAST(_raw_record AS VARCHAR) FROM {typed} WHERE _errors <> ''",
                [source],
            )
            unreadable = staging.unreadable.pop(source, [])
            for day, name, reason in unreadable:
                conn.execute("INSERT INTO raw.quarantine VALUES (?, ?, ?, NULL, ?, NULL)", [source, day, name, reason])
            counts = {
                day: (ok, bad)
                for day, ok, bad in conn.execute(
                    f"SELECT _drop_date, count(*) FILTER (WHERE _errors = ''), count(*) FILTER (WHERE _errors <> '') "
                    f"FROM {typed} GROUP BY 1"
                ).fetchall()
            }
            conn.execute(f"DROP TABLE {typed}")
            for drop in drops:
                ok, bad = counts.get(drop.drop_date, (0, 0))
                bad += sum(1 for day, _, _ in unreadable if day == drop.drop_date)
                conn.execute(
                    "INSERT INTO raw.ingest_log VALUES (?, ?, ?, ?, ?, ?)",
                    [source, drop.drop_date, json.dumps(drop.names, ensure_ascii=False), drop.fingerprint, ok, bad],
                )
                results.append(DropResult(source, drop.drop_date, drop.names, ok, bad, drop.warnings))
        crash_point("ingest:commit")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results


def load_drops(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    drops: list[tuple[str, date]],
    settings: Settings,
    fingerprints: dict[tuple[str, date], str] | None = None,
) -> tuple[list[DropResult], list[str]]:
    """Load these drops (replacing what was loaded for them); returns (loaded, failure messages)."""
    landing_dir = Path(landing_dir)
    ensure_schema(conn)
    staging = Staging(conn, settings)
    pending, failed = [], []
    tracker = start_tracking("ingest drops", len(drops), "个批次")
    try:
        for done, (source, day) in enumerate(drops, 1):
            try:
                pending.append(_stage_drop(staging, landing_dir, source, day, settings, (fingerprints or {}).get((source, day))))
            except DropError as exc:
                failed.append(str(exc))
            tracker.update(done)
        loaded = _replace_partitions(conn, staging, pending) if pending else []
    finally:
        tracker.close()
        staging.close()
    return loaded, failed


def load_drop(conn: duckdb.DuckDBPyConnection, landing_dir: Path, source: str, drop_date: date, settings: Settings) -> DropResult:
    """Replace one (source, drop date) partition with its folder's files, atomically."""
    loaded, failed = load_drops(conn, landing_dir, [(source, drop_date)], settings)
    if failed:
        raise DropError(failed[0])
    return loaded[0]


def sync_landing(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    until: date,
    settings: Settings,
    sources: Collection[str] | None = None,
) -> IngestReport:
    """Load every drop dated on or before `until` that is new or changed since its last load.

    Drops that arrive late (an earlier date after a later one was loaded) are simply new.
    A drop that fails is reported and left out; the others still load. `sources` limits the
    sync to those sources (default: all).
    """
    ensure_schema(conn)
    known = dict(
        ((s, d), f) for s, d, f in conn.execute("SELECT source, _drop_date, fingerprint FROM raw.ingest_log").fetchall()
    )
    report, fingerprints = changed_drops(landing_dir, until, settings, known, sources)
    if fingerprints:
        report.loaded, report.failed = load_drops(conn, landing_dir, list(fingerprints), settings, fingerprints)
        report.warnings += drop_warnings(report.loaded)
    return report


def drop_warnings(loaded: list[DropResult]) -> list[str]:
    """What the readers noticed in the loaded drops, one line each, named by source and date."""
    return [f"{r.source}/{r.drop_date}: {w}" for r in loaded for w in r.warnings]


def changed_drops(
    landing_dir: Path, until: date, settings: Settings, known: dict[tuple[str, date], str],
    sources: Collection[str] | None = None,
) -> tuple[IngestReport, dict[tuple[str, date], str]]:
    """The drops dated on or before `until` (of `sources`, default all) whose fingerprint differs
    from `known` (what the ingest log recorded), with their new fingerprints; the report counts
    the unchanged ones."""
    report = IngestReport()
    drops, report.warnings = list_drops(landing_dir, until)
    if sources is not None:
        drops = [(source, day) for source, day in drops if source in sources]
    fingerprints = {}
    for source, day in drops:
        fingerprint = drop_fingerprint(drop_files(landing_dir, source, day), SOURCES[source], settings)
        if known.get((source, day)) == fingerprint:
            report.unchanged += 1
        else:
            fingerprints[(source, day)] = fingerprint
    return report, fingerprints
