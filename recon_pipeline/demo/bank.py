"""Bank lines of the demo: customer payments with every messy case a finance team meets,
unrelated lines, the company accounts, overlapping downloads and finance write-offs.

Each customer credit carries its truth (customer, orders, intended allocation) and the one
label that names its messy case; the rendering of names and memos follows that label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from recon_pipeline.demo.clock import (
    DAY, HORIZON, HOUR, LAST_DROP_DAY, MINUTE, MONTH_END_DAYS, office_after, schedule_days, working_time,
)
from recon_pipeline.demo.vocab import (
    CHANNEL_PREFIXES,
    CUSTOMER_DEPOSIT_MEMOS,
    FINANCE_STAFF,
    GENERIC_MEMOS,
    INDUSTRY_WORDS,
    NON_CUSTOMER_WORDS,
    NON_SALES_WORDS,
    PAYMENT_INTERMEDIARIES,
    REGIONS,
    CompanyName,
    fullwidth_variant,
    keeps_region_variant,
    latin_variant,
    mask_account,
    masked,
    region_variant,
    traditional,
)
from recon_pipeline.demo.world import Customers, Orders, person_names

# The company's own accounts: (account_no, file prefix, share of lines)
COMPANY_ACCOUNTS = (("1001203409000123456", "icbc", 0.60), ("755912345610801", "cmb", 0.35), ("456378901234", "boc", 0.05))

PAYMENT_PATTERNS = ("exact", "split", "combined", "partial", "overpayment", "unpaid")
PAYMENT_P = (0.60, 0.10, 0.08, 0.05, 0.03, 0.14)
# Labels of single exact payments: how the payer and memo are written.
EXACT_LABELS = ("exact_name", "short_name", "region_variant", "fullwidth", "traditional", "channel_prefix",
                "masked", "name_with_account", "alias", "memo_clean", "memo_mangled", "memo_decoy")
EXACT_LABEL_P = (0.30, 0.06, 0.06, 0.04, 0.04, 0.05, 0.04, 0.04, 0.05, 0.14, 0.10, 0.06)
NAME_LABELS = ("short_name", "region_variant", "fullwidth", "traditional", "channel_prefix", "masked",
               "name_with_account", "alias")
# The cases of issue #12, each a tag of its own (who pays for whom, what the money is):
# branch_office      a head office and its branch are both customers, each pays under its registered name
# branch_payer       a branch of a customer that is not a customer pays (half with the order ID in the memo)
# refund_overpayment the surplus of an over-payment is refunded (退多付款 <order>): the order stays paid
# person_not_alias   a person finance confirmed paying for one customer pays another's order from another card
# memo_other_payer   another customer (a parent) or a person confirmed for another customer pays with the order ID
# payment_agent      a payment intermediary (支付宝/财付通/银联商务) pays out with the order ID in the memo
# non_sales_memo     deposits and bonds (投标保证金, 押金): a customer's money for no order, or nobody's
# latin_name         a customer's Hong Kong arm pays under its English name, spelled as banks print it
# Finance has not written these off yet: the engine alone decides them.
ISSUE_CASES = ("branch_office", "branch_payer", "refund_overpayment", "person_not_alias", "memo_other_payer",
               "payment_agent", "non_sales_memo", "latin_name")
ALL_VARIANTS = ("exact_name", "short_name", "region_variant", "fullwidth", "traditional", "channel_prefix", "masked",
                "name_with_account", "alias", "repeat_account", "memo_clean", "memo_mangled", "memo_two_ids",
                "memo_decoy", "split", "combined", "partial", "overpayment", "refund", "unrelated", "confusable",
                *ISSUE_CASES)
NEW_CASE_LABELS = ("branch_payer", "memo_other_payer", "payment_agent", "latin_name")  # taken from exact payments


@dataclass
class Credits:
    """One row per customer bank line (credits, and refunds as debits)."""

    frame: pd.DataFrame


def _ensure_patterns(rng, pattern: np.ndarray, cust: np.ndarray, confusable: np.ndarray, forced: np.ndarray,
                     minimum: int = 3) -> None:
    """Every payment pattern present at least `minimum` times (combined: in same-customer pairs)."""
    free = (pattern == "exact") & ~confusable & ~forced
    for name in ("split", "partial", "overpayment"):
        missing = minimum - int((pattern == name).sum())
        if missing > 0:
            take = rng.permutation(np.flatnonzero(free))[:missing]
            pattern[take] = name
            free[take] = False
    pairs_needed = minimum + 1 - int((pattern == "combined").sum()) // 2
    if pairs_needed > 0:
        candidates = pd.Series(np.flatnonzero(free)).groupby(cust[free]).apply(list)
        for orders in candidates[candidates.map(len) >= 2].iloc[:pairs_needed].tolist():
            pattern[orders[:2]] = "combined"


def _payment_base_time(rng, orders: Orders, invoices: pd.DataFrame) -> np.ndarray:
    f = orders.frame
    n = len(f)
    first_invoice = invoices.groupby("order_idx")["version_time"].min().reindex(range(n)).to_numpy()
    signed = f["signed"].to_numpy()
    ready = np.where(np.isnan(first_invoice), signed + 5 * DAY, first_invoice).astype(np.int64)
    delay = np.clip(rng.lognormal(np.log(12 * DAY), 0.7, n), 0.3 * DAY, 80 * DAY).astype(np.int64)
    base = np.maximum(ready, signed) + delay
    prepay = rng.random(n) < 0.10
    base[prepay] = signed[prepay] + rng.integers(DAY // 2, 4 * DAY, prepay.sum())
    return _office_hours(rng, base)


def _office_hours(rng, seconds: np.ndarray) -> np.ndarray:
    """Move a time onto office hours of its day (bank credits arrive 09:00-17:30)."""
    return working_time(rng, seconds // DAY, 9, 17.5)


def build_credits(rng: np.random.Generator, orders: Orders, customers: Customers, invoices: pd.DataFrame) -> Credits:
    f = orders.frame
    n = len(f)
    status = f["status"].to_numpy()
    amount = f["amount"].to_numpy()
    cust = f["customer"].to_numpy()
    forced = f["forced"].to_numpy()
    edge = f["edge"].to_numpy()
    signed = f["signed"].to_numpy()
    pattern = np.full(n, "", dtype=object)
    payable = status == "signed"
    pattern[payable] = rng.choice(PAYMENT_PATTERNS, size=payable.sum(), p=PAYMENT_P)
    pattern[forced & payable] = "exact"
    _ensure_patterns(rng, pattern, cust, customers.is_confusable[cust], forced)
    base = _payment_base_time(rng, orders, invoices)
    # Month-end edges: the finance leg closes around the cutoff, or well before it.
    for k in np.flatnonzero(edge != "").tolist():
        kind = edge[k]
        if kind.startswith("finance"):
            month_end = next(m for m in MONTH_END_DAYS if m >= signed[k] // DAY + 5)
            minute = 15 * HOUR + 59 * MINUTE if kind == "finance_1559" else 16 * HOUR + 1 * MINUTE
            base[k] = month_end * DAY + minute + rng.integers(0, 59)
        elif kind.startswith("legal"):
            base[k] = _office_hours(rng, np.array([signed[k] + 2 * DAY + rng.integers(0, 2 * DAY)]))[0]

    records: list[pd.DataFrame] = []

    def add(time, amount_cents, orders_alloc, pattern_name, unapplied=0):
        """orders_alloc: list of (order index array, allocation array), up to 3."""
        frame = pd.DataFrame({"time": time, "amount": amount_cents, "pattern": pattern_name, "unapplied": unapplied})
        for slot in range(3):
            if slot < len(orders_alloc):
                frame[f"o{slot}"] = orders_alloc[slot][0]
                frame[f"a{slot}"] = orders_alloc[slot][1]
            else:
                frame[f"o{slot}"] = -1
                frame[f"a{slot}"] = 0
        records.append(frame)

    # Combined payments: consecutive orders of one customer paid by one credit.
    combined = np.flatnonzero(pattern == "combined")
    combined = combined[np.lexsort((base[combined], cust[combined]))]
    groups: list[list[int]] = []
    position = 0
    sizes = rng.choice([2, 2, 3], size=len(combined) + 1)
    while position < len(combined):
        size = sizes[len(groups)]
        group = [combined[position]]
        while len(group) < size and position + len(group) < len(combined) and cust[combined[position + len(group)]] == cust[group[0]]:
            group.append(combined[position + len(group)])
        position += len(group)
        if len(group) == 1:
            pattern[group[0]] = "exact"
        else:
            groups.append(group)

    idx = np.flatnonzero(pattern == "exact")
    fee = np.where(rng.random(len(idx)) < 0.06, rng.choice([35, 50, 80], len(idx)), 0)  # bank fee deducted
    fee[forced[idx]] = 0
    add(base[idx], amount[idx] - fee, [(idx, amount[idx] - fee)], "exact")

    idx = np.flatnonzero(pattern == "split")
    parts = rng.choice([2, 2, 3], len(idx))
    first_share = np.where(parts == 2, rng.choice([40, 50, 60], len(idx)), 30)
    paid = np.zeros(len(idx), dtype=np.int64)
    t = base[idx].copy()
    for k in range(3):
        live = parts > k
        last = parts == k + 1
        share = (amount[idx] * first_share // 100) // 100 * 100
        part = np.where(last, amount[idx] - paid, share)
        add(t[live], part[live], [(idx[live], part[live])], "split")
        paid += np.where(live, part, 0)
        t = _office_hours(rng, t + rng.integers(4 * DAY, 26 * DAY, len(idx)))

    idx = np.flatnonzero(pattern == "partial")
    part = np.maximum((amount[idx] * rng.uniform(0.3, 0.7, len(idx)) // 10_000).astype(np.int64) * 10_000, 10_000)
    add(base[idx], part, [(idx, part)], "partial")

    idx = np.flatnonzero(pattern == "overpayment")
    surplus = np.maximum(rng.choice([10_000, 50_000, 100_000], len(idx)), 200)
    add(base[idx], amount[idx] + surplus, [(idx, amount[idx])], "overpayment", unapplied=surplus)
    # The surplus of most over-payments is refunded a few days later (退多付款 <order>).
    refunded = rng.random(len(idx)) < 0.7
    refunded[:3] = True
    refund_at = _office_hours(rng, base[idx] + rng.integers(3 * DAY, 15 * DAY, len(idx)))
    add(refund_at[refunded], -surplus[refunded], [(idx[refunded], np.zeros(refunded.sum(), dtype=np.int64))],
        "refund_surplus", unapplied=-surplus[refunded])

    if groups:
        size = np.array([len(g) for g in groups])
        slots = [np.array([g[k] if k < len(g) else -1 for g in groups]) for k in range(3)]
        t = np.max(np.stack([np.where(s >= 0, base[np.maximum(s, 0)], 0) for s in slots]), axis=0)
        allocs = [(s, np.where(s >= 0, amount[np.maximum(s, 0)], 0)) for s in slots]
        total = sum(a for _, a in allocs)
        frame_index = len(records)
        add(t, total, allocs, "combined")
        records[frame_index]["group_size"] = size

    # Deposits on orders that were cancelled after signing, refunded after the cancellation.
    cancelled = np.flatnonzero((status == "cancel_after_sign") & (rng.random(n) < 0.6))
    if len(cancelled) == 0:
        cancelled = np.flatnonzero(status == "cancel_after_sign")[:1]
    deposit = np.maximum((amount[cancelled] * 0.3 // 10_000).astype(np.int64) * 10_000, 10_000)
    cancelled_at = f["cancelled_at"].to_numpy()[cancelled]
    paid_at = _office_hours(rng, signed[cancelled] + rng.integers(DAY, 4 * DAY, len(cancelled)))
    paid_at = np.minimum(paid_at, cancelled_at - HOUR)
    add(paid_at, deposit, [(cancelled, deposit)], "deposit")
    refund_at = _office_hours(rng, cancelled_at + rng.integers(DAY, 10 * DAY, len(cancelled)))
    add(refund_at, -deposit, [(cancelled, -deposit)], "refund")

    credits = pd.concat(records, ignore_index=True)
    if "group_size" not in credits:
        credits["group_size"] = 0
    credits["group_size"] = credits["group_size"].fillna(0).astype(np.int64)
    credits = credits[credits["time"] < HORIZON].reset_index(drop=True)
    credits["customer"] = cust[credits["o0"].to_numpy()]
    credits["forced"] = forced[credits["o0"].to_numpy()]
    orders.frame["payment_pattern"] = pattern
    return Credits(credits)


def assign_labels(rng: np.random.Generator, credits: Credits, customers: Customers, min_per_label: int) -> None:
    """One label per line (the messy case it tests), then the name and memo forms it implies."""
    c = credits.frame
    n = len(c)
    pattern = c["pattern"].to_numpy()
    confusable = customers.is_confusable[c["customer"].to_numpy()]
    label = np.full(n, "", dtype=object)
    exact = pattern == "exact"
    p = np.array(EXACT_LABEL_P) / sum(EXACT_LABEL_P)
    label[exact] = rng.choice(EXACT_LABELS, size=exact.sum(), p=p)
    forced = c["forced"].to_numpy()
    label[exact & forced] = np.where(rng.random((exact & forced).sum()) < 0.5, "exact_name", "memo_clean")
    memo_ids = rng.random(n) < 0.5
    label[pattern == "split"] = "split"
    label[pattern == "partial"] = "partial"
    label[pattern == "deposit"] = "partial"
    label[pattern == "overpayment"] = "overpayment"
    is_combined = pattern == "combined"
    two = is_combined & (c["group_size"].to_numpy() == 2)
    label[is_combined] = "combined"
    label[two & memo_ids] = "memo_two_ids"
    pairs = np.flatnonzero(two & ~confusable)
    if len(pairs) >= 2 and (label[pairs] == "memo_two_ids").all():
        label[pairs[0]] = "combined"
    elif len(pairs) >= 2 and (label[pairs] == "combined").all():
        label[pairs[0]] = "memo_two_ids"
    label[confusable] = "confusable"
    branch_pair = np.array([k == "branch" for k in customers.confusable_kind])[c["customer"].to_numpy()]
    label[branch_pair] = "branch_office"
    label[pattern == "refund"] = "refund"
    label[pattern == "refund_surplus"] = "refund_overpayment"

    # Eligibility: an alias needs known aliases, traditional script must change the name.
    has_alias = np.array([bool(a) for a in customers.aliases_final])[c["customer"].to_numpy()]
    label[(label == "alias") & ~has_alias] = "exact_name"
    changes = np.array([traditional(x.registered) != x.registered for x in customers.names])
    label[(label == "traditional") & ~changes[c["customer"].to_numpy()]] = "exact_name"

    # Every exact-payment label present at least `min_per_label` times.
    spare = np.flatnonzero((label == "exact_name") & ~forced & ~confusable)
    cursor = 0
    for name in EXACT_LABELS[1:]:
        have = int((label == name).sum())
        eligible = spare[cursor:]
        if name == "alias":
            eligible = eligible[has_alias[eligible]]
        if name == "traditional":
            eligible = eligible[changes[c["customer"].to_numpy()[eligible]]]
        take = eligible[: max(0, min_per_label - have)]
        label[take] = name
        spare = np.setdiff1d(spare, take, assume_unique=True)

    c["variant"] = label
    c["payer"] = np.full(n, -1, dtype=np.int64)  # the customer whose name (or person) pays, when not its own
    c["payer_form"] = np.full(n, "", dtype=object)
    c["txn_order"] = np.arange(n)
    _repeat_payers(rng, c, customers, confusable, min_per_label)
    label = c["variant"].to_numpy().copy()
    # The issue's cases taken from single exact payments: who pays is someone else.
    english = np.array([any(a.isascii() for a in x.split(";")) if x else False
                        for x in customers.aliases_final])[c["customer"].to_numpy()]
    free = exact & ~forced & ~confusable & ~c["proxy"].to_numpy() & (c["time"].to_numpy() < HORIZON - 6 * DAY)
    for name in NEW_CASE_LABELS:
        if name == "latin_name":  # any exact payment of a customer with an English name
            eligible = np.flatnonzero(free & english & np.isin(label, EXACT_LABELS))
        else:
            eligible = np.flatnonzero(free & (label == "exact_name"))
        take = eligible[: max(min_per_label, round(0.01 * n))]
        label[take] = name
        free[take] = False
    # Another customer pays (a parent for its subsidiary): any other customer not confusable.
    payer, payer_form = c["payer"].to_numpy().copy(), c["payer_form"].to_numpy().copy()
    plain = np.flatnonzero(~customers.is_confusable)
    other = np.flatnonzero((label == "memo_other_payer") & (payer < 0))
    shift = rng.integers(1, len(plain), len(other))
    position = np.searchsorted(plain, c["customer"].to_numpy()[other])
    payer[other] = plain[(position + shift) % len(plain)]
    payer_form[other] = "company"
    c["variant"], c["payer"], c["payer_form"] = label, payer, payer_form
    _forms(rng, c, memo_ids)


def _repeat_payers(rng, c: pd.DataFrame, customers: Customers, confusable: np.ndarray, min_count: int) -> None:
    """A person pays for a customer from one account: the first payment names the order in its
    memo (and finance writes it off, confirming the account); later ones carry only the account."""
    c["proxy"] = False
    c["force_writeoff"] = False
    label = c["variant"].to_numpy().copy()
    simple = (c["pattern"].to_numpy() == "exact") & ~confusable & ~c["forced"].to_numpy() & (label == "exact_name")
    simple &= c["time"].to_numpy() < HORIZON - 6 * DAY
    cand = c[simple]
    counts = cand.groupby("customer").size()
    eligible = counts[counts >= 2].index.to_numpy()
    if len(eligible) == 0:
        return
    chosen_n = max(min_count, round(0.06 * len(eligible)))
    chosen = rng.permutation(eligible)[:chosen_n]
    chosen_rows = cand[cand["customer"].isin(chosen)].sort_values(["customer", "time"], kind="stable")
    rank = chosen_rows.groupby("customer", sort=False).cumcount().to_numpy()
    index = chosen_rows.index.to_numpy()
    label[index[rank == 0]] = "memo_clean"
    label[index[(rank == 1) | (rank == 2)]] = "repeat_account"
    force, proxy = c["force_writeoff"].to_numpy().copy(), c["proxy"].to_numpy().copy()
    force[index[rank == 0]] = True
    proxy[index[rank <= 2]] = True
    # The same person later pays another customer's order: from another card with an empty memo
    # (their name is no alias of the first customer), or with that order's ID in the memo.
    payer, payer_form = c["payer"].to_numpy().copy(), c["payer_form"].to_numpy().copy()
    first_time = dict(zip(chosen_rows["customer"].to_numpy()[rank == 0], chosen_rows["time"].to_numpy()[rank == 0]))
    others = cand[~cand["customer"].isin(chosen)].sort_values(["time", "txn_order"], kind="stable")
    free = np.ones(len(others), dtype=bool)
    times = others["time"].to_numpy()
    for case in ("person_not_alias", "memo_other_payer"):
        for customer in chosen[: max(min_count, len(chosen) // 3)].tolist():
            start = int(np.searchsorted(times, first_time[customer] + 2 * DAY, side="right"))
            if start >= len(times):
                continue
            pick = start + int(rng.integers(0, len(times) - start))
            ahead = np.flatnonzero(free[pick:])  # the first free line from a random one on
            if len(ahead) == 0:
                continue
            pick += int(ahead[0])
            free[pick] = False
            row = others.index[pick]
            label[row], payer[row], payer_form[row] = case, customer, "person"
    c["variant"], c["force_writeoff"], c["proxy"] = label, force, proxy
    c["payer"], c["payer_form"] = payer, payer_form


def _forms(rng, c: pd.DataFrame, memo_ids: np.ndarray) -> None:
    """name_form / memo_form per line, from its label."""
    n = len(c)
    label = c["variant"].to_numpy()
    name_form = np.full(n, "exact_name", dtype=object)
    memo_form = np.full(n, "generic", dtype=object)
    draw = rng.random(n)
    for name in NAME_LABELS:
        name_form[label == name] = name
    memo_lines = np.isin(label, ["memo_clean", "memo_mangled"])
    name_form[memo_lines] = np.where(draw < 0.6, "exact_name", np.where(draw < 0.75, "short_name",
                                     np.where(draw < 0.9, "person", "region_variant")))[memo_lines]
    memo_form[label == "memo_clean"] = "clean"
    memo_form[label == "memo_mangled"] = "mangled"
    memo_form[label == "memo_decoy"] = "decoy"
    memo_form[label == "memo_two_ids"] = "two_ids"
    pattern_lines = np.isin(label, ["split", "partial", "overpayment", "combined"])
    name_form[pattern_lines] = np.where(draw < 0.7, "exact_name", np.where(draw < 0.78, "short_name", np.where(
        draw < 0.85, "region_variant", np.where(draw < 0.9, "fullwidth", np.where(draw < 0.95, "channel_prefix", "traditional")))))[pattern_lines]
    ids = pattern_lines & memo_ids & (label != "combined")
    memo_form[ids] = np.where(rng.random(n) < 0.6, "clean", "mangled")[ids]
    deposit_or_refund = np.isin(c["pattern"].to_numpy(), ["deposit", "refund"])
    name_form[deposit_or_refund] = "exact_name"
    memo_form[deposit_or_refund] = "clean"
    conf = label == "confusable"
    name_form[conf] = np.where(draw < 0.6, "exact_name", np.where(draw < 0.85, "short_name", "region_keeping"))[conf]
    memo_form[conf] = "generic"
    name_form[c["proxy"].to_numpy()] = "person"
    memo_form[label == "repeat_account"] = "generic"
    # Issue #12's cases.
    name_form[label == "branch_office"] = "exact_name"
    memo_form[label == "branch_office"] = "generic"
    branch_payer = label == "branch_payer"
    name_form[branch_payer] = "branch"
    memo_form[branch_payer] = np.where(draw < 0.5, "clean", "generic")[branch_payer]
    other = label == "memo_other_payer"
    name_form[other] = np.where(c["payer_form"].to_numpy() == "person", "proxy_other", "other_customer")[other]
    memo_form[other] = np.where(draw < 0.6, "clean", "mangled")[other]
    name_form[label == "person_not_alias"] = "proxy_elsewhere"
    memo_form[label == "person_not_alias"] = "empty"
    name_form[label == "payment_agent"] = "intermediary"
    memo_form[label == "payment_agent"] = "agent"
    name_form[label == "latin_name"] = "latin"
    memo_form[label == "latin_name"] = "generic"
    refund_surplus = c["pattern"].to_numpy() == "refund_surplus"
    name_form[refund_surplus] = "exact_name"
    memo_form[refund_surplus] = "refund_surplus"
    # An over-payment whose surplus is refunded is linked by name (the refund needs it linked).
    refunded_orders = np.unique(c["o0"].to_numpy()[refund_surplus])
    refunded = (c["pattern"].to_numpy() == "overpayment") & np.isin(c["o0"].to_numpy(), refunded_orders)
    name_form[refunded] = "exact_name"
    c["name_form"] = name_form
    c["memo_form"] = memo_form


_MANGLERS = (
    lambda y, r, s: f"{y}{r.lower()}{int(s)}",
    lambda y, r, s: f"{y}-{r}-{s}",
    lambda y, r, s: f"订单{y}{r}{s}",
    lambda y, r, s: f"{y}{r}-{int(s)}",
    lambda y, r, s: f"{y} {r.lower()} {s}",
    lambda y, r, s: f"NO.{y}{r}{s}",
)


def _mangle(order_id: str, pick: int) -> str:
    return _MANGLERS[pick % len(_MANGLERS)](order_id[:2], order_id[2:4], order_id[4:])


def _two_ids(a: str, b: str, pick: int) -> str:
    if a[:4] == b[:4] and pick % 5 == 4:
        return f"{a}/{b[4:]}"  # second order by its serial only
    forms = (f"{a} {b}", f"{a}/{b}", f"订单{a}、{b}", f"{a},{b}货款")
    return forms[pick % 4]


def _decoy(rng_values: tuple[int, int, int], order_id: str, invoice_no: str) -> str:
    a, b, pick = rng_values
    phone = f"1{(3, 5, 8, 9)[a % 4]}{a % 10**9:09d}"
    forms = (
        f"货款 联系人{phone}",
        f"流水号{b:020d}",
        f"REF{order_id[2:4]}{a % 10**12:012d}",
        f"发票号{invoice_no} 货款",
        f"HX{order_id}{a % 100000:05d}",  # an order ID glued into a bank reference: not a memo ID
        f"{phone}支付货款",
    )
    return forms[pick % len(forms)]


def render_lines(rng: np.random.Generator, c: pd.DataFrame, customers: Customers, order_ids: np.ndarray,
                 last_invoice_no: np.ndarray) -> None:
    """counterparty_name, counterparty_account and memo of every customer line."""
    n = len(c)
    names: list[CompanyName] = customers.names
    persons, _ = person_names(rng, n)
    proxy_person, _ = person_names(rng, len(names))
    proxy_account = ["6217" + str(x) for x in rng.integers(10**14, 10**15, len(names)).tolist()]
    personal_account = ["6222" + str(x) for x in rng.integers(10**14, 10**15, n).tolist()]
    branch_account = ["6226" + str(x) for x in rng.integers(10**14, 10**15, n).tolist()]
    payer = c["payer"].to_numpy()
    use_secondary = rng.random(n) < 0.5
    picks = rng.integers(0, 10**9, size=(n, 3))
    generic = rng.integers(0, len(GENERIC_MEMOS), n)
    channel = rng.integers(0, len(CHANNEL_PREFIXES), n)
    cust = c["customer"].to_numpy()
    o = [c[f"o{k}"].to_numpy() for k in range(3)]
    out_name, out_account, out_memo = [], [], []
    for i, (form, memo_form, pattern) in enumerate(zip(c["name_form"].tolist(), c["memo_form"].tolist(), c["pattern"].tolist())):
        k = int(cust[i])
        company = names[k]
        primary, secondary = customers.primary_account[k], customers.secondary_account[k]
        account = primary
        pick = int(picks[i, 0])
        if form == "exact_name":
            name = company.registered
        elif form == "short_name":
            name, account = company.short, secondary if use_secondary[i] else primary
        elif form == "region_variant":
            name, account = region_variant(company, pick), secondary if use_secondary[i] else primary
        elif form == "region_keeping":
            name, account = keeps_region_variant(company, pick), secondary if use_secondary[i] else primary
        elif form == "fullwidth":
            name, account = fullwidth_variant(company), secondary if use_secondary[i] else primary
        elif form == "traditional":
            name, account = traditional(company.registered), secondary if use_secondary[i] else primary
        elif form == "channel_prefix":
            prefix, pooled = CHANNEL_PREFIXES[channel[i]]
            name, account = prefix + company.registered, pooled
        elif form == "masked":
            name, account = masked(company), mask_account(primary)
        elif form == "name_with_account":
            name, account = company.registered + primary, ""
        elif form == "alias":
            aliases = customers.aliases_final[k].split(";")
            name = aliases[pick % len(aliases)]
        elif form == "person":
            if c.at[i, "proxy"]:
                name, account = proxy_person[k], proxy_account[k]
            else:
                name, account = persons[i], personal_account[i]
        elif form == "branch":  # a branch of the customer in another city, its own account
            city = REGIONS[(REGIONS.index(next(r for r in REGIONS if r[1] == company.region)) + 1 + pick % 5)
                           % len(REGIONS)][1]
            name, account = f"{company.registered}{city}分公司", branch_account[i]
        elif form == "other_customer":
            name, account = names[payer[i]].registered, customers.primary_account[payer[i]]
        elif form == "proxy_other":
            name, account = proxy_person[payer[i]], proxy_account[payer[i]]
        elif form == "proxy_elsewhere":
            name, account = proxy_person[payer[i]], personal_account[i]
        elif form == "intermediary":
            name, account = PAYMENT_INTERMEDIARIES[pick % len(PAYMENT_INTERMEDIARIES)]
        elif form == "latin":
            name = latin_variant(company.english, pick)
        else:  # pragma: no cover - every form is listed above
            raise AssertionError(form)
        first = order_ids[o[0][i]]
        if memo_form == "clean":
            if pattern == "deposit":
                memo = f"定金{first}"
            elif pattern == "refund":
                memo = f"退还定金{first}"
            else:
                memo = (first, f"货款{first}", f"{first}合同款")[pick % 3]
        elif memo_form == "mangled":
            memo = _mangle(first, pick)
        elif memo_form == "two_ids":
            memo = _two_ids(first, order_ids[o[1][i]], pick)
        elif memo_form == "decoy":
            memo = _decoy((int(picks[i, 1]), int(picks[i, 2]), pick), first, last_invoice_no[o[0][i]] or "10293847")
        elif memo_form == "agent":  # what the merchant's own order page passes to the channel
            memo = (f"订单{first} 货款", f"合同号:{first}", f"{_mangle(first, pick // 7)} 商户订单")[pick % 3]
        elif memo_form == "refund_surplus":
            memo = (f"退多付款 {first}", f"{first}多付款退回", f"退还多汇货款{first}")[pick % 3]
        elif memo_form == "empty":
            memo = ""
        else:
            memo = GENERIC_MEMOS[generic[i]]
        out_name.append(name)
        out_account.append(account)
        out_memo.append(memo)
    c["counterparty_name"] = out_name
    c["counterparty_account"] = out_account
    c["memo"] = out_memo


def build_unrelated(rng: np.random.Generator, count: int, customers: Customers, spare_brands: list[str]) -> pd.DataFrame:
    """Lines with no customer: interest, other income, supplier payments, fees, taxes, payroll."""
    kinds = ("other_income", "near_name_income", "government", "supplier", "fee", "tax", "social", "payroll")
    p = np.array([0.09, 0.03, 0.03, 0.50, 0.22, 0.07, 0.04, 0.02])
    kind = rng.choice(len(kinds), size=count, p=p / p.sum())
    day = rng.integers(1, LAST_DROP_DAY, count)
    time = working_time(rng, day, 8, 18)
    pick = rng.integers(0, 4, count)
    size = rng.lognormal(np.log(20_000), 1.0, count)
    region = rng.integers(0, len(REGIONS), count)
    city = np.array([r[1] for r in REGIONS], dtype=object)[region]
    spare = np.array(spare_brands, dtype=object)[rng.integers(0, len(spare_brands), count)]
    word = np.array([w[0] for w in INDUSTRY_WORDS], dtype=object)[rng.integers(0, len(INDUSTRY_WORDS), count)]
    near = np.array([c.region + c.brand for c in customers.names], dtype=object)[rng.integers(0, len(customers.names), count)]
    other_word = np.array(NON_CUSTOMER_WORDS, dtype=object)[pick % len(NON_CUSTOMER_WORDS)]
    company = city + spare + word + "有限公司"
    tax_office = "国家税务总局" + city + "市税务局"
    # Per kind: counterparty name, memo choices, amount (cents, signed).
    table = {
        "other_income": (company, ("退押金", "保证金退还", "往来款", "服务费返还"), (size * 0.3).astype(np.int64) * 100),
        # Same brand as a customer, an industry no customer has: not that customer.
        "near_name_income": (near + other_word + "有限公司", ("退押金", "往来款", "保证金退还", "场地费退回"),
                             (size * 0.2).astype(np.int64) * 100),
        "government": (np.where(pick % 2 == 0, city + "市财政局", tax_office), ("稳岗补贴", "增值税留抵退税", "高新技术企业补贴", "退税"),
                       size.astype(np.int64) * 100),
        "supplier": (company, ("采购款", "材料款", "加工费", "运费"), -size.astype(np.int64) * 100),
        "fee": (np.full(count, "", dtype=object), ("手续费", "汇款手续费", "账户管理费", "短信服务费"), -rng.integers(500, 5_000, count)),
        "tax": (tax_office, ("增值税", "企业所得税", "个人所得税", "印花税"), -(size * 0.5).astype(np.int64) * 100),
        "social": (city + "市社会保险基金管理中心", ("社保费",) * 4, -size.astype(np.int64) * 100),
        "payroll": (np.full(count, "", dtype=object), ("代发工资",) * 4, -(size * 10).astype(np.int64) * 100),
    }
    names = np.empty(count, dtype=object)
    memos = np.empty(count, dtype=object)
    amount = np.zeros(count, dtype=np.int64)
    for k, name in enumerate(kinds):
        mask = kind == k
        who, memo_choices, money = table[name]
        names[mask] = who[mask]
        memos[mask] = np.array(memo_choices, dtype=object)[pick[mask]]
        amount[mask] = money[mask]
    accounts = np.where(names == "", "", rng.integers(10**14, 10**15, count).astype(str).astype(object))
    kind = np.array(kinds, dtype=object)[kind]
    # Quarterly deposit interest (结息) on every company account, 21 March.
    interest = pd.DataFrame({
        "time": 79 * DAY + 2 * HOUR + np.arange(len(COMPANY_ACCOUNTS)) * MINUTE,
        "amount": rng.integers(5_000, 400_000, len(COMPANY_ACCOUNTS)),
        "counterparty_name": "", "counterparty_account": "", "memo": "结息",
        "kind": "interest", "account": np.arange(len(COMPANY_ACCOUNTS)),
    })
    frame = pd.DataFrame({"time": time, "amount": amount, "counterparty_name": names,
                          "counterparty_account": accounts, "memo": memos, "kind": kind, "account": -1})
    return pd.concat([frame, interest], ignore_index=True)


def build_customer_deposits(rng: np.random.Generator, customers: Customers, count: int) -> pd.DataFrame:
    """Customers paying a bid bond or a deposit under their registered name (投标保证金, 押金): their
    money, for no order (it stays unapplied cash of the customer)."""
    plain = np.flatnonzero(~customers.is_confusable)
    who = plain[rng.integers(0, len(plain), count)]
    day = rng.integers(5, LAST_DROP_DAY - 3, count)
    amount = rng.choice([500_000, 1_000_000, 2_000_000, 3_000_000], count)
    memo = np.array(CUSTOMER_DEPOSIT_MEMOS, dtype=object)[rng.integers(0, len(CUSTOMER_DEPOSIT_MEMOS), count)]
    return pd.DataFrame({
        "time": working_time(rng, day, 9, 17), "amount": amount, "customer": who,
        "counterparty_name": [customers.names[k].registered for k in who.tolist()],
        "counterparty_account": [customers.primary_account[k] for k in who.tolist()], "memo": memo,
        "kind": "customer", "account": -1, "pattern": "non_sales", "variant": "non_sales_memo",
        "name_form": "exact_name", "memo_form": "non_sales", "unapplied": amount,
    })


def is_non_sales_memo(memos: np.ndarray) -> np.ndarray:
    """Memos of the demo's vocabulary that say the money is not a payment for goods."""
    return np.array([any(w in m for w in NON_SALES_WORDS) for m in memos.tolist()], dtype=bool)


def assign_accounts_and_ids(rng: np.random.Generator, lines: pd.DataFrame) -> pd.DataFrame:
    """Which company account each line hits, and its bank serial (txn_id) there."""
    shares = np.array([a[2] for a in COMPANY_ACCOUNTS])
    unassigned = lines["account"].to_numpy() < 0
    lines.loc[unassigned, "account"] = rng.choice(len(COMPANY_ACCOUNTS), size=unassigned.sum(), p=shares / shares.sum())
    lines = lines.sort_values(["account", "time", "line"], kind="stable").reset_index(drop=True)
    seq = lines.groupby("account").cumcount().to_numpy() + 1
    account = lines["account"].to_numpy()
    pc = pa.compute
    ymd = pc.replace_substring(pa.array((np.datetime64("2025-01-01") + (lines["time"].to_numpy() // DAY)
                                         .astype("timedelta64[D]"))).cast(pa.string()), "-", "")
    serial = pa.array(seq).cast(pa.string())
    icbc = pc.binary_join_element_wise(ymd, pc.utf8_lpad(serial, 10, "0"), "")
    cmb = pc.binary_join_element_wise("CMB", pc.utf8_slice_codeunits(ymd, 2), pc.utf8_lpad(serial, 8, "0"), "")
    boc = pc.binary_join_element_wise("BOC", pc.utf8_lpad(serial, 10, "0"), "")
    ids = pc.if_else(pa.array(account == 0), icbc, pc.if_else(pa.array(account == 1), cmb, boc))
    lines["txn_id"] = ids.to_numpy(zero_copy_only=False)
    lines["account_no"] = np.array([a[0] for a in COMPANY_ACCOUNTS], dtype=object)[account]
    return lines


def downloads(rng: np.random.Generator, lines: pd.DataFrame) -> pd.DataFrame:
    """Statement downloads per account, on weekdays; a third of them overlap the previous one by a
    day, so the same line arrives twice. Returns one row per (line, download)."""
    out = []
    for a in range(len(COMPANY_ACCOUNTS)):
        days = schedule_days(rng, 2, (0, 1, 2, 3, 4), 0.05)
        ends = days * DAY  # a download on day D holds lines before D 00:00
        overlap = np.where(rng.random(len(days)) < 0.33, DAY, 0)
        overlap[0] = 0
        starts = np.concatenate([[-10 * DAY], ends[:-1] - overlap[1:]])
        mine = lines[lines["account"] == a]
        t = mine["time"].to_numpy()
        first = np.searchsorted(ends, t, side="right")
        ok = first < len(days)
        first_rows = pd.DataFrame({"line_pos": mine.index.to_numpy()[ok], "drop_day": days[first[ok]], "duplicate": False})
        nxt = first + 1
        again = ok & (nxt < len(days))
        again[again] = t[again] >= starts[nxt[again]]
        second_rows = pd.DataFrame({"line_pos": mine.index.to_numpy()[again], "drop_day": days[nxt[again]], "duplicate": True})
        out += [first_rows, second_rows]
    rows = pd.concat(out, ignore_index=True)
    return rows


def build_writeoffs(rng: np.random.Generator, lines: pd.DataFrame, orders: Orders, last_invoice: pd.DataFrame,
                    as_of_seconds: int, stale_hours: int) -> pd.DataFrame:
    """Finance write-offs of customer credits: most credits older than the alert window are
    written off, some deliberately not; one write-off is reversed and redone."""
    credit = lines[(lines["customer"] >= 0) & (lines["amount"] > 0)]
    n = len(credit)
    age = as_of_seconds - credit["time"].to_numpy()
    old = age > stale_hours * HOUR
    draw = rng.random(n)
    written = np.where(old, draw < 0.88, draw < 0.25) | credit["force_writeoff"].to_numpy()
    # Issue #12's cases are left to the engine: finance has not written them off yet.
    written &= ~credit["variant"].isin(ISSUE_CASES).to_numpy()
    confirmed_at = office_after(rng, credit["time"].to_numpy(), rng.integers(4 * HOUR, 3 * DAY, n))
    confirmed_at = np.where(credit["force_writeoff"].to_numpy(), credit["time"].to_numpy() + 6 * HOUR, confirmed_at)
    written &= confirmed_at < HORIZON
    # Deliberately left open (level-2 alert): at least two old credits.
    if old.sum() >= 2 and (old & ~written).sum() < 2:
        candidates = np.flatnonzero(old & ~credit["force_writeoff"].to_numpy())
        written[candidates[:2]] = False
    staff = rng.integers(0, len(FINANCE_STAFF), n)
    rows = []
    for slot in range(3):
        o = credit[f"o{slot}"].to_numpy()
        keep = written & (o >= 0)
        rows.append(pd.DataFrame({
            "line_pos": credit.index.to_numpy()[keep], "txn_id": credit["txn_id"].to_numpy()[keep],
            "order_idx": o[keep], "amount": credit[f"a{slot}"].to_numpy()[keep],
            "confirmed_by": np.array(FINANCE_STAFF)[staff[keep]], "confirmed_at": confirmed_at[keep],
            "status": "active",
        }))
    wo = pd.concat(rows, ignore_index=True)
    wo["version_time"] = wo["confirmed_at"]
    # One (or a proportionate few) written off to the wrong order first, reversed, then redone.
    f = orders.frame
    cust_of = f["customer"].to_numpy()
    singles = np.flatnonzero(((wo.groupby("txn_id")["txn_id"].transform("size") == 1)
                              & (wo["confirmed_at"] < HORIZON - 6 * DAY)).to_numpy())
    by_customer = np.argsort(cust_of, kind="stable")  # order indexes grouped by customer
    starts = np.searchsorted(cust_of[by_customer], np.arange(cust_of.max() + 2))
    order_col, confirmed_col = wo["order_idx"].to_numpy(), wo["confirmed_at"].to_numpy().copy()
    extra, n_reversed = [], max(1, round(0.015 * len(singles)))
    for pos in rng.permutation(singles)[: n_reversed * 3].tolist():
        if len(extra) >= 2 * n_reversed:
            break
        own = int(order_col[pos])
        customer = cust_of[own]
        others = [x for x in by_customer[starts[customer]:starts[customer + 1]].tolist() if x != own]
        if not others:
            continue
        wrong = others[int(rng.integers(0, len(others)))]
        first_at = int(confirmed_col[pos]) - 2 * HOUR
        undone_at = int(confirmed_col[pos]) + int(rng.integers(DAY, 3 * DAY))
        base = wo.iloc[pos].to_dict()
        extra.append({**base, "order_idx": wrong, "confirmed_at": first_at, "version_time": first_at, "status": "active"})
        extra.append({**base, "order_idx": wrong, "confirmed_at": first_at, "version_time": undone_at, "status": "reversed"})
        confirmed_col[pos] = undone_at + HOUR  # redone against the right order after the reversal
    wo["confirmed_at"] = confirmed_col
    wo["version_time"] = confirmed_col
    wo["redo"] = False
    if extra:
        wo = pd.concat([wo, pd.DataFrame(extra).assign(redo=True)], ignore_index=True)
    wo = wo[wo["version_time"] < HORIZON]
    # Invoice the write-off refers to (finance leaves it blank now and then).
    inv = last_invoice.reindex(wo["order_idx"].to_numpy())
    inv_ok = (inv["invoice_day"].to_numpy() * DAY <= wo["confirmed_at"].to_numpy()) & (rng.random(len(wo)) >= 0.2)
    wo["invoice_no"] = np.where(inv_ok, inv["invoice_no"].fillna("").to_numpy(), "")
    # Ids in order of first confirmation; the reversal is a later version of the same id.
    wo = wo.sort_values(["confirmed_at", "txn_id", "order_idx", "version_time"], kind="stable")
    number = wo.groupby(["txn_id", "order_idx", "confirmed_at"], sort=False).ngroup().to_numpy() + 1
    wo["writeoff_id"] = pa.compute.binary_join_element_wise(
        "WO", pa.compute.utf8_lpad(pa.array(number).cast(pa.string()), 8, "0"), "").to_numpy(zero_copy_only=False)
    return wo.sort_values(["version_time", "writeoff_id"], kind="stable").reset_index(drop=True)
