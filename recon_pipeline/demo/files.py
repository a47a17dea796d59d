"""Writers for the demo landing zone that give the same bytes for the same rows.

CSV goes through the standard `csv` module (minimal quoting, as Excel and bank portals write)
and is then encoded (UTF-8, UTF-8 with BOM or GB18030). `.xlsx` files are written by openpyxl
and re-zipped with fixed timestamps, because a workbook otherwise records the wall clock.
Parquet keeps real types (DECIMAL(18,2) money, timestamps), as a finance system exports them.
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

FIXED_ZIP_TIME = (2025, 1, 1, 0, 0, 0)


def csv_lines(columns: Sequence) -> list[str]:
    """Rows as CSV text lines with minimal quoting (what the `csv` module writes), built
    column-wise in Arrow: a million rows take a second instead of ten."""
    quoted = []
    for column in columns:
        values = column if isinstance(column, (pa.Array, pa.ChunkedArray)) else pa.array(column, type=pa.string())
        values = pc.fill_null(values.cast(pa.string()), "")
        needs = pc.match_substring_regex(values, r'[,"\r\n]')
        if pc.any(needs).as_py():
            escaped = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
            values = pc.if_else(needs, escaped, values)
        quoted.append(values)
    if not quoted or len(quoted[0]) == 0:
        return []
    return pc.binary_join_element_wise(*quoted, ",").to_pylist()


def csv_line(values: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def write_csv_lines(path: Path, header: Sequence[str], lines: list[str], encoding: str = "utf-8",
                    line_terminator: str = "\n") -> None:
    text = line_terminator.join([csv_line(header), *lines]) + line_terminator
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))


def write_xlsx(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """One sheet of typed cells (text, Decimal amounts, dates, datetimes)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)  # streaming: a benchmark-sized drop stays fast
    sheet = workbook.create_sheet("Sheet1")
    sheet.append(list(header))
    for row in rows:  # dates get Excel's date format from openpyxl; amounts are plain numbers
        sheet.append(list(row))
    fixed = datetime(2025, 1, 1)
    workbook.properties.created = fixed
    workbook.properties.modified = fixed
    workbook.properties.creator = "recon-demo"
    raw = io.BytesIO()
    workbook.save(raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_rezip_with_fixed_times(raw.getvalue()))


def _rezip_with_fixed_times(data: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rb"\g<1>2025-01-01T00:00:00Z\g<2>", data)
            target.writestr(fixed, data)
    return out.getvalue()


def write_parquet(path: Path, columns: dict[str, list], types: dict[str, str]) -> None:
    """`types`: column -> "string" | "decimal" (Decimal values) | "timestamp" (datetime values)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow_types = {"string": pa.string(), "decimal": pa.decimal128(18, 2), "timestamp": pa.timestamp("s")}
    arrays = [pa.array(values, type=arrow_types[types[name]]) for name, values in columns.items()]
    table = pa.Table.from_arrays(arrays, names=list(columns))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")


def set_arrival_time(path: Path, when: datetime) -> None:
    """Give a drop the modification time of its (simulated) arrival, so late drops look late."""
    stamp = when.timestamp()
    os.utime(path, (stamp, stamp))


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)
