"""Who paid, and for whom: branches and head offices, parent companies, private persons, payment
intermediaries, memos that say the money is not for goods, Latin-script names.

Each test is one pattern of Chinese receivables that once linked money to the wrong customer
or showed finance a suggestion it should never see (issue #12)."""

import pandas as pd

from recon_pipeline.matching.engine import build_receipt_links
from recon_pipeline.matching.review_queue import review_queue
from recon_pipeline.settings import load_settings
from tests.matching.test_engine import evidence, first, inputs, line

CUSTOMERS = [
    ("K01", "江苏恒瑞精密机械有限公司", None, None),
    ("K02", "江苏恒瑞精密机械有限公司苏州分公司", None, None),
    ("K03", "上海锦程国际物流有限公司", None, None),
    ("K04", "浙江嘉禾控股集团有限公司", None, None),
    ("K05", "杭州嘉禾新材料科技有限公司", None, None),
    ("K06", "港丰贸易(深圳)有限公司", None, "KONG FUNG TRADING (HK) CO., LIMITED"),
    ("K07", "南京云帆软件有限公司", None, None),
    ("K08", "深圳市华茂电子有限公司", None, None),
    ("K09", "杭州天目山药业股份有限公司", None, None),
    ("K10", "北京中关村金融科技有限公司", None, None),
]
CONTRACTS = [
    ("25NJ00101", "K01", 8_000_000, "2025-01-03"),
    ("25SU00102", "K02", 3_500_000, "2025-01-04"),
    ("25SH00103", "K03", 4_200_000, "2025-01-05"),
    ("25HZ00104", "K04", 9_900_000, "2025-01-06"),
    ("25HZ00456", "K05", 5_600_000, "2025-01-07"),
    ("25SZ00201", "K06", 2_750_000, "2025-01-08"),
    ("26NJ00526", "K07", 1_880_000, "2025-01-09"),
    ("25SZ00123", "K08", 6_300_000, "2025-01-10"),
    ("25HZ00123", "K09", 4_480_000, "2025-01-11"),
    ("25BJ00301", "K10", 6_000_000, "2025-01-12"),
]


def run(bank, **kwargs):
    return build_receipt_links(inputs(bank, customers=CUSTOMERS, contracts=CONTRACTS, **kwargs), load_settings())


def allocated(links, order_id):
    """What the order received (auto-linked or confirmed rows; a suggestion is not money received)."""
    received = links["match_status"].isin(["auto_linked", "confirmed"]) & (links["order_id"] == order_id)
    return int(links.loc[received, "allocated_cents"].sum())


def test_a_branch_is_its_own_customer_and_a_branch_of_a_customer_only_a_suggestion():
    links = run([
        line("B1", 35_000, "江苏恒瑞精密机械有限公司苏州分公司"),  # exactly the branch's registered name
        line("B2", 80_000, "江苏恒瑞精密机械有限公司"),
        line("B3", 42_000, "上海锦程国际物流有限公司宁波分公司"),  # branch of a customer, not a customer
        line("B4", 42_000, "上海锦程国际物流有限公司宁波分公司", memo="运费 25SH00103", day=4),
    ])
    b1, b2, b3, b4 = (first(links, t) for t in ("B1", "B2", "B3", "B4"))
    assert (b1.customer_id, b1.match_method, b1.match_status, b1.order_id) == ("K02", "exact_name", "auto_linked", "25SU00102")
    assert (b2.customer_id, b2.match_status, b2.order_id) == ("K01", "auto_linked", "25NJ00101")
    assert (b3.customer_id, b3.match_status) == ("K03", "suggested")
    assert evidence(links, "B3")["payer_relation"] == "branch_of_customer"
    assert "branch_payer" in evidence(links, "B3")["risk_flags"]
    assert (b4.customer_id, b4.match_method, b4.match_status) == ("K03", "memo_order_id", "auto_linked")


def test_a_head_office_paying_when_only_its_branch_is_a_customer_is_a_suggestion():
    customers = [c for c in CUSTOMERS if c[0] != "K01"]
    contracts = [c for c in CONTRACTS if c[1] != "K01"]
    links = build_receipt_links(inputs([line("H1", 35_000, "江苏恒瑞精密机械有限公司")], customers=customers,
                                       contracts=contracts), load_settings())
    row = first(links, "H1")
    assert (row.customer_id, row.match_status) == ("K02", "suggested")
    assert evidence(links, "H1")["payer_relation"] == "head_office_of_customer"


def test_refund_of_an_over_payment_gives_back_the_surplus_not_the_orders_receipts():
    links = run([
        line("R1", 75_000, "深圳市华茂电子有限公司", memo="货款 25SZ00123", day=3),  # 63,000 order
        line("R2", -12_000, "深圳市华茂电子有限公司", memo="退多付款 25SZ00123", day=10),
    ])
    assert allocated(links, "25SZ00123") == 6_300_000  # the order stays paid
    r2 = links[links["txn_id"] == "R2"]
    assert list(zip(r2["order_id"].fillna("-"), r2["allocated_cents"])) == [("-", -1_200_000)]
    assert evidence(links, "R2")["allocation"]["fit"] == "refund_surplus"


def test_refund_beyond_the_surplus_reduces_the_order():
    links = run([
        line("R1", 65_000, "深圳市华茂电子有限公司", day=3),  # 2,000 over
        line("R2", -5_000, "深圳市华茂电子有限公司", memo="退货款 25SZ00123", day=10),
    ])
    r2 = dict(zip(links.loc[links["txn_id"] == "R2", "order_id"].fillna("-"),
                  links.loc[links["txn_id"] == "R2", "allocated_cents"]))
    assert r2 == {"-": -200_000, "25SZ00123": -300_000}
    assert allocated(links, "25SZ00123") == 6_000_000


def test_a_persons_name_is_never_learned_as_a_company_alias():
    bank = [
        line("P1", 44_800, "陈建国", account="6222 0212 3456 7890", memo="25HZ00123货款", day=3),
        line("P2", 18_800, "陈建国", account="6217 9900 0011 2233", day=20),  # another card, no memo
        line("P3", 44_800, "陈建国", account="6222021234567890", day=21),  # the confirmed card
    ]
    links = run(bank, writeoffs=[("W1", "P1", "25HZ00123", 4_480_000, "财务-李娜", "2025-03-04 09:00:00")])
    p2 = first(links, "P2")
    assert p2.match_status != "auto_linked"
    assert "amount_mismatch" not in evidence(links, "P2")
    assert (p2.customer_id, p2.match_status) == ("K09", "suggested")
    assert "personal_payer" in evidence(links, "P2")["risk_flags"]
    p3 = first(links, "P3")
    assert (p3.customer_id, p3.match_method, p3.match_status) == ("K09", "payer_account", "auto_linked")


def test_the_memos_order_id_wins_over_the_parent_companys_own_name():
    links = run([
        line("M1", 56_000, "浙江嘉禾控股集团有限公司", memo="货款25HZ00456", day=3),
        line("M2", 18_800, "浙江嘉禾控股集团有限公司", memo="代子公司付 26nj526", day=4),
    ])
    m1, m2 = first(links, "M1"), first(links, "M2")
    assert (m1.customer_id, m1.order_id, m1.match_method, m1.match_status) == (
        "K05", "25HZ00456", "memo_order_id", "auto_linked")
    assert evidence(links, "M1")["payer_customer"] == "K04"
    assert evidence(links, "M1")["payer_relation"] == "other_customer"
    assert (m2.customer_id, m2.order_id, m2.match_status) == ("K07", "26NJ00526", "auto_linked")
    assert allocated(links, "25HZ00104") == 0  # the parent's own order is untouched


def test_the_memos_order_id_wins_over_what_finance_learned_about_the_payer():
    bank = [
        line("L1", 99_000, "王海燕", account="6222000011112222", memo="25HZ00104", day=3),
        line("L2", 56_000, "王海燕", account="6222000011112222", memo="付25HZ00456", day=20),
    ]
    links = run(bank, writeoffs=[("W1", "L1", "25HZ00104", 9_900_000, "财务-王芳", "2025-03-04 09:00:00")])
    l2 = first(links, "L2")
    assert (l2.customer_id, l2.order_id, l2.match_status) == ("K05", "25HZ00456", "auto_linked")


def test_a_memo_id_whose_amount_contradicts_it_is_only_suggested():
    links = run([line("C1", 90_000, "浙江嘉禾控股集团有限公司", memo="25HZ00456")])  # order is 56,000
    row = first(links, "C1")
    assert (row.customer_id, row.match_status) == ("K05", "suggested")
    assert "amount_contradicts_memo" in evidence(links, "C1")["risk_flags"]


def test_payment_intermediaries_carry_the_memos_order_id():
    bank = [
        line("A1", 44_800, "支付宝（中国）网络技术有限公司", account="2088101117955611", memo="订单25HZ00123 货款"),
        line("A2", 18_800, "财付通支付科技有限公司", account="1000059801000132", memo="合同号:26NJ00526", day=4),
        line("A3", 27_500, "银联商务股份有限公司", account="3100001234567890", day=5),  # no order ID
    ]
    links = run(bank)
    a1, a2, a3 = (first(links, t) for t in ("A1", "A2", "A3"))
    assert (a1.customer_id, a1.order_id, a1.match_status) == ("K09", "25HZ00123", "auto_linked")
    assert evidence(links, "A1")["payer_relation"] == "payment_intermediary"
    assert (a2.customer_id, a2.order_id, a2.match_status) == ("K07", "26NJ00526", "auto_linked")
    assert (a3.match_status, evidence(links, "A3")["payer_relation"]) == ("unmatched", "payment_intermediary")


def test_an_intermediarys_account_is_never_learned():
    bank = [line("A1", 44_800, "支付宝（中国）网络技术有限公司", account="2088101117955611", memo="订单25HZ00123", day=3),
            line("A2", 44_800, "支付宝（中国）网络技术有限公司", account="2088101117955611", day=9)]
    links = run(bank, writeoffs=[("W1", "A1", "25HZ00123", 4_480_000, "财务-李娜", "2025-03-04 09:00:00")])
    assert first(links, "A2").match_status == "unmatched"


def test_a_memo_saying_the_money_is_not_for_goods_blocks_the_suggestion():
    links = run([
        line("D1", 3_000, "中关村金融", memo="退押金", day=3),  # would be a fuzzy suggestion of K10
        line("D2", 20_000, "北京中关村金融科技有限公司", memo="投标保证金", day=4),
        line("D3", 60_000, "北京中关村金融科技有限公司", memo="履约保证金25BJ00301", day=5),
    ])
    d1, d2, d3 = (first(links, t) for t in ("D1", "D2", "D3"))
    assert d1.match_status == "unmatched" and pd.isna(d1.customer_id)
    ev1 = evidence(links, "D1")
    assert ev1["memo_purpose"] == "押金" and "non_sales_memo" in ev1["risk_flags"]
    assert ev1["candidates"][0]["customer_id"] == "K10"  # kept for the record, not proposed
    assert (d2.customer_id, d2.match_status) == ("K10", "auto_linked") and pd.isna(d2.order_id)
    assert "amount_mismatch" not in evidence(links, "D2")
    assert (d3.customer_id, d3.match_status) == ("K10", "suggested")
    assert allocated(links, "25BJ00301") == 0


def test_the_review_queue_shows_the_memo_with_a_warning():
    bank = [line("D3", 60_000, "北京中关村金融科技有限公司", memo="履约保证金25BJ00301", day=5),
            line("B3", 42_000, "上海锦程国际物流有限公司宁波分公司", day=6)]
    data = inputs(bank, customers=CUSTOMERS, contracts=CONTRACTS)
    queue = review_queue(build_receipt_links(data, load_settings()), data.bank, data.customers)
    rows = queue.set_index("流水号")
    assert rows.at["D3", "附言"] == "履约保证金25BJ00301"
    assert "保证金" in rows.at["D3", "风险提示"] and "非货款" in rows.at["D3", "风险提示"]
    assert "分公司" in rows.at["B3", "风险提示"]


def test_latin_script_names_and_a_customers_english_alias():
    links = run([
        line("E1", 27_500, "KONG FUNG TRADING (HK) CO., LTD.", account="012-345-6789012"),
        line("E2", 27_500, "Kong Fung Trading Co Limited", day=4),
        line("E3", 27_500, "KONG FUNG TRADING (HK) CO., LIMI", day=5),  # cut at 35 characters by SWIFT
    ])
    for txn in ("E1", "E2", "E3"):
        row = first(links, txn)
        assert (row.customer_id, row.match_method, row.match_status) == ("K06", "alias", "auto_linked"), txn


def test_a_memo_naming_the_contract_number_names_its_order():
    data = inputs([line("H1", 44_800, "支付宝（中国）网络技术有限公司", memo="合同号:HT-2025-HZ-00123 尾款"),
                   line("H2", 18_800, "南京云帆软件有限公司", memo="ht2026nj00526", day=4)],
                  customers=CUSTOMERS, contracts=CONTRACTS)
    data.contracts["contract_no"] = ["HT2025" + o[2:] if o != "26NJ00526" else "HT2026NJ00526"
                                     for o in data.contracts["order_id"]]
    links = build_receipt_links(data, load_settings())
    h1, h2 = first(links, "H1"), first(links, "H2")
    assert (h1.customer_id, h1.order_id, h1.match_method, h1.match_status) == (
        "K09", "25HZ00123", "memo_order_id", "auto_linked")
    assert (h2.order_id, h2.match_method) == ("26NJ00526", "memo_order_id")
