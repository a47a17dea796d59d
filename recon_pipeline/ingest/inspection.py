"""`recon inspect FILE`: how a file would be read, before it is dropped into the landing zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from recon_pipeline.ingest.loader import Staging
from recon_pipeline.ingest.readers import FileReadError, header_mapping, read_landing_file
from recon_pipeline.settings import Settings
from recon_pipeline.sources import SOURCES, SourceSpec


@dataclass
class Inspection:
    source: str
    format: str
    encoding: str | None
    mapped: dict[str, str]  # the file's header -> canonical column
    unmapped: list[str]  # headers kept in _extra_columns
    missing_optional: list[str]
    rows: int
    sample: pd.DataFrame  # first typed rows
    quarantined: pd.DataFrame  # row number + reason of every row that would be quarantined
    header_row: int | None = None  # 1-based row the header was found on (generic reader)
    convention: str | None = None  # how the generic reader signs money, in words
    notes: list[str] = field(default_factory=list)
    profile_yaml: str | None = None  # the inferred layout as a pasteable `file_formats` entry


def guess_source(path: Path, settings: Settings) -> str | None:
    """The landing folder it sits in (`<source>/<date>/file`), else the source whose required
    columns its header covers best."""
    for parent in path.resolve().parents:
        if parent.name in SOURCES:
            return parent.name
    best, best_score = None, 0
    for spec in SOURCES.values():
        try:
            opened = read_landing_file(path, spec, settings)
        except FileReadError:
            continue
        score = len(opened.columns)
        if score > best_score:
            best, best_score = spec.name, score
    return best


def inspect_file(path: Path, settings: Settings, source: str | None = None, sample_rows: int = 10) -> Inspection:
    path = Path(path)
    if not path.is_file():
        raise FileReadError(f"文件不存在: {path}")
    source = source or guess_source(path, settings)
    if source is None:
        raise FileReadError(f"{path.name}: 无法判断属于哪个数据源，请用 --source 指定（{', '.join(SOURCES)}）")
    spec: SourceSpec = SOURCES[source]
    opened = read_landing_file(path, spec, settings)
    headers = opened.headers or []
    mapping = opened.mapping if opened.mapping is not None else header_mapping(headers, spec, settings)
    if opened.sources:
        # A built-in or generic reader: the file's own headers, not the canonical names it produced.
        mapped = {source: column for column, source in opened.sources.items() if column in opened.columns}
    elif headers:
        mapped = {headers[p]: c for p, c in sorted(mapping.items())}
    else:
        mapped = {c: c for c in opened.columns}
    with duckdb.connect() as conn:
        staging = Staging(conn, settings)
        staging.add_file(opened, spec, date(1970, 1, 1), path.name)  # not a drop: any date
        view = staging.typed_view(spec)
        rows = conn.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
        # Shown as text: a DataFrame would turn DECIMAL money into floats.
        columns = ", ".join(["_row_number", *[f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in spec.column_names if c in opened.columns]])
        sample = conn.execute(f"SELECT {columns} FROM {view} WHERE _errors = '' ORDER BY _row_number LIMIT {sample_rows}").df()
        quarantined = conn.execute(f"SELECT _row_number, _errors AS reason FROM {view} WHERE _errors <> '' ORDER BY _row_number").df()
    return Inspection(
        source=source,
        format=opened.format,
        encoding=opened.encoding,
        mapped=mapped,
        unmapped=[h for p, h in enumerate(headers)
                  if p not in mapping and not (opened.sources and opened.inference is None) and h not in _profile_headers(opened)],
        missing_optional=[c for c in spec.column_names if c not in opened.columns],
        rows=rows,
        sample=sample,
        quarantined=quarantined,
        **_generic_details(opened),
    )


def _profile_headers(opened) -> set[str]:
    """The file's headers the generic reader's profile reads (not "unmapped" though kept as
    extra columns too)."""
    if opened.inference is None:
        return set()
    profile = opened.inference.profile
    used = set(profile.columns) | set(profile.memo) | {profile.balance_column}
    for section in (profile.amount, profile.txn_time, profile.counterparty, profile.txn_id):
        for value in section.values():
            if isinstance(value, str):
                used.add(value)
            elif isinstance(value, dict):
                used |= {v for v in value.values() if isinstance(v, str)}
    return used


def _generic_details(opened) -> dict:
    """What the generic reader inferred: header row, convention, notes, pasteable profile."""
    inference = opened.inference
    if inference is None:
        return {}
    import yaml

    from recon_pipeline.ingest.file_profiles import profile_as_settings

    notes = list(inference.notes)
    if opened.stats is not None and opened.stats.skipped:
        notes.append(f"跳过 {opened.stats.skipped} 行汇总/页脚/余额行（不是交易）")
    text = yaml.safe_dump(profile_as_settings(inference.profile), allow_unicode=True, sort_keys=False, width=120,
                          default_flow_style=None)
    return {"header_row": inference.header_row, "convention": inference.convention_label, "notes": notes,
            "profile_yaml": text}


def inspect_archive(path: Path, settings: Settings, source: str | None = None, sample_rows: int = 10):
    """Each member of an archive delivery: (member name, Inspection or the error message)."""
    import tempfile

    from recon_pipeline.ingest.archives import ArchiveError, IngestLimits, read_members

    results: list[tuple[str, Inspection | str]] = []
    folder_source = next((p.name for p in path.resolve().parents if p.name in SOURCES), None)
    try:
        with tempfile.TemporaryDirectory(prefix="recon-inspect-") as scratch:
            for index, member in enumerate(read_members(path, IngestLimits.from_settings(settings))):
                if member.data is None:
                    results.append((member.name, member.problem or "无法读取"))
                    continue
                target = Path(scratch) / str(index) / Path(member.name).name
                target.parent.mkdir()
                target.write_bytes(member.data)
                try:
                    results.append((member.name, inspect_file(target, settings, source or folder_source, sample_rows)))
                except FileReadError as exc:
                    results.append((member.name, str(exc)))
    except ArchiveError as exc:
        raise FileReadError(str(exc)) from None
    return results


def print_inspection(console, label: str, result: Inspection) -> None:
    """`recon inspect`'s report of one file (rich console)."""
    from rich.table import Table

    console.print(f"文件: {label}", highlight=False)
    console.print(f"数据源: {result.source}  格式: {result.format}  编码: {result.encoding or '-'}  数据行: {result.rows}",
                  highlight=False)
    mapping = Table(title="列映射", show_header=True)
    mapping.add_column("文件表头")
    mapping.add_column("标准列名")
    for header, column in result.mapped.items():
        mapping.add_row(header, column)
    for header in result.unmapped:
        mapping.add_row(header, "[dim](未映射，保存在 _extra_columns)[/]")
    console.print(mapping)
    if result.missing_optional:
        console.print(f"文件中没有的可选列（将为空）: {', '.join(result.missing_optional)}", highlight=False)
    if result.convention:
        console.print(f"通用识别: 表头在第 {result.header_row} 行；收支约定: {result.convention}", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]注意:[/] {note}", highlight=False)
    sample = Table(title=f"前 {len(result.sample)} 行（转换后）", show_header=True)
    for column in result.sample.columns:
        sample.add_column(str(column))
    for record in result.sample.itertuples(index=False):
        sample.add_row(*["" if v is None or v != v else str(v) for v in record])
    console.print(sample)
    if len(result.quarantined):
        console.print(f"[yellow]将被隔离 {len(result.quarantined)} 行:[/]", highlight=False)
        for record in result.quarantined.head(50).itertuples(index=False):
            console.print(f"  第 {record._0} 行: {record.reason}", highlight=False)
    else:
        console.print("没有会被隔离的行。", highlight=False)
    if result.profile_yaml:
        console.print("要固定这种读法，可把下面的配置粘贴到 settings 文件（--settings）中:", highlight=False)
        console.print(result.profile_yaml, highlight=False, markup=False, soft_wrap=True)
