"""Ground truth of the demo, computed from the generator's own events (never from the pipeline).

Orders: the three legs, `is_closed` and `recognized_period` by the contract's rules at the
suggested as-of, counting only receipts the pipeline links without a human (memo order ID,
exact registered name, known alias, a payer account finance already confirmed) or that an
active write-off links. Orders whose answer would change if fuzzy suggestions were accepted
are marked, and their "if everything were linked" answer is given next to it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from recon_pipeline.demo.clock import AS_OF_SECONDS, DAY, MISSING, recognized_period
from recon_pipeline.demo.vocab import CHANNEL_PREFIXES

POOLED_ACCOUNTS = frozenset(account for _, account in CHANNEL_PREFIXES)
# Memo forms that name every order the line pays (or refunds).
MEMO_NAMES_ORDERS = ("clean", "mangled", "two_ids", "agent", "refund_surplus")


def allocation_rows(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per (customer line, order) with the intended allocation."""
    parts = []
    customer_lines = lines[lines["customer"] >= 0]
    for slot in range(3):
        o = customer_lines[f"o{slot}"].to_numpy()
        keep = o >= 0
        parts.append(pd.DataFrame({
            "line_pos": customer_lines.index.to_numpy()[keep], "order_idx": o[keep],
            "alloc": customer_lines[f"a{slot}"].to_numpy()[keep], "time": customer_lines["time"].to_numpy()[keep],
            "txn_id": customer_lines["txn_id"].to_numpy()[keep],
        }))
    return pd.concat(parts, ignore_index=True)


def line_evidence(lines: pd.DataFrame, customers, writeoffs_current: pd.DataFrame) -> pd.DataFrame:
    """Per customer line: the strong evidence a pipeline can link it by, and how its name reads."""
    cust = lines["customer"].to_numpy()
    has = cust >= 0
    registered = np.array([x.registered for x in customers.names], dtype=object)
    alias_sets = [set(a.split(";")) if a else set() for a in customers.aliases_final]
    name = lines["counterparty_name"].to_numpy()
    exact = np.zeros(len(lines), dtype=bool)
    exact[has] = name[has] == registered[cust[has]]
    alias = np.zeros(len(lines), dtype=bool)
    for i in np.flatnonzero(has & (lines["name_form"] == "alias").to_numpy()).tolist():
        alias[i] = name[i] in alias_sets[cust[i]]
    # An English alias printed another way (CO., LTD. for CO., LIMITED, no punctuation) is the alias.
    alias |= has & (lines["name_form"] == "latin").to_numpy()
    memo = lines["memo_form"].isin(MEMO_NAMES_ORDERS).to_numpy() & has
    # Accounts confirmed by finance: an active write-off on another line from that account, for
    # exactly one customer (pooled payment-channel accounts never count).
    account = _effective_account(lines)
    active = writeoffs_current[writeoffs_current["status"] == "active"]
    confirmed_pos = np.unique(active["line_pos"].to_numpy())
    confirmed = pd.DataFrame({"account": account[confirmed_pos], "customer": cust[confirmed_pos]})
    confirmed = confirmed[(confirmed["account"] != "") & ~confirmed["account"].isin(POOLED_ACCOUNTS)]
    stats = confirmed.groupby("account").agg(owners=("customer", "nunique"), owner=("customer", "first"),
                                             lines=("customer", "size"))
    own_confirmed = np.zeros(len(lines), dtype=np.int64)
    own_confirmed[confirmed_pos] = 1
    joined = stats.reindex(account)
    by_account = (has & (joined["owners"].to_numpy() == 1) & (joined["owner"].to_numpy() == cust)
                  & (joined["lines"].fillna(0).to_numpy() - own_confirmed > 0))
    kinds = (("memo_order_id", memo), ("exact_name", exact), ("alias", alias), ("payer_account", by_account))
    evidence = join_present([pa.array(np.where(flag, label, ""), type=pa.string()) for label, flag in kinds])
    evidence = evidence.to_numpy(zero_copy_only=False)
    form = lines["name_form"].fillna("").to_numpy()
    name_evidence = np.where(~has, "", np.where(exact, "exact", np.where(alias, "alias", np.where(
        np.isin(form, ["masked", "person"]), "weak", "normalized"))))
    return pd.DataFrame({"strong_evidence": evidence, "name_evidence": name_evidence,
                         "customer_strong": exact | alias | by_account, "memo_strong": memo}, index=lines.index)


def join_present(parts: list[pa.Array], separator: str = ";") -> pa.Array:
    """Element-wise join of the non-empty strings (`a;b`, never `a;;b` or `;b`)."""
    joined = pa.compute.binary_join_element_wise(*parts, separator)
    collapsed = pa.compute.replace_substring_regex(joined, f"{separator}+", separator)
    return pa.compute.utf8_trim(collapsed, separator)


def _effective_account(lines: pd.DataFrame) -> np.ndarray:
    """The payer account a line shows, including one run together with the name."""
    account = lines["counterparty_account"].fillna("").to_numpy().astype(object)
    with_account = (lines["name_form"] == "name_with_account").to_numpy()
    names = lines["counterparty_name"].to_numpy()
    for i in np.flatnonzero(with_account).tolist():
        account[i] = "".join(ch for ch in names[i] if ch.isdigit())
    return account


def _cover_time(keys: np.ndarray, times: np.ndarray, amounts: np.ndarray, targets: dict, tolerance: int,
                n_orders: int) -> np.ndarray:
    """Per order: when the running sum of `amounts` (in time order) last reached the target
    within the tolerance and stayed there; MISSING if it does not cover at the end."""
    result = np.full(n_orders, MISSING)
    if len(keys) == 0:
        return result
    order = np.lexsort((times, keys))
    k, t, a = keys[order], times[order], amounts[order]
    start = np.r_[True, k[1:] != k[:-1]]
    group_start = np.maximum.accumulate(np.where(start, np.arange(len(k)), 0))
    running = np.cumsum(a)
    before = np.r_[0, running[:-1]]
    running = running - before[group_start]
    covered = running >= targets[k] - tolerance
    pos = np.arange(len(k))
    last_bad = np.maximum.accumulate(np.where(~covered, pos, group_start - 1))
    end = np.r_[k[1:] != k[:-1], True]
    final = np.flatnonzero(end & covered)
    result[k[final]] = t[last_bad[final] + 1]
    return result


def orders_truth(orders, crm_current: pd.DataFrame, legal_current: pd.DataFrame, invoices_current: pd.DataFrame,
                 allocations: pd.DataFrame, strong_alloc: np.ndarray, ambiguous_line: np.ndarray,
                 cutoff_hour: int, tolerance_cents: int) -> pd.DataFrame:
    f = orders.frame
    n = len(f)
    crm = crm_current.set_index("order_idx").reindex(range(n))
    status = crm["status"].to_numpy()
    amount = crm["amount"].to_numpy().astype(np.int64)
    sales = np.where(status == "signed", crm["signed_at"].to_numpy(), MISSING).astype(np.int64)

    legal = legal_current[legal_current["order_idx"] >= 0].set_index("order_idx").reindex(range(n))
    legal_ok = (legal["review_status"] == "approved").to_numpy() & (legal["archived_at"].fillna(MISSING).to_numpy() != MISSING)
    legal_closed = np.where(legal_ok, legal["archived_at"].fillna(MISSING).to_numpy(), MISSING).astype(np.int64)

    live = invoices_current[invoices_current["status"] != "voided"]
    inv_keys = live["order_idx"].to_numpy()
    invoiced = np.bincount(inv_keys, weights=live["total"].to_numpy(), minlength=n).astype(np.int64)
    inv_day = _cover_time(inv_keys, live["invoice_day"].to_numpy() * DAY + live["version_time"].to_numpy() % DAY,
                          live["total"].to_numpy(), amount, tolerance_cents, n)
    inv_cover = np.where(inv_day == MISSING, MISSING, (inv_day // DAY) * DAY)

    def finance(mask):
        rows = allocations[mask]
        keys = rows["order_idx"].to_numpy()
        credit = _cover_time(keys, rows["time"].to_numpy(), rows["alloc"].to_numpy(), amount, tolerance_cents, n)
        both = (credit != MISSING) & (inv_cover != MISSING)
        received = np.bincount(keys, weights=rows["alloc"].to_numpy(), minlength=n).astype(np.int64)
        return np.where(both, np.maximum(credit, inv_cover), MISSING), received

    fin_strict, received_strict = finance(strong_alloc)
    fin_all, received_all = finance(np.ones(len(allocations), dtype=bool))

    def closing(fin):
        legs = np.stack([sales, legal_closed, fin])
        closed = (legs != MISSING).all(axis=0)
        last = np.where(closed, legs.max(axis=0), MISSING)
        closed &= last <= AS_OF_SECONDS
        return closed, recognized_period(np.where(closed, last, MISSING), cutoff_hour)

    closed, period = closing(fin_strict)
    closed_all, period_all = closing(fin_all)
    weak = ~strong_alloc
    depends = np.zeros(n, dtype=bool)
    depends[allocations["order_idx"].to_numpy()[weak]] = True
    guess = np.zeros(n, dtype=bool)
    guess[allocations["order_idx"].to_numpy()[ambiguous_line[allocations["line_pos"].to_numpy()]]] = True
    return pd.DataFrame({
        "order_idx": np.arange(n),
        "status": status,
        "contract_amount": amount,
        "invoiced_amount": invoiced,
        "received_linked_amount": received_strict,
        "received_all_amount": received_all,
        "sales_leg_closed_at": sales,
        "legal_leg_closed_at": legal_closed,
        "finance_leg_closed_at": fin_strict,
        "is_closed": closed,
        "recognized_period": period,
        "depends_on_fuzzy": depends & (fin_strict != fin_all),
        "has_fuzzy_only_receipts": depends,
        "depends_on_allocation_guess": guess,
        "finance_leg_closed_at_if_all_linked": fin_all,
        "is_closed_if_all_linked": closed_all,
        "recognized_period_if_all_linked": period_all,
    })


def allocation_unambiguous(lines: pd.DataFrame, orders, tolerance_cents: int) -> np.ndarray:
    """True where the intended allocation follows from the line alone: the memo names every
    order, or the amount fits exactly one of the customer's orders (alone or as the combination)."""
    f = orders.frame
    n = len(lines)
    result = np.ones(n, dtype=bool)
    signed = f[f["status"] == "signed"]
    by_customer = signed.sort_values("customer", kind="stable")
    keys, starts = np.unique(by_customer["customer"].to_numpy(), return_index=True)
    chunks = np.split(by_customer["amount"].to_numpy(), starts[1:])
    amounts_of = dict(zip(keys.tolist(), chunks))
    pattern = lines["pattern"].fillna("").to_numpy()
    memo_names_all = lines["memo_form"].isin(MEMO_NAMES_ORDERS).to_numpy()
    cust = lines["customer"].to_numpy()
    value = lines["amount"].to_numpy()
    open_question = (cust >= 0) & ~memo_names_all
    exact = np.flatnonzero(open_question & (pattern == "exact"))
    # Exact payments: how many of the customer's signed orders the amount fits.
    pairs = pd.DataFrame({"line": exact, "customer": cust[exact], "value": value[exact]}).merge(
        pd.DataFrame({"customer": signed["customer"].to_numpy(), "amount": signed["amount"].to_numpy()}), on="customer")
    fits = pairs[(pairs["amount"] - pairs["value"]).abs() <= tolerance_cents].groupby("line").size()
    result[exact] = fits.reindex(exact).fillna(0).to_numpy() == 1
    for i in np.flatnonzero(open_question & (pattern != "exact")).tolist():
        amounts = amounts_of.get(int(cust[i]), _NONE)
        if pattern[i] == "combined":
            result[i] = _unique_subset_sum(amounts, int(value[i]), tolerance_cents)
        elif pattern[i] == "non_sales":  # a deposit for no order: it stays unapplied, whatever is open
            result[i] = True
        else:
            result[i] = len(amounts) == 1
    return result


_NONE = np.array([], dtype=np.int64)


def _unique_subset_sum(amounts: np.ndarray, value: int, tolerance: int) -> bool:
    """Exactly one subset of up to three of the customer's orders sums to `value`."""
    if len(amounts) > 40:
        return False  # too many open orders to call it unambiguous
    a = amounts.astype(np.int64)
    hits = int((np.abs(a - value) <= tolerance).sum())
    pairs = a[:, None] + a[None, :]
    iu = np.triu_indices(len(a), 1)
    hits += int((np.abs(pairs[iu] - value) <= tolerance).sum())
    if hits <= 1 and len(a) >= 3:
        triples = pairs[:, :, None] + a[None, None, :]
        i, j, k = np.meshgrid(*(np.arange(len(a)),) * 3, indexing="ij")
        mask = (i < j) & (j < k)
        hits += int((np.abs(triples[mask] - value) <= tolerance).sum())
    return hits == 1
