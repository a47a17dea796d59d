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

from recon_pipeline.ingest.archives import ArchiveError, IngestLimits
from recon_pipeline.ingest.file_profiles import (
    HEADER_SEARCH_ROWS,
    FileProfile,
    ProfileError,
    ProfileStats,
    apply_profile,
    choose_profile,
    load_profiles,
)
from recon_pipeline.ingest.statements.tables import cell_text, sniff_delimiter
from recon_pipeline.settings import Settings
from recon_pipeline.sources import SourceSpec

BATCH_ROWS = 200_000
CSV_FIELD_LIMIT = 1024 * 1024  # a longer CSV field fails the file (a cell over the cell limit is quarantined)
csv.field_size_limit(CSV_FIELD_LIMIT)


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
    # Where each canonical column comes from in the file's own words (built-in statement
    # readers and the generic reader), e.g. {"txn_time": "交易日期"}; None: the mapping says it.
    sources: dict[str, str] | None = None
    inference: object | None = None  # statements.generic.Inference when the generic reader read it
    stats: ProfileStats | None = None  # rows read and skipped (summary/footer) by a profile

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
    inference=None, diagnosis: str | None = None,
) -> ReadFile:
    """Map the headers and check the required columns; `batches` (already in file-column form)
    stand in for `rows` when a fast reader produced them."""
    computed_from = None
    stats = None
    if profile is not None:
        computed_from = len(headers)
        stats = ProfileStats()
        try:
            headers, rows = apply_profile(profile, headers, rows, stats)
        except ProfileError as exc:
            raise FileReadError(str(exc)) from None
        if inference is not None:
            fmt = f"{fmt}（通用识别: {inference.convention_label}）"
        else:
            fmt = f"{fmt}（格式: {profile.name}）"
    mapping = header_mapping(headers, spec, settings, profile, computed_from)
    columns = [c for c in spec.column_names if c in mapping.values()]
    missing = [c for c in spec.required_columns if c not in columns]
    if missing:
        shown = ", ".join(_clean_header(h) for h in headers[:20])
        raise FileReadError(
            f"缺少必需列 {', '.join(missing)}（表头为: {shown}）；请在 settings 的 column_mappings.{spec.name} 中配置列名映射"
            + (f"；{diagnosis}" if diagnosis else "")
        )
    if batches is None:
        batches = _batches_from_rows(rows, len(headers))
    sources = inference.columns_used if inference is not None else None
    return ReadFile(columns, encoding, batches, fmt, [_clean_header(h) for h in headers], mapping, sources, inference, stats)


def _generic_profile(head: list[list[str]], all_rows, spec: SourceSpec, settings: Settings, path: Path, encoding):
    """For a bank file no configured profile fits: the generic reader's inferred profile,
    when the plain column mapping would not read it right (its first row does not name the
    required columns, or the export signs money with in/out columns or a debit/credit
    flag). Returns (inference or None, diagnosis text for a missing-columns error)."""
    if spec.name != "bank_transactions":
        return None, None
    from recon_pipeline.ingest.statements import generic

    guess = generic.find_header(head)
    if guess is None:
        near = generic.closest_header(head)
        where = f"第 {near.index + 1} 行" if near else "前几行中没有像表头的行"
        return None, f"通用识别: 表头取{where}，未找到 {'、'.join(generic._missing_labels(near))}"
    plain = header_mapping(head[0], spec, settings) if head else {}
    complete = all(c in plain.values() for c in spec.required_columns)
    signs = any(guess.roles.get(role) for role in ("credit", "debit", "flag"))
    if complete and not signs and guess.index == 0:
        return None, None
    inference = generic.infer_profile(all_rows(), path.name, encoding)
    if inference.profile is None:
        return None, f"通用识别: 表头取第 {inference.header_row} 行，未找到 {'、'.join(inference.missing)}"
    return inference, None


def _for_this_file(profile: FileProfile | None, preamble: list[list[str]], inference, path: Path, settings: Settings):
    """A profile as it applies to one file: the account printed in its preamble, or (for the
    generic reader) the `statement_accounts` fallback."""
    if profile is None:
        return None
    from recon_pipeline.ingest.file_profiles import resolve_preamble

    profile = resolve_preamble(profile, preamble)
    if inference is not None:
        from recon_pipeline.ingest.statements.generic import with_fallback_account

        profile = with_fallback_account(profile, statement_account(path, settings))
    return profile


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
    delimiter = next((p.delimiter for p in profiles if p.delimiter), None) or sniff_delimiter(text, CSV_FIELD_LIMIT)
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
    inference = diagnosis = None
    if profile is None:
        everything: list = []

        def all_rows():
            everything.extend(itertools.chain(head, rows))
            return [cells for _, cells in everything]

        inference, diagnosis = _generic_profile([cells for _, cells in head], all_rows, spec, settings, path, encoding)
        if everything:  # the rows were read to infer the layout: keep reading from them
            head, rows = everything, iter(())
        if inference is not None:
            profile, header_index = inference.profile, inference.header_row - 1
    headers = head[header_index][1]
    profile = _for_this_file(profile, [cells for _, cells in head[:header_index]], inference, path, settings)
    fast = _fast_csv_batches(text, delimiter, len(headers)) if profile is None and header_index == 0 else None
    return _open_table(
        headers, itertools.chain(head[header_index + 1:], rows), spec, settings, encoding, "csv", profile, fast,
        inference, diagnosis,
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


def _markup_grid(path: Path) -> list[list[str]] | None:
    """An `.xls` download that is an HTML table or an Excel 2003 XML workbook, as rows."""
    from recon_pipeline.ingest.statements.tables import decode_text, markup_rows

    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith((b"\xd0\xcf\x11\xe0", b"PK\x03\x04")):
        return None
    text = decode_text(path.read_bytes())
    return markup_rows(text) if text is not None else None


def read_spreadsheet(path: Path, spec: SourceSpec, settings: Settings) -> ReadFile:
    from python_calamine import CalamineWorkbook

    grid = _markup_grid(path)
    if grid is None:
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
    inference = diagnosis = None
    if profile is None:
        inference, diagnosis = _generic_profile(
            head[first_filled:], lambda: [[cell_text(v) for v in row] for row in grid[first_filled:]], spec, settings,
            path, None)
        if inference is not None:
            profile, header_index = inference.profile, first_filled + inference.header_row - 1
            inference.header_row = header_index + 1
    headers = [cell_text(v) for v in grid[header_index]]
    profile = _for_this_file(profile, [[cell_text(v) for v in row] for row in grid[:header_index]], inference, path, settings)
    rows = ((i + 1, [cell_text(v) for v in grid[i]]) for i in range(header_index + 1, len(grid)))
    return _open_table(headers, rows, spec, settings, None, path.suffix.lower().lstrip("."), profile,
                       inference=inference, diagnosis=diagnosis)


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
        read = statements.read_statement_file(path, fmt, account_no=statement_account(path, settings))
    except statements.StatementError as exc:
        raise FileReadError(str(exc)) from None
    frame = read.frame
    headers = [c for c in frame.columns if c != "_row_number"]
    numbers = frame["_row_number"].tolist()
    cells = frame[headers].fillna("").astype(str).values.tolist()
    opened = _open_table(headers, zip(numbers, cells), spec, settings, read.encoding, fmt)
    opened.sources = read.sources
    return opened


_SUFFIX_READERS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "spreadsheet", ".xls": "spreadsheet",
                   ".xlsm": "spreadsheet", ".parquet": "parquet"}


def _kind_by_content(path: Path) -> str | None:
    """For a file whose extension says nothing (`.dat`, none): what its bytes are."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head.startswith((b"\xd0\xcf\x11\xe0", b"PK\x03\x04")):
        return "spreadsheet"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.strip() and b"\x00" not in head:
        return "spreadsheet" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") else "csv"
    return None


def check_file_limits(path: Path, limits: IngestLimits) -> None:
    """Refuse a file whose size, or the size it would expand to in memory (a workbook is a
    zip; a Parquet file declares its uncompressed size), is over the limits."""
    from recon_pipeline.ingest.archives import check_workbook

    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise FileReadError(f"文件过大（{size // (1024 * 1024)} MB，上限 {limits.max_file_mb} MB，见 ingest_limits.max_file_mb）")
    with open(path, "rb") as handle:
        head = handle.read(4)
    try:
        if head == b"PK\x03\x04":
            check_workbook(path, limits)
        elif head == b"PAR1":
            import pyarrow.parquet as pq

            try:
                metadata = pq.ParquetFile(path).metadata
            except Exception:  # a damaged file: the reader reports it
                return
            expanded = _parquet_expanded_bytes(metadata)
            if expanded > limits.max_archive_mb * 1024 * 1024:
                raise FileReadError(
                    f"Parquet 文件解压后约 {expanded // (1024 * 1024)} MB，超过 {limits.max_archive_mb} MB 上限（ingest_limits.max_archive_mb）")
    except ArchiveError as exc:
        raise FileReadError(str(exc)) from None


def _parquet_expanded_bytes(metadata) -> int:
    """What a Parquet file takes once read as text: its declared uncompressed size, or, for
    dictionary- or run-length-encoded columns (a million copies of one long text store as
    one), rows times the longest value its statistics record."""
    declared = estimated = 0
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        declared += group.total_byte_size
        for j in range(group.num_columns):
            stats = group.column(j).statistics
            width = 8
            if stats is not None and stats.has_min_max and isinstance(stats.max, (str, bytes)):
                width = max(len(stats.max), len(stats.min), 8)
            estimated += group.num_rows * width
    return max(declared, estimated)


def read_landing_file(path: Path, spec: SourceSpec, settings: Settings) -> ReadFile:
    """Open any supported landing file of `spec`'s source; raises FileReadError if it cannot
    (an archive is opened by `read_landing_members`)."""
    from recon_pipeline.ingest.archives import is_archive

    suffix = path.suffix.lower()
    try:
        if is_archive(path):
            raise FileReadError("是压缩包（.zip/.gz），其中的每个文件分别读取（read_landing_members）")
        check_file_limits(path, IngestLimits.from_settings(settings))
        if spec.name == "bank_transactions":
            statement = _read_statement(path, spec, settings)
            if statement is not None:
                return statement
        kind = _SUFFIX_READERS.get(suffix) or _kind_by_content(path)
        if kind == "csv" and _kind_by_content(path) == "spreadsheet":
            kind = "spreadsheet"  # an HTML table saved as .csv
        if kind == "csv":
            return read_csv(path, spec, settings)
        if kind == "spreadsheet":
            return read_spreadsheet(path, spec, settings)
        if kind == "parquet":
            return read_parquet(path, spec, settings)
    except FileReadError as exc:
        raise FileReadError(f"{path.name}: {exc}") from None
    except OSError as exc:  # removed or unreadable while we read it
        raise FileReadError(f"{path.name}: 无法读取文件（{exc.strerror or exc}）") from None
    raise FileReadError(f"{path.name}: 不支持的文件类型 {suffix or '(无扩展名)'}（支持 .csv .xlsx .xls .parquet，及 .zip/.gz 压缩包）")


def read_landing_members(path: Path, spec: SourceSpec, settings: Settings) -> Iterator[tuple[str, ReadFile | None, str | None]]:
    """Each member of an archive delivery as (member name, the file read, None) or (member
    name, None, why it could not be read). Members are written only to a private temporary
    folder (never the landing zone) under a cleaned name, read like landing files and removed.
    Raises FileReadError when the archive itself is refused (damaged, a zip bomb)."""
    import tempfile

    from recon_pipeline.ingest.archives import read_members

    limits = IngestLimits.from_settings(settings)
    try:
        if path.stat().st_size > limits.max_file_bytes:
            raise FileReadError(f"{path.name}: 压缩包过大（上限 {limits.max_file_mb} MB）")
        members = read_members(path, limits)
        with tempfile.TemporaryDirectory(prefix="recon-member-") as scratch:
            for index, member in enumerate(members):
                if member.data is None:
                    yield member.name, None, member.problem
                    continue
                folder = Path(scratch) / str(index)
                folder.mkdir()
                target = folder / (Path(member.name).name or "member")
                target.write_bytes(member.data)
                try:
                    opened = read_landing_file(target, spec, settings)
                    opened.batches = iter(list(opened.batches))  # read now: the scratch copy goes
                except FileReadError as exc:
                    yield member.name, None, str(exc).removeprefix(f"{target.name}: ")
                    continue
                finally:
                    target.unlink(missing_ok=True)
                yield member.name, opened, None
    except ArchiveError as exc:
        raise FileReadError(str(exc)) from None
    except OSError as exc:
        raise FileReadError(f"{path.name}: 无法读取压缩包（{exc.strerror or exc}）") from None
