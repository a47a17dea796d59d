"""Read one landing file into batches of text columns with canonical names.

Every reader returns the cells as text exactly as the user's file shows them (typing and
validation happen in SQL, in `ingest`), mapped onto the canonical column names of the source,
with `_row_number` (the row a user sees in Excel or a text editor: header = row 1) and
`_extra_columns` (JSON of the columns the mapping does not know, so nothing received is lost).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from recon_pipeline.ingest.file_profiles import (
    HEADER_SEARCH_ROWS,
    FileProfile,
    ProfileError,
    apply_profile,
    choose_profile,
    load_profiles,
)
from recon_pipeline.ingest.statements.tables import cell_text
from recon_pipeline.settings import Settings
from recon_pipeline.sources import SourceSpec

BATCH_ROWS = 200_000
csv.field_size_limit(16 * 1024 * 1024)


class FileReadError(Exception):
    """A whole file cannot be read; the message is for the user (Chinese) and names the file."""


@dataclass
class ReadFile:
    """A file opened for ingestion: its headers, their mapping and a stream of text batches.

    Batches hold the file's own columns as text, named `c0`, `c1`, ... by position, plus
    `_row_number` and `_overflow` (JSON list of cells beyond the header's width, else null).
    Mapping them onto canonical columns happens in `ingest.Staging.add_file`.
    """

    columns: list[str]  # canonical columns present in the file
    encoding: str | None
    batches: Iterator[pa.RecordBatch]
    format: str
    headers: list[str]  # the file's own headers, cleaned
    mapping: dict[int, str]  # header position -> canonical column

    @property
    def extra_headers(self) -> dict[int, str]:
        """Unmapped columns (kept as JSON in `_extra_columns`): position -> name."""
        return {p: h or f"column_{p + 1}" for p, h in enumerate(self.headers) if p not in self.mapping}


def read_canonical_frame(path: Path, spec: SourceSpec, settings: Settings):
    """A landing file as a pandas frame of text in canonical columns plus `_row_number`: how
    the pipeline reads it, for tools and tests that want to look at a file."""
    import pandas as pd

    opened = read_landing_file(path, spec, settings)
    table = pa.Table.from_batches(list(opened.batches), schema=file_batch_schema(len(opened.headers)))
    data = {column: table.column(position_column(p)).to_pylist() for p, column in sorted(opened.mapping.items())}
    data["_row_number"] = table.column("_row_number").to_pylist()
    return pd.DataFrame(data)


def position_column(position: int) -> str:
    return f"c{position}"


def file_batch_schema(width: int) -> pa.Schema:
    return pa.schema(
        [(position_column(p), pa.string()) for p in range(width)]
        + [("_row_number", pa.int32()), ("_overflow", pa.string())]
    )


def _clean_header(value: object) -> str:
    return str(value if value is not None else "").replace("\ufeff", "").replace("\u200b", "").strip()


def header_mapping(
    headers: list[str],
    spec: SourceSpec,
    settings: Settings,
    profile: FileProfile | None = None,
    computed_from: int | None = None,
) -> dict[int, str]:
    """Position of each header -> canonical column, by canonical name or a configured alias.

    A profile's own aliases come before the source's; columns a profile computed (from
    position `computed_from` on) win over the file's columns of the same name.
    """
    aliases = {k.strip().casefold(): v for k, v in (settings.column_mappings.get(spec.name) or {}).items()}
    if profile is not None:
        aliases.update({k.strip().casefold(): v for k, v in profile.columns.items()})
    canonical = set(spec.column_names)
    positions = list(range(len(headers)))
    if computed_from is not None:
        positions = positions[computed_from:] + positions[:computed_from]
    mapping: dict[int, str] = {}
    for position in positions:
        key = _clean_header(headers[position]).casefold()
        target = key if key in canonical else aliases.get(key)
        if target in canonical and target not in mapping.values():
            mapping[position] = target
    return dict(sorted(mapping.items()))


def detect_encoding(data: bytes) -> str:
    """UTF-8 (with or without BOM) or GB18030, which Chinese Excel and bank portals write."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    if best is None:
        raise FileReadError("无法识别文件编码（已尝试 UTF-8、UTF-8 BOM、GB18030）")
    return best.encoding


def _batches_from_rows(rows: Iterator[tuple[int, list[str]]], width: int) -> Iterator[pa.RecordBatch]:
    """(row number, cells) -> record batches of the file's columns (the general, exact path)."""
    schema = file_batch_schema(width)

    def flush(numbers: list[int], grid: list[list[str]], overflow: list[str | None]) -> pa.RecordBatch:
        columns = [list(col) for col in zip(*grid)] if grid else [[] for _ in range(width)]
        return pa.RecordBatch.from_arrays(
            [pa.array(col, pa.string()) for col in columns]
            + [pa.array(numbers, pa.int32()), pa.array(overflow, pa.string())],
            schema=schema,
        )

    numbers: list[int] = []
    grid: list[list[str]] = []
    overflow: list[str | None] = []
    for number, cells in rows:
        if not "".join(cells).strip():
            continue  # a blank line carries nothing
        if len(cells) != width:
            if len(cells) < width:  # exports trim trailing empty cells
                cells = cells + [""] * (width - len(cells))
                extra = None
            else:  # more cells than headers: kept, and flagged by ingest
                cells, extra = cells[:width], json.dumps(cells[width:], ensure_ascii=False)
        else:
            extra = None
        numbers.append(number)
        grid.append(cells)
        overflow.append(extra)
        if len(numbers) >= BATCH_ROWS:
            yield flush(numbers, grid, overflow)
            numbers, grid, overflow = [], [], []
    if numbers:
        yield flush(numbers, grid, overflow)


def _open_table(
    headers: list[str], rows, spec: SourceSpec, settings: Settings, encoding, fmt,
    profile: FileProfile | None = None, batches: Iterator[pa.RecordBatch] | None = None,
) -> ReadFile:
    """Map the headers and check the required columns; `batches` (already in file-column form)
    stand in for `rows` when a fast reader produced them."""
    computed_from = None
    if profile is not None:
        computed_from = len(headers)
        try:
            headers, rows = apply_profile(profile, headers, rows)
        except ProfileError as exc:
            raise FileReadError(str(exc)) from None
        fmt = f"{fmt}（格式: {profile.name}）"
    mapping = header_mapping(headers, spec, settings, profile, computed_from)
    columns = [c for c in spec.column_names if c in mapping.values()]
    missing = [c for c in spec.required_columns if c not in columns]
    if missing:
        shown = ", ".join(_clean_header(h) for h in headers[:20])
        raise FileReadError(
            f"缺少必需列 {', '.join(missing)}（表头为: {shown}）；请在 settings 的 column_mappings.{spec.name} 中配置列名映射"
        )
    if batches is None:
        batches = _batches_from_rows(rows, len(headers))
    return ReadFile(columns, encoding, batches, fmt, [_clean_header(h) for h in headers], mapping)


def _sniff_delimiter_lines(text: str) -> str:
    """The delimiter giving the widest rows over the first lines (preambles are narrow)."""
    lines = text.splitlines()[:HEADER_SEARCH_ROWS]
    widths = {d: max((len(next(csv.reader([line], delimiter=d), [])) for line in lines), default=0) for d in (",", "\t", ";", "|")}
    best = max(widths, key=widths.get)
    return best if widths[best] > 1 else ","


def read_csv(path: Path, spec: SourceSpec, settings: Settings) -> ReadFile:
    data = path.read_bytes()
    if not data.strip():
        raise FileReadError("文件为空")
    if b"\x00" in data[:4096]:
        raise FileReadError("不是文本文件（含二进制内容）")
    profiles = [p for p in load_profiles(spec.name, settings) if p.matches_name(path.name)]
    encoding = next((p.encoding for p in profiles if p.encoding), None) or detect_encoding(data)
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise FileReadError(f"无法按 {encoding} 解码: {exc}") from None
    del data
    delimiter = next((p.delimiter for p in profiles if p.delimiter), None) or _sniff_delimiter_lines(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def numbered():
        previous_line = 0
        try:
            for cells in reader:
                # csv counts physical lines; a row starts on the line after the previous row.
                yield previous_line + 1, cells
                previous_line = reader.line_num
        except csv.Error as exc:
            raise FileReadError(f"CSV 格式错误（第 {reader.line_num} 行附近）: {exc}") from None

    rows = numbered()
    head = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
    if not head:
        raise FileReadError("文件为空")
    profile, header_index = choose_profile(profiles, path.name, [cells for _, cells in head])
    headers = head[header_index][1]
    fast = _fast_csv_batches(text, delimiter, len(headers)) if profile is None and header_index == 0 else None
    return _open_table(
        headers, itertools.chain(head[header_index + 1:], rows), spec, settings, encoding, "csv", profile, fast
    )


def _fast_csv_batches(text: str, delimiter: str, width: int) -> Iterator[pa.RecordBatch] | None:
    """pyarrow's C++ parser for the common clean file: one physical line per row, no blank
    lines, every row as wide as the header. Anything else returns None and takes the exact
    (slower) path, so row numbers always match what a user sees in the file."""
    import pyarrow.csv as pacsv

    names = [position_column(p) for p in range(width)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=names, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if lines != table.num_rows + 1:
        return None  # blank lines or quoted line breaks: numbering needs the exact path
    table = table.append_column("_row_number", pa.array(range(2, table.num_rows + 2), pa.int32()))
    table = table.append_column("_overflow", pa.nulls(table.num_rows, pa.string()))
    return iter(table.to_batches(max_chunksize=BATCH_ROWS))


def read_spreadsheet(path: Path, spec: SourceSpec, settings: Settings) -> ReadFile:
    from python_calamine import CalamineWorkbook

    try:
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        grid = sheet.to_python(skip_empty_area=False)
    except Exception as exc:  # calamine raises its own error types for broken workbooks
        raise FileReadError(f"无法读取 Excel 文件: {exc}") from None
    first_filled = next((i for i, row in enumerate(grid) if any(cell_text(v).strip() for v in row)), None)
    if first_filled is None:
        raise FileReadError("Excel 工作表为空")
    profiles = [p for p in load_profiles(spec.name, settings) if p.matches_name(path.name)]
    head = [[cell_text(v) for v in row] for row in grid[:HEADER_SEARCH_ROWS]]
    profile, header_index = choose_profile(profiles, path.name, head)
    if profile is None or (profile.skip_rows is None and not profile.header_contains):
        header_index = first_filled
    headers = [cell_text(v) for v in grid[header_index]]
    rows = ((i + 1, [cell_text(v) for v in grid[i]]) for i in range(header_index + 1, len(grid)))
    return _open_table(headers, rows, spec, settings, None, path.suffix.lower().lstrip("."), profile)


def read_parquet(path: Path, spec: SourceSpec, settings: Settings) -> ReadFile:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise FileReadError(f"无法读取 Parquet 文件: {exc}") from None
    headers = table.column_names
    text_columns = []
    for name in headers:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = pc.strftime(column, format="%Y-%m-%d %H:%M:%S")
        text_columns.append(pc.fill_null(column.cast(pa.string()), ""))

    batch_table = pa.table(
        text_columns + [pa.array(range(1, table.num_rows + 1), pa.int32()), pa.nulls(table.num_rows, pa.string())],
        schema=file_batch_schema(len(headers)),
    )
    return _open_table(headers, None, spec, settings, None, "parquet",
                       batches=iter(batch_table.to_batches(max_chunksize=BATCH_ROWS)))


def statement_account(path: Path, settings: Settings) -> str | None:
    """Account number for exports that print none, from settings `statement_accounts`
    (file-name pattern -> account number, first match wins)."""
    for pattern, account in (settings.raw.get("statement_accounts") or {}).items():
        if fnmatch.fnmatch(path.name, pattern):
            return str(account)
    return None


def _read_statement(path: Path, spec: SourceSpec, settings: Settings) -> ReadFile | None:
    """Bank statement formats (CAMT.053, MT940, Chinese bank exports), detected by content."""
    try:
        from recon_pipeline.ingest import statements
    except ImportError:
        return None
    fmt = statements.detect_format(path)
    if fmt is None:
        return None
    try:
        frame = statements.read_statement(path, fmt, account_no=statement_account(path, settings))
    except statements.StatementError as exc:
        raise FileReadError(str(exc)) from None
    headers = [c for c in frame.columns if c != "_row_number"]
    numbers = frame["_row_number"].tolist()
    cells = frame[headers].fillna("").astype(str).values.tolist()
    return _open_table(headers, zip(numbers, cells), spec, settings, None, fmt)


def read_landing_file(path: Path, spec: SourceSpec, settings: Settings) -> ReadFile:
    """Open any supported landing file of `spec`'s source; raises FileReadError if it cannot."""
    suffix = path.suffix.lower()
    try:
        if spec.name == "bank_transactions":
            statement = _read_statement(path, spec, settings)
            if statement is not None:
                return statement
        if suffix in (".csv", ".txt"):
            return read_csv(path, spec, settings)
        if suffix in (".xlsx", ".xls"):
            return read_spreadsheet(path, spec, settings)
        if suffix == ".parquet":
            return read_parquet(path, spec, settings)
    except FileReadError as exc:
        raise FileReadError(f"{path.name}: {exc}") from None
    raise FileReadError(f"{path.name}: 不支持的文件类型 {suffix or '(无扩展名)'}（支持 .csv .xlsx .xls .parquet）")
