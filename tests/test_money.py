"""Cents to yuan, exactly."""

from decimal import Decimal

from recon_pipeline.money import cents_text, cents_to_decimal, format_yuan


def test_cents_convert_exactly_and_keep_the_sign():
    assert cents_to_decimal(12345) == Decimal("123.45") and cents_to_decimal(None) is None
    assert cents_text(-5) == "-0.05" and cents_text(100) == "1.00" and cents_text(float("nan")) == ""
    assert format_yuan(123456789) == "¥1,234,567.89" and format_yuan(-10) == "-¥0.10" and format_yuan(None) == "¥-"
