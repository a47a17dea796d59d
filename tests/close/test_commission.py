"""Commission and clawbacks: flat rates, progressive tiers, and the settings' mistakes refused in words."""

from decimal import Decimal

import pytest

from recon_pipeline.close.commission import plan_for
from recon_pipeline.close.periods import CloseError

TIERS = {"tiers": [{"up_to": 100000, "rate": 0.02}, {"up_to": 300000, "rate": 0.03}, {"rate": 0.05}]}


def test_a_flat_rate_per_salesperson_wins_over_the_tiers():
    plan = plan_for("S01", {**TIERS, "rates": {"S01": 0.04}})
    assert plan.describe() == "固定比例 4%"
    assert plan.commission_cents(12345678) == 493827  # 123,456.78 * 4% = 4,938.2712 -> 4,938.27
    assert plan.effect_cents(12345678, -5000000) == -200000


def test_progressive_tiers_apply_each_rate_to_its_band():
    plan = plan_for("S02", TIERS)
    assert plan.commission_cents(5000000) == 100000              # 50,000 * 2%
    assert plan.commission_cents(40000000) == 2000 * 100 + 6000 * 100 + 5000 * 100  # 2,000 + 6,000 + 5,000
    # A clawback is the change of the original period's commission: 350k -> 250k loses 2,500 at 5% and 1,500 at 3%.
    assert plan.effect_cents(35000000, -10000000) == -(250000 + 150000)
    assert "超额累进" in plan.describe() and "5%" in plan.describe()


def test_a_last_band_with_a_bound_continues_at_its_rate():
    plan = plan_for("S03", {"tiers": [{"up_to": 100, "rate": Decimal("0.1")}]})
    assert plan.commission_cents(30000) == 3000


def test_no_commission_without_settings():
    assert plan_for("S01", {}) is None
    assert plan_for("S01", {"rates": {"S02": 0.03}}) is None
    assert plan_for("S01", {"default_rate": 0.01}).commission_cents(10000) == 100


@pytest.mark.parametrize("settings, words", [
    ({"default_rate": 3}, "0 到 1 之间"),
    ({"default_rate": "三成"}, "不是数字"),
    ({"tiers": [{"rate": 0.02}, {"up_to": 100, "rate": 0.03}]}, "只有最后一档"),
    ({"tiers": [{"up_to": 200, "rate": 0.02}, {"up_to": 100, "rate": 0.03}]}, "递增"),
    ({"tiers": [{"up_to": 200}]}, "缺少 rate"),
    ({"default_rate": 0.01, "tiers": [{"rate": 0.02}]}, "只能设置一个"),
])
def test_settings_mistakes_are_refused_in_one_line(settings, words):
    with pytest.raises(CloseError, match=words):
        plan_for("S09", settings)
