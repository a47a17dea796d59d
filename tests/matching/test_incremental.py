"""Incremental matching equals a full evaluation, whatever the engine's rules: on seeded random
sequences of input changes (new lines, write-offs and their reversals, feedback, contract and
invoice upserts, a moving as-of, customer updates), the previous links with the re-evaluated
lines' rows replaced must be exactly what the engine gives for all lines at once."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pytest

from recon_pipeline.matching.engine import build_receipt_links
from recon_pipeline.matching.incremental import refresh_links
from recon_pipeline.matching.inputs import LINK_COLUMNS, MatchingInputs
from recon_pipeline.settings import load_settings
from tests.matching.test_engine import CONTRACTS, CUSTOMERS, inputs

PAYERS = [name for _, name, _, _ in CUSTOMERS] + ["华强", "北京某某科技", "支付宝－上海华强贸易有限公司", "张三", None]
MEMOS = ["货款", "", "订单25SH00137", "25BJ00001 货款", "25-BJ-00002", "合同25SZ00001尾款", "运费"]


def comparable_links(frame: pd.DataFrame) -> pd.DataFrame:
    """Links in one order and one dtype per column, for exact comparison."""
    frame = frame[LINK_COLUMNS].astype({"allocated_cents": "int64", "match_score": "int64"})
    frame = frame.astype({c: "object" for c in LINK_COLUMNS if c not in ("allocated_cents", "match_score")})
    frame = frame.where(frame.notna(), None)
    return frame.sort_values(["account_no", "txn_id", "order_id", "allocated_cents"], na_position="last",
                             kind="stable").reset_index(drop=True)


class World:
    """Mutable source rows; `inputs()` gives the engine's frames for the current state."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.bank: list[tuple] = []
        self.writeoffs: dict[str, tuple] = {}
        self.feedback: list[tuple] = []
        self.invoices: list[tuple] = []
        self.contracts = [list(c) for c in CONTRACTS]
        self.customers = [list(c) for c in CUSTOMERS]
        self.as_of = datetime(2025, 3, 1, 9)
        self.serial = 0
        for _ in range(12):
            self.new_line()

    def new_line(self, debit: bool = False) -> None:
        self.serial += 1
        when = datetime(2025, 1, 10) + timedelta(hours=7 * self.serial + self.rng.randrange(5))
        amount = self.rng.choice([1_000_000, 2_000_000, 500_000, 3_000_000, 1_500_000, 2_500_000])
        self.bank.append(("6222", f"T{self.serial:04d}", when, -amount if debit else amount,
                          self.rng.choice(PAYERS), self.rng.choice(["", "", "62220001", "62220002"]),
                          self.rng.choice(MEMOS)))

    def step(self) -> str:
        kind = self.rng.choice(["lines", "lines", "writeoff", "writeoff_reversal", "feedback", "contract",
                                "invoice", "as_of", "refund", "customer"])
        if kind == "lines":
            for _ in range(self.rng.randrange(1, 4)):
                self.new_line()
        elif kind == "refund":
            self.new_line(debit=True)
        elif kind == "writeoff":
            line = self.rng.choice(self.bank)
            order = self.rng.choice(self.contracts)[0]
            wid = f"W{len(self.writeoffs) + 1:03d}"
            self.writeoffs[wid] = (wid, line[1], order, min(abs(line[3]), 1_000_000), "财务",
                                   self.as_of - timedelta(hours=self.rng.choice([1, -30])), "active")
        elif kind == "writeoff_reversal" and self.writeoffs:
            wid = self.rng.choice(sorted(self.writeoffs))
            self.writeoffs[wid] = (*self.writeoffs[wid][:6], "reversed")
        elif kind == "feedback":
            line = self.rng.choice(self.bank)
            customer = self.rng.choice(self.customers)[0]
            self.feedback.append((f"F{len(self.feedback) + 1:03d}", line[0], line[1], customer, None,
                                  self.rng.choice(["confirm", "reject"]), "财务",
                                  self.as_of + timedelta(hours=self.rng.choice([-2, 30]))))
        elif kind == "contract":
            contract = self.rng.choice(self.contracts)
            if self.rng.random() < 0.5:
                contract[1] = self.rng.choice(self.customers)[0]
            else:
                contract[2] = self.rng.choice([1_000_000, 2_000_000, 9_000_000])
        elif kind == "invoice":
            order = self.rng.choice(self.contracts)[0]
            self.invoices.append((f"I{len(self.invoices) + 1:03d}", order,
                                  self.rng.choice([1_000_000, 500_000, -200_000]),
                                  self.rng.choice(["normal", "red"])))
        elif kind == "as_of":
            self.as_of += timedelta(hours=self.rng.choice([1, 24, 48]))
        elif kind == "customer":
            customer = self.rng.choice(self.customers)
            customer[3] = self.rng.choice([None, "华强", "云帆", "天府"])
        return kind

    def inputs(self) -> MatchingInputs:
        wo = [w[:6] for w in self.writeoffs.values()]
        built = inputs(self.bank, writeoffs=wo, feedback=self.feedback or None, invoices=self.invoices)
        built.writeoffs["status"] = [w[6] for w in self.writeoffs.values()]
        built.contracts = pd.DataFrame(self.contracts, columns=["order_id", "customer_id", "amount_cents", "signed_at"])
        built.contracts["customer_name"], built.contracts["salesperson_id"], built.contracts["status"] = None, "S1", "signed"
        customers = pd.DataFrame(self.customers, columns=["customer_id", "customer_name", "credit_code", "aliases"])
        customers["region_code"], customers["industry"] = None, None
        built.customers = customers
        return MatchingInputs(built.bank, built.customers, built.contracts, built.invoices, built.writeoffs, self.as_of,
                              feedback=built.feedback)


def run_sequence(seed: int, engine=build_receipt_links, steps: int = 8, world_class=None) -> tuple[int, int]:
    settings = load_settings()
    rng = random.Random(seed)
    world = (world_class or World)(rng)
    state = duckdb.connect()  # the warehouse's matching state between runs
    links = None
    incremental = evaluated_total = 0
    for number in range(steps):
        kind = world.step() if number else "first"
        current_inputs = world.inputs()
        result = refresh_links(state, current_inputs, settings, "code", engine=engine)
        if result.full:
            links = result.links
        else:
            incremental += 1
            evaluated_total += len(result.evaluated)
            keys = pd.MultiIndex.from_arrays([links["account_no"], links["txn_id"]])
            kept = links[~keys.isin(list(result.evaluated))]
            links = pd.concat([kept, result.links], ignore_index=True) if len(result.links) else kept
        expected = engine(current_inputs, settings)
        pd.testing.assert_frame_equal(comparable_links(links), comparable_links(expected), obj=f"seed {seed} step {number} ({kind})")
    return incremental, evaluated_total


@pytest.mark.parametrize("seed", range(24))
def test_incremental_matching_equals_full_evaluation(seed):
    run_sequence(seed)


def test_most_steps_are_incremental_and_evaluate_few_lines():
    incremental = evaluated = 0
    for seed in range(100, 105):
        i, e = run_sequence(seed)
        incremental, evaluated = incremental + i, evaluated + e
    assert incremental >= 20  # of 35 steps; customer updates (and the first runs) are full
    assert evaluated / incremental < 18  # lines evaluated per incremental step, of ~15-30 lines


class RelationsWorld(World):
    """Issue #12's paths: a customer paying another's order by ID (and mistyping it), a person, a
    payment intermediary, memos naming a contract number, refunds of over-payments, deposits."""

    PAYERS = PAYERS + ["支付宝（中国）网络技术有限公司", "北京某某科技有限公司苏州分公司", "王海燕", "KONG FUNG TRADING (HK) CO LTD"]
    MEMOS = MEMOS + ["合同号HT-2025-BJ-00002", "退多付款 25CD00001", "投标保证金", "代付25SH00138", "25SH00137"]

    def __init__(self, rng: random.Random):
        self.contract_no: dict[str, str] = {}
        super().__init__(rng)
        self.contract_no = {c[0]: f"HT-2025-{c[0][2:4]}-{c[0][4:]}" for c in self.contracts}

    def new_line(self, debit: bool = False) -> None:
        super().new_line(debit)
        account_no, txn_id, when, amount, _, account, _ = self.bank[-1]
        self.bank[-1] = (account_no, txn_id, when, amount, self.rng.choice(self.PAYERS), account,
                         self.rng.choice(self.MEMOS))

    def step(self) -> str:
        if self.rng.random() < 0.2:  # a contract renumbered: memos naming the old or new number change
            order_id = self.rng.choice(self.contracts)[0]
            self.contract_no[order_id] = self.rng.choice(
                [f"HT-2025-BJ-0000{self.rng.randrange(1, 5)}", self.contract_no[order_id] + "A"])
            return "contract_no"
        return super().step()

    def inputs(self) -> MatchingInputs:
        built = super().inputs()
        built.contracts["contract_no"] = built.contracts["order_id"].map(self.contract_no)
        return built


@pytest.mark.parametrize("seed", range(12))
def test_incremental_matching_equals_full_evaluation_with_payer_relations(seed):
    run_sequence(seed, world_class=RelationsWorld, steps=10)


def _incremental_equals_full(states: list[MatchingInputs]) -> None:
    """Run `states` in sequence incrementally; after each, the links must equal a full run's."""
    settings = load_settings()
    store, links = duckdb.connect(), None
    for number, state in enumerate(states):
        result = refresh_links(store, state, settings, "code")
        if result.full:
            links = result.links
        else:
            keys = pd.MultiIndex.from_arrays([links["account_no"], links["txn_id"]])
            kept = links[~keys.isin(list(result.evaluated))]
            links = pd.concat([kept, result.links], ignore_index=True) if len(result.links) else kept
        pd.testing.assert_frame_equal(comparable_links(links), comparable_links(build_receipt_links(state, settings)),
                                      obj=f"state {number}")


def test_a_contract_numbered_later_reaches_the_memo_that_names_it():
    bank = [("6222", "T1", datetime(2025, 2, 3, 10), 5_000_000, "张三", "", "合同号HT-2025-BJ-00099 尾款")]
    before = inputs(bank)
    before.contracts["contract_no"] = None
    after = inputs(bank)
    after.contracts["contract_no"] = ["HT-2025-BJ-00099" if o == "25BJ00002" else None for o in after.contracts["order_id"]]
    _incremental_equals_full([before, after])
    assert build_receipt_links(after, load_settings()).iloc[0]["order_id"] == "25BJ00002"


def test_the_payers_own_orders_decide_whether_it_mistyped_another_customers_order_id():
    # 成都天府 (C10) pays 25,000 with 上海华强's order 25SH00137 (20,000) in the memo: a mistyped ID
    # only while one of its own orders is 25,000.
    bank = [("6222", "T1", datetime(2025, 2, 3, 10), 2_500_000, "成都天府软件有限公司", "", "25SH00137")]
    own_order_fits = inputs(bank)
    own_order_changed = inputs(bank)
    own_order_changed.contracts.loc[own_order_changed.contracts["order_id"] == "25CD00001", "amount_cents"] = 9_000_000
    settings = load_settings()
    assert build_receipt_links(own_order_fits, settings).iloc[0]["customer_id"] == "C10"
    assert build_receipt_links(own_order_changed, settings).iloc[0]["customer_id"] == "C03"
    _incremental_equals_full([own_order_changed, own_order_fits, own_order_changed])
