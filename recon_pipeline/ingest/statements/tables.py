"""Load a bank export as a grid of text cells: CSV (UTF-8 or GB18030), legacy .xls or .xlsx.

Sniffs the content, not the extension: a portal download named `.csv` may be a real
spreadsheet and an `.xls` may be HTML or text.
"""

from __future__ import annotations

import csv
import io
import itertools
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

from .errors import StatementError

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (BIFF in an OLE2 container)
ZIP_MAGIC = b"PK\x03\x04"  # .xlsx


def is_spreadsheet(head: bytes) -> bool:
    return head.startswith(OLE2_MAGIC) or head.startswith(ZIP_MAGIC)


def decode_text(data: bytes) -> str | None:
    """UTF-8 (with or without BOM) first, then GB18030 (a superset of GBK, what Chinese
    Excel and bank portals write). None when neither fits or the bytes look binary."""
    decoded = decode_text_with_encoding(data)
    return decoded[0] if decoded else None


def decode_text_with_encoding(data: bytes) -> tuple[str, str] | None:
    """(text, encoding name as `recon inspect` shows it) or None."""
    if b"\x00" in data[:4096]:
        return None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            return None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == "utf-8-sig":
            return text, "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
        return text, encoding
    return None


def cell_text(value: object) -> str:
    """A spreadsheet cell as text. Numbers: integral floats (dates typed as 20250101) lose the
    `.0`; others use the shortest round-trip text, never float arithmetic."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    return str(value)


def read_spreadsheet_rows(path: Path) -> list[list[str]]:
    """All sheets' rows, first sheet first (exports put the statement on the first sheet)."""
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        rows: list[list[str]] = []
        for index in range(len(workbook.sheet_names)):
            sheet = workbook.get_sheet_by_index(index).to_python()
            rows.extend([cell_text(cell) for cell in row] for row in sheet)
            if rows:
                break
        return rows
    except Exception as exc:  # calamine raises its own error types for damaged files
        raise StatementError(f"无法读取表格文件 {path.name}：文件已损坏或不是 Excel 格式（{exc}）") from exc


_SPREADSHEET_ML = "urn:schemas-microsoft-com:office:spreadsheet"


def markup_rows(text: str) -> list[list[str]] | None:
    """The rows of an "Excel" download that is really an HTML table or an Excel 2003 XML
    workbook (bank portals write both under `.xls`), or None when the text is neither."""
    head = text[:65536].lstrip("\ufeff").lstrip().lower()
    if not head.startswith("<"):
        return None
    if _SPREADSHEET_ML in text[:65536]:
        return _spreadsheet_ml_rows(text)
    if "<table" in head or "<tr" in head:
        return _html_rows(text)
    return None


def _html_rows(text: str) -> list[list[str]] | None:
    from lxml import html

    try:
        document = html.document_fromstring(text.encode("utf-8"), parser=html.HTMLParser(encoding="utf-8", no_network=True))
    except (ValueError, TypeError, Exception):  # lxml raises ParserError for an empty document
        return None
    rows = []
    for row in document.iter("tr"):
        cells = [" ".join(cell.text_content().split()) for cell in row if cell.tag in ("td", "th")]
        rows.append(cells)
    return rows or None


def _spreadsheet_ml_rows(text: str) -> list[list[str]] | None:
    from lxml import etree

    if "<!DOCTYPE" in text[:4096].upper() or "<!ENTITY" in text.upper():
        return None  # no DTD in an Excel download: refuse rather than parse entities
    try:
        root = etree.fromstring(text.encode("utf-8"), parser=etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False))
    except etree.XMLSyntaxError:
        return None
    namespace = "{" + _SPREADSHEET_ML + "}"
    sheet = root.find(f"{namespace}Worksheet")
    rows = []
    for row in (sheet.iter(f"{namespace}Row") if sheet is not None else ()):
        cells: list[str] = []
        for cell in row.iter(f"{namespace}Cell"):
            index = cell.get(f"{namespace}Index")
            if index and index.isdigit():
                cells += [""] * max(0, int(index) - 1 - len(cells))
            data = cell.find(f"{namespace}Data")
            cells.append("".join(data.itertext()).strip() if data is not None else "")
        rows.append(cells)
    return rows or None


DELIMITERS = (",", "\t", ";", "|")
SNIFF_ROWS = 60


def sniff_delimiter(text: str, field_limit: int = 1 << 20) -> str:
    """The delimiter under which the first rows agree on one width: for each candidate, the
    rows are parsed as CSV (quoted newlines included) and the rows sharing the most common
    width above 1 are scored by the cells they hold (rows x width); `,` wins ties. Preamble
    lines are few, and a delimiter that merely occurs inside cells gives ragged or narrow
    rows, so neither decides."""
    head = text[:1 << 20]
    best, best_score = ",", (0, 0, True)
    for delimiter in DELIMITERS:
        widths: dict[int, int] = {}
        try:
            reader = csv.reader(io.StringIO(head, newline=""), delimiter=delimiter)
            for cells in itertools.islice(reader, SNIFF_ROWS):
                if any(len(cell) >= field_limit for cell in cells):
                    break
                if len(cells) > 1:
                    widths[len(cells)] = widths.get(len(cells), 0) + 1
        except csv.Error:
            pass
        if not widths:
            continue
        width, rows = max(widths.items(), key=lambda item: (item[1] * item[0], item[1]))
        score = (rows * width, rows, delimiter == ",")
        if score > best_score:
            best, best_score = delimiter, score
    return best


def read_csv_rows(text: str) -> list[list[str]]:
    """CSV rows with the sniffed delimiter; a ragged preamble (title lines) is fine."""
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text)))


def load_rows(path: Path, data: bytes) -> list[list[str]] | None:
    """The grid of a tabular export, or None when the bytes are neither a spreadsheet nor text."""
    loaded = load_rows_with_encoding(path, data)
    return loaded[0] if loaded else None


def load_rows_with_encoding(path: Path, data: bytes) -> tuple[list[list[str]], str | None] | None:
    """(grid, text encoding or None for a spreadsheet), or None."""
    if is_spreadsheet(data[:8]):
        return read_spreadsheet_rows(path), None
    decoded = decode_text_with_encoding(data)
    if decoded is None:
        return None
    markup = markup_rows(decoded[0])
    if markup is not None:
        return markup, decoded[1]
    try:
        return read_csv_rows(decoded[0]), decoded[1]
    except csv.Error:
        return None
