"""Every bank-statement sample is read and agrees with the expected parse shipped beside it.

The samples (../shared/samples/bank_statements) come from other projects' test suites, each
with its own expected-output format: genkgo/camt JSON dumps, wolph/mt940 YAML object dumps,
double-entry-generator beancount ledgers. These helpers turn each into a list of
`Expected(date, amount, ...)` for the tests to compare against our canonical rows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import yaml

from tests import SAMPLES_DIR

SAMPLES = SAMPLES_DIR


@dataclass
class Expected:
    day: date
    amount: Decimal  # signed: + money in
    names: list[str] = field(default_factory=list)  # acceptable counterparty names
    memo: str | None = None
    sign_known: bool = True


# --- camt.053 (genkgo/camt JSON dump of its DTOs) ---------------------------------------


def camt_expected(json_path: Path) -> tuple[list[Expected], dict]:
    dump = json.loads(json_path.read_text(encoding="utf-8"))
    expected = []
    for entry in dump["getEntries"]:
        money = entry["getAmount"]
        indicator = entry["getCreditDebitIndicator"]
        detail = entry.get("getTransactionDetail") or {}
        parties = {
            p["getRelatedPartyType"]["__CLASS__"].rsplit("\\", 1)[-1]: p["getRelatedPartyType"].get("getName")
            for p in detail.get("getRelatedParties") or []
        }
        wanted = ("Debtor", "UltimateDebtor") if indicator == "CRDT" else ("Creditor", "UltimateCreditor")
        names = [parties[role] for role in wanted if parties.get(role)]
        remittance = detail.get("getRemittanceInformation") or {}
        expected.append(
            Expected(
                day=date.fromisoformat(entry["getBookingDate"]["0"][:10]),
                amount=Decimal(money["getAmount"]) / 100,  # Money stores minor units
                names=names,
                memo=remittance.get("getMessage"),
            )
        )
    return expected, dump


# --- MT940 (wolph/mt940 YAML dump of Python objects) ------------------------------------


class _DumpLoader(yaml.SafeLoader):
    """Reads `!!python/object` dumps as plain dicts without importing anything."""


def _object(loader, suffix, node):
    data: dict = {}
    yield data
    data.update(loader.construct_mapping(node, deep=True))


def _apply(loader, suffix, node):
    args = loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode) else []
    if suffix == "decimal.Decimal":
        return Decimal(args[0])
    if suffix == "mt940.models.Date":
        raw = args[0]
        return date(raw[0] * 256 + raw[1], raw[2], raw[3])
    return None


_DumpLoader.add_multi_constructor("tag:yaml.org,2002:python/object/apply:", _apply)
_DumpLoader.add_multi_constructor("tag:yaml.org,2002:python/object:", _object)


def mt940_expected(yml_path: Path) -> list[Expected]:
    dump = yaml.load(yml_path.read_text(encoding="utf-8"), Loader=_DumpLoader)  # noqa: S506 - safe subclass
    expected = []
    for transaction in dump.get("transactions") or []:
        data = transaction["data"]
        purpose = data.get("purpose")
        amount = data["amount"]["amount"]
        if data.get("status") == "RC":
            # Reversal of a credit takes the money back out. The dump predates the library's
            # fix (wolph/mt940 issue #130, `Options.reversal_sign`) and shows it positive.
            amount = -abs(amount)
        expected.append(
            Expected(
                day=data.get("guessed_entry_date") or data.get("entry_date") or data["date"],
                amount=amount,
                names=[data["applicant_name"]] if data.get("applicant_name") else [],
                memo=purpose,
            )
        )
    return expected


# --- Chinese exports (double-entry-generator beancount ledgers) --------------------------

_STR = r'"((?:[^"\\]|\\.)*)"'  # a beancount string, with \" escapes
_TXN = re.compile(rf"^(\d{{4}}-\d{{2}}-\d{{2}}) \* (?:{_STR} )?{_STR}")
_POSTING = re.compile(r"^\s+([A-Z][\w:-]+)\s+(-?[\d.]+)\s+([A-Z]{3})")
_META = re.compile(r'^\s+(\w+): "(.*)"')


@dataclass
class LedgerEntry:
    day: date
    payee: str | None
    narration: str
    postings: list[tuple[str, Decimal]]
    meta: dict[str, str]


def read_ledger(path: Path) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        head = _TXN.match(line)
        if head:
            unescape = lambda text: text.replace('\\"', '"') if text is not None else None  # noqa: E731
            entries.append(LedgerEntry(date.fromisoformat(head[1]), unescape(head[2]), unescape(head[3]), [], {}))
            continue
        if not entries:
            continue
        posting = _POSTING.match(line)
        if posting:
            entries[-1].postings.append((posting[1], Decimal(posting[2])))
            continue
        meta = _META.match(line)
        if meta:
            entries[-1].meta[meta[1]] = meta[2]
    return entries


# Each Chinese sample's own account in its ledger (the posting whose sign is ours) and the
# payees the generator prints when the export names no counterparty.
CN_SAMPLES = {
    "abc_debit/example-abc_debit-records.csv": ("cn_abc", r"^Assets:ABC:DebitCard$"),
    "alipay/example-alipay-records.csv": ("cn_alipay", None),
    "boc/credit/example-boc-records.csv": ("cn_boc_credit", r"^Liabilities:CC:BoC:"),
    "boc/debit/example-boc-records.csv": ("cn_boc_debit", r"^Assets:DC:BoC:3167$"),
    "bocom_credit/example-bocom_credit-records.csv": ("cn_bocom_credit", r"^Liabilities:BOCOM:CreditCard$"),
    "bocom_debit/example-bocom_debit-records.csv": ("cn_bocom_debit", r"^Assets:DebitCard:BOCOM$"),
    "ccb/交易明细_xxxx_2025xxxx_2025xxxx.xls": ("cn_ccb", r"^Assets:Bank:CN:CCB:Checking$"),
    "cmb/credit/example-cmb-records.csv": ("cn_cmb_credit", r"^Liabilities:CreditCard:CMB$"),
    "cmb/debit/example-cmb-records.csv": ("cn_cmb_debit", r"^Assets:DebitCard:CMB$"),
    "icbc/credit/example-icbc-credit-records.csv": ("cn_icbc", r"^Liabilities:Bank:CN:ICBC$"),
    "icbc/debit-v1/example-icbc-debit-v1-records.csv": ("cn_icbc", r"^Assets:Bank:CN:ICBC$"),
    "icbc/debit-v2/example-icbc-debit-v2-records.csv": ("cn_icbc", r"^Assets:Bank:CN:ICBC$"),
    "wechat/example-wechat-records.csv": ("cn_wechat", None),
    "wechat/example-wechat-records.xlsx": ("cn_wechat", None),
}
PLACEHOLDER_PAYEES = {"", "/", "ABC Debit", "BOCOM Credit", "CMB"}


def cn_expected(sample: Path, own_account: str | None) -> list[Expected]:
    """Ledger entries as expectations. The sign is the amount on the sample's own account;
    wallet exports (Alipay/WeChat) post to the paying card instead, so their sign comes from
    the 收/支 column and neutral (不计收支, `/`) lines are compared by size only. The
    generator's config filters some lines out, so the ledger is a subset of the file."""
    ledger = next(sample.parent.glob("*.beancount"))
    expected = []
    for entry in read_ledger(ledger):
        own = [amount for account, amount in entry.postings if own_account and re.search(own_account, account)]
        if own:
            amount, sign_known = own[0], True
        else:
            # The wallet line is the whole movement; the ledger may split it (withdrawal + fee).
            size = sum(amount for _, amount in entry.postings if amount > 0)
            direction = entry.meta.get("type")
            amount, sign_known = (size if direction != "支出" else -size), direction in ("收入", "支出")
        payee = entry.payee if entry.payee is not None else None
        narration = entry.narration
        if entry.payee is None:  # one string: the generator put the counterparty in the narration
            payee, narration = narration, ""
        expected.append(
            Expected(
                day=entry.day,
                amount=amount,
                names=[] if payee in PLACEHOLDER_PAYEES else [payee],
                memo=narration,
                sign_known=sign_known,
            )
        )
    return expected


# --- the tests --------------------------------------------------------------------------

import pytest  # noqa: E402

from recon_pipeline.ingest.statements import CANONICAL_COLUMNS, detect_format, read_statement  # noqa: E402

CAMT_SAMPLES = sorted(p.name for p in (SAMPLES / "camt053").glob("*.xml") if (p.with_suffix(".json")).exists())
MT940_SAMPLES = sorted(
    str(p.relative_to(SAMPLES / "mt940")) for p in (SAMPLES / "mt940").glob("*/*.sta") if p.with_suffix(".yml").exists()
)


def _day(row) -> date:
    return date.fromisoformat(row["txn_time"][:10])


def _pieces(text: str | None) -> list[str]:
    return [p for p in re.split(r"\s+-\s+|\s+", text or "") if p and p != "/"]


def _name_agrees(expected: Expected, row) -> bool:
    """The expected counterparty (which may run name and account together, or carry the
    trading place) is made of our name, account and memo."""
    if not expected.names:
        return True
    if row["counterparty_name"] is None and row["counterparty_account"] is None:
        return False
    haystack = f"{row['counterparty_name'] or ''}{row['counterparty_account'] or ''}"
    return all(piece in haystack or piece in (row["memo"] or "") for piece in _pieces(expected.names[0]))


def _memo_agrees(expected: Expected, row) -> bool:
    haystack = f"{row['memo'] or ''} {row['counterparty_name'] or ''} {row['counterparty_account'] or ''}"
    return all(piece in haystack for piece in _pieces(expected.memo))


def _assert_canonical(frame) -> None:
    assert list(frame.columns) == [*CANONICAL_COLUMNS, "_row_number"]
    for column in CANONICAL_COLUMNS:
        assert frame[column].dtype == object
        assert all(value is None or isinstance(value, str) for value in frame[column])
    assert frame["_row_number"].dtype == "int64" and (frame["_row_number"] >= 1).all()
    assert frame["txn_id"].notna().all()
    assert not frame.duplicated(["account_no", "txn_id"]).any()
    for text in frame["txn_time"]:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text), text
    for text in frame["amount"]:
        assert re.fullmatch(r"-?\d+\.\d{2,5}", text), text


@pytest.mark.parametrize("name", CAMT_SAMPLES)
def test_camt053_sample_matches_expected_parse(name):
    path = SAMPLES / "camt053" / name
    expected, dump = camt_expected(path.with_suffix(".json"))
    frame = read_statement(path)
    _assert_canonical(frame)
    assert detect_format(path) == "camt053"
    # Every entry of every statement (genkgo's dump lists only the last statement's).
    assert len(frame) == path.read_text(encoding="utf-8").count("<Ntry>")
    record = dump["getEntries"][0]["getRecord"]
    assert set(frame["account_no"]) >= {record["getAccount"]["getIdentification"]}
    rows = frame.to_dict("records")
    for want in expected:
        found = [r for r in rows if _day(r) == want.day and Decimal(r["amount"]) == want.amount]
        assert found, f"{name}: no row for {want}"
        row = found[0]
        assert row["memo"] == want.memo
        if want.names:
            assert row["counterparty_name"] in want.names
        all_party_names = re.findall(r'"getName": "([^"]+)"', path.with_suffix(".json").read_text(encoding="utf-8"))
        assert row["counterparty_name"] is None or row["counterparty_name"] in all_party_names


def test_camt053_multi_statement_reads_every_statement():
    frame = read_statement(SAMPLES / "camt053" / "camt053.v2.multi.statement.xml")
    assert frame[["amount", "counterparty_name", "memo"]].values.tolist() == [
        ["8.85", "Company Name 1", "Transaction Description 1"],
        ["-7.00", "Company Name 2", "Transaction Description 2"],
    ]


def test_camt053_keeps_five_decimals_and_local_booking_time():
    assert read_statement(SAMPLES / "camt053" / "camt053.v2.five.decimals.xml")["amount"].tolist() == ["8.850"]
    # v8 books at 2014-12-31T13:15:00+01:00: the time as printed, not shifted to UTC.
    assert read_statement(SAMPLES / "camt053" / "camt053.v8.xml")["txn_time"].tolist() == ["2014-12-31 13:15:00"]


@pytest.mark.parametrize("name", MT940_SAMPLES)
def test_mt940_sample_matches_expected_parse(name):
    path = SAMPLES / "mt940" / name
    expected = mt940_expected(path.with_suffix(".yml"))
    frame = read_statement(path)
    assert detect_format(path) == "mt940"
    assert len(frame) == len(expected)
    if len(frame):
        _assert_canonical(frame)
    for want, row in zip(expected, frame.to_dict("records")):
        assert _day(row) == want.day
        assert Decimal(row["amount"]) == want.amount
        if want.names:
            assert row["counterparty_name"] == want.names[0]
        if want.memo:
            assert want.memo.strip() in row["memo"]


@pytest.mark.parametrize("name", ["mt940.txt", "mt940_with_spaces_for_entry_date.txt"])
def test_mt940_asn_bank_long_references(name):
    """ASN Bank puts an 18-character IBAN where MT940 allows 16; wolph/mt940's own test
    reads it with the lenient ASNB tag and expects these statements."""
    frame = read_statement(SAMPLES / "mt940" / "ASNB" / name)
    _assert_canonical(frame)
    assert len(frame) == 8
    assert set(frame["account_no"]) == {"NL81ASNB9999999999"}
    assert frame.iloc[0][["txn_time", "amount"]].tolist() == ["2020-01-01 00:00:00", "-65.00"]
    assert frame.iloc[-1][["txn_time", "amount"]].tolist() == ["2020-01-31 00:00:00", "-903.76"]
    assert "Betaling sieraden" in frame.iloc[0]["memo"]


def test_mt940_citi_statement():
    frame = read_statement(SAMPLES / "mt940" / "citi" / "mt940.txt")
    _assert_canonical(frame)
    assert frame["amount"].tolist() == ["-212.39", "-369.28", "0.00", "0.00", "-561.08"]
    assert set(frame["account_no"]) == {"123456789"} and set(frame["currency"]) == {"USD"}


def test_mt940_multi_statement_file_keeps_each_statement_account():
    frame = read_statement(SAMPLES / "mt940" / "cmxl" / "mt940.sta")
    assert frame["account_no"].value_counts().to_dict() == {
        "45050050/76198810": 11,
        "BPHKPLPK/320000546101": 3,
        "10020030/1234567": 2,
    }


@pytest.mark.parametrize("name", sorted(CN_SAMPLES))
def test_chinese_export_sample_matches_expected_parse(name):
    fmt, own_account = CN_SAMPLES[name]
    path = SAMPLES / "cn_bank_exports" / name
    assert detect_format(path) == fmt
    frame = read_statement(path)
    _assert_canonical(frame)
    rows = frame.to_dict("records")
    unused = list(range(len(rows)))
    for want in cn_expected(path, own_account):
        candidates = [i for i in unused if _day(rows[i]) == want.day and abs(Decimal(rows[i]["amount"])) == abs(want.amount)]
        assert candidates, f"{name}: no row for {want}"
        agreeing = [i for i in candidates if _name_agrees(want, rows[i]) and _memo_agrees(want, rows[i])]
        assert agreeing, f"{name}: {want} vs {[rows[i] for i in candidates]}"
        row = rows[agreeing[0]]
        unused.remove(agreeing[0])
        if want.sign_known:
            assert Decimal(row["amount"]) == want.amount, f"{name}: sign of {want}"


def test_chinese_exports_skip_preamble_and_footer_and_find_the_account():
    icbc = read_statement(SAMPLES / "cn_bank_exports" / "icbc" / "debit-v1" / "example-icbc-debit-v1-records.csv")
    assert len(icbc) == 11 and set(icbc["account_no"]) == {"1234****9876"}  # 人民币合计 is not a line
    assert icbc.iloc[0]["_row_number"] == 8  # the first data line of the file
    ccb = read_statement(SAMPLES / "cn_bank_exports" / "ccb" / "交易明细_xxxx_2025xxxx_2025xxxx.xls")
    assert len(ccb) == 6 and set(ccb["account_no"]) == {"xxxxx*********xxxx"}
    assert ccb.iloc[0][["amount", "txn_time"]].tolist() == ["-67.00", "2025-01-01 18:53:19"]
    alipay = read_statement(SAMPLES / "cn_bank_exports" / "alipay" / "example-alipay-records.csv")  # GB18030
    assert set(alipay["account_no"]) == {"xx@gmail.com"}
    assert "蚂蚁财富-蚂蚁（杭州）基金销售有限公司" in set(alipay["counterparty_name"])


def test_run_together_name_and_account_are_split():
    cmb = read_statement(SAMPLES / "cn_bank_exports" / "cmb" / "debit" / "example-cmb-records.csv")
    assert cmb.iloc[0][["counterparty_name", "counterparty_account"]].tolist() == ["北京住房公积金管理中心", "1111111111"]
    assert cmb.iloc[1][["counterparty_name", "counterparty_account"]].tolist() == ["张三", "66666666666666"]


def test_wechat_csv_and_xlsx_give_the_same_rows():
    folder = SAMPLES / "cn_bank_exports" / "wechat"
    columns = CANONICAL_COLUMNS
    from_csv = read_statement(folder / "example-wechat-records.csv")[columns]
    from_xlsx = read_statement(folder / "example-wechat-records.xlsx")[columns]
    assert from_csv.equals(from_xlsx)
