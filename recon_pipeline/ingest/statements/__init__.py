"""Bank statement readers: a real statement file -> canonical `bank_transactions` rows.

    from recon_pipeline.ingest.statements import detect_format, read_statement, StatementError
    detect_format(path)          # "camt053", "mt940", "cn_icbc", ... or None
    frame = read_statement(path)  # canonical columns + `_row_number`, all text (object dtype)

Formats are recognised by content: camt.053 by its ISO 20022 namespace, MT940 by its tags,
Chinese bank/payment exports by the set of headers under their preamble. A file that
cannot be read raises `StatementError` with a Chinese message; never a partial result.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .camt import read_camt
from .canonical import CANONICAL_COLUMNS, ROW_NUMBER_COLUMN, StatementLine, to_frame
from .cn_exports import EXPORT_FORMATS, FORMATS_BY_NAME, find_header, read_export
from .detect import detect_from_bytes
from .errors import StatementError
from .mt940 import read_mt940
from .tables import is_spreadsheet, load_rows

__all__ = [
    "CANONICAL_COLUMNS",
    "FORMAT_NAMES",
    "ROW_NUMBER_COLUMN",
    "StatementError",
    "detect_format",
    "read_statement",
]

CAMT_FORMATS = ("camt053", "camt052", "camt054")
FORMAT_NAMES: list[str] = [*CAMT_FORMATS, "mt940", *(fmt.name for fmt in EXPORT_FORMATS)]
_TRIED = "camt.053/052/054、MT940/MT942、" + "、".join(fmt.label for fmt in EXPORT_FORMATS)
DETECT_PREFIX_BYTES = 256 * 1024  # a text export's header sits in its first lines


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit) if limit else handle.read()
    except OSError as exc:
        raise StatementError(f"无法打开文件 {path}：{exc.strerror or exc}") from exc


def detect_format(path: str | Path) -> str | None:
    """The statement format of a file from its content, or None when it is none of ours
    (a plain canonical CSV is left to the generic CSV reader)."""
    path = Path(path)
    head = _read_bytes(path, DETECT_PREFIX_BYTES)
    if not head.strip():
        return None
    data = _read_bytes(path) if is_spreadsheet(head[:8]) else head
    try:
        name, _ = detect_from_bytes(path, data)
    except StatementError:
        return None
    return name


def _lines(path: Path, data: bytes, fmt: str | None) -> list[StatementLine]:
    if fmt is None:
        fmt, parsed = detect_from_bytes(path, data)
        if fmt is None:
            raise StatementError(f"无法识别 {path.name} 的对账单格式：已尝试 {_TRIED}，均不匹配")
    else:
        parsed = None
    if fmt in CAMT_FORMATS:
        return read_camt(path, data)
    if fmt == "mt940":
        return read_mt940(path, data)
    if fmt not in FORMATS_BY_NAME:
        raise StatementError(f"未知的对账单格式 {fmt!r}（支持：{'、'.join(FORMAT_NAMES)}）")
    if parsed is None:
        rows = load_rows(path, data)
        found = find_header(rows) if rows is not None else None
        if found is None or found[0].name != fmt:
            label = FORMATS_BY_NAME[fmt].label
            raise StatementError(f"无法按{label}（{fmt}）读取 {path.name}：没有找到该格式的表头")
    else:
        rows, found = parsed
    export, header_index, header = found
    return read_export(path, rows, export, header_index, header)


def read_statement(path: str | Path, fmt: str | None = None, *, account_no: str | None = None) -> pd.DataFrame:
    """Canonical `bank_transactions` rows of a statement file (format detected unless given).

    Columns: account_no, txn_id, txn_time ("YYYY-MM-DD HH:MM:SS", local time as printed),
    amount (signed decimal text, + money in), currency, counterparty_name,
    counterparty_account, memo, all text or None; plus `_row_number` (1-based position of
    the line/entry in the file). `account_no` is a fallback for exports that print no
    account number (personal exports often do not); the statement's own number wins.
    """
    path = Path(path)
    data = _read_bytes(path)
    if not data.strip():
        raise StatementError(f"无法读取 {path.name}：文件为空")
    try:
        lines = _lines(path, data, fmt)
    except StatementError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as exc:
        # A reader tripping over a malformed file is the file's fault, not a crash.
        raise StatementError(f"无法读取 {path.name}：文件内容不符合 {fmt or '识别出的'} 格式（{exc}）") from exc
    if account_no:
        for line in lines:
            line.account_no = line.account_no or account_no
    return to_frame(lines)
