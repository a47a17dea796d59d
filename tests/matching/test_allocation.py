"""Every allocation pattern: exact, combined, split/installments, partial, over-payment,
memo preference over age, refunds and red-letter notes."""

from recon_pipeline.matching.allocation import Allocation, OpenOrder, OrderBook, due_amounts


def book(*orders, tolerance=100):
    """orders: (order_id, due_cents, age) for customer C1."""
    return OrderBook.from_orders(
        [OpenOrder(order_id, "C1", due, (age, order_id)) for order_id, due, age in orders], tolerance_cents=tolerance)


def test_exact_amount_goes_to_the_matching_order_not_the_oldest():
    b = book(("25SH00001", 500_000, 1), ("25SH00002", 300_000, 2))
    result = b.allocate_credit("C1", 300_000)
    assert result.parts == (Allocation("25SH00002", 300_000),)
    assert result.fit == "exact" and not result.amount_mismatch


def test_two_same_amount_orders_memo_wins_else_oldest():
    b = book(("25SH00001", 300_000, 1), ("25SH00002", 300_000, 2))
    assert b.allocate_credit("C1", 300_000, ["25SH00002"]).parts == (Allocation("25SH00002", 300_000),)
    assert b.allocate_credit("C1", 300_000).parts == (Allocation("25SH00001", 300_000),)


def test_exact_within_tolerance_for_bank_fees():
    b = book(("25SH00001", 1_000_000, 1))
    assert b.allocate_credit("C1", 999_950).fit == "exact"


def test_one_credit_for_several_orders_subset_sum():
    b = book(("25SH00001", 100_000, 1), ("25SH00002", 250_000, 2), ("25SH00003", 70_000, 3))
    result = b.allocate_credit("C1", 170_000)
    assert set(result.parts) == {Allocation("25SH00001", 100_000), Allocation("25SH00003", 70_000)}
    assert result.fit == "combined" and not result.amount_mismatch


def test_memo_ids_covering_the_credit_are_used_together():
    b = book(("25SH00001", 100_000, 1), ("25SH00002", 100_000, 2), ("25SH00003", 100_000, 3))
    result = b.allocate_credit("C1", 200_000, ["25SH00002", "25SH00003"])
    assert [p.order_id for p in result.parts] == ["25SH00002", "25SH00003"]


def test_installments_fill_one_order_in_time_order():
    b = book(("25SH00001", 900_000, 1))
    first = b.allocate_credit("C1", 300_000, ["25SH00001"])
    assert first.parts == (Allocation("25SH00001", 300_000),) and first.amount_mismatch
    second = b.allocate_credit("C1", 600_000)
    assert second.parts == (Allocation("25SH00001", 600_000),) and second.fit == "exact"
    assert b.orders["25SH00001"].open_cents == 0


def test_partial_payment_stays_on_the_oldest_order():
    b = book(("25SH00001", 500_000, 1), ("25SH00002", 800_000, 2))
    result = b.allocate_credit("C1", 200_000)
    assert result.parts == (Allocation("25SH00001", 200_000),)
    assert result.fit == "partial" and result.amount_mismatch


def test_over_payment_surplus_is_unapplied_cash():
    b = book(("25SH00001", 500_000, 1))
    result = b.allocate_credit("C1", 520_000)
    assert result.parts == (Allocation("25SH00001", 500_000), Allocation(None, 20_000))
    assert result.fit == "over" and result.amount_mismatch


def test_credit_for_a_customer_without_open_orders_is_unapplied():
    b = book(("25SH00001", 500_000, 1))
    b.allocate_credit("C1", 500_000)
    result = b.allocate_credit("C1", 500_000)
    assert result.parts == (Allocation(None, 500_000),) and result.amount_mismatch


def test_uncommitted_plan_leaves_orders_open():
    b = book(("25SH00001", 500_000, 1))
    b.allocate_credit("C1", 500_000, commit=False)
    assert b.orders["25SH00001"].open_cents == 500_000


def test_refund_taken_back_from_the_over_paid_order():
    b = book(("25SH00001", 500_000, 1), ("25SH00002", 300_000, 2))
    b.allocate_credit("C1", 500_000)
    b.reserve("25SH00002", 350_000)  # finance wrote off 50.00 too much
    refund = b.allocate_refund("C1", -50_000)
    assert refund.parts == (Allocation("25SH00002", -50_000),) and refund.fit == "refund"
    assert b.orders["25SH00002"].open_cents == 0


def test_refund_names_its_order_in_the_memo_else_last_paid():
    b = book(("25SH00001", 500_000, 1), ("25SH00002", 300_000, 2))
    b.allocate_credit("C1", 300_000)
    assert b.allocate_refund("C1", -10_000, ["25SH00001"]).parts[0].order_id == "25SH00001"
    assert b.allocate_refund("C1", -10_000).parts[0].order_id == "25SH00002"
    assert b.allocate_refund("C9", -10_000) is None


def test_red_letter_note_lowers_the_due_amount():
    due = due_amounts(
        {"25SH00001": 1_000_000, "25SH00002": 1_000_000, "25SH00003": 1_000_000},
        [("25SH00001", 1_000_000, "normal"), ("25SH00001", -100_000, "red"),  # 10% discount
         ("25SH00002", 1_000_000, "normal"), ("25SH00002", -1_000_000, "red"), ("25SH00002", 1_000_000, "normal"),
         ("25SH00003", 400_000, "normal")],  # partly invoiced: still due in full
    )
    assert due == {"25SH00001": 900_000, "25SH00002": 1_000_000, "25SH00003": 1_000_000}
    b = book(("25SH00001", due["25SH00001"], 1))
    assert b.allocate_credit("C1", 900_000).fit == "exact"


def test_refund_of_an_over_payment_takes_the_unapplied_surplus_first():
    # 75,000 for a 63,000 order: 12,000 unapplied; its refund must not reopen the order.
    b = book(("25SZ00123", 6_300_000, 1))
    b.allocate_credit("C1", 7_500_000, ["25SZ00123"])
    assert b.unapplied_cents("C1") == 1_200_000
    refund = b.allocate_refund("C1", -1_200_000, ["25SZ00123"])
    assert refund.parts == (Allocation(None, -1_200_000),) and refund.fit == "refund_surplus"
    assert b.orders["25SZ00123"].open_cents == 0 and b.unapplied_cents("C1") == 0


def test_refund_beyond_the_surplus_takes_the_rest_from_the_order():
    b = book(("25SZ00123", 6_300_000, 1))
    b.allocate_credit("C1", 6_500_000)  # 2,000 over
    refund = b.allocate_refund("C1", -500_000, ["25SZ00123"])
    assert set(refund.parts) == {Allocation(None, -200_000), Allocation("25SZ00123", -300_000)}
    assert b.orders["25SZ00123"].open_cents == 300_000


def test_refund_without_memo_takes_the_customers_unapplied_cash_before_the_last_paid_order():
    b = book(("25SH00001", 500_000, 1), ("25SH00002", 300_000, 2))
    b.allocate_credit("C1", 500_000)
    b.allocate_credit("C1", 340_000)  # 40.00 over on 25SH00002
    assert b.allocate_refund("C1", -40_000).parts == (Allocation(None, -40_000),)
    assert b.allocate_refund("C1", -10_000).parts == (Allocation("25SH00002", -10_000),)


def test_refund_of_a_deposit_named_in_the_memo_leaves_other_unapplied_cash_alone():
    b = book(("25SH00001", 500_000, 1), ("25SH00002", 300_000, 2))
    b.allocate_credit("C1", 150_000, ["25SH00001"])  # deposit on 25SH00001
    b.allocate_credit("C1", 320_000, ["25SH00002"])  # 20.00 over on 25SH00002
    refund = b.allocate_refund("C1", -150_000, ["25SH00001"])
    assert refund.parts == (Allocation("25SH00001", -150_000),)
    assert b.unapplied_cents("C1") == 20_000
    # ... unless the memo says an over-payment is refunded.
    assert b.allocate_refund("C1", -20_000, ["25SH00001"], surplus_hint=True).parts == (Allocation(None, -20_000),)


def test_held_money_is_unapplied_cash_a_later_refund_gives_back():
    b = book(("25SH00001", 500_000, 1))
    assert b.hold("C1", 100_000).parts == (Allocation(None, 100_000),)  # 投标保证金
    assert b.allocate_refund("C1", -100_000).parts == (Allocation(None, -100_000),)  # 退保证金
    assert b.orders["25SH00001"].open_cents == 500_000


def test_memo_fit_compares_a_credit_with_what_the_memo_orders_still_owe():
    b = book(("25SH00001", 500_000, 1), ("25SH00002", 300_000, 2))
    assert b.memo_fit("C1", 800_000, ["25SH00001", "25SH00002"]) == "fit"
    assert b.memo_fit("C1", 300_000, ["25SH00002"]) == "fit"
    assert b.memo_fit("C1", 100_000, ["25SH00001"]) == "partial"
    assert b.memo_fit("C1", 900_000, ["25SH00001"]) == "over"
    b.allocate_credit("C1", 300_000, ["25SH00002"])
    assert b.memo_fit("C1", 300_000, ["25SH00002"]) == "closed"
