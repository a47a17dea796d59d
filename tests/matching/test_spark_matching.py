"""The Spark engine's matching functions, run without Spark: linking any split of the bank lines
and allocating per customer gives exactly the links of the single pass (`build_receipt_links`).

These are the very functions Spark runs on its workers (`_link_partition`, `_allocate_group`,
`_allocate_unassigned`); the end-to-end test runs them on a real local Spark.
"""

import random

import pandas as pd
import pytest
from pyspark import cloudpickle

from recon_pipeline.matching import spark_matching
from recon_pipeline.matching.engine import build_receipt_links, prepare_matching
from recon_pipeline.matching.inputs import LINK_COLUMNS
from recon_pipeline.settings import load_settings
from tests.matching.test_engine import CONTRACTS, CUSTOMERS, inputs

PAYER_VARIANTS = ["{name}", "{name}", "支付宝－{name}", "{short}", "{short}有限公司", "北京市{short}", "{name}（分公司）"]
STRANGERS = ["某某物业管理有限公司", "朱佳怡", "武汉长江物流有限公司", "", "中***融科技有限公司"]
MEMOS = ["", "货款", "{order}", "货款{order_mangled}", "订单{order}合同款", "{order}/{order2}", "运费"]


class _Broadcast:
    """What a worker sees of `sparkContext.broadcast(...)`."""

    def __init__(self, value: bytes):
        self.value = value


def _random_inputs(seed: int, lines: int = 160):
    rng = random.Random(seed)
    orders = [o for o, *_ in CONTRACTS]
    amounts = {o: cents for o, _, cents, _ in CONTRACTS}
    bank, writeoffs, feedback = [], [], []
    for number in range(lines):
        customer = rng.choice(CUSTOMERS)
        name = customer[1]
        short = name.removesuffix("有限公司")[2:] or name
        payer = rng.choice(STRANGERS) if rng.random() < 0.15 else rng.choice(PAYER_VARIANTS).format(name=name, short=short)
        order, order2 = rng.choice(orders), rng.choice(orders)
        memo = rng.choice(MEMOS).format(order=order, order2=order2, order_mangled=order.lower().replace("000", "-"))
        amount = rng.choice([amounts[order], amounts[order] // 2, amounts[order] + amounts[order2], 12_345_00,
                             -rng.randrange(1, 5) * 100_000])
        txn = f"T{number:04d}"
        account = rng.choice(["6222000011110000", "6222000011110001"])
        day = rng.randrange(1, 28)
        bank.append((account, txn, f"2025-03-{day:02d} {rng.randrange(8, 18):02d}:00:00", amount // 100, payer,
                     rng.choice(["", "6217000012345678", "6217000099990000"]), memo))
        if amount > 0 and rng.random() < 0.08:
            writeoffs.append((f"W{number}", txn, order, amount, "财务王五", "2025-03-28 09:00:00"))
        elif rng.random() < 0.05:
            decision = rng.choice(["confirm", "reject"])
            feedback.append((f"F{number}", account, txn, customer[0], None, decision, "财务王五", "2025-03-28 10:00:00"))
    data = inputs(bank, writeoffs=writeoffs, feedback=feedback or None)
    data.bank["amount_cents"] = data.bank["amount_cents"] * 100
    return data


def _split_links(data, settings, partitions: int, seed: int) -> pd.DataFrame:
    """Spark's plan with the same functions: link per partition, allocate per customer."""
    context = prepare_matching(data, settings)
    shipped = spark_matching.Shipped(f"run-{seed}-{partitions}", _Broadcast(cloudpickle.dumps(context)))
    bank = data.bank.sample(frac=1, random_state=seed)  # Spark promises no order
    parts = [bank.iloc[i::partitions] for i in range(partitions)]
    linked = pd.concat([frame for part in parts for frame in spark_matching._link_partition(shipped, iter([part]))],
                       ignore_index=True)
    orders = spark_matching.orders_frame(context)
    frames = []
    for customer, lines in linked[linked["allocation_customer"].notna()].groupby("allocation_customer"):
        frames.append(spark_matching._allocate_group(shipped, lines, orders[orders["customer_id"] == customer]))
    unassigned = linked[linked["allocation_customer"].isna()]
    frames += list(spark_matching._allocate_unassigned(shipped, iter([unassigned.iloc[i::2] for i in range(2)])))
    return pd.concat(frames, ignore_index=True)


def _sorted(links: pd.DataFrame) -> pd.DataFrame:
    frame = links[LINK_COLUMNS].astype({"allocated_cents": "int64", "match_score": "int64"}).astype(object)
    frame = frame.where(frame.notna(), None)
    return frame.sort_values(["account_no", "txn_id", "order_id"], na_position="last", key=lambda c: c.astype(str)) \
        .reset_index(drop=True)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("partitions", [3, 7])
def test_any_split_links_and_allocates_like_the_single_pass(seed, partitions):
    settings = load_settings()
    data = _random_inputs(seed)
    single = build_receipt_links(data, settings)
    assert single["match_status"].nunique() >= 3  # the data exercises linked, suggested and unmatched lines
    split = _split_links(data, settings, partitions, seed)
    pd.testing.assert_frame_equal(_sorted(split), _sorted(single))


def test_a_customer_group_sees_only_its_orders_and_still_allocates_in_time_order():
    """Installments of one customer, shuffled: the group sorts them back into txn_time order, so
    the first installment starts the oldest order, as in the single pass."""
    settings = load_settings()
    bank = [("6222000011110000", f"T{d}", f"2025-03-{d:02d} 10:00:00", 2_000_000, "北京某某科技有限公司", "", "")
            for d in (9, 3, 6)]
    data = inputs(bank)
    split = _split_links(data, settings, partitions=3, seed=5)
    pd.testing.assert_frame_equal(_sorted(split), _sorted(build_receipt_links(data, settings)))
    first = split[split["txn_id"] == "T3"]
    assert first["order_id"].tolist() == ["25BJ00001"]  # the oldest order of C01
