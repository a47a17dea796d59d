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
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
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


def _signed(text: str, negative: bool) -> str:
    value = text.strip()
    if not negative or value in EMPTY_AMOUNTS:
        return value
    return value[1:] if value.startswith("-") else "-" + value.lstrip("+")


def apply_profile(
    profile: FileProfile, headers: list[str], rows: Iterator[tuple[int, list[str]]]
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """Add the computed `amount` and constant columns; source columns stay (as extra columns)."""
    names = [str(h).replace("\ufeff", "").strip() for h in headers]
    added: list[str] = []
    amount = profile.amount

    def position(column: object) -> int:
        try:
            return names.index(str(column))
        except ValueError:
            raise ProfileError(f"格式 {profile.name}: 表头中没有列 {column}") from None

    compute = None
    if amount:
        added.append("amount")
        if "credit_column" in amount:
            credit, debit = position(amount["credit_column"]), position(amount["debit_column"])

            def compute(cells):
                money_in = cells[credit].strip() if credit < len(cells) else ""
                money_out = cells[debit].strip() if debit < len(cells) else ""
                if money_in not in EMPTY_AMOUNTS:
                    return money_in
                if money_out not in EMPTY_AMOUNTS:
                    return _signed(money_out.lstrip("-"), True)
                return money_in or money_out
        else:
            column = position(amount["column"])
            sign = position(amount["sign_column"]) if amount.get("sign_column") else None
            debit_values = {str(v).strip().lower() for v in amount.get("debit_values") or ("借", "d", "debit", "支出")}
            negate = bool(amount.get("negate"))

            def compute(cells):
                value = cells[column] if column < len(cells) else ""
                is_debit = sign is not None and sign < len(cells) and cells[sign].strip().lower() in debit_values
                return _signed(value, is_debit != negate)

    added += list(profile.constants)
    constants = list(profile.constants.values())
    new_headers = list(headers) + added

    def transformed():
        for number, cells in rows:
            extra = [compute(cells)] if compute else []
            yield number, list(cells) + extra + constants

    return new_headers, transformed()
