"""Allocation of linked bank lines to a customer's open orders (amounts in integer cents).

An order's *due* amount is its contract amount, or its net invoiced amount when red-letter
notes reduced it below the contract (a discount credited by 红字发票). Its *open* amount is due
minus what is already allocated: active write-offs first (finance's word is final), then the
engine's allocations of earlier credits. Credits are allocated in `txn_time` order so
installments fill orders deterministically:

1. the memo's order IDs when it names any of the customer's open orders: they take the
   credit (exactly, in part, or with the surplus left unapplied), never other orders;
2. one open order whose open amount equals the credit (within tolerance), oldest first;
3. several open orders whose open amounts add up to it (bounded subset sum, oldest first);
4. otherwise one order: an over-payment pays the order it exceeds most closely and leaves the
   surplus as a row without order (unapplied cash); a partial payment continues the oldest
   order already part paid (installments), else the oldest open order larger than it. Such a
   credit fits no open amount: `amount_mismatch` (the level-1 alert).

The surplus of an over-payment stays *unapplied cash* of the customer (remembered with the
order it over-paid), as does a credit with no open order and money the memo says is not for
goods. A refund (a debit linked to the customer) gives back what the customer over-paid
before it takes anything from an order's receipts:

- with the memo's order: that order's over-payment (allocated beyond its due amount, or the
  surplus left unapplied when it was paid), then the customer's other unapplied cash if the
  refund is exactly that or the memo says so (退多付款, 多汇, 重复付款), then the order's receipts;
- without: the order over-paid by exactly the refund, then the customer's unapplied cash, then
  any over-paid order, then the order last paid.

What the unapplied cash gives back is a row without order (negative, like the debit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Iterable


@dataclass(slots=True)
class OpenOrder:
    order_id: str
    customer_id: str
    due_cents: int
    age_key: tuple  # (signed_at, order_id): oldest first
    allocated_cents: int = 0
    cancelled: bool = False  # takes money only when named (memo, write-off): a deposit before cancelling

    @property
    def open_cents(self) -> int:
        return self.due_cents - self.allocated_cents


@dataclass(frozen=True, slots=True)
class Allocation:
    order_id: str | None  # None: unapplied remainder
    cents: int


@dataclass(frozen=True)
class AllocationResult:
    parts: tuple[Allocation, ...]
    fit: str  # exact / combined / partial / over / unapplied / held / refund / refund_surplus
    amount_mismatch: bool = False

    def evidence(self) -> dict:
        return {"fit": self.fit, "amount_mismatch": self.amount_mismatch}


@dataclass
class OrderBook:
    """Open orders per customer; mutable as credits are allocated in time order."""

    orders: dict[str, OpenOrder]
    tolerance_cents: int = 100
    max_subset_orders: int = 16  # oldest open orders considered for a combined payment
    max_subset_size: int = 4
    _by_customer: dict[str, list[OpenOrder]] = field(default_factory=dict, repr=False)
    _last_paid: dict[str, str] = field(default_factory=dict, repr=False)
    _unapplied: dict[str, int] = field(default_factory=dict, repr=False)  # customer -> unapplied cash
    _surplus: dict[str, int] = field(default_factory=dict, repr=False)  # order -> its over-payment left unapplied

    def __post_init__(self) -> None:
        for order in sorted(self.orders.values(), key=lambda o: o.age_key):
            self._by_customer.setdefault(order.customer_id, []).append(order)

    @classmethod
    def from_orders(cls, orders: Iterable[OpenOrder], **options) -> "OrderBook":
        return cls({o.order_id: o for o in orders}, **options)

    def customer_of(self, order_id: str) -> str | None:
        order = self.orders.get(order_id)
        return order.customer_id if order else None

    def reserve(self, order_id: str, cents: int) -> None:
        """Amounts finance already wrote off against an order."""
        if order_id in self.orders:
            self.orders[order_id].allocated_cents += cents

    def allocate_credit(self, customer_id: str, amount_cents: int, memo_order_ids: Iterable[str] = (),
                        commit: bool = True) -> AllocationResult:
        result = self._plan_credit(customer_id, amount_cents, list(memo_order_ids))
        if commit:
            self._commit(customer_id, result)
        return result

    def unapplied_cents(self, customer_id: str) -> int:
        return self._unapplied.get(customer_id, 0)

    def hold(self, customer_id: str, cents: int, order_id: str | None = None) -> AllocationResult:
        """Money of the customer allocated to no order (a deposit, the rest of a write-off)."""
        result = AllocationResult((Allocation(None, cents),), "held")
        self._add_unapplied(customer_id, cents, order_id)
        return result

    def memo_fit(self, customer_id: str, amount_cents: int, memo_order_ids: Iterable[str]) -> str:
        """How a credit compares with what the memo's orders still owe: fit / partial / over /
        closed (nothing owed any more)."""
        mine = {o.order_id: o for o in self._by_customer.get(customer_id, [])}
        open_named = [mine[i] for i in dict.fromkeys(memo_order_ids)
                      if i in mine and mine[i].open_cents > self.tolerance_cents]
        owed = [o.open_cents for o in open_named]
        if not owed:
            return "closed"
        if self._fits(amount_cents, sum(owed)) or any(self._fits(amount_cents, c) for c in owed):
            return "fit"
        if self._subset_sum(open_named, amount_cents):
            return "fit"
        return "over" if amount_cents > sum(owed) + self.tolerance_cents else "partial"

    def allocate_refund(self, customer_id: str, amount_cents: int, memo_order_ids: Iterable[str] = (),
                        commit: bool = True, surplus_hint: bool = False) -> AllocationResult | None:
        """A debit (amount < 0) given back to the customer (module docstring), or None when the
        customer has neither unapplied cash nor an order to take it from. `surplus_hint`: the memo
        says an over-payment is refunded (退多付款)."""
        refund = -amount_cents
        if refund <= 0:
            return None
        orders = self._by_customer.get(customer_id, [])
        mine = {o.order_id: o for o in orders}
        named = [mine[i] for i in dict.fromkeys(memo_order_ids) if i in mine]
        pool = self._unapplied.get(customer_id, 0)
        taken: dict[str | None, int] = {}  # order (None: unapplied cash) -> cents given back
        surplus_used: dict[str, int] = {}

        def take(order: OpenOrder | None, most: int) -> None:
            nonlocal refund, pool
            cents = min(refund, most)
            if cents <= 0:
                return
            key = order.order_id if order is not None else None
            taken[key] = taken.get(key, 0) + cents
            refund -= cents
            if order is None:
                pool -= cents

        def take_surplus(order: OpenOrder) -> None:
            before = refund
            take(None, min(pool, self._surplus.get(order.order_id, 0)))
            surplus_used[order.order_id] = before - refund

        if named:
            for order in named:
                take(order, -order.open_cents)  # allocated beyond what it was worth
            for order in named:
                take_surplus(order)
            if refund and (surplus_hint or self._fits(refund, pool)):
                take(None, pool)
            take(named[0], refund)
        else:
            over = [o for o in orders if o.open_cents < -self.tolerance_cents]
            exact = [o for o in over if self._fits(-o.open_cents, refund)]
            if exact:
                take(exact[0], refund)
            take(None, pool)
            for order in over:
                take(order, -order.open_cents)
            last = mine.get(self._last_paid.get(customer_id, ""))
            if refund and last is None and not taken:
                return None
            if last is not None:
                take(last, refund)
        if refund:  # more than anything the customer had with us: the rest against its unapplied cash
            taken[None] = taken.get(None, 0) + refund
            pool -= refund
        parts = tuple(Allocation(order_id, -cents) for order_id, cents in taken.items())
        result = AllocationResult(parts, "refund_surplus" if None in taken else "refund")
        if commit:
            for order_id, cents in taken.items():
                if order_id is not None:
                    self.orders[order_id].allocated_cents -= cents
            self._unapplied[customer_id] = pool
            for order_id, cents in surplus_used.items():
                if cents:
                    self._surplus[order_id] -= cents
        return result

    def _add_unapplied(self, customer_id: str, cents: int, order_id: str | None) -> None:
        self._unapplied[customer_id] = self._unapplied.get(customer_id, 0) + cents
        if order_id is not None:
            self._surplus[order_id] = self._surplus.get(order_id, 0) + cents

    def _commit(self, customer_id: str, result: AllocationResult) -> None:
        paid = [p.order_id for p in result.parts if p.order_id is not None]
        for part in result.parts:
            if part.order_id is not None:
                self.orders[part.order_id].allocated_cents += part.cents
                if part.cents > 0:
                    self._last_paid[customer_id] = part.order_id
            elif part.cents > 0:  # the surplus of an over-payment belongs with the order it over-paid
                self._add_unapplied(customer_id, part.cents, paid[-1] if paid else None)

    def _fits(self, amount: int, target: int) -> bool:
        return abs(amount - target) <= self.tolerance_cents

    def _plan_credit(self, customer_id: str, amount: int, memo_ids: list[str]) -> AllocationResult:
        unpaid = [o for o in self._by_customer.get(customer_id, []) if o.open_cents > self.tolerance_cents]
        by_id = {o.order_id: o for o in unpaid}
        memo_orders = [by_id[i] for i in dict.fromkeys(memo_ids) if i in by_id]
        open_orders = [o for o in unpaid if not o.cancelled]
        if not memo_orders and not open_orders:
            return AllocationResult((Allocation(None, amount),), "unapplied", amount_mismatch=True)

        # 1. The memo names the orders: they take the credit, exactly, in part, or with the
        #    surplus left unapplied (never spread onto orders the customer did not name).
        if memo_orders:
            if self._fits(amount, sum(o.open_cents for o in memo_orders)):
                return AllocationResult(self._fill(memo_orders, amount), "exact" if len(memo_orders) == 1 else "combined")
            for order in memo_orders:
                if self._fits(amount, order.open_cents):
                    return AllocationResult((Allocation(order.order_id, amount),), "exact")
            subset = self._subset_sum(memo_orders, amount)
            if subset:
                return AllocationResult(self._fill(subset, amount), "combined")
            parts = self._fill_in_order(memo_orders, amount)
            return AllocationResult(parts, "over" if parts[-1].order_id is None else "partial", amount_mismatch=True)
        # 2. One order whose open amount is the credit, oldest first.
        for order in open_orders:
            if self._fits(amount, order.open_cents):
                return AllocationResult((Allocation(order.order_id, amount),), "exact")
        # 3. Several orders (oldest first).
        subset = self._subset_sum(open_orders, amount)
        if subset:
            return AllocationResult(self._fill(subset, amount), "combined")
        # 4. Over-payment: the order it over-pays most closely takes its open amount, the surplus
        #    stays unapplied. Partial: an installment continues the oldest order already part
        #    paid, else starts on the oldest open order larger than it.
        covered = [o for o in open_orders if o.open_cents < amount]
        larger = [o for o in open_orders if o.open_cents > amount]
        if not larger:
            target = max(covered, key=lambda o: o.open_cents)  # max keeps the oldest on ties
            parts = (Allocation(target.order_id, target.open_cents), Allocation(None, amount - target.open_cents))
            return AllocationResult(parts, "over", amount_mismatch=True)
        started = [o for o in larger if o.allocated_cents > 0]
        target = (started or larger)[0]
        return AllocationResult((Allocation(target.order_id, amount),), "partial", amount_mismatch=True)

    def _fill(self, orders: list[OpenOrder], amount: int) -> tuple[Allocation, ...]:
        """Exact cover: each order its open amount, the last one takes the rounding difference."""
        parts, remaining = [], amount
        for position, order in enumerate(orders):
            share = remaining if position == len(orders) - 1 else min(order.open_cents, remaining)
            parts.append(Allocation(order.order_id, share))
            remaining -= share
        return tuple(parts)

    def _fill_in_order(self, orders: list[OpenOrder], amount: int) -> tuple[Allocation, ...]:
        parts, remaining = [], amount
        for order in orders:
            if remaining <= 0:
                break
            share = min(order.open_cents, remaining)
            parts.append(Allocation(order.order_id, share))
            remaining -= share
        if remaining > 0:
            parts.append(Allocation(None, remaining))
        return tuple(parts)

    def _subset_sum(self, ranked: list[OpenOrder], amount: int) -> list[OpenOrder] | None:
        """Fewest orders whose open amounts add up to the credit; earliest-ranked on ties."""
        pool = ranked[: self.max_subset_orders]
        if len(pool) < 2 or amount > sum(o.open_cents for o in pool) + self.tolerance_cents:
            return None
        amounts = [o.open_cents for o in pool]
        low, high = amount - self.tolerance_cents, amount + self.tolerance_cents
        for size in range(2, min(self.max_subset_size, len(pool)) + 1):
            # Sums of plain ints in C; the index combinations run in the same (oldest-first) order.
            for total, picked in zip(map(sum, combinations(amounts, size)), combinations(range(len(pool)), size)):
                if low <= total <= high:
                    return [pool[i] for i in picked]
        return None


def due_amounts(contracts_cents: dict[str, int], invoices: Iterable[tuple[str, int, str]]) -> dict[str, int]:
    """Due per order: the contract amount, lowered to the net invoiced amount by red-letter notes.

    `invoices`: (order_id, total_amount_cents, invoice_type) of issued (not voided) invoices.
    A red note followed by a re-issued blue invoice leaves the due amount unchanged.
    """
    net: dict[str, int] = {}
    has_red: set[str] = set()
    for order_id, total, invoice_type in invoices:
        net[order_id] = net.get(order_id, 0) + total
        if invoice_type == "red" or total < 0:
            has_red.add(order_id)
    return {order_id: (min(amount, net[order_id]) if order_id in has_red else amount)
            for order_id, amount in contracts_cents.items()}
