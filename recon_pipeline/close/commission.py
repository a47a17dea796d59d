"""Commission on a statement (optional): a flat rate per salesperson, or progressive tiers on the period's recognized amount.

Settings (`close.commission`): `rates` (salesperson -> rate) wins, then `tiers` (for everyone
else), then `default_rate`; with none of them no commission is shown. Rates are decimals
(0.03 = 3%). Tiers are progressive (超额累进): each rate applies to the part of the amount
inside its band. A clawback of an adjustment is what the original period's commission
changes by when the adjustment is added to it, so tiers are honoured for clawbacks too.
Amounts are integer cents; the result is rounded half-up to the cent once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Mapping

from recon_pipeline.close.periods import CloseError
from recon_pipeline.money import format_yuan


@dataclass(frozen=True)
class Tier:
    up_to_cents: int | None  # upper bound of the band (None: no bound)
    rate: Decimal


@dataclass(frozen=True)
class CommissionPlan:
    tiers: tuple[Tier, ...]

    @property
    def is_flat(self) -> bool:
        return len(self.tiers) == 1

    def commission_cents(self, base_cents: int) -> int:
        if base_cents < 0:
            return -self.commission_cents(-base_cents)
        total, lower = Decimal(0), 0
        for tier in self.tiers:
            upper = base_cents if tier.up_to_cents is None else min(base_cents, tier.up_to_cents)
            if upper > lower:
                total += (upper - lower) * tier.rate
            if tier.up_to_cents is None or base_cents <= tier.up_to_cents:
                break
            lower = tier.up_to_cents
        return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def effect_cents(self, base_before_cents: int, change_cents: int) -> int:
        """What a change to a period's recognized amount does to that period's commission."""
        return self.commission_cents(base_before_cents + change_cents) - self.commission_cents(base_before_cents)

    def describe(self) -> str:
        if self.is_flat:
            return f"固定比例 {_percent(self.tiers[0].rate)}"
        bands, lower = [], 0
        for tier in self.tiers:
            if tier.up_to_cents is None:
                bands.append(f"{format_yuan(lower)} 以上 {_percent(tier.rate)}")
            else:
                bands.append(f"{format_yuan(lower)}–{format_yuan(tier.up_to_cents)} {_percent(tier.rate)}")
                lower = tier.up_to_cents
        return "超额累进：" + "；".join(bands)


def _percent(rate: Decimal) -> str:
    text = f"{(rate * 100).normalize():f}"
    return f"{text}%"


def _rate(value: Any, where: str) -> Decimal:
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        raise CloseError(f"提成设置 {where} 不是数字: {value!r}") from None
    if not Decimal(0) <= rate < Decimal(1):
        raise CloseError(f"提成设置 {where} 应为 0 到 1 之间的小数（0.03 表示 3%），收到 {value!r}")
    return rate


def _tiers(spec: Any) -> tuple[Tier, ...]:
    if not isinstance(spec, list) or not spec:
        raise CloseError("提成设置 tiers 应为列表，例如 [{up_to: 500000, rate: 0.02}, {rate: 0.035}]")
    tiers, lower = [], 0
    for index, band in enumerate(spec):
        last = index == len(spec) - 1
        if not isinstance(band, Mapping) or "rate" not in band:
            raise CloseError(f"提成设置 tiers 第 {index + 1} 档缺少 rate")
        up_to = band.get("up_to")
        if up_to is None and not last:
            raise CloseError(f"提成设置 tiers 第 {index + 1} 档缺少 up_to（只有最后一档可以不设上限）")
        cents = None if up_to is None else int(Decimal(str(up_to)) * 100)
        if cents is not None and cents <= lower:
            raise CloseError(f"提成设置 tiers 的 up_to 必须逐档递增（第 {index + 1} 档）")
        tiers.append(Tier(cents, _rate(band["rate"], f"tiers 第 {index + 1} 档")))
        lower = cents or lower
    if tiers[-1].up_to_cents is not None:
        tiers.append(Tier(None, tiers[-1].rate))  # above the last bound the last rate goes on
    return tuple(tiers)


def plan_for(salesperson_id: str, commission: Mapping[str, Any] | None) -> CommissionPlan | None:
    """The plan that applies to a salesperson, or None when the settings give no commission."""
    commission = commission or {}
    rates = commission.get("rates") or {}
    if salesperson_id in rates:
        return CommissionPlan((Tier(None, _rate(rates[salesperson_id], f"rates.{salesperson_id}")),))
    if commission.get("tiers") and commission.get("default_rate") is not None:
        raise CloseError("提成设置 default_rate 与 tiers 只能设置一个")
    if commission.get("tiers"):
        return CommissionPlan(_tiers(commission["tiers"]))
    if commission.get("default_rate") is not None:
        return CommissionPlan((Tier(None, _rate(commission["default_rate"], "default_rate")),))
    return None
