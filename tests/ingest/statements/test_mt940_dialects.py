"""MT940/MT942 as banks other than our samples write them, from files built after the SWIFT
field layouts and the banks' published `:86:` guides: envelopes, header noise, several
messages, `:NS:`, intermediate balances, `:61:` quirks, structured `:86:` subfields."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from recon_pipeline.ingest.loader import sync_landing
from recon_pipeline.ingest.statements import detect_format, read_statement
from recon_pipeline.ingest.statements.mt940_details import join_swift_lines, parse_slash_details
from recon_pipeline.settings import load_settings
from recon_pipeline.warehouse import connect


def _read(tmp_path: Path, text: str, name: str = "statement.sta", newline: str = "\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("latin-1"))
    assert detect_format(path) == "mt940"
    return read_statement(path)


def _rows(frame, *columns):
    return frame[list(columns)].values.tolist()


ENVELOPED = """{1:F01INGBNL2AXXXX0000000000}{2:O9400000000000INGBNL2AXXXX00000000000000000000N}{3:{108:MT940}}{4:
:20:P140220000000001
:25:NL20INGB0001234567EUR
:28C:00000
:60F:C140219EUR662,23
:61:1402200220C1,56NTRFEREF//00000000001005
/TRCD/00100/
:86:/EREF/EV12341REP1231456T1234//CNTP/NL32INGB0000012345/INGBNL2A/ING BANK N.V. INZAKE WEB///REMI/USTD//EV10001REP1000000T1000/
:61:1402200220D1,57NTRFPREF//00000000001006
:86:/PREF/M000000003333333//REMI/USTD//TOTAAL 1 VZ/
:62F:C140220EUR662,22
-}{5:{CHK:ABCDEF123456}}{1:F01INGBNL2AXXXX0000000000}{2:O9400000000000INGBNL2AXXXX00000000000000000000N}{4:
:20:P140221000000001
:25:NL20INGB0001234567EUR
:28C:00001
:60F:C140220EUR662,22
:61:1402210221C100,00NTRFEREF//00000000001007
:86:/CNTP/NL44RABO0123456789/RABONL2U/J. JANSEN/AMSTERDAM///REMI/STRD/CUR/RF18539007547034/
:62F:C140221EUR762,22
-}{5:{CHK:ABCDEF123457}}
"""


def test_swift_envelope_with_several_messages_and_structured_86(tmp_path):
    frame = _read(tmp_path, ENVELOPED, newline="\r\n")
    assert _rows(frame, "account_no", "txn_time", "amount", "currency") == [
        ["NL20INGB0001234567", "2014-02-20 00:00:00", "1.56", "EUR"],
        ["NL20INGB0001234567", "2014-02-20 00:00:00", "-1.57", "EUR"],
        ["NL20INGB0001234567", "2014-02-21 00:00:00", "100.00", "EUR"],
    ]
    assert _rows(frame, "counterparty_name", "counterparty_account", "memo")[0] == [
        "ING BANK N.V. INZAKE WEB", "NL32INGB0000012345", "EV10001REP1000000T1000 EV12341REP1231456T1234"]
    assert frame.iloc[1]["memo"] == "TOTAAL 1 VZ"
    assert _rows(frame, "counterparty_name", "counterparty_account", "memo")[2] == [
        "J. JANSEN", "NL44RABO0123456789", "RF18539007547034"]
    assert frame["txn_id"].tolist() == ["00000000001005", "00000000001006", "00000000001007"]


def test_header_lines_before_the_first_tag_and_a_trailer_after_the_last_message(tmp_path):
    text = """ABNANL2A
940
ABNANL2A
:20:ABN AMRO BANK NV
:25:517852257
:28:19321/1
:60F:C110522EUR3236,28
:61:1105220522D9,00N426NONREF
:86:BEA   NR:XXX1234 22.05.11/15.24 HEMA AMSTERDAM
:61:1105220522C100,00N654NONREF
:86:/TRTP/SEPA OVERBOEKING/IBAN/NL44RABO0123456789/BIC/RABONL2U/NAME/J JANSEN/REMI/Factuur 12345/EREF/NOTPROVIDED
:62F:C110522EUR3327,28
-
Einde bestand / end of file
"""
    frame = _read(tmp_path, text)
    assert _rows(frame, "account_no", "amount") == [["517852257", "-9.00"], ["517852257", "100.00"]]
    assert frame.iloc[0]["memo"] == "BEA   NR:XXX1234 22.05.11/15.24 HEMA AMSTERDAM"
    assert _rows(frame, "counterparty_name", "counterparty_account", "memo")[1] == [
        "J JANSEN", "NL44RABO0123456789", "Factuur 12345"]


def test_non_swift_fields_and_intermediate_balances_of_a_multi_page_statement(tmp_path):
    text = """:20:MPAGE1
:25:PL61109010140000071219812874
:28C:1/1
:NS:22Bank Polska SA
:60F:C240101PLN100,00
:61:2401020102C10,00S034NONREF//B1
:NS:19Przelew przychodzacy
:86:034^00PRZELEW^20FV 1/2024^21ZAPLATA^32JAN KOWALSKI^33SP. Z O.O.^38PL27114020040000300201355387
:62M:C240102PLN110,00
-
:20:MPAGE2
:25:PL61109010140000071219812874
:28C:1/2
:60M:C240102PLN110,00
:61:2401030103D20,00S034NONREF//B2
:86:034~00PRZELEW~20CZYNSZ~32ADMINISTRACJA~38PL10105000997603123456789123
:62F:C240103PLN90,00
"""
    frame = _read(tmp_path, text)
    assert _rows(frame, "txn_id", "amount", "currency") == [["B1", "10.00", "PLN"], ["B2", "-20.00", "PLN"]]
    assert _rows(frame, "counterparty_name", "counterparty_account", "memo") == [
        ["JAN KOWALSKISP. Z O.O.", "PL27114020040000300201355387", "PRZELEW FV 1/2024ZAPLATA"],
        ["ADMINISTRACJA", "PL10105000997603123456789123", "PRZELEW CZYNSZ"],
    ]


@pytest.mark.parametrize(
    ("line", "day", "amount", "reference"),
    [
        ("240105C10,00//REF1", "2024-01-05", "10.00", "REF1"),  # no entry date, no type code
        ("2401050105C1000.50NTRFREF2//B2", "2024-01-05", "1000.50", "B2"),  # dot as the decimal mark
        ("2401050105D1.000,50NTRFNONREF//B3", "2024-01-05", "-1000.50", "B3"),  # thousands mark
        ("240105    DD212,39NMSCNONREF//B4", "2024-01-05", "-212.39", "B4"),  # blank entry date, funds code
        ("2401050105RC5,00NRTINONREF//B5", "2024-01-05", "-5.00", "B5"),  # reversal of a credit
        ("2401050105RD5,00NRTINONREF//B6", "2024-01-05", "5.00", "B6"),  # reversal of a debit
        ("2401050105c7,00NTRFNONREF//B7", "2024-01-05", "7.00", "B7"),  # lowercase mark
        ("2401050105CR8,NTRFA-VERY-LONG-CUSTOMER-REFERENCE//B8", "2024-01-05", "8.00", "B8"),
        ("2312290102C9,00NTRFNONREF//B9", "2024-01-02", "9.00", "B9"),  # entry date in the next year
    ],
)
def test_statement_line_quirks(tmp_path, line, day, amount, reference):
    text = f":20:Q\n:25:DE44500105175407324931\n:28C:1\n:60F:C231231EUR0,00\n:61:{line}\n:86:memo\n:62F:C240105EUR0,00\n"
    frame = _read(tmp_path, text)
    assert _rows(frame, "txn_time", "amount", "txn_id") == [[f"{day} 00:00:00", amount, reference]]


def test_lines_without_a_type_code_stay_separate_lines(tmp_path):
    """The library opens a new transaction only after one with a type code: two such lines
    would merge into one and the first amount would be lost."""
    text = ":20:X\n:25:123456\n:28C:1/1\n:60F:C240101EUR100,00\n:61:240102C10,00//REF1\n:86:first\n" \
           ":61:240103D5,00//REF2\n:86:second\n:62F:C240103EUR105,00\n"
    frame = _read(tmp_path, text)
    assert _rows(frame, "txn_id", "amount", "memo") == [["REF1", "10.00", "first"], ["REF2", "-5.00", "second"]]


def test_german_structured_details_and_owner_information_after_the_closing_balance(tmp_path):
    text = """:20:STARTUMS
:25:10020030/1234567
:28C:00001/001
:60F:C240101EUR100,00
:61:2401020102CR50,00NTRFNONREF
:86:166?00GUTSCHRIFT?109075?20EREF+ORDER-25SH00137?21SVWZ+Rechnung 4711?30DEUTDEFF?31DE0
2100500000054540402?32Max Muster?33mann GmbH
:62F:C240102EUR150,00
:86:Bitte beachten Sie unsere neuen Geschaeftsbedingungen
"""
    frame = _read(tmp_path, text)
    assert _rows(frame, "amount", "counterparty_name", "counterparty_account", "memo") == [
        ["50.00", "Max Mustermann GmbH", "DE02100500000054540402", "GUTSCHRIFT Rechnung 4711"]]


def test_unstructured_details_are_the_memo_and_full_lines_are_glued(tmp_path):
    first = "PAYMENT FROM SHANGHAI EXAMPLE TRADING CO LTD REF 1 INVOICE NO 25SH0"[2:]  # the bank cut it here
    assert len(first) == 65
    text = f":20:X\n:25:GB29NWBK60161331926819\n:28C:1\n:60F:C240101GBP0,00\n:61:240102C10,00NTRFNONREF\n" \
           f":86:{first}\n0137 THANK YOU\nSECOND LINE\n:62F:C240102GBP10,00\n"
    frame = _read(tmp_path, text)
    assert frame.iloc[0]["memo"] == "YMENT FROM SHANGHAI EXAMPLE TRADING CO LTD REF 1 INVOICE NO 25SH00137 THANK YOU SECOND LINE"
    assert join_swift_lines("short\nline") == "short line"


def test_mt942_interim_report_signs_expected_debits(tmp_path):
    text = """:20:MT942REF
:21:NONREF
:25:DE12500105170648489890
:28C:1/1
:34F:EUR0,
:13D:2401021530+0100
:61:2401020102EC10,00NTRFNONREF//P1
:86:pending credit
:61:2401020102ED4,00NTRFNONREF//P2
:86:pending debit
:90D:1EUR4,00
:90C:1EUR10,00
"""
    frame = _read(tmp_path, text, name="intraday.942")
    assert _rows(frame, "txn_id", "amount", "memo") == [["P1", "10.00", "pending credit"], ["P2", "-4.00", "pending debit"]]


def test_slash_details_parser():
    rabobank = parse_slash_details("/ORDP//NAME/J. de Vries/ADDR/Dorpsstraat 1/REMI/Factuur 2024-001/EREF/E2E-1")
    assert (rabobank.name, rabobank.account, rabobank.memo) == ("J. de Vries", None, "Factuur 2024-001 E2E-1")
    assert parse_slash_details("/PT/FT/PY/SOMETHING FOO BAR") is None  # Citi's codes are not this layout
    assert parse_slash_details("free text /NAME/ later") is None


def test_a_broken_statement_line_is_quarantined_and_the_others_load(tmp_path):
    text = ":20:X\n:25:123456\n:28C:1\n:60F:C070903EUR0,0\n:61:NOTADATE\n:86:lost?\n" \
           ":61:0709040904C1,00NTRFNONREF//OK1\n:86:fine\n:62F:C070904EUR1,0\n"
    folder = tmp_path / "landing" / "bank_transactions" / "2007-09-05"
    folder.mkdir(parents=True)
    (folder / "bad.sta").write_text(text, encoding="latin-1")
    frame = read_statement(folder / "bad.sta")
    assert frame["amount"].tolist() == [":61:NOTADATE", "1.00"]
    with connect(tmp_path / "w.duckdb") as conn:
        report = sync_landing(conn, tmp_path / "landing", date(2007, 9, 30), load_settings())
        assert report.failed == [] and report.rows_loaded == 1 and report.rows_quarantined == 1
        reason, row = conn.execute("SELECT reason, _row_number FROM raw.quarantine").fetchone()
    assert "amount 金额无法识别" in reason and ":61:NOTADATE" in reason and row == 1
