"""Order IDs are read from memos however customers mangle them, and never from long
serial numbers, phone numbers or bank references."""

import pytest

from recon_pipeline.matching.memo import (
    credit_codes_in_text,
    is_valid_credit_code,
    order_ids_in_memo,
    order_refs_in_memo,
)


@pytest.mark.parametrize(
    "memo",
    ["25SH00137", "25sh137", "25-SH-00137", "订单25SH00137", "货款 25 SH 00137", "付订单号：25Sh00137款",
     "２５ＳＨ００１３７"],
)
def test_mangled_order_ids_are_canonical(memo):
    assert order_ids_in_memo(memo) == ["25SH00137"]


def test_two_ids_in_one_memo():
    assert order_ids_in_memo("25SH00137、25BJ00002货款") == ["25SH00137", "25BJ00002"]
    assert order_ids_in_memo("合并付款25SH00137/00138") == ["25SH00137", "25SH00138"]
    assert order_ids_in_memo("付25sh137及25sh138款") == ["25SH00137", "25SH00138"]


def test_token_as_written_is_kept_as_evidence():
    (ref,) = order_refs_in_memo("订单25-sh-137")
    assert ref.token == "25-sh-137" and ref.order_id == "25SH00137"


@pytest.mark.parametrize(
    "memo",
    [
        "联系电话13812345678",
        "流水号2025112400012345678",
        "HX25SH0013712345",  # bank reference with an ID-like piece inside
        "REF2025SH00137",
        "25SH001370",  # six-digit serial
        "转账 NO.20251124153000",
        "",
        None,
    ],
)
def test_not_order_ids(memo):
    assert order_ids_in_memo(memo) == []


def test_unknown_region_codes_are_ignored_when_known_ones_are_given():
    assert order_ids_in_memo("采购25kg 25SH00137", frozenset({"SH", "BJ"})) == ["25SH00137"]


def test_credit_codes_are_checked():
    assert is_valid_credit_code("91350100M000100Y43")
    assert not is_valid_credit_code("91350100M000100Y44")
    assert credit_codes_in_text("统一社会信用代码91350100M000100Y43付款") == ["91350100M000100Y43"]
