"""Bank statement readers: a real statement file -> canonical `bank_transactions` rows.

    from recon_pipeline.ingest.statements import detect_format, read_statement, StatementError
    detect_format(path)          # "camt053", "camt054", "mt940", "cn_icbc", ... or None
    frame = read_statement(path)  # canonical columns + `_row_number`, all text (object dtype)
    read = read_statement_file(path)  # the frame with its format, encoding and column sources

Formats are recognised by content: camt.052/053/054 by their ISO 20022 message, MT940/MT942
by their tags, the Chinese bank/payment exports that have a reader of their own by the set of
headers under their preamble; any other bank, card or payment table is read by the generic
reader (`generic`), which infers its layout. A file that cannot be read raises
`StatementError` with a Chinese message; never a partial result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .camt import read_camt
from .canonical import CANONICAL_COLUMNS, ROW_NUMBER_COLUMN, StatementLine, to_frame
from .cn_exports import EXPORT_FORMATS, FORMATS_BY_NAME, find_header, read_export
from .detect import detect_from_bytes
from .errors import StatementError
from .mt940 import decode_mt940_with_encoding, read_mt940
from .tables import is_spreadsheet, load_rows_with_encoding

__all__ = [
    "CANONICAL_COLUMNS",
    "FORMAT_NAMES",
    "ROW_NUMBER_COLUMN",
    "StatementError",
    "StatementFile",
    "detect_format",
    "read_statement",
    "read_statement_file",
]

CAMT_FORMATS = ("camt053", "camt052", "camt054")
GENERIC = "generic"
FORMAT_NAMES: list[str] = [*CAMT_FORMATS, "mt940", *(fmt.name for fmt in EXPORT_FORMATS), GENERIC]
_TRIED = "camt.053/052/054、MT940/MT942、" + "、".join(fmt.label for fmt in EXPORT_FORMATS) + "、通用表格识别"
DETECT_PREFIX_BYTES = 256 * 1024  # a text export's header sits in its first lines

# Where each canonical column comes from, in the format's own terms (for `recon inspect`).
CAMT_SOURCES = {
    "account_no": "Stmt/Rpt/Ntfctn › Acct/Id (IBAN 或 Othr/Id)",
    "txn_id": "Ntry/AcctSvcrRef（或 NtryRef、TxDtls/Refs）",
    "txn_time": "Ntry/BookgDt（无则 ValDt）",
    "amount": "TxDtls/Amt（单笔时 Ntry/Amt）+ CdtDbtInd",
    "currency": "Amt/@Ccy（或 Acct/Ccy）",
    "counterparty_name": "TxDtls/RltdPties/Dbtr|Cdtr/Nm",
    "counterparty_account": "TxDtls/RltdPties/DbtrAcct|CdtrAcct",
    "memo": "TxDtls/RmtInf/Ustrd（或 Strd、AddtlNtryInf）",
}
MT940_SOURCES = {
    "account_no": ":25:",
    "txn_id": ":61: //银行参考号（或客户参考号）",
    "txn_time": ":61: 记账日（无则起息日）",
    "amount": ":61: 金额 + 借贷标记 (C/D/RC/RD/EC/ED)",
    "currency": ":60F:/:60M: 币种",
    "counterparty_name": ":86: ?32?33 或 /NAME/、/CNTP/",
    "counterparty_account": ":86: ?31 或 /IBAN/、/CNTP/",
    "memo": ":86: ?20-?29 或 /REMI/，否则 :86: 全文",
}


@dataclass
class StatementFile:
    """A statement file as read: canonical frame, format, text encoding and what each
    canonical column was read from."""

    frame: pd.DataFrame
    format: str
    encoding: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    inference: object | None = None  # generic.Inference for a file the generic reader read


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit) if limit else handle.read()
    except OSError as exc:
        raise StatementError(f"无法打开文件 {path}：{exc.strerror or exc}") from exc


def detect_format(path: str | Path) -> str | None:
    """The statement format of a file from its content, or None when it is none of those
    with a reader of their own (a plain canonical CSV, or a table for the generic reader)."""
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


def _xml_encoding(data: bytes) -> str:
    found = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9_.\-]+)[\"']", data[:200])
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    return found[1].decode("ascii").lower() if found else "utf-8"


def _with_account(lines: list[StatementLine], account_no: str | None) -> pd.DataFrame:
    """The canonical frame, with the fallback account on lines whose file prints none (set
    before the derived txn_ids are computed: they include the account)."""
    if account_no:
        for line in lines:
            line.account_no = line.account_no or account_no
    return to_frame(lines)


def _generic(path: Path, data: bytes, account_no: str | None, loaded=None) -> StatementFile:
    from . import generic

    loaded = loaded if loaded is not None else load_rows_with_encoding(path, data)
    if loaded is None:
        raise StatementError(f"无法识别 {path.name} 的对账单格式：已尝试 {_TRIED}，均不匹配（不是表格或文本文件）")
    rows, encoding = loaded
    inference = generic.infer_profile(rows, path.name, encoding)
    if inference.profile is None:
        where = f"表头取第 {inference.header_row} 行" if inference.header_row else "没有找到像表头的行"
        raise StatementError(
            f"无法识别 {path.name} 的对账单格式：已尝试 {_TRIED}，均不匹配（通用识别：{where}，"
            f"未找到 {'、'.join(inference.missing)}）")
    frame = generic.read_rows(rows, inference, account_no)
    return StatementFile(frame, GENERIC, encoding, dict(inference.columns_used), inference)


def _read(path: Path, data: bytes, fmt: str | None, account_no: str | None) -> StatementFile:
    parsed = None
    if fmt is None:
        fmt, parsed = detect_from_bytes(path, data)
        if fmt is None:
            return _generic(path, data, account_no, parsed[0] if parsed else None)
    if fmt == GENERIC:
        return _generic(path, data, account_no)
    if fmt in CAMT_FORMATS:
        return StatementFile(_with_account(read_camt(path, data), account_no), fmt, _xml_encoding(data), dict(CAMT_SOURCES))
    if fmt == "mt940":
        _, encoding = decode_mt940_with_encoding(data)
        return StatementFile(_with_account(read_mt940(path, data), account_no), fmt, encoding, dict(MT940_SOURCES))
    if fmt not in FORMATS_BY_NAME:
        raise StatementError(f"未知的对账单格式 {fmt!r}（支持：{'、'.join(FORMAT_NAMES)}）")
    if parsed is None or parsed[1] is None:
        loaded = load_rows_with_encoding(path, data)
        found = find_header(loaded[0]) if loaded is not None else None
        if found is None or found[0].name != fmt:
            label = FORMATS_BY_NAME[fmt].label
            raise StatementError(f"无法按{label}（{fmt}）读取 {path.name}：没有找到该格式的表头")
        rows, encoding = loaded
    else:
        (rows, encoding), found = parsed
    export, header_index, header = found
    lines = read_export(path, rows, export, header_index, header)
    return StatementFile(_with_account(lines, account_no), fmt, encoding, dict(export.sources))


def read_statement_file(path: str | Path, fmt: str | None = None, *, account_no: str | None = None) -> StatementFile:
    """A statement file read into canonical `bank_transactions` rows (format detected unless
    given), with its format, encoding and column sources.

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
        read = _read(path, data, fmt, account_no)
    except StatementError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as exc:
        # A reader tripping over a malformed file is the file's fault, not a crash.
        raise StatementError(f"无法读取 {path.name}：文件内容不符合 {fmt or '识别出的'} 格式（{exc}）") from exc
    return read


def read_statement(path: str | Path, fmt: str | None = None, *, account_no: str | None = None) -> pd.DataFrame:
    """The canonical frame of `read_statement_file`."""
    return read_statement_file(path, fmt, account_no=account_no).frame

