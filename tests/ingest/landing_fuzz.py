"""The landing-zone fuzz campaign: hypothesis strategies for landing zones full of good and
malformed rows in every source and every file type, and the check that ingestion accounts
for every row (used by tests/ingest/test_landing_fuzz.py and bench/fuzz_landing.py).

A case is a set of drops. Each file is CSV (UTF-8, UTF-8 with BOM, GB18030), XLSX or
Parquet for any source, and for bank lines also camt.053, MT940 or a Chinese bank export read
by the generic reader. Every row the generator writes is either good (every value valid) or
bad (one defect: an unreadable amount or date, a missing required value, a word outside a
vocabulary, a giant cell, more cells than the header). Some drops also hold a broken file
(truncated workbook, binary junk), which must fail that drop alone with a message.

The check (`account`): ingestion never raises; a drop without a broken file loads; each of
its files' good rows is in `raw.<source>` (by key) and each bad row in `raw.quarantine` with a
reason; a drop with a broken file is reported failed. `rows_lost` counts what is missing.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from hypothesis import strategies as st

from recon_pipeline.sources import SOURCES, SourceSpec

TEXT_SAMPLES = ["上海某某科技有限公司", "北京某某（集团）股份有限公司", "25SH00137", "a,b", 'say "hi"', "line\nbreak",
                "=HYPERLINK(\"x\")", "<script>alert(1)</script>", "'; DROP TABLE x; --", "emoji 😀", "tab\there",
                "  padded  ", "中***融科技", "¥1,000", "NULL", "-"]
TIMESTAMP_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M", "%Y%m%d", "%Y-%m-%d", "%Y年%m月%d日"]
DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
BAD_VALUES = {
    "decimal": ["1,2OO.00", "1.234", "12.3.4", "abc", "1e5"],
    "timestamp": ["2025-02-30 10:00:00", "昨天", "2025-13-01", "25/25/2025"],
    "date": ["2025-02-30", "someday", "2025-00-10"],
    "enum": ["unknown_value", "maybe"],
}
GIANT = "长" * 33_000  # over the 32,767-character cell limit
FILE_TYPES = ["csv-utf8", "csv-bom", "csv-gb18030", "xlsx", "parquet"]
STATEMENT_TYPES = ["camt053", "mt940", "generic-csv"]


@dataclass
class FileCase:
    name: str
    kind: str
    header: list[str]
    rows: list[list[str]]  # cells in header order (a bad row may carry extra cells)
    good_keys: list[tuple]  # key values of the good rows, as ingestion stores them
    bad: int  # rows that must be quarantined
    broken: bool = False  # a file that cannot be read at all


@dataclass
class DropCase:
    source: str
    day: str
    files: list[FileCase] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return any(f.broken for f in self.files)


@dataclass
class LandingCase:
    drops: list[DropCase]

    @property
    def rows(self) -> int:
        return sum(len(f.good_keys) + f.bad for d in self.drops for f in d.files)


# ---------------------------------------------------------------------------- values


def _key_text(rnd: random.Random) -> str:
    return "".join(rnd.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789测试编号") for _ in range(rnd.randint(3, 12)))


def _text(rnd: random.Random) -> str:
    if rnd.random() < 0.6:
        return rnd.choice(TEXT_SAMPLES)
    alphabet = "abcxyz 012 ,;|\"'中文字符（）-—_/\\#&%$@!?"
    return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 25)))


def _decimal(rnd: random.Random) -> str:
    cents = rnd.randint(-10**11, 10**11)
    plain = f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"
    style = rnd.random()
    if style < 0.5:
        return plain
    if style < 0.7:
        return f"{cents / 100:,.2f}" if abs(cents) < 10**14 else plain
    if style < 0.8 and cents >= 0:
        return f"¥{plain}"
    if style < 0.9 and cents > 0:
        return f"({plain})"
    return plain.rstrip("0").rstrip(".") if "." in plain else plain


def _moment(rnd: random.Random) -> datetime:
    return datetime(2020, 1, 1) + timedelta(seconds=rnd.randint(0, 10 * 365 * 86400))


def good_value(column, rnd: random.Random, key: bool) -> str:
    if key:
        return _key_text(rnd)
    if column.type == "decimal":
        return _decimal(rnd) if column.required or rnd.random() < 0.9 else ""
    if column.type == "timestamp":
        return _moment(rnd).strftime(rnd.choice(TIMESTAMP_FORMATS)) if column.required or rnd.random() < 0.9 else ""
    if column.type == "date":
        return _moment(rnd).strftime(rnd.choice(DATE_FORMATS))
    if column.type == "enum":
        return rnd.choice([*column.values, ""]) if not column.required else rnd.choice(column.values)
    return _text(rnd) if not column.required else _key_text(rnd)


def _defects(spec: SourceSpec, csv_like: bool) -> list[str]:
    kinds = ["missing"] + [c.type for c in spec.columns if c.type in BAD_VALUES] + ["giant"]
    return kinds + (["extra_cells"] if csv_like else [])


def make_rows(spec: SourceSpec, rnd: random.Random, good: int, bad: int, csv_like: bool):
    """(header, rows, good keys, bad count) for a tabular file in canonical columns."""
    header = [c.name for c in spec.columns]
    rows, keys = [], []
    kinds = [False] * good + [True] * bad
    rnd.shuffle(kinds)
    for is_bad in kinds:
        row = [good_value(c, rnd, c.name in spec.key) for c in spec.columns]
        if is_bad:
            defect = rnd.choice(_defects(spec, csv_like))
            if defect == "missing":
                required = [i for i, c in enumerate(spec.columns) if c.required]
                row[rnd.choice(required)] = ""
            elif defect == "giant":
                row[rnd.randrange(len(row))] = GIANT
            elif defect == "extra_cells":
                row += ["surplus"] * rnd.randint(1, 5)
            else:
                at = rnd.choice([i for i, c in enumerate(spec.columns) if c.type == defect])
                row[at] = rnd.choice(BAD_VALUES[defect])
        else:
            keys.append(tuple(row[header.index(k)] for k in spec.key))
        rows.append(row)
    return header, rows, keys, bad


# ---------------------------------------------------------------------------- statement files


def _camt(rnd: random.Random, good: int, bad: int) -> tuple[str, list[tuple], int]:
    entries, keys = [], []
    kinds = [False] * good + [True] * bad
    rnd.shuffle(kinds)
    for n, is_bad in enumerate(kinds):
        ref = f"REF{n:04d}{_key_text(rnd)}"
        amount = f"{rnd.randint(1, 10**7)}.{rnd.randint(0, 99):02d}"
        day = _moment(rnd).strftime("%Y-%m-%d")
        if is_bad:
            if rnd.random() < 0.5:
                amount = rnd.choice(["12,3x", "abc", "1.234"])
            else:
                day = rnd.choice(["2025-13-40", "2025-02-30"])
        else:
            keys.append(("CH9300762011623852957", ref))
        memo = _text(rnd).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        entries.append(f"<Ntry><Amt Ccy=\"CNY\">{amount}</Amt><CdtDbtInd>{rnd.choice(['CRDT', 'DBIT'])}</CdtDbtInd>"
                       f"<BookgDt><Dt>{day}</Dt></BookgDt><AcctSvcrRef>{ref}</AcctSvcrRef><NtryDtls><TxDtls><RmtInf>"
                       f"<Ustrd>{memo}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>")
    xml = ('<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
           "<BkToCstmrStmt><GrpHdr><MsgId>F</MsgId></GrpHdr><Stmt><Id>S</Id><Acct><Id><IBAN>CH9300762011623852957</IBAN>"
           f"</Id></Acct>{''.join(entries)}</Stmt></BkToCstmrStmt></Document>")
    return xml, keys, bad


def _mt940(rnd: random.Random, good: int, bad: int) -> tuple[str, list[tuple], int]:
    lines, keys = [":20:FUZZ", ":25:DE44500105175407324931", ":28C:1/1", ":60F:C200101EUR0,00"], []
    kinds = [False] * good + [True] * bad
    rnd.shuffle(kinds)
    for n, is_bad in enumerate(kinds):
        ref = f"B{n:04d}X"
        if is_bad:
            lines.append(":61:" + rnd.choice(["XX", "BROKEN LINE", "2099"]))
        else:
            moment = _moment(rnd)
            lines.append(f":61:{moment:%y%m%d}{rnd.choice('CD')}{rnd.randint(1, 10**6)},{rnd.randint(0, 99):02d}NTRFNONREF//{ref}")
            keys.append(("DE44500105175407324931", ref))
        lines.append(":86:" + "".join(rnd.choice("ABC abc 0123") for _ in range(rnd.randint(1, 40))).strip() or "x")
    lines += [":62F:C201231EUR0,00", "-"]
    return "\n".join(lines) + "\n", keys, bad


def _generic_export(rnd: random.Random, good: int, bad: int) -> tuple[str, list[tuple], int]:
    account = "8110701012345678901"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["某某银行对公账户交易明细"])
    writer.writerow([f"账号：{account}"])
    writer.writerow(["交易日期", "借方发生额", "贷方发生额", "账户余额", "对方户名", "摘要", "交易流水号"])
    keys = []
    kinds = [False] * good + [True] * bad
    rnd.shuffle(kinds)
    for n, is_bad in enumerate(kinds):
        ref = f"G{n:05d}{_key_text(rnd)}"
        day = _moment(rnd).strftime(rnd.choice(["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]))
        amount = f"{rnd.randint(1, 10**6)}.{rnd.randint(0, 99):02d}"
        debit, credit = (amount, "") if rnd.random() < 0.5 else ("", amount)
        if is_bad:
            if rnd.random() < 0.5:
                debit, credit = ("", "1,2OO.00")
            else:
                day = "2025-02-30"
        else:
            keys.append((account, ref))
        writer.writerow([day, debit, credit, "1000.00", rnd.choice(TEXT_SAMPLES[:3]), rnd.choice(["货款", "运费", ""]), ref])
    writer.writerow(["合计", "", "", "", "", "", ""])
    return out.getvalue(), keys, bad


# ---------------------------------------------------------------------------- writing


def _write_table(path: Path, kind: str, header: list[str], rows: list[list[str]]) -> None:
    if kind.startswith("csv"):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n" if kind == "csv-gb18030" else "\n")
        writer.writerow(header)
        writer.writerows(rows)
        encoding = {"csv-utf8": "utf-8", "csv-bom": "utf-8-sig", "csv-gb18030": "gb18030"}[kind]
        path.write_bytes(out.getvalue().encode(encoding))
    elif kind == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=False)
        sheet = book.active
        sheet.append(header)
        for r, row in enumerate(rows, start=2):
            for c, value in enumerate(row, start=1):
                cell = sheet.cell(row=r, column=c)
                cell.value = value if value != "" else None
                cell.data_type = "s"  # a text starting with `=` is text, not a formula
        book.save(path)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({h: [row[i] if row[i] != "" else None for row in rows] for i, h in enumerate(header)}), path)


SUFFIX = {"csv-utf8": ".csv", "csv-bom": ".csv", "csv-gb18030": ".csv", "xlsx": ".xlsx", "parquet": ".parquet",
          "camt053": ".xml", "mt940": ".sta", "generic-csv": ".csv"}


def _xlsx_safe(text: str) -> str:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("", text)


def build_case(seed: int, drops: int = 3) -> LandingCase:
    """A whole landing zone from one seed (what hypothesis draws and shrinks)."""
    rnd = random.Random(seed)
    cases = []
    used: set[tuple[str, str]] = set()
    for _ in range(rnd.randint(1, drops)):
        # Bank lines a third of the time: they have the most file types (statements).
        source = "bank_transactions" if rnd.random() < 0.35 else rnd.choice(list(SOURCES))
        day = f"2025-03-{rnd.randint(1, 9):02d}"
        if (source, day) in used:
            continue
        used.add((source, day))
        drop = DropCase(source, day)
        for index in range(rnd.randint(1, 3)):
            kinds = FILE_TYPES + (STATEMENT_TYPES if source == "bank_transactions" else [])
            kind = rnd.choice(kinds)
            good, bad = rnd.randint(0, 12), rnd.randint(0, 4)
            name = f"f{index}{SUFFIX[kind]}"
            if kind in STATEMENT_TYPES:
                builder = {"camt053": _camt, "mt940": _mt940, "generic-csv": _generic_export}[kind]
                good = max(good, 1)  # an empty statement has no layout to infer
                text, keys, bad = builder(rnd, good, bad)
                drop.files.append(FileCase(name, kind, [], [[text]], keys, bad))
            else:
                header, rows, keys, bad = make_rows(SOURCES[source], rnd, good, bad, kind.startswith("csv"))
                if kind == "xlsx":
                    rows = [[_xlsx_safe(v) for v in row] for row in rows]
                    keys = [tuple(_xlsx_safe(k) for k in key) for key in keys]
                drop.files.append(FileCase(name, kind, header, rows, keys, bad))
        if rnd.random() < 0.1:
            drop.files.append(FileCase("broken.xlsx", "broken", [], [], [], 0, broken=True))
        cases.append(drop)
    return LandingCase(cases)


def write_case(case: LandingCase, landing: Path) -> None:
    for drop in case.drops:
        folder = landing / drop.source / drop.day
        folder.mkdir(parents=True, exist_ok=True)
        for file in drop.files:
            path = folder / file.name
            if file.broken:
                path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
            elif file.kind in STATEMENT_TYPES:
                path.write_bytes(file.rows[0][0].encode("utf-8"))
            else:
                _write_table(path, file.kind, file.header, file.rows)


# ---------------------------------------------------------------------------- accounting


@dataclass
class Outcome:
    rows: int = 0
    rows_lost: int = 0  # good rows missing from raw + bad rows missing from quarantine
    unexpected: list[str] = field(default_factory=list)


def _stored_key(value: str | None) -> str | None:
    """How ingestion stores a key text: trimmed, empty -> NULL."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def account(case: LandingCase, conn, report) -> Outcome:
    """Compare what ingestion stored with what the case holds (see the module notes)."""
    outcome = Outcome(rows=case.rows)
    failed = {tuple(message.split(":", 1)[0].split("/")) for message in report.failed}
    for drop in case.drops:
        spec = SOURCES[drop.source]
        if drop.broken:
            if (drop.source, drop.day) not in failed:
                outcome.unexpected.append(f"{drop.source}/{drop.day}: a broken file did not fail its drop")
            continue
        if (drop.source, drop.day) in failed:
            message = next(m for m in report.failed if m.startswith(f"{drop.source}/{drop.day}"))
            outcome.unexpected.append(f"drop failed: {message[:300]}")
            outcome.rows_lost += sum(len(f.good_keys) + f.bad for f in drop.files)
            continue
        keys = ", ".join(f'"{k}"' for k in spec.key)
        for file in drop.files:
            source_file = f"{drop.source}/{drop.day}/{file.name}"
            stored = Counter(conn.execute(
                f"SELECT {keys} FROM raw.{drop.source} WHERE _source_file = ? AND _drop_date = ?",
                [source_file, date.fromisoformat(drop.day)]).fetchall())
            wanted = Counter(tuple(_stored_key(v) for v in key) for key in file.good_keys)
            missing = wanted - stored
            extra = stored - wanted
            quarantined = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE reason IS NULL OR reason = '') FROM raw.quarantine "
                "WHERE source = ? AND _source_file = ? AND _drop_date = ?",
                [drop.source, source_file, date.fromisoformat(drop.day)]).fetchone()
            lost = sum(missing.values()) + max(0, file.bad - quarantined[0])
            outcome.rows_lost += lost
            if lost or extra or quarantined[0] != file.bad or quarantined[1]:
                outcome.unexpected.append(
                    f"{source_file} ({file.kind}): missing {dict(missing)}, unexpected {dict(extra)}, "
                    f"quarantined {quarantined[0]} of {file.bad} bad rows")
    return outcome


landing_seeds = st.integers(min_value=0, max_value=2**31 - 1)
