"""Table exports for Excel users: XLSX (xlsxwriter, streamed) and CSV, formula-safe.

Finance opens these files in Excel, where a cell whose text starts with `=`, `+`, `-` or `@`
(or a tab / carriage return, which Excel strips before looking) is read as a formula: a payer
name such as `=HYPERLINK("http://x", "点此")` or `@SUM(...)` would run on the reader's machine.
Every text cell that could be read that way gets a leading apostrophe (OWASP's advice); money is
written as a number with two decimals, times as Excel dates, so nothing numeric is turned into
text.

xlsxwriter, not openpyxl: it streams rows to disk (`constant_memory`) and writes a string cell
as a string even when it looks like a formula when asked with `write_string`.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Iterable, Sequence

# One rule for every spreadsheet the project writes (the statement's too).
from recon_pipeline.close.export import safe_text as neutralise

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
EXCEL_MAX_ROWS = 1_048_575  # below the header


def cell_text(value) -> str:
    """A value as export text (CSV, and XLSX cells that are not numbers or dates)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return neutralise(str(value))


def xlsx_bytes(sheet: str, headers: Sequence[str], kinds: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """One worksheet: a bold Chinese header row, then the rows; `kinds` per column decide
    the cell type (money -> number #,##0.00, int / score -> number, datetime / date -> date,
    anything else -> neutralised text)."""
    return xlsx_book([(sheet, headers, kinds, rows)])


def xlsx_book(sheets: Sequence[tuple[str, Sequence[str], Sequence[str], Iterable[Sequence]]]) -> bytes:
    """Several worksheets `(name, headers, kinds, rows)` in one workbook (a page's tables)."""
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"constant_memory": True, "in_memory": False, "strings_to_formulas": False,
                                        "strings_to_urls": False, "strings_to_numbers": False})
    try:
        bold = book.add_format({"bold": True, "bg_color": "#EEF2F7"})
        formats = {
            "money": book.add_format({"num_format": "#,##0.00"}),
            "datetime": book.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
            "date": book.add_format({"num_format": "yyyy-mm-dd"}),
            "percent": book.add_format({"num_format": "0.0%"}),
        }
        used: set[str] = set()
        for sheet, headers, kinds, rows in sheets:
            worksheet = book.add_worksheet(_sheet_name(sheet, used))
            for column, header in enumerate(headers):
                worksheet.write_string(0, column, neutralise(header), bold)
                worksheet.set_column(column, column, 14 if kinds[column] != "text" else 22)
            worksheet.freeze_panes(1, 0)
            for row_number, row in enumerate(rows, start=1):
                if row_number > EXCEL_MAX_ROWS:
                    break
                for column, value in enumerate(row):
                    _write_cell(worksheet, row_number, column, value, kinds[column], formats)
    finally:
        book.close()
    return buffer.getvalue()


def _sheet_name(name: str, used: set[str]) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\, unique in the book."""
    base = "".join("_" if c in "[]:*?/\\" else c for c in name).strip("'")[:31] or "Sheet"
    candidate, n = base, 2
    while candidate.lower() in used:
        suffix = f"({n})"
        candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(candidate.lower())
    return candidate


def _write_cell(worksheet, row: int, column: int, value, kind: str, formats: dict) -> None:
    if value is None:
        worksheet.write_blank(row, column, None)
    elif kind == "money" and isinstance(value, (Decimal, int, float)):
        # A DECIMAL(18,2) amount is exact as a double to the cent at any size finance meets.
        worksheet.write_number(row, column, float(value), formats["money"])
    elif kind in ("int", "score", "days") and isinstance(value, (Decimal, int, float)) and not isinstance(value, bool):
        worksheet.write_number(row, column, float(value))
    elif kind == "percent" and isinstance(value, (Decimal, int, float)):
        worksheet.write_number(row, column, float(value), formats["percent"])
    elif kind == "datetime" and isinstance(value, datetime):
        worksheet.write_datetime(row, column, value, formats["datetime"])
    elif kind in ("date", "datetime") and isinstance(value, date):
        worksheet.write_datetime(row, column, datetime(value.year, value.month, value.day), formats["date"])
    else:
        worksheet.write_string(row, column, cell_text(value))


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """UTF-8 with BOM (Chinese Excel needs it), every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise(h) for h in headers])
    for row in rows:
        writer.writerow([cell_text(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def content_disposition(filename: str) -> str:
    """An attachment header that keeps a Chinese file name (RFC 6266 / 5987)."""
    from urllib.parse import quote

    ascii_name = "".join(c if c.isascii() and c.isalnum() or c in "-_." else "_" for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
