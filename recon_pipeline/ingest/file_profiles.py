"""File profiles: how to read one kind of export that is not in canonical form.

A profile (settings `file_formats.<source>`, a list) says which files it is for and how to
read them: where the header is, the encoding and delimiter, extra header aliases, date
formats, how the export writes amounts, and constant columns. The first profile whose
`files` pattern and `header_contains` both match a file is used; a file no profile matches
is read with the source's plain column mapping.

    file_formats:
      bank_transactions:
        - name: 某银行网银导出
          files: "网银流水*.csv"               # file-name pattern (optional)
          header_contains: [交易日期, 收入金额]  # the header row holds these (optional; also finds it)
          skip_rows: 3                        # lines before the header (optional)
          encoding: gb18030                   # instead of detection (optional)
          delimiter: ","                      # instead of sniffing (optional)
          date_formats: ["%Y%m%d %H%M%S"]     # tried before the built-in formats
          columns: {交易日期: txn_time, 借方发生额: debit, 贷方发生额: credit}
          amount:                             # one of the three conventions below
            credit_column: 收入金额            #   separate money-in / money-out columns
            debit_column: 支出金额
            # column: 金额 + sign_column: 借贷标志 + debit_values: [借, D]
            # negate: true                     #   the export writes money in as negative
          constants: {account_no: "6222020200001234567", currency: CNY}

What the generic bank-export reader (`statements.generic`) infers is a profile too, with a
few more keys it needs (all optional, for any profile):

          txn_time: {column: 交易日期, time_column: 交易时间, day_first: true, statement_month: 2025-03}
          counterparty: {name: 对方户名, account: 对方账号}     # or {name_and_account: 对手信息},
                        # or {money_in: {name: 付款人名称, account: ..}, money_out: {name: 收款人名称, ..}}
          memo: [摘要, 用途]                                  # joined in this order
          txn_id: {column: 流水号, derive: true}              # derive: a hash of the line where no id
          balance_column: 余额
          amount: {column: 金额, sign_from_balance: down}      # money in/out from the balance change
          amount: {column: 金额, sign_column: 借贷, debit_values: [借], credit_values: [贷]}
          amount: {column: 交易金额, debit_when: {付款人账号: "8110701012345678901"}}   # we are the payer
          skip_rows_with: [合计, 总计, 期末余额, 本页小计]     # summary / footer / balance-only rows

`amount` also reads a `DR`/`CR` suffix (`1,200.00 CR`) and European decimals (`1.234,56`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Iterable, Iterator

from recon_pipeline.settings import Settings

HEADER_SEARCH_ROWS = 30
EMPTY_AMOUNTS = {"", "-", "--", "0", "0.0", "0.00", "+0.00", "-0.00"}


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class FileProfile:
    name: str
    files: str | None = None
    header_contains: tuple[str, ...] = ()
    skip_rows: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    date_formats: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)
    amount: dict[str, object] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    txn_time: dict[str, object] = field(default_factory=dict)
    counterparty: dict[str, object] = field(default_factory=dict)
    memo: tuple[str, ...] = ()
    txn_id: dict[str, object] = field(default_factory=dict)
    balance_column: str | None = None
    skip_rows_with: tuple[str, ...] = ()
    account_in_preamble: bool = False  # the account number printed above the header (账号：...)

    def matches_name(self, file_name: str) -> bool:
        return self.files is None or fnmatch.fnmatch(file_name, self.files)

    def header_row(self, rows: list[list[str]]) -> int | None:
        """Index of the header row among the first rows, or None if this profile does not fit."""
        if self.skip_rows is not None:
            index = self.skip_rows
            if index >= len(rows):
                return None
            return index if all(h in _cleaned(rows[index]) for h in self.header_contains) else None
        if not self.header_contains:
            return None
        for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
            if all(h in _cleaned(row) for h in self.header_contains):
                return index
        return None


def _cleaned(row: Iterable[object]) -> set[str]:
    return {str(c).replace("\ufeff", "").strip() for c in row if c is not None}


def load_profiles(source: str, settings: Settings) -> list[FileProfile]:
    profiles = []
    for position, entry in enumerate((settings.raw.get("file_formats") or {}).get(source) or []):
        if not isinstance(entry, dict):
            raise ProfileError(f"file_formats.{source}[{position}] 应为映射 (mapping)")
        amount = dict(entry.get("amount") or {})
        if amount and not ({"credit_column", "debit_column"} <= amount.keys() or "column" in amount):
            raise ProfileError(
                f"file_formats.{source}[{position}].amount 需要 credit_column + debit_column，或 column（可加 sign_column / negate）"
            )
        profiles.append(
            FileProfile(
                name=str(entry.get("name") or f"{source}[{position}]"),
                files=entry.get("files"),
                header_contains=tuple(entry.get("header_contains") or ()),
                skip_rows=entry.get("skip_rows"),
                encoding=entry.get("encoding"),
                delimiter=entry.get("delimiter"),
                date_formats=tuple(entry.get("date_formats") or ()),
                columns={str(k): str(v) for k, v in (entry.get("columns") or {}).items()},
                amount=amount,
                constants={str(k): str(v) for k, v in (entry.get("constants") or {}).items()},
                txn_time=dict(entry.get("txn_time") or {}),
                counterparty=dict(entry.get("counterparty") or {}),
                memo=tuple(str(c) for c in (entry.get("memo") or ())),
                txn_id=dict(entry.get("txn_id") or {}),
                balance_column=entry.get("balance_column"),
                skip_rows_with=tuple(str(w) for w in (entry.get("skip_rows_with") or ())),
                account_in_preamble=bool(entry.get("account_in_preamble")),
            )
        )
    return profiles


def choose_profile(profiles: list[FileProfile], file_name: str, first_rows: list[list[str]]) -> tuple[FileProfile | None, int]:
    """The first profile that fits, and the index of the header row (0 without a profile)."""
    for profile in profiles:
        if not profile.matches_name(file_name):
            continue
        if profile.skip_rows is None and not profile.header_contains:
            return profile, 0  # matched by file name alone: header on the first row
        index = profile.header_row(first_rows)
        if index is not None:
            return profile, index
    return None, 0


# ---------------------------------------------------------------------------- values

# Rows that are not transactions: page and grand totals, opening/closing balance lines.
SUMMARY_WORDS = ("合计", "总计", "小计", "本页小计", "本页合计", "累计", "汇总", "期末余额", "期初余额", "上页余额",
                 "承前页", "过次页", "本期合计", "以上数据", "注：", "total", "subtotal", "opening balance",
                 "closing balance", "balance brought forward", "balance carried forward", "brought forward",
                 "carried forward")
_MONEY_DECORATION = re.compile(r"[\s,，¥￥$€£]|CNY|RMB|USD|EUR|HKD|元", re.I)
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_EUROPEAN = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+,\d{1,2}$|^[+-]?\d+,\d{2}$")
_SUFFIX_MARK = re.compile(r"^(.*?)\s*\b(CR|DR|C|D|贷|借)\.?$", re.I)


def parse_money(text: object) -> Decimal | None:
    """A printed amount as a signed Decimal: thousands separators, currency marks, `(1.00)`,
    `100.00-`, `+5`, European `1.234,56`; None when the cell is not a number (a `DR`/`CR`
    suffix is read by `signed_money`)."""
    if text is None:
        return None
    value = str(text).strip().replace("\u3000", "").replace("−", "-")
    if not value or len(value) > 40:
        return None
    if _EUROPEAN.match(value.replace(" ", "")):
        value = value.replace(" ", "").replace(".", "").replace(",", ".")
    negative = False
    if value.startswith("(") and value.endswith(")"):
        negative, value = True, value[1:-1]
    elif value.endswith("-") and len(value) > 1:
        negative, value = True, value[:-1]
    value = _MONEY_DECORATION.sub("", value)
    if not _PLAIN_NUMBER.match(value):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex guards this
        return None
    return -number if negative else number


def signed_money(text: object) -> tuple[Decimal | None, str | None]:
    """(amount, "credit"/"debit" when a suffix says so): `1,200.00 CR`, `35.00DR`."""
    value = parse_money(text)
    if value is not None or text is None:
        return value, None
    found = _SUFFIX_MARK.match(str(text).strip())
    if found:
        number = parse_money(found[1])
        if number is not None:
            return number, "credit" if found[2].upper() in ("CR", "C", "贷") else "debit"
    return None, None


def format_money(value: Decimal) -> str:
    if value == 0:
        value = abs(value)
    if value.as_tuple().exponent > -2:
        value = value.quantize(Decimal("0.01"))
    return format(value, "f")


_DEBIT_FLAGS = ("借", "支", "出", "付", "debit", "dr", "d", "-", "withdrawal", "out")
_CREDIT_FLAGS = ("贷", "收", "入", "存", "credit", "cr", "c", "+", "deposit", "in")


def flag_direction(value: str) -> str | None:
    """"debit" / "credit" for a debit/credit flag as exports print it (借/贷, 支出/收入,
    转出/转入, 往账/来账, D/C, DR/CR, Debit/Credit, -/+), None when it says neither."""
    text = value.strip().lower()
    if not text:
        return None
    if text in ("d", "dr", "debit", "-", "out", "withdrawal") or text.startswith(("借", "支", "转出", "付", "出", "往", "取")):
        return "debit"
    if text in ("c", "cr", "credit", "+", "in", "deposit") or text.startswith(("贷", "收", "转入", "存", "入", "来")):
        return "credit"
    return None


_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_YMD = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[T\s]+(.*))?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:[T\s]*(\d{2})(\d{2})(\d{2})?)?$")
_DMY = re.compile(r"^(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4}|\d{2})(?:[T\s]+(.*))?$")
_NAMED = re.compile(r"^(\d{1,2})[\s\-/]*([A-Za-z]{3})[A-Za-z]*\.?[\s\-/,]*(\d{4}|\d{2})(?:\s+(.*))?$")
_NAMED_US = re.compile(r"^([A-Za-z]{3})[A-Za-z]*\.?\s+(\d{1,2}),?\s+(\d{4})(?:\s+(.*))?$")
_MONTH_DAY = re.compile(r"^(\d{1,2})[/-](\d{1,2})$")
_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?(?:\.\d+)?$|^(\d{2})(\d{2})(\d{2})$")


def split_time(text: str) -> tuple[int, int, int] | None:
    """`13:15`, `13:15:12`, `131512` as (h, m, s); None when it is not a time of day."""
    found = _TIME.match(text.strip())
    if not found:
        return None
    if found[1] is not None:
        hour, minute, second = int(found[1]), int(found[2]), int(found[3] or 0)
    else:
        hour, minute, second = int(found[4]), int(found[5]), int(found[6])
    return (hour, minute, second) if hour < 24 and minute < 60 and second < 60 else None


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def parse_datetime(text: str, time_text: str | None = None, *, day_first: bool = True,
                   formats: tuple[str, ...] = (), statement_month: tuple[int, int] | None = None) -> str | None:
    """`YYYY-MM-DD HH:MM:SS` from the date forms exports print (2024-01-05, 2024/1/5,
    20240105, 2024年1月5日, 05/01/2024 day- or month-first, 5-Jan-2024, Jan 5, 2024, an
    Excel serial day, `MM/DD` on a card bill with the bill's month), with the time in the
    cell or in `time_text`. None when it is not a date."""
    value = text.strip()
    if not value:
        return None
    for fmt in formats:
        try:
            moment = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    rest = None
    try:
        if found := _YMD.match(value):
            day, rest = date(int(found[1]), int(found[2]), int(found[3])), found[4]
        elif found := _COMPACT.match(value):
            day = date(int(found[1]), int(found[2]), int(found[3]))
            if found[4]:
                rest = f"{found[4]}:{found[5]}:{found[6] or '00'}"
        elif found := _DMY.match(value):
            first, second = int(found[1]), int(found[2])
            day_part, month_part = (first, second) if day_first else (second, first)
            day, rest = date(_year(found[3]), month_part, day_part), found[4]
        elif (found := _NAMED.match(value)) and found[2].lower() in _MONTHS:
            day, rest = date(_year(found[3]), _MONTHS[found[2].lower()], int(found[1])), found[4]
        elif (found := _NAMED_US.match(value)) and found[1].lower() in _MONTHS:
            day, rest = date(int(found[3]), _MONTHS[found[1].lower()], int(found[2])), found[4]
        elif (found := _MONTH_DAY.match(value)) and statement_month:
            month, day_number = int(found[1]), int(found[2])
            year = statement_month[0] if month <= statement_month[1] else statement_month[0] - 1
            day = date(year, month, day_number)
        elif re.fullmatch(r"\d{5}(\.\d+)?", value) and 20000 < float(value) < 80000:
            serial = float(value)  # an Excel day number (1900 system) left unformatted
            moment = datetime(1899, 12, 30) + (datetime(1900, 1, 2) - datetime(1900, 1, 1)) * serial
            return moment.replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S")
        else:
            return None
    except ValueError:
        return None
    clock = (0, 0, 0)
    for candidate in (rest, time_text):
        if candidate and candidate.strip():
            parsed = split_time(re.sub(r"\s*(\+\d{2}:?\d{2}|Z)$", "", candidate.strip()))
            if parsed is None:
                return None
            clock = parsed
            break
    return f"{day.isoformat()} {clock[0]:02d}:{clock[1]:02d}:{clock[2]:02d}"


def looks_like_date(text: str) -> bool:
    """A date in any form `parse_datetime` reads (a card bill's `MM/DD` included)."""
    return (parse_datetime(text, statement_month=(2000, 12)) is not None
            or parse_datetime(text, day_first=False) is not None)


def _signed(text: str, negative: bool) -> str:
    value = text.strip()
    if not negative or value in EMPTY_AMOUNTS:
        return value
    return value[1:] if value.startswith("-") else "-" + value.lstrip("+")


def _amount_text(raw: str, negative: bool) -> str:
    """The canonical amount of a cell whose direction is known: a readable number is
    normalized (a `CR`/`DR` suffix overrides the direction), anything else keeps its text with
    the sign flipped, so ingestion quarantines it with the reason."""
    value, marked = signed_money(raw)
    if value is None:
        return _signed(raw, negative)
    if marked is not None:
        return format_money(abs(value) if marked == "credit" else -abs(value))
    return format_money(-value if negative else value)


def derived_txn_id(parts: Iterable[object], occurrence: int) -> str:
    """Deterministic id for a line its export gives none: the same line in two overlapping
    downloads hashes the same; `occurrence` tells identical lines of one file apart."""
    key = "\x1f".join(str(part or "") for part in (*parts, occurrence))
    return "H" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


_RUN_TOGETHER_ACCOUNT = re.compile(r"^(.*?)\s*([0-9*]{6,}[0-9])$")


def split_name_account(text: str) -> tuple[str, str]:
    """`对手信息` runs name and account together (`张三 6666...`, `北京住房公积金管理中心1111111111`)."""
    value = text.strip()
    found = _RUN_TOGETHER_ACCOUNT.match(value)
    if not found:
        return value, ""
    return found[1].strip(), found[2]


_ACCOUNT_IN_PREAMBLE = re.compile(
    r"(?:账号|帐号|账户|卡号|账户号码|account\s*(?:no\.?|number)?)\s*[:：]?\s*([0-9][0-9 *\-xX]{5,}[0-9xX*])", re.I)


def preamble_account(rows: list[list[str]]) -> str | None:
    """The account number printed above the header (`账号：6222...`, `Account Number: ...`)."""
    text = "\n".join(" ".join(str(c or "") for c in row) for row in rows)
    found = _ACCOUNT_IN_PREAMBLE.search(text)
    return re.sub(r"[\s\-]", "", found[1]) if found else None


def resolve_preamble(profile: FileProfile, preamble: list[list[str]]) -> FileProfile:
    """The profile for one file: with `account_in_preamble`, that file's own account number
    becomes the `account_no` constant (a profile is shared by all accounts of a bank)."""
    if not profile.account_in_preamble or "account_no" in profile.constants:
        return profile
    account = preamble_account(preamble)
    if account is None:
        return profile
    from dataclasses import replace

    return replace(profile, constants={**profile.constants, "account_no": account})


# ---------------------------------------------------------------------------- applying


@dataclass
class ProfileStats:
    """What applying a profile did to a file's rows (for the per-file report)."""

    rows: int = 0
    skipped: int = 0  # summary, footer, balance-only and note rows (not transactions)


_TOTAL_LABEL = re.compile(r"^(本页|本月|本期|本日|当日|人民币|全部|累计)?(合计|总计|小计|汇总|期末余额|期初余额)$|^(total|subtotal|grand total)$")


def _is_summary_label(label: str, words: tuple[str, ...]) -> bool:
    """A cell that labels a total: it ends with a summary word (`人民币合计`), or starts with
    one followed by figures or punctuation (`合计：12笔`)."""
    for word in words:
        word = word.lower()
        if label.endswith(word) and len(label) <= len(word) + 6:
            return True
        if label.startswith(word) and not re.match(r"[\u4e00-\u9fa5a-z]", label[len(word):len(word) + 1]):
            return True
    return False


def apply_profile(
    profile: FileProfile, headers: list[str], rows: Iterator[tuple[int, list[str]]], stats: ProfileStats | None = None,
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """Add the computed columns (`amount`, and with the generic keys `txn_time`,
    `counterparty_name`/`_account`, `memo`, `txn_id`) and the constants; source columns stay
    (as extra columns). Summary/footer rows are dropped when `skip_rows_with` is set."""
    names = [str(h).replace("\ufeff", "").strip() for h in headers]
    stats = stats if stats is not None else ProfileStats()

    def position(column: object) -> int:
        try:
            return names.index(str(column))
        except ValueError:
            raise ProfileError(f"格式 {profile.name}: 表头中没有列 {column}") from None

    def cell(cells: list[str], index: int | None) -> str:
        return cells[index].strip() if index is not None and index < len(cells) and cells[index] is not None else ""

    amount = profile.amount
    added: list[str] = []
    money_columns: list[int] = []
    compute_amount = None
    balance_at: int | None = None
    balance_order = None
    if amount:
        added.append("amount")
        if "credit_column" in amount:
            credit, debit = position(amount["credit_column"]), position(amount["debit_column"])
            money_columns = [credit, debit]

            def compute_amount(cells):
                money_in, money_out = cell(cells, credit), cell(cells, debit)
                if money_in not in EMPTY_AMOUNTS and parse_money(money_in) != 0:
                    return _amount_text(money_in, False)
                if money_out not in EMPTY_AMOUNTS and parse_money(money_out) != 0:
                    return _amount_text(money_out.lstrip("-"), True)
                return money_in or money_out
        else:
            column = position(amount["column"])
            money_columns = [column]
            sign = position(amount["sign_column"]) if amount.get("sign_column") else None
            debit_values = {str(v).strip().lower() for v in amount.get("debit_values") or ("借", "d", "debit", "支出")}
            credit_values = {str(v).strip().lower() for v in amount.get("credit_values") or ()}
            negate = bool(amount.get("negate"))
            if amount.get("sign_from_balance"):
                balance_order = str(amount["sign_from_balance"])
            payer_rule = dict(amount.get("debit_when") or {})
            payer_at = position(next(iter(payer_rule))) if payer_rule else None
            payer_value = str(next(iter(payer_rule.values()))).strip() if payer_rule else None

            def compute_amount(cells):
                value = cell(cells, column)
                flag = cell(cells, sign).lower() if sign is not None else ""
                if sign is not None and credit_values and value and flag not in debit_values and flag not in credit_values:
                    return f"{value}（借贷标志“{flag}”无法判断）"
                is_debit = sign is not None and flag in debit_values
                if payer_at is not None:
                    is_debit = cell(cells, payer_at) == payer_value  # we paid
                return _amount_text(value, is_debit != negate)

    if profile.balance_column:
        balance_at = position(profile.balance_column)
    if balance_order and balance_at is None:
        raise ProfileError(f"格式 {profile.name}: amount.sign_from_balance 需要 balance_column")
    sign_from_balance = balance_order is not None
    txn_time = profile.txn_time
    date_at = position(txn_time["column"]) if txn_time.get("column") else None
    time_at = position(txn_time["time_column"]) if txn_time.get("time_column") else None
    day_first = txn_time.get("day_first")
    month_hint = None
    if txn_time.get("statement_month"):
        year, month = str(txn_time["statement_month"]).split("-")[:2]
        month_hint = (int(year), int(month))
    if date_at is not None:
        added.append("txn_time")

    party = profile.counterparty
    name_at = position(party["name"]) if party.get("name") else None
    account_at = position(party["account"]) if party.get("account") else None
    together_at = position(party["name_and_account"]) if party.get("name_and_account") else None
    by_direction = {}
    for side in ("money_in", "money_out"):
        if isinstance(party.get(side), dict):
            spec = party[side]
            by_direction[side] = (position(spec["name"]) if spec.get("name") else None,
                                  position(spec["account"]) if spec.get("account") else None)
    if party:
        added += ["counterparty_name", "counterparty_account"]
    memo_at = [position(c) for c in profile.memo]
    if memo_at:
        added.append("memo")
    id_at = position(profile.txn_id["column"]) if profile.txn_id.get("column") else None
    derive = bool(profile.txn_id.get("derive"))
    if id_at is not None or derive:
        added.append("txn_id")
    account_column = next((position(h) for h, c in profile.columns.items() if c == "account_no" and h in names), None)
    added += list(profile.constants)
    constants = list(profile.constants.values())
    skip_words = profile.skip_rows_with

    def computed(cells: list[str], balance_sign: bool | None) -> tuple[list[str], dict[str, str]]:
        extra: list[str] = []
        values: dict[str, str] = {}
        if compute_amount:
            text = compute_amount(cells)
            if balance_sign is not None:
                parsed = parse_money(text)
                text = format_money(-abs(parsed) if balance_sign else abs(parsed)) if parsed is not None else text
            values["amount"] = text
            extra.append(text)
        if date_at is not None:
            raw = cell(cells, date_at)
            extra.append(parse_datetime(raw, cell(cells, time_at), day_first=day_first is not False,
                                        formats=profile.date_formats, statement_month=month_hint) or raw)
            values["txn_time"] = extra[-1]
        if party:
            name, account = cell(cells, name_at), cell(cells, account_at)
            if together_at is not None:
                name, account = split_name_account(cell(cells, together_at))
            if by_direction:
                money = parse_money(values.get("amount"))
                side = by_direction.get("money_out" if money is not None and money < 0 else "money_in", (None, None))
                name, account = cell(cells, side[0]), cell(cells, side[1])
            extra += [name, account]
            values["party"] = f"{name}\x1f{account}"
        if memo_at:
            seen: list[str] = []
            for index in memo_at:
                text = cell(cells, index)
                if text and text not in ("-", "/") and text not in seen:
                    seen.append(text)
            extra.append(" ".join(seen))
            values["memo"] = extra[-1]
        return extra, values

    own_account = profile.constants.get("account_no")
    seen_ids: Counter[str] = Counter()
    occurrences: Counter[tuple] = Counter()

    def with_id(cells: list[str], extra: list[str], values: dict[str, str]) -> list[str]:
        if id_at is None and not derive:
            return extra
        bank_id = cell(cells, id_at)
        if bank_id:
            seen_ids[bank_id] += 1
        if bank_id and (seen_ids[bank_id] == 1 or not derive):
            return extra + [bank_id]
        account = cell(cells, account_column) if account_column is not None else own_account
        identity = (account, values.get("txn_time"), values.get("amount"), values.get("party"), values.get("memo"))
        occurrences[identity] += 1
        return extra + [derived_txn_id(identity, occurrences[identity])]

    def is_transaction(cells: list[str]) -> bool:
        """Summary, footer, balance-only and note rows are not transactions. A row with a
        date and an amount is one unless a cell is exactly a total's label, so no real line
        is dropped for a memo that happens to say 合计."""
        if not skip_words:
            return True
        no_amount = not any(cell(cells, i) for i in money_columns)
        dated = date_at is None or looks_like_date(cell(cells, date_at))
        labels = [c.strip().rstrip(":：").lower() for c in cells if c and c.strip()]
        if dated and not no_amount:
            return not any(_TOTAL_LABEL.match(label) for label in labels)
        if any(_is_summary_label(label, skip_words) for label in labels):
            return False
        if no_amount:
            # Nothing moved: a note under the table, or a balance-only line.
            return dated and not (balance_at is not None and cell(cells, balance_at))
        return True

    width = len(names)

    def fitted(cells: list[str]) -> tuple[list[str], list[str]]:
        """(the row cut or padded to the header's width, the cells beyond it): the computed
        columns must land where the header says, and cells beyond the header (a damaged
        header, a stray delimiter) go after everything, where the reader reports them as
        overflow (the row is quarantined as wider than its header, nothing dropped)."""
        if len(cells) <= width:
            return list(cells) + [""] * (width - len(cells)), []
        return list(cells[:width]), list(cells[width:])

    overflow: dict[int, list[str]] = {}  # row number -> its cells beyond the header

    def transformed():
        pending: tuple[int, list[str]] | None = None
        for number, raw_cells in rows:
            if not any((c or "").strip() for c in raw_cells):
                continue
            cells, beyond = fitted(raw_cells)
            stats.rows += 1
            if not is_transaction(cells):
                stats.skipped += 1
                continue
            if beyond:
                overflow[number] = beyond
            if not sign_from_balance:
                extra, values = computed(cells, None)
                yield number, list(cells) + with_id(cells, extra, values) + constants + overflow.pop(number, [])
                continue
            # Sign from the running balance: compared with the row before (file in date
            # order) or after (newest first).
            if balance_order == "down":
                previous = pending[1] if pending else None
                extra, values = computed(cells, _balance_debit(previous, cells, balance_at))
                pending = (number, cells)
                yield number, list(cells) + with_id(cells, extra, values) + constants + overflow.pop(number, [])
            else:
                if pending is not None:
                    before_number, before = pending
                    extra, values = computed(before, _balance_debit(cells, before, balance_at))
                    yield before_number, list(before) + with_id(before, extra, values) + constants + overflow.pop(before_number, [])
                pending = (number, cells)
        if sign_from_balance and balance_order != "down" and pending is not None:
            extra, values = computed(pending[1], None)
            yield pending[0], list(pending[1]) + with_id(pending[1], extra, values) + constants + overflow.pop(pending[0], [])

    return list(headers) + added, transformed()


def _balance_debit(before: list[str] | None, after: list[str], balance_at: int) -> bool | None:
    """True when the balance fell from `before` to `after` (money out), None when unknown."""
    if before is None:
        return None
    old = parse_money(before[balance_at] if balance_at < len(before) else None)
    new = parse_money(after[balance_at] if balance_at < len(after) else None)
    if old is None or new is None or old == new:
        return None
    return new < old


# ---------------------------------------------------------------------------- printing


def profile_as_settings(profile: FileProfile, source: str = "bank_transactions") -> dict:
    """The profile as the `file_formats` entry a user pastes into the settings file."""
    entry: dict[str, object] = {"name": profile.name}
    if profile.files:
        entry["files"] = profile.files
    if profile.header_contains:
        entry["header_contains"] = list(profile.header_contains)
    for key in ("skip_rows", "encoding", "delimiter", "balance_column"):
        if getattr(profile, key) is not None:
            entry[key] = getattr(profile, key)
    if profile.date_formats:
        entry["date_formats"] = list(profile.date_formats)
    for key in ("columns", "amount", "txn_time", "counterparty", "txn_id", "constants"):
        if getattr(profile, key):
            entry[key] = getattr(profile, key)
    if profile.memo:
        entry["memo"] = list(profile.memo)
    if profile.skip_rows_with:
        entry["skip_rows_with"] = list(profile.skip_rows_with)
    if profile.account_in_preamble:
        entry["account_in_preamble"] = True
    return {"file_formats": {source: [entry]}}
