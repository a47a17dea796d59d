"""Any bank, card or payment export in CSV/XLS/XLSX: the fallback before "unknown format".

No reader per bank can keep up with the banks users have, so this one reads the layout
from the file: it finds the header row below any preamble with a vocabulary of the column
names Chinese and English exports print (`VOCABULARY`), infers how the export signs money
(separate in/out columns, a debit/credit flag, a signed amount, the running balance, or a
credit-card bill where purchases are printed positive but are money out), drops summary,
footer and balance-only rows, and reads the usual date forms (day-first when the file says
so). What it infers is a `FileProfile` (`infer_profile`): the file is then read by the same
profile engine as a profile the user configured, and `recon inspect` prints that profile so
the user can paste it into the settings to pin the layout.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal

from recon_pipeline.ingest.file_profiles import (
    SUMMARY_WORDS,
    FileProfile,
    ProfileStats,
    apply_profile,
    flag_direction,
    looks_like_date,
    parse_money,
    preamble_account,
    resolve_preamble,
    split_time,
)

HEADER_SEARCH_ROWS = 60
SAMPLE_ROWS = 2000  # rows looked at to infer the convention (the whole file below this size)


def normalize_header(cell: object) -> str:
    """`交易金额（元）` -> `交易金额`, `Value Date` -> `valuedate`: width, spaces, case and a
    trailing unit annotation do not change what a column is."""
    text = str(cell or "").replace("\ufeff", "").replace("（", "(").replace("）", ")").replace("：", ":")
    text = re.sub(r"\s*[\r\n]+\s*", "/", text.strip())  # a two-line (bilingual) header
    text = re.sub(r"[\s\u3000_.:]+", "", text).lower()
    return text


def _unit_stripped(header: str) -> str:
    return re.sub(r"\((元|人民币|人民币元|rmb|cny|¥|￥|yuan)\)$", "", header)


def _words(*names: str) -> frozenset[str]:
    return frozenset(normalize_header(n) for n in names)


# The column names banks print, by what the column is. Compared after `normalize_header`;
# a trailing unit such as `(元)` is ignored. Where several columns of a role exist, the
# first name listed wins (the transaction date before the value date).
VOCABULARY: dict[str, tuple[str, ...]] = {
    "date": ("交易日期", "交易时间", "记账日期", "入账日期", "交易日", "记账日", "入账日", "银行记账日", "账务日期",
             "会计日期", "发生日期", "交易日期时间", "过账日期", "日期", "date", "transaction date", "trans date",
             "txn date", "booking date", "posting date", "post date", "entry date", "trade date", "value date",
             "起息日", "起息日期"),
    "time": ("交易时间", "时间", "记账时间", "交易时刻", "time", "transaction time"),
    "credit": ("收入金额", "收入", "贷方发生额", "贷方金额", "贷方", "贷方发生额(收入)", "存入", "存入金额", "收款金额",
               "转入金额", "记账金额(收入)", "交易金额(收入)", "金额(收入)", "来账金额", "credit", "credits",
               "credit amount", "deposit", "deposits", "paid in", "money in", "cr"),
    "debit": ("支出金额", "支出", "借方发生额", "借方金额", "借方", "借方发生额(支取)", "支取", "支取金额", "付款金额",
              "转出金额", "记账金额(支出)", "交易金额(支出)", "金额(支出)", "往账金额", "debit", "debits",
              "debit amount", "withdrawal", "withdrawals", "paid out", "money out", "dr"),
    # A card bill's posted amount (入账/人民币) comes before the amount in the purchase's own currency.
    "amount": ("入账金额", "人民币金额", "交易金额", "发生额", "金额", "交易额", "记账金额", "本币金额", "交易金额(元)",
               "账单金额", "入账金额(元)", "amount", "transaction amount", "txn amount", "amount(cny)",
               "amount(rmb)", "billing amount", "posted amount", "local amount"),
    "flag": ("借贷标志", "借贷标识", "借贷", "借贷方向", "借/贷", "收支标志", "收支", "收/支", "收支类型", "收付标志",
             "收付方向", "方向", "交易方向", "资金方向", "出入账标志", "借贷类型", "dc", "d/c", "drcr", "dr/cr",
             "debit/credit", "credit/debit", "direction", "dc indicator", "cd indicator"),
    "name": ("对方户名", "对方账户名称", "对方账户名", "对方名称", "对方单位名称", "对方单位", "收(付)款人", "收(付)款人名称",
             "收/付方名称", "收/付款人名称", "收(付)款单位",
             "收/付款人", "收付款人", "收付款人名称", "收(付)方名称", "对手户名", "对手方户名", "对手名称", "对方户名称",
             "交易对方", "对方姓名", "对方客户名称", "对方账户户名", "交易对手", "对方", "counterparty",
             "counterparty name", "payee", "payer", "payee/payer", "beneficiary", "payee name", "payer name",
             "merchant", "merchant name", "name"),
    "account": ("对方账号", "对方帐号", "对方账户", "对方卡号", "对方卡号/账号", "对方账号/卡号", "收(付)款人账号",
                "收/付方帐号", "收/付方账号", "收/付款人账号",
                "收付款人账号", "收(付)方账号", "对手账号", "对手方账号", "对方帐户", "对方账户账号",
                "counterparty account", "payee account", "payer account", "beneficiary account", "counterparty iban"),
    "name_account": ("对手信息", "对方信息", "对手方信息"),
    "payer_name": ("付款人名称", "付款人", "付款方", "付款方名称", "付款人户名", "付款账户名称", "付款户名", "付款单位"),
    "payer_account": ("付款人账号", "付款账号", "付款方账号", "付款账户", "付款人帐号"),
    "payee_name": ("收款人名称", "收款人", "收款方", "收款方名称", "收款人户名", "收款账户名称", "收款户名", "收款单位"),
    "payee_account": ("收款人账号", "收款账号", "收款方账号", "收款账户", "收款人帐号"),
    "memo": ("摘要", "附言", "用途", "备注", "交易附言", "交易摘要", "交易用途", "交易说明", "交易描述", "说明", "描述",
             "交易备注", "客户摘要", "业务摘要", "资金用途", "汇款用途", "摘要说明", "附加信息", "个性化信息", "交易详情",
             "商品说明", "交易类型", "业务类型", "交易地点", "description", "details", "narrative", "memo", "remarks",
             "particulars", "purpose", "transaction details", "narration", "transaction description",
             "payment details", "remittance information", "text", "reference text"),
    "balance": ("余额", "账户余额", "联机余额", "本次余额", "交易后余额", "当前余额", "可用余额", "账面余额", "余额(元)",
                "balance", "running balance", "available balance", "ledger balance", "balance(cny)"),
    "txn_id": ("流水号", "交易流水号", "交易流水", "银行流水号", "核心流水号", "业务流水号", "柜员流水号", "流水编号",
               "凭证号", "凭证号码", "交易参考号", "参考号", "日志号", "交易单号", "交易订单号", "交易编号",
               "交易识别码", "记录标识号", "账户明细编号-交易流水号", "银行交易流水号", "transaction id",
               "transaction reference", "bank reference", "reference no", "reference number", "ref no", "txn id",
               "transaction no", "reference", "ref"),
    "own_account": ("账号", "本方账号", "本方帐号", "我方账号", "账户号码", "帐号", "本方账户", "银行账号", "账户账号",
                    "客户账号", "卡号", "account", "account no", "account number", "our account"),
    "currency": ("币种", "币别", "货币", "交易币种", "记账币种", "币种名称", "交易货币", "货币种类", "币种代码", "currency",
                 "ccy", "curr"),
}
_LOOKUP: dict[str, list[str]] = {}
for _role, _names in VOCABULARY.items():
    for _name in _names:
        _LOOKUP.setdefault(normalize_header(_name), []).append(_role)
_PRIORITY = {role: {normalize_header(n): i for i, n in enumerate(names)} for role, names in VOCABULARY.items()}

_CREDIT_WORDS = ("收入", "贷方", "存入", "转入", "收款", "credit", "deposit", "paidin", "moneyin")
_DEBIT_WORDS = ("支出", "借方", "支取", "转出", "付款", "debit", "withdrawal", "paidout", "moneyout")
_MONEY_WORDS = ("金额", "发生额", "amount")
_NOT_MONEY = ("人", "户名", "名称", "账号", "帐号", "行", "日期", "时间", "标志", "类型", "笔数", "余额", "方向", "date", "name")

CARD_WORDS = ("信用卡", "本期应还", "最低还款", "还款日", "到期还款", "账单日", "卡号末四位", "卡号后四位", "credit card",
              "card statement", "minimum payment", "payment due", "statement balance", "card number")
REPAYMENT_WORDS = ("还款", "退款", "退货", "返现", "溢缴", "repayment", "payment received", "payment - thank",
                   "thank you", "refund", "cashback")


def roles_of(header: str) -> list[str]:
    """The roles a (normalized) header can play: exact vocabulary first, then a money column
    named by its direction (`本币收入金额`, `Credit Amount (USD)`)."""
    found = _LOOKUP.get(header) or _LOOKUP.get(_unit_stripped(header))
    if found:
        return found
    # Bilingual headers (`交易日期/Transaction Date`, `存入\nDeposit`): either half names it.
    for part in re.split(r"[/|\n]", header):
        if part and part != header:
            found = _LOOKUP.get(part) or _LOOKUP.get(_unit_stripped(part))
            if found:
                return found
    if len(header) > 24 or not any(w in header for w in _MONEY_WORDS) or any(w in header for w in _NOT_MONEY):
        return []
    if any(w in header for w in _CREDIT_WORDS):
        return ["credit"]
    if any(w in header for w in _DEBIT_WORDS):
        return ["debit"]
    return ["amount"]


@dataclass
class HeaderGuess:
    index: int  # row index in the grid (0-based)
    cells: list[str]  # the header cells as printed (stripped)
    roles: dict[str, list[int]]  # role -> positions, best first

    def first(self, role: str) -> int | None:
        positions = self.roles.get(role)
        return positions[0] if positions else None


def _header_guess(index: int, row: list[str]) -> HeaderGuess:
    roles: dict[str, list[int]] = {}
    for position, cell in enumerate(row):
        text = str(cell or "").strip()
        if not text or len(text) > 40 or parse_money(text) is not None:
            continue
        header = normalize_header(text)
        for role in roles_of(header):
            roles.setdefault(role, []).append(position)
    for role, positions in roles.items():
        priority = _PRIORITY.get(role, {})
        positions.sort(key=lambda p: (priority.get(normalize_header(row[p]), priority.get(_unit_stripped(normalize_header(row[p])), 99)), p))
    return HeaderGuess(index, [str(c or "").replace("\ufeff", "").strip() for c in row], roles)


def _has_money(guess: HeaderGuess) -> bool:
    return bool(guess.roles.get("amount") or guess.roles.get("credit") or guess.roles.get("debit"))


def find_header(rows: list[list[str]]) -> HeaderGuess | None:
    """The row among the first ones that names the most roles and has a date and a money
    column (the preamble above it is narrow text, the data below it numbers)."""
    best: HeaderGuess | None = None
    best_score = 1
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        guess = _header_guess(index, row)
        score = len(guess.roles)
        if "date" in guess.roles and _has_money(guess) and score > best_score:
            best, best_score = guess, score
    return best


def closest_header(rows: list[list[str]]) -> HeaderGuess | None:
    """For a file `find_header` rejects: the row that came closest (for the error message)."""
    candidates = [_header_guess(i, row) for i, row in enumerate(rows[:HEADER_SEARCH_ROWS])]
    candidates = [c for c in candidates if c.roles]
    return max(candidates, key=lambda c: len(c.roles), default=None)


@dataclass
class Inference:
    """What the generic reader found in a file, for the per-file report and `recon inspect`."""

    profile: FileProfile | None
    header_row: int | None  # 1-based row of the header in the file
    convention: str | None = None  # in_out / flag / signed / card / balance
    columns_used: dict[str, str] = field(default_factory=dict)  # canonical -> the file's header(s)
    missing: list[str] = field(default_factory=list)  # what it could not find (Chinese labels)
    notes: list[str] = field(default_factory=list)

    @property
    def convention_label(self) -> str:
        return CONVENTION_LABELS.get(self.convention or "", "")


CONVENTION_LABELS = {
    "in_out": "收入/支出分列",
    "flag": "金额 + 借贷标志",
    "signed": "带符号金额（负数为支出）",
    "card": "信用卡账单（消费为正，记为支出；还款/退款为负，记为收入）",
    "balance": "无符号金额，按余额变化判断收支",
    "payer": "无符号金额，本方为付款人时记为支出",
}


def _column(rows: list[list[str]], position: int | None) -> list[str]:
    if position is None:
        return []
    return [row[position].strip() if position < len(row) and row[position] is not None else "" for row in rows]


def _flag_column(body: list[list[str]], header: list[str], guess: HeaderGuess) -> int | None:
    """A column whose values are in/out words for nearly every line, both kinds present."""
    taken = {p for positions in guess.roles.values() for p in positions if positions and p == positions[0]}
    for position in range(len(header)):
        if position in taken and position not in guess.roles.get("memo", []):
            continue
        values = [v for v in _column(body, position) if v]
        if len(values) < 2:
            continue
        directions = [flag_direction(v) for v in values]
        known = [d for d in directions if d]
        if len(known) >= 0.9 * len(values) and {"debit", "credit"} <= set(known) and len(set(values)) <= 12:
            return position
    return None


def _own_in_payer_column(body: list[list[str]], guess: HeaderGuess) -> str | None:
    """Our account when the export lists payer and payee accounts: the one on most lines."""
    payer, payee = guess.first("payer_account"), guess.first("payee_account")
    if payer is None or payee is None:
        return None
    counts = Counter(v for v in _column(body, payer) + _column(body, payee) if v)
    if not counts:
        return None
    account, seen = counts.most_common(1)[0]
    return account if seen >= 0.9 * len(body) else None


def _is_id_column(values: list[str]) -> bool:
    """A bank's own id: present on most lines (a line without one gets a derived id), unique
    in the file, one token. A column named
    like one but repeating (a voucher number shared by lines, `0000000000` placeholders) is
    not used: two lines with one id would collapse into one in the warehouse."""
    filled = [v for v in values if v and v not in ("-", "/")]
    if not filled or len(filled) < 0.5 * len(values):
        return False
    if len(set(filled)) != len(filled):
        return False
    return all(len(v) >= 4 and " " not in v for v in filled)


def _is_card_statement(preamble: str, file_name: str, guess: HeaderGuess, amounts: list[Decimal],
                       memos: list[str]) -> bool:
    """A credit-card bill prints purchases positive: the preamble, file name or columns say it
    is a card bill, or (with no running balance, which every account statement prints) the
    few negative lines are all repayments and refunds."""
    text = (preamble + " " + file_name + " " + " ".join(guess.cells)).lower()
    if any(word in text for word in CARD_WORDS):
        return True
    if guess.first("balance") is not None:
        return False  # an account prints its running balance; a card bill does not
    negatives = [memo.lower() for amount, memo in zip(amounts, memos) if amount < 0]
    positives = sum(1 for amount in amounts if amount > 0)
    return bool(negatives) and positives > 2 * len(negatives) and all(
        any(word in memo for word in REPAYMENT_WORDS) for memo in negatives)


def _balance_direction(amounts: list[Decimal], balances: list[Decimal | None]) -> str | None:
    """"down" when each balance is the previous one plus the line (file in date order), "up"
    when it is the next one's (newest first); None when the balance does not explain the lines."""
    pairs = [(a, b) for a, b in zip(amounts, balances)]
    forward = backward = total = 0
    for (_, before), (amount, after) in zip(pairs, pairs[1:]):
        if before is None or after is None or amount is None:
            continue
        total += 1
        forward += abs(after - before) == abs(amount)
    for (amount, after), (_, before) in zip(pairs, pairs[1:]):
        if before is None or after is None or amount is None:
            continue
        backward += abs(after - before) == abs(amount)
    if total < 2:
        return None
    if forward >= 0.9 * total:
        return "down"
    if backward >= 0.9 * total:
        return "up"
    return None


_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})(?:\s|$)")


def _day_first(dates: list[str], context: str) -> bool | None:
    """For `05/01/2024`-style dates: True (day first) / False (month first) when a value or
    the file says so, True for dots (`05.01.2024`, European), None when no such dates."""
    seen = False
    for text in dates:
        found = _DMY.match(text)
        if not found:
            continue
        seen = True
        first, second = int(found[1]), int(found[2])
        if first > 12 >= second:
            return True
        if second > 12 >= first:
            return False
    if not seen:
        return None
    lowered = context.lower().replace(" ", "")
    if re.search(r"mm/dd|月/日|m/d/y", lowered):
        return False
    return True  # dd/mm/yyyy (and dd.mm.yyyy) is what non-US banks print


_PERIOD = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月|(\d{4})[-/](\d{1,2})(?:[-/]\d{1,2})?")


def infer_profile(rows: list[list[str]], file_name: str = "", encoding: str | None = None) -> Inference:
    """The layout of a tabular bank/card/payment export as a profile, or why there is none."""
    guess = find_header(rows)
    if guess is None:
        near = closest_header(rows)
        return Inference(None, near.index + 1 if near else None, missing=_missing_labels(near))
    preamble = "\n".join(" ".join(str(c or "") for c in row) for row in rows[:guess.index])
    header = guess.cells
    used: dict[str, str] = {}
    date_col = guess.first("date")
    # The lines the convention is inferred from: those with a date (not totals and notes).
    body = [r for r in rows[guess.index + 1:guess.index + 1 + SAMPLE_ROWS]
            if date_col < len(r) and looks_like_date(str(r[date_col] or "").strip())]
    dates = _column(body, date_col)
    time_col = None
    for candidate in guess.roles.get("time", []):
        values = [v for v in _column(body, candidate) if v]
        if candidate != date_col and values and all(split_time(v) is not None for v in values[:50]):
            time_col = candidate
            break
    day_first = _day_first(dates, preamble + " " + " ".join(header))
    used["txn_time"] = header[date_col] + (f" + {header[time_col]}" if time_col is not None else "")

    amount: dict[str, object] = {}
    convention: str
    credit, debit = guess.first("credit"), guess.first("debit")
    amount_col, flag_col = guess.first("amount"), guess.first("flag")
    memo_cols = [p for p in guess.roles.get("memo", []) if p not in (date_col, time_col)]
    memo_cols.sort()
    notes: list[str] = []
    if credit is not None and debit is not None:
        convention = "in_out"
        amount = {"credit_column": header[credit], "debit_column": header[debit]}
        used["amount"] = f"{header[credit]}（收入）/ {header[debit]}（支出）"
    elif amount_col is not None and flag_col is not None:
        values = Counter(v for v in _column(body, flag_col) if v)
        debit_values = sorted(v for v in values if flag_direction(v) == "debit")
        credit_values = sorted(v for v in values if flag_direction(v) == "credit")
        unknown = sorted(v for v in values if flag_direction(v) is None)
        if unknown:
            notes.append(f"借贷标志中无法判断的取值: {'、'.join(unknown[:5])}（这些行的金额按原样读取）")
        convention = "flag"
        amount = {"column": header[amount_col], "sign_column": header[flag_col],
                  "debit_values": debit_values or ["借"], "credit_values": credit_values}
        used["amount"] = f"{header[amount_col]} + {header[flag_col]}（{'/'.join(debit_values) or '借'} 为支出）"
    elif amount_col is not None or credit is not None or debit is not None:
        column = amount_col if amount_col is not None else (credit if credit is not None else debit)
        parsed = [parse_money(v) for v in _column(body, column)]
        numbers = [p for p in parsed if p is not None]
        memos = [" ".join(_column([r], p)[0] for p in memo_cols) for r in body]
        balance_col = guess.first("balance")
        if amount_col is None:
            # Only one money column, named for one direction.
            convention = "signed"
            amount = {"column": header[column], "negate": debit is not None}
        elif numbers and any(n < 0 for n in numbers):
            convention = "card" if _is_card_statement(preamble, file_name, guess, numbers, memos) else "signed"
            amount = {"column": header[column], "negate": convention == "card"}
        elif _is_card_statement(preamble, file_name, guess, numbers, memos):
            convention = "card"
            amount = {"column": header[column], "negate": True}
        elif (flag_by_values := _flag_column(body, header, guess)) is not None:
            # No flag column by name, but a column whose words say in or out (来账/往账, 收入/支出).
            convention = "flag"
            values = Counter(v for v in _column(body, flag_by_values) if v)
            amount = {"column": header[column], "sign_column": header[flag_by_values],
                      "debit_values": sorted(v for v in values if flag_direction(v) == "debit"),
                      "credit_values": sorted(v for v in values if flag_direction(v) == "credit")}
        elif (own := _own_in_payer_column(body, guess)) is not None:
            # Payer and payee columns, amounts unsigned: money out where we are the payer.
            convention = "payer"
            amount = {"column": header[column], "debit_when": {header[guess.first("payer_account")]: own}}
        elif balance_col is not None and _balance_direction(
                [parse_money(v) for v in _column(body, column)], [parse_money(v) for v in _column(body, balance_col)]):
            convention = "balance"
            direction = _balance_direction([parse_money(v) for v in _column(body, column)],
                                           [parse_money(v) for v in _column(body, balance_col)])
            amount = {"column": header[column], "sign_from_balance": direction}
        else:
            convention = "signed"
            amount = {"column": header[column], "negate": False}
            if numbers:
                notes.append("金额全为正数且没有借贷标志或余额：按收入读取，请确认")
        used["amount"] = header[column] + ("（取反）" if amount.get("negate") else "")
    else:  # pragma: no cover - find_header guarantees a money column
        return Inference(None, guess.index + 1, missing=["金额"])

    columns: dict[str, str] = {}
    counterparty: dict[str, object] = {}
    if guess.first("name_account") is not None and guess.first("name") is None:
        counterparty = {"name_and_account": header[guess.first("name_account")]}
        used["counterparty_name"] = header[guess.first("name_account")]
    elif guess.first("name") is None and guess.first("payer_name") is not None and guess.first("payee_name") is not None:
        money_in = {"name": header[guess.first("payer_name")]}
        money_out = {"name": header[guess.first("payee_name")]}
        if guess.first("payer_account") is not None and guess.first("payee_account") is not None:
            money_in["account"] = header[guess.first("payer_account")]
            money_out["account"] = header[guess.first("payee_account")]
        counterparty = {"money_in": money_in, "money_out": money_out}
        used["counterparty_name"] = f"{money_in['name']}（收入）/ {money_out['name']}（支出）"
    else:
        if guess.first("name") is not None:
            counterparty["name"] = header[guess.first("name")]
            used["counterparty_name"] = counterparty["name"]
        if guess.first("account") is not None:
            counterparty["account"] = header[guess.first("account")]
            used["counterparty_account"] = counterparty["account"]
    txn_id: dict[str, object] = {"derive": True}
    id_col = next((p for p in guess.roles.get("txn_id", []) if _is_id_column(_column(body, p))), None)
    if id_col is not None:
        txn_id["column"] = header[id_col]
        used["txn_id"] = header[id_col]
    else:
        used["txn_id"] = "（按行内容生成）"
    constants: dict[str, str] = {}
    in_preamble = False
    own_column = guess.first("own_account")
    if own_column is not None:
        columns[header[own_column]] = "account_no"
        used["account_no"] = header[own_column]
    elif (account := preamble_account(rows[:guess.index])) is not None:
        in_preamble = True
        used["account_no"] = f"表头上方的账号（{account}）"
    if convention == "payer" and own_column is None and not in_preamble and "account_no" not in columns.values():
        constants["account_no"] = next(iter(amount["debit_when"].values()))
        used["account_no"] = f"付款人/收款人账号中的本方账号（{constants['account_no']}）"
    if guess.first("currency") is not None:
        columns[header[guess.first("currency")]] = "currency"
        used["currency"] = header[guess.first("currency")]
    if memo_cols:
        used["memo"] = " + ".join(header[p] for p in memo_cols)
    period = _PERIOD.search(preamble)
    statement_year = int(period[1] or period[3]) if period else None
    statement_month = int(period[2] or period[4]) if period else None
    needs_year = any(re.fullmatch(r"\d{1,2}[/-]\d{1,2}", d) for d in dates[:50] if d)
    txn_time: dict[str, object] = {"column": header[date_col]}
    if time_col is not None:
        txn_time["time_column"] = header[time_col]
    if day_first is not None:
        txn_time["day_first"] = day_first
    if needs_year and statement_year:
        txn_time["statement_month"] = f"{statement_year:04d}-{statement_month:02d}"
    identifying = [header[p] for p in sorted({date_col, *(p for p in (credit, debit, amount_col, flag_col) if p is not None)})]
    profile = FileProfile(
        name=f"通用识别: {file_name}" if file_name else "通用识别",
        header_contains=tuple(identifying),
        encoding=encoding if encoding not in (None, "utf-8", "utf-8-sig") else None,
        columns=columns,
        amount=amount,
        constants=constants,
        txn_time=txn_time,
        counterparty=counterparty,
        memo=tuple(header[p] for p in memo_cols),
        txn_id=txn_id,
        skip_rows_with=SUMMARY_WORDS,
        balance_column=header[guess.first("balance")] if guess.first("balance") is not None else None,
        account_in_preamble=in_preamble,
    )
    if not any(looks_like_date(d) for d in dates if d):
        notes.append(f"列 {header[date_col]} 中没有可识别的日期")
    return Inference(profile, guess.index + 1, convention, used, [], notes)


_ROLE_LABELS = {"date": "交易日期", "amount": "金额（或收入/支出、借方/贷方）"}


def _missing_labels(near: HeaderGuess | None) -> list[str]:
    if near is None:
        return [_ROLE_LABELS["date"], _ROLE_LABELS["amount"]]
    missing = []
    if "date" not in near.roles:
        missing.append(_ROLE_LABELS["date"])
    if not _has_money(near):
        missing.append(_ROLE_LABELS["amount"])
    return missing


def with_fallback_account(profile: FileProfile, account_no: str | None) -> FileProfile:
    """The profile with `account_no` as a constant when the file names no account of its own."""
    if not account_no or "account_no" in profile.constants or "account_no" in profile.columns.values():
        return profile
    return replace(profile, constants={**profile.constants, "account_no": account_no})


def read_rows(rows: list[list[str]], inference: Inference, account_no: str | None = None):
    """The canonical frame of a file the generic reader understood (`recon statements
    convert`, tests); the landing zone reads it through the same profile engine."""
    import pandas as pd

    from .canonical import CANONICAL_COLUMNS, ROW_NUMBER_COLUMN, clean

    start = inference.header_row
    profile = with_fallback_account(resolve_preamble(inference.profile, rows[:start - 1]), account_no)  # 1-based header row: data starts on the next one
    header = [str(c or "") for c in rows[start - 1]]
    stats = ProfileStats()
    headers, out = apply_profile(profile, header, ((i + 1, list(r)) for i, r in enumerate(rows[start:], start)), stats)
    names = [str(h).replace("\ufeff", "").strip() for h in headers]
    computed_from = len(header)
    positions: dict[str, int] = {}
    for position, name in enumerate(names):
        if position >= computed_from and name in CANONICAL_COLUMNS:
            positions[name] = position
    for source_header, canonical in profile.columns.items():
        if canonical not in positions and source_header in names[:computed_from]:
            positions[canonical] = names.index(source_header)
    data: dict[str, list] = {c: [] for c in CANONICAL_COLUMNS}
    numbers: list[int] = []
    for number, cells in out:
        numbers.append(number)
        for column in CANONICAL_COLUMNS:
            at = positions.get(column)
            data[column].append(clean(cells[at]) if at is not None and at < len(cells) else None)
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in data.items()})
    frame[ROW_NUMBER_COLUMN] = pd.Series(numbers, dtype="int64")
    inference.notes = [n for n in inference.notes if not n.startswith("跳过")]
    if stats.skipped:
        inference.notes.append(f"跳过 {stats.skipped} 行汇总/页脚/余额行（不是交易）")
    return frame
