"""ISO 20022 camt.052 / camt.053 / camt.054 in any version, from messages built after the
ISO 20022 message definitions: batch entries split per transaction with the right sign,
reversals, namespaces, business application headers, and hostile XML refused unread."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon_pipeline.ingest.statements import StatementError, detect_format, read_statement

CONTAINERS = {"053": ("BkToCstmrStmt", "Stmt"), "052": ("BkToCstmrAcctRpt", "Rpt"), "054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}


def tx(amount: str | None = None, ccy: str = "EUR", indicator: str | None = None, debtor: str | None = None,
       creditor: str | None = None, remittance: str | None = None, ref: str | None = None, tx_amount: str | None = None) -> str:
    parts = []
    if ref:
        parts.append(f"<Refs><TxId>{ref}</TxId></Refs>")
    if amount:
        parts.append(f'<Amt Ccy="{ccy}">{amount}</Amt>')
    if indicator:
        parts.append(f"<CdtDbtInd>{indicator}</CdtDbtInd>")
    if tx_amount:
        parts.append(f'<AmtDtls><TxAmt><Amt Ccy="{ccy}">{tx_amount}</Amt></TxAmt></AmtDtls>')
    parties = ""
    if debtor:
        parties += f"<Dbtr><Nm>{debtor}</Nm></Dbtr><DbtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></DbtrAcct>"
    if creditor:
        parties += f"<Cdtr><Nm>{creditor}</Nm></Cdtr><CdtrAcct><Id><Othr><Id>6222020200001234</Id></Othr></Id></CdtrAcct>"
    if parties:
        parts.append(f"<RltdPties>{parties}</RltdPties>")
    if remittance:
        parts.append(f"<RmtInf><Ustrd>{remittance}</Ustrd></RmtInf>")
    return "<TxDtls>" + "".join(parts) + "</TxDtls>"


def entry(amount: str, indicator: str, *details: str, ccy: str = "EUR", reversal: bool = False,
          booked: str = "<Dt>2024-03-01</Dt>", ref: str = "REF1") -> str:
    reversal_xml = "<RvslInd>true</RvslInd>" if reversal else ""
    dtls = f"<NtryDtls>{''.join(details)}</NtryDtls>" if details else ""
    return (f'<Ntry><NtryRef>{ref}</NtryRef><Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>{reversal_xml}'
            f"<Sts><Cd>BOOK</Cd></Sts><BookgDt>{booked}</BookgDt><ValDt><Dt>2024-03-02</Dt></ValDt>{dtls}</Ntry>")


def message(*entries: str, kind: str = "053", version: str = "08", namespace: bool = True, header: str = "") -> str:
    root, container = CONTAINERS[kind]
    xmlns = f' xmlns="urn:iso:std:iso:20022:tech:xsd:camt.{kind}.001.{version}"' if namespace else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>{header}<Document{xmlns}><{root}><GrpHdr><MsgId>M1</MsgId>'
            f"<CreDtTm>2024-03-02T08:00:00</CreDtTm></GrpHdr><{container}><Id>S1</Id>"
            f"<Acct><Id><IBAN>CH9300762011623852957</IBAN></Id><Ccy>EUR</Ccy></Acct>{''.join(entries)}"
            f"</{container}></{root}></Document>")


def _read(tmp_path: Path, xml: str, name: str = "camt.xml", fmt: str | None = None):
    path = tmp_path / name
    path.write_text(xml, encoding="utf-8")
    if fmt:
        assert detect_format(path) == fmt
    return read_statement(path)


def _rows(frame, *columns):
    return frame[list(columns)].values.tolist()


@pytest.mark.parametrize(("kind", "version"), [("053", "02"), ("053", "13"), ("052", "02"), ("052", "08"), ("054", "04"), ("054", "08")])
def test_every_message_kind_and_version(tmp_path, kind, version):
    xml = message(entry("100.00", "CRDT", tx(debtor="ACME GmbH", remittance="INV 25SH00137")), entry("7.50", "DBIT", ref="REF2"),
                  kind=kind, version=version)
    frame = _read(tmp_path, xml, fmt=f"camt{kind}")
    assert _rows(frame, "account_no", "txn_time", "amount", "currency", "counterparty_name", "memo") == [
        ["CH9300762011623852957", "2024-03-01 00:00:00", "100.00", "EUR", "ACME GmbH", "INV 25SH00137"],
        ["CH9300762011623852957", "2024-03-01 00:00:00", "-7.50", "EUR", None, None],
    ]


def test_a_debit_batch_is_split_into_debits(tmp_path):
    """One booking for a payroll/supplier batch: each transaction is a line with its own
    amount and the entry's direction when it has none of its own."""
    batch = entry("300.00", "DBIT", tx("100.00", creditor="Supplier A", remittance="PO-1", ref="T1"),
                  tx(tx_amount="200.00", creditor="Supplier B", remittance="PO-2", ref="T2"))
    frame = _read(tmp_path, message(batch, version="02"))
    assert _rows(frame, "amount", "counterparty_name", "counterparty_account", "memo", "txn_id") == [
        ["-100.00", "Supplier A", "6222020200001234", "PO-1", "REF1/1"],
        ["-200.00", "Supplier B", "6222020200001234", "PO-2", "REF1/2"],
    ]
    assert frame["_row_number"].tolist() == [1, 1]


def test_each_transaction_keeps_its_own_direction(tmp_path):
    batch = entry("90.00", "CRDT", tx("100.00", indicator="CRDT", debtor="Payer A", ref="T1"),
                  tx("10.00", indicator="DBIT", creditor="Bank fee", ref="T2"))
    frame = _read(tmp_path, message(batch))
    assert _rows(frame, "amount", "counterparty_name") == [["100.00", "Payer A"], ["-10.00", "Bank fee"]]


def test_transactions_in_another_currency_keep_the_entry_total(tmp_path):
    batch = entry("180.00", "CRDT", tx("100.00", ccy="USD", debtor="A"), tx("99.00", ccy="USD", debtor="B"))
    frame = _read(tmp_path, message(batch))
    assert _rows(frame, "amount", "currency") == [["180.00", "EUR"]]


@pytest.mark.parametrize(("indicator", "amount"), [("CRDT", "50.00"), ("DBIT", "-50.00")])
def test_a_reversal_is_booked_as_its_indicator_says_and_marked(tmp_path, indicator, amount):
    """ISO 20022: with RvslInd the CdtDbtInd already is the reversing booking's direction
    (CRDT: a debit came back), so it is not flipped a second time."""
    frame = _read(tmp_path, message(entry("50.00", indicator, tx(remittance="RETURN AC04"), reversal=True)))
    assert _rows(frame, "amount", "memo") == [[amount, "冲正 RETURN AC04"]]


def test_no_namespace_and_a_business_application_header(tmp_path):
    plain = _read(tmp_path, message(entry("1.00", "CRDT"), namespace=False), name="plain.xml", fmt="camt053")
    assert plain["amount"].tolist() == ["1.00"]
    header = ('<BizMsgEnvlp><AppHdr xmlns="urn:iso:std:iso:20022:tech:xsd:head.001.001.02"><MsgDefIdr>camt.054.001.08'
              "</MsgDefIdr></AppHdr>")
    xml = message(entry("2.00", "DBIT"), kind="054", header=header).replace("</Document>", "</Document></BizMsgEnvlp>")
    wrapped = _read(tmp_path, xml.replace('<?xml version="1.0" encoding="UTF-8"?>', ""), name="bah.xml", fmt="camt054")
    assert wrapped["amount"].tolist() == ["-2.00"]


def test_date_time_booking_and_value_date_fallback(tmp_path):
    frame = _read(tmp_path, message(entry("1.00", "CRDT", booked="<DtTm>2024-03-01T13:15:00+01:00</DtTm>"),
                                    entry("2.00", "CRDT", booked="", ref="R2").replace("<BookgDt></BookgDt>", "")))
    assert frame["txn_time"].tolist() == ["2024-03-01 13:15:00", "2024-03-02 00:00:00"]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;"><!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;"><!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
"""


def test_billion_laughs_is_refused_without_expanding(tmp_path):
    xml = message(entry("1.00", "CRDT", tx(remittance="&lol9;"))).replace('<?xml version="1.0" encoding="UTF-8"?>', BILLION_LAUGHS)
    with pytest.raises(StatementError, match="DTD"):
        _read(tmp_path, xml, fmt="camt053")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_external_entities_are_refused_and_never_read(tmp_path, encoding):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-PASSWORD", encoding="utf-8")
    doctype = f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret}"><!ENTITY net SYSTEM "http://127.0.0.1:9/x">]>'
    xml = message(entry("1.00", "CRDT", tx(remittance="&xxe;&net;"))).replace('encoding="UTF-8"?>', f'encoding="{encoding}"?>{doctype}')
    path = tmp_path / "xxe.xml"
    path.write_bytes(xml.encode(encoding))
    with pytest.raises(StatementError) as raised:
        read_statement(path, fmt="camt053")
    assert "DTD" in str(raised.value) and "TOP-SECRET" not in str(raised.value)


def test_deeply_nested_xml_fails_cleanly(tmp_path):
    xml = message(entry("1.00", "CRDT", tx(remittance="<a>" * 5000 + "x" + "</a>" * 5000)))
    with pytest.raises(StatementError, match="XML"):
        _read(tmp_path, xml)
