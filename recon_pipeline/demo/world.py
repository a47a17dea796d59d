"""The demo's business world: salespeople, customers, orders and their life cycle events
(CRM versions, legal review and archive, invoices). Vectorized with numpy so that a
benchmark-sized world (half a million orders) takes seconds.

Everything is seeded; events after the world's horizon simply do not exist yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recon_pipeline.demo.clock import (
    DAY,
    HORIZON,
    HOUR,
    LAST_DROP_DAY,
    MINUTE,
    MISSING,
    MONTH_END_DAYS,
    office_after,
    working_time,
)
from recon_pipeline.demo.vocab import (
    BRAND_CHARS,
    GIVEN_NAMES,
    INDUSTRY_CONFUSABLE,
    INDUSTRY_WORDS,
    LEGAL_FORMS,
    REGIONS,
    SURNAMES,
    CompanyName,
    credit_code,
)

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ORDER_STATUSES = ("signed", "cancel_after_sign", "cancel_before_sign", "rejected", "pending", "draft")
ORDER_STATUS_P = (0.86, 0.025, 0.025, 0.01, 0.05, 0.03)
# Month-end edge cases: which leg closes last, and when.
EDGE_KINDS = ("sign_1559", "sign_1601", "legal_1559", "legal_1601", "finance_1559", "finance_1601", "legal_next_day")


@dataclass(frozen=True)
class Scale:
    orders: int
    customers: int
    reps: int
    bank_lines: int  # unique bank transactions to aim for

    @classmethod
    def for_lines(cls, n_bank_lines: int | None) -> "Scale":
        if n_bank_lines is None:
            return cls(orders=350, customers=60, reps=10, bank_lines=760)
        if n_bank_lines < 200:
            raise ValueError("n_bank_lines must be at least 200")
        orders = n_bank_lines // 2
        return cls(orders=orders, customers=max(20, orders // 10), reps=max(6, orders // 35), bank_lines=n_bank_lines)


@dataclass
class People:
    frame: pd.DataFrame  # salespeople rows incl. managers and director (final state)
    versions: pd.DataFrame  # every version with its version time
    rep_ids: np.ndarray
    rep_region: np.ndarray  # region index of each rep


@dataclass
class Customers:
    names: list[CompanyName]
    ids: np.ndarray
    region: np.ndarray
    word: np.ndarray  # industry word index
    industry: list[str]
    credit_code_final: list[str]
    aliases_final: list[str]
    owner: np.ndarray  # rep index
    confusable_with: list[str]
    confusable_kind: list[str]
    is_confusable: np.ndarray
    created: np.ndarray = field(default=None)  # set once orders exist
    versions: pd.DataFrame = field(default=None)
    primary_account: list[str] = field(default=None)
    secondary_account: list[str] = field(default=None)


def person_names(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    """Chinese names and their pinyin (given.surname), reproducible."""
    s = rng.integers(0, len(SURNAMES), n)
    g = rng.integers(0, len(GIVEN_NAMES), n)
    names = [SURNAMES[a][0] + GIVEN_NAMES[b][0] for a, b in zip(s.tolist(), g.tolist())]
    pinyin = [f"{GIVEN_NAMES[b][1]}.{SURNAMES[a][1]}" for a, b in zip(s.tolist(), g.tolist())]
    return names, pinyin


def build_people(rng: np.random.Generator, scale: Scale) -> People:
    reps, managers = scale.reps, max(1, -(-scale.reps // 4))
    total = reps + managers + 1
    names, pinyin = person_names(rng, total)
    emails, seen = [], {}
    for p in pinyin:
        seen[p] = seen.get(p, 0) + 1
        emails.append(f"{p}{seen[p] if seen[p] > 1 else ''}@demo-corp.cn")
    width = max(3, len(str(reps)))
    rep_ids = np.array([f"S{i + 1:0{width}d}" for i in range(reps)])
    manager_ids = [f"M{j + 1:02d}" for j in range(managers)]
    weights = np.array([r[5] for r in REGIONS])
    rep_region = rng.choice(len(REGIONS), size=reps, p=weights / weights.sum())
    rep_region[: min(reps, len(REGIONS))] = np.arange(min(reps, len(REGIONS)))
    rep_manager = np.arange(reps) % managers
    director_email = emails[-1]
    rows = []
    for i in range(reps):
        rows.append((rep_ids[i], names[i], emails[i], emails[reps + rep_manager[i]], REGIONS[rep_region[i]][0]))
    for j in range(managers):
        rows.append((manager_ids[j], names[reps + j], emails[reps + j], director_email, REGIONS[rep_region[j % reps]][0]))
    rows.append(("D01", names[-1], director_email, "", "HQ"))
    frame = pd.DataFrame(rows, columns=["salesperson_id", "name", "email", "manager_email", "region_code"])
    frame["version_time"] = -20 * DAY + 10 * HOUR  # 2024-12-12, before the first drop
    # Some reps move to another manager in March: a second version of their row.
    movers = np.flatnonzero(rng.random(reps) < 0.1)
    if managers > 1 and len(movers) == 0:
        movers = np.array([0])
    moved = frame.iloc[movers].copy()
    if managers > 1:
        moved["manager_email"] = [emails[reps + (rep_manager[i] + 1) % managers] for i in movers]
    moved["version_time"] = 61 * DAY + 9 * HOUR  # 2025-03-03 09:00
    versions = pd.concat([frame, moved], ignore_index=True)
    final = versions.drop_duplicates("salesperson_id", keep="last").reset_index(drop=True)
    return People(final, versions, rep_ids, rep_region)


def _brands(rng: np.random.Generator, n: int, reserved: set[str]) -> list[str]:
    """`n` distinct brand names: shuffled two-character ones first, then three-character ones."""
    chars = list(BRAND_CHARS)
    k = len(chars)
    pairs = [a + b for a in chars for b in chars if a != b]
    pairs = [pairs[i] for i in rng.permutation(len(pairs))]
    brands = [b for b in pairs if b not in reserved]
    if len(brands) < n:
        need = n - len(brands)
        codes = rng.choice(k**3, size=min(k**3, int(need * 1.3) + 100), replace=False)
        extra = [chars[c // (k * k)] + chars[(c // k) % k] + chars[c % k] for c in codes.tolist()]
        extra = [b for b in extra if len(set(b)) == 3 and b not in reserved]
        brands += extra
    if len(brands) < n:
        raise ValueError("too many customers for the brand vocabulary")
    return brands[:n]


def build_customers(rng: np.random.Generator, scale: Scale, people: People) -> tuple[Customers, list[str]]:
    """Customers with confusable pairs; also returns spare brands for non-customer payers."""
    n = scale.customers
    weights = np.array([r[5] for r in REGIONS])
    region = rng.choice(len(REGIONS), size=n, p=weights / weights.sum())
    base_words = [i for i, w in enumerate(INDUSTRY_WORDS)]
    word = rng.choice(base_words, size=n)
    form_p = np.array([f[1] for f in LEGAL_FORMS])
    form = rng.choice(len(LEGAL_FORMS), size=n, p=form_p / form_p.sum())
    style_draw = rng.random(n)
    spare_count = max(200, n // 2)
    brands = _brands(rng, n + spare_count, reserved={"华信"})
    brand = brands[:n]
    spare = brands[n:]

    confusable_with = [""] * n
    confusable_kind = [""] * n
    region_code_index = {r[0]: i for i, r in enumerate(REGIONS)}
    word_index = {w[0]: i for i, w in enumerate(INDUSTRY_WORDS)}
    perm = rng.permutation(n)
    # The contract's own example: 北京华信科技 / 上海华信科技 / 北京华信信息科技, always present.
    a, b, c = perm[:3].tolist()
    for idx, reg, wd in ((a, "BJ", "科技"), (b, "SH", "科技"), (c, "BJ", "信息科技")):
        brand[idx] = "华信"
        region[idx] = region_code_index[reg]
        word[idx] = word_index[wd]
        form[idx] = 0  # 有限公司, exactly the contract's example
    confusable_with[a], confusable_kind[a] = f"{b};{c}", "region;industry"
    confusable_with[b], confusable_kind[b] = f"{a}", "region"
    confusable_with[c], confusable_kind[c] = f"{a}", "industry"
    n_pairs = max(1, round(0.02 * n))
    cursor = 3
    for kind in ("region", "industry"):
        for _ in range(n_pairs):
            if cursor + 2 > n:
                break
            i, j = perm[cursor], perm[cursor + 1]
            cursor += 2
            brand[j] = brand[i]
            if kind == "region":
                word[j] = word[i]
                region[j] = (region[i] + 1 + rng.integers(0, len(REGIONS) - 1)) % len(REGIONS)
            else:
                base = list(INDUSTRY_CONFUSABLE)[rng.integers(0, len(INDUSTRY_CONFUSABLE))]
                word[i], word[j] = word_index[base], word_index[INDUSTRY_CONFUSABLE[base]]
                region[j] = region[i]
            confusable_with[i], confusable_kind[i] = str(j), kind
            confusable_with[j], confusable_kind[j] = str(i), kind
    # A head office and its branch (分公司), both customers: the same name but for the branch.
    branch_city = [""] * n
    for _ in range(n_pairs):
        if cursor + 2 > n:
            break
        i, j = perm[cursor], perm[cursor + 1]
        cursor += 2
        brand[j], word[j], region[j], form[j] = brand[i], word[i], region[i], form[i]
        branch_city[j] = REGIONS[(region[i] + 1 + rng.integers(0, len(REGIONS) - 1)) % len(REGIONS)][1]
        confusable_with[i], confusable_kind[i] = str(j), "branch"
        confusable_with[j], confusable_kind[j] = str(i), "branch"
    is_confusable = np.array([bool(x) for x in confusable_with])

    width = max(4, len(str(n)))
    ids = np.array([f"C{i + 1:0{width}d}" for i in range(n)])
    confusable_with = [";".join(ids[int(k)] for k in x.split(";")) if x else "" for x in confusable_with]

    names = []
    for i in range(n):
        r = REGIONS[region[i]]
        style = "bracket" if (style_draw[i] < 0.12 and not is_confusable[i]) else "prefix"
        names.append(CompanyName(r[1], r[2], brand[i], INDUSTRY_WORDS[word[i]][0], LEGAL_FORMS[form[i]][0],
                                 style, bracket_fullwidth=bool(style_draw[i] < 0.06),
                                 branch=f"{branch_city[i]}分公司" if branch_city[i] else ""))
    industry = [INDUSTRY_WORDS[w][1] for w in word.tolist()]

    # Credit codes: valid check characters; some customers never gave one.
    bodies = rng.integers(0, len(CREDIT_ALPHABET), size=(n, 9))
    codes = [credit_code(REGIONS[region[i]][4], "".join(CREDIT_ALPHABET[x] for x in bodies[i])) for i in range(n)]
    has_code = rng.random(n) >= 0.12
    codes_final = [c if ok else "" for c, ok in zip(codes, has_code.tolist())]

    # Known short names (aliases), unique: brand, bank-style region abbreviation + brand, brand + 集团.
    alias_draw = rng.random(n)
    alias_pick = rng.integers(0, 3, n)
    aliases = []
    for i in range(n):
        if is_confusable[i] or alias_draw[i] >= 0.3:
            aliases.append("")
            continue
        options = [brand[i], REGIONS[region[i]][3] + brand[i], brand[i] + "集团"]
        first = options[alias_pick[i]]
        second = options[(alias_pick[i] + 1) % 3] if alias_draw[i] < 0.1 else ""
        aliases.append(";".join(x for x in (first, second) if x))
    # English names of foreign-invested customers (a Hong Kong arm pays): unique, never confusable.
    english_draw = rng.random(n)
    english_used: set[str] = set()
    wanted = max(3, round(0.06 * n))
    for i in np.argsort(english_draw, kind="stable").tolist()[: 3 * wanted]:
        english = names[i].english
        if is_confusable[i] or english in english_used or len(english_used) >= wanted:
            continue
        english_used.add(english)
        aliases[i] = ";".join(x for x in (aliases[i], english) if x)

    # Owners: a rep of the customer's region where there is one.
    owner = np.empty(n, dtype=np.int64)
    by_region: dict[int, np.ndarray] = {r: np.flatnonzero(people.rep_region == r) for r in range(len(REGIONS))}
    pick = rng.random(n)
    for i in range(n):
        pool = by_region.get(int(region[i]))
        if pool is None or len(pool) == 0:
            pool = np.arange(len(people.rep_ids))
        owner[i] = pool[int(pick[i] * len(pool))]

    accounts = rng.integers(10**14, 10**15, size=(n, 2))
    prefixes = ("6222", "6217", "3100", "1100", "4420")
    primary = [prefixes[i % 5] + str(accounts[i, 0]) for i in range(n)]
    secondary = [prefixes[(i + 2) % 5] + str(accounts[i, 1]) for i in range(n)]
    customers = Customers(names, ids, region, word, industry, codes_final, aliases, owner,
                          confusable_with, confusable_kind, is_confusable)
    customers.primary_account, customers.secondary_account = primary, secondary
    return customers, spare


@dataclass
class Orders:
    frame: pd.DataFrame  # one row per order, final state and scheduled event times


def build_orders(rng: np.random.Generator, scale: Scale, customers: Customers, people: People) -> Orders:
    n, c = scale.orders, len(customers.ids)
    # Every customer gets an order; the rest go to customers of uneven size.
    weights = rng.lognormal(0.0, 1.0, c)
    cust = np.concatenate([rng.permutation(c), rng.choice(c, size=max(0, n - c), p=weights / weights.sum())])[:n]
    status = rng.choice(len(ORDER_STATUSES), size=n, p=ORDER_STATUS_P)
    forced = np.zeros(n, dtype=bool)
    # Confusable customers must be active payers: their first order is signed early and paid.
    first_of_customer = np.zeros(n, dtype=bool)
    first_of_customer[:c] = True
    forced |= first_of_customer & customers.is_confusable[cust]
    status[forced] = 0

    # Forward in office hours: created -> submitted for approval -> approved -> signed.
    created_day = rng.integers(1, 115, n)
    created_day[forced] = rng.integers(1, 50, forced.sum())
    created = working_time(rng, created_day)
    submitted = office_after(rng, created, rng.integers(20 * MINUTE, 30 * HOUR, n))
    waiting = np.clip(rng.lognormal(np.log(3 * HOUR), 1.0, n), 0.2 * HOUR, 72 * HOUR).astype(np.int64)
    approved = office_after(rng, submitted, waiting)
    signed = office_after(rng, approved, rng.integers(30 * MINUTE, 72 * HOUR, n))

    # Month-end edge cases, a fixed share of the signed orders (at least one of each kind).
    edge = np.full(n, "", dtype=object)
    candidates = np.flatnonzero((status == 0) & ~forced)
    per_kind = max(1, round(0.006 * n))
    chosen = rng.permutation(candidates)[: per_kind * len(EDGE_KINDS)]
    month_pick = rng.integers(0, len(MONTH_END_DAYS), len(chosen))
    for k, (order, m) in enumerate(zip(chosen.tolist(), month_pick.tolist())):
        kind = EDGE_KINDS[k % len(EDGE_KINDS)]
        edge[order] = kind
        month_end = MONTH_END_DAYS[m]
        if kind.startswith("sign"):
            minute = 15 * HOUR + 59 * MINUTE if kind == "sign_1559" else 16 * HOUR + 1 * MINUTE
            signed[order] = month_end * DAY + minute + rng.integers(0, 59)
        else:
            # The other legs close well before the month end; this leg closes at the edge.
            signed[order] = working_time(rng, np.array([month_end - rng.integers(12, 20)]), 11, 17)[0]
        approved[order] = signed[order] - rng.integers(1 * HOUR, 2 * HOUR)
        submitted[order] = approved[order] - rng.integers(30 * MINUTE, 1 * HOUR)
        created[order] = working_time(rng, np.array([submitted[order] // DAY - rng.integers(1, 4)]))[0]
        forced[order] = True

    pending = status == ORDER_STATUSES.index("pending")
    submitted[pending] = working_time(rng, rng.integers(LAST_DROP_DAY - 6, LAST_DROP_DAY, pending.sum()))
    # A few approvals submitted on the as-of morning: pending, but not yet for two hours.
    fresh = np.flatnonzero(pending)[: max(1, round(0.003 * n))]
    submitted[fresh] = HORIZON + 7 * HOUR + rng.integers(0, 80 * MINUTE, len(fresh))
    created[pending] = working_time(rng, submitted[pending] // DAY - rng.integers(0, 3, pending.sum()), 9, 12)
    draft = status == ORDER_STATUSES.index("draft")
    created[draft] = working_time(rng, rng.integers(LAST_DROP_DAY - 14, LAST_DROP_DAY, draft.sum()))
    cancel_before = status == ORDER_STATUSES.index("cancel_before_sign")
    cancel_after = status == ORDER_STATUSES.index("cancel_after_sign")
    cancelled_at = np.full(n, MISSING)
    cancelled_at[cancel_before] = office_after(rng, approved[cancel_before], rng.integers(2 * HOUR, 5 * DAY, cancel_before.sum()))
    cancelled_at[cancel_after] = office_after(rng, signed[cancel_after], rng.integers(6 * DAY, 30 * DAY, cancel_after.sum()))

    # Amounts: mostly round hundreds, some whole yuan, some with fen.
    yuan = np.clip(rng.lognormal(np.log(45_000), 0.9, n), 3_000, 3_000_000)
    kind = rng.random(n)
    cents = np.where(kind < 0.65, np.round(yuan / 100) * 10_000,
                     np.where(kind < 0.9, np.round(yuan) * 100, np.round(yuan * 100))).astype(np.int64)
    # Same customer, same amount: the classic allocation trap.
    order_by_cust = np.argsort(cust, kind="stable")
    same_prev = np.zeros(n, dtype=bool)
    same_prev[1:] = cust[order_by_cust[1:]] == cust[order_by_cust[:-1]]
    copy = np.flatnonzero(same_prev & (rng.random(n) < 0.04))
    cents[order_by_cust[copy]] = cents[order_by_cust[copy - 1]]

    # Amount corrections: in the signed version (pre) or a version after signing (post).
    correction = np.full(n, "", dtype=object)
    signed_like = (status == 0) | cancel_after
    draw = rng.random(n)
    correction[signed_like & (draw < 0.05) & ~forced] = "pre"
    correction[signed_like & (draw >= 0.05) & (draw < 0.08) & ~forced] = "post"
    original = cents.copy()
    corrected = correction != ""
    factor = rng.uniform(0.85, 1.15, n)
    original[corrected] = (np.round(cents[corrected] * factor[corrected] / 10_000) * 10_000).astype(np.int64)
    original[corrected & (original == cents)] += 50_000
    corrected_at = np.full(n, MISSING)
    post = correction == "post"
    corrected_at[post] = office_after(rng, signed[post], rng.integers(2 * HOUR, 30 * HOUR, post.sum()))

    # Order IDs are given at creation: serials per region in creation order.
    sequence = np.argsort(created, kind="stable")
    region = customers.region[cust]
    serial = np.zeros(n, dtype=np.int64)
    counters = np.zeros(len(REGIONS), dtype=np.int64)
    for position in sequence.tolist():  # O(n) and simple; vectorizing this buys nothing
        counters[region[position]] += 1
        serial[position] = counters[region[position]]
    if serial.max() > 99_999:
        raise ValueError("too many orders for 5-digit serials; lower n_bank_lines")

    frame = pd.DataFrame({
        "order_idx": np.arange(n),
        "customer": cust,
        "rep": customers.owner[cust],
        "region": region,
        "serial": serial,
        "status": np.array(ORDER_STATUSES, dtype=object)[status],
        "created": created,
        "submitted": submitted,
        "approved": approved,
        "signed": signed,
        "cancelled_at": cancelled_at,
        "amount": cents,
        "original_amount": original,
        "correction": correction,
        "corrected_at": corrected_at,
        "edge": edge,
        "forced": forced,
    })
    frame["order_id"] = [f"25{REGIONS[r][0]}{s:05d}" for r, s in zip(region.tolist(), serial.tolist())]
    # Output in creation order, as a CRM lists them.
    frame = frame.iloc[sequence].reset_index(drop=True)
    frame["order_idx"] = np.arange(n)
    return Orders(frame)


def finalize_customers(rng: np.random.Generator, customers: Customers, orders: Orders) -> None:
    """Creation times (before the first order) and the versions each customer row went through."""
    frame = orders.frame
    first = frame.groupby("customer")["created"].min().reindex(range(len(customers.ids))).to_numpy()
    n = len(customers.ids)
    created = first - rng.integers(3 * DAY, 60 * DAY, n)
    created = (created // DAY) * DAY + 10 * HOUR + rng.integers(0, 7 * HOUR, n)
    customers.created = created
    has_alias = np.array([bool(a) for a in customers.aliases_final])
    has_code = np.array([bool(c) for c in customers.credit_code_final])
    draw = rng.random(n)
    updated = (draw < 0.35) | (has_alias & (draw < 0.6)) | (~has_code & (draw < 0.5))
    update_at = created + ((HORIZON - 2 * DAY - created) * rng.uniform(0.2, 0.9, n)).astype(np.int64)
    update_at = working_time(rng, update_at // DAY)
    # The first version lacks what the update adds (aliases, credit code, a new owner).
    v0_alias = [a if not (u and d < 0.6) else "" for a, u, d in zip(customers.aliases_final, updated, draw)]
    v0_code = [c if not (u and d < 0.3) else "" for c, u, d in zip(customers.credit_code_final, updated, draw)]
    codes_later = rng.integers(0, len(CREDIT_ALPHABET), size=(n, 9))
    final_codes = list(customers.credit_code_final)
    for i in np.flatnonzero(updated & ~has_code & (draw < 0.3)).tolist():
        final_codes[i] = credit_code(REGIONS[customers.region[i]][4], "".join(CREDIT_ALPHABET[x] for x in codes_later[i]))
    customers.credit_code_final = final_codes
    v0_owner = customers.owner.copy()
    rows = []
    base = dict(
        customer_id=customers.ids,
        customer_name=[x.registered for x in customers.names],
        region_code=[REGIONS[r][0] for r in customers.region.tolist()],
        industry=customers.industry,
    )
    v0 = pd.DataFrame({**base, "credit_code": v0_code, "aliases": v0_alias, "owner": v0_owner, "version_time": created})
    rows.append(v0)
    upd = pd.DataFrame({**base, "credit_code": final_codes, "aliases": customers.aliases_final,
                        "owner": customers.owner, "version_time": update_at})
    rows.append(upd[updated])
    customers.versions = pd.concat(rows, ignore_index=True)


def contract_versions(orders: Orders) -> pd.DataFrame:
    """Every state an order went through, one row per state change (CRM upserts)."""
    f = orders.frame
    parts = []

    def state(mask, time, status, approval, amount, signed_at, slot):
        sub = f[mask]
        parts.append(pd.DataFrame({
            "order_idx": sub["order_idx"].to_numpy(),
            "slot": slot,
            "version_time": time[mask.to_numpy()] if isinstance(time, np.ndarray) else sub[time].to_numpy(),
            "status": status,
            "approval_status": approval if isinstance(approval, str) else approval[mask.to_numpy()],
            "amount": sub[amount].to_numpy(),
            "signed_at": sub["signed"].to_numpy() if signed_at else MISSING,
            "approval_submitted_at": sub["submitted"].to_numpy() if slot >= 1 else MISSING,
            "approval_updated_at": (sub["submitted"] if slot == 1 else sub["approved"]).to_numpy() if slot >= 1 else MISSING,
        }))

    s = f["status"]
    reached_approval = s.isin(["signed", "cancel_after_sign", "cancel_before_sign", "rejected"])
    reached_signing = s.isin(["signed", "cancel_after_sign"])
    everyone = pd.Series(True, index=f.index)
    state(everyone, "created", "draft", "", "original_amount", False, 0)
    state(s != "draft", "submitted", "submitted", "pending", "original_amount", False, 1)
    approval = np.where(s == "rejected", "rejected", "approved")
    state(reached_approval, "approved", "submitted", approval, "original_amount", False, 2)
    pre = f["correction"] == "pre"
    sign_amount = np.where(pre, f["amount"], f["original_amount"])
    f = f.assign(sign_amount=sign_amount)
    signed_rows = f[reached_signing]
    parts.append(pd.DataFrame({
        "order_idx": signed_rows["order_idx"].to_numpy(), "slot": 3, "version_time": signed_rows["signed"].to_numpy(),
        "status": "signed", "approval_status": "approved", "amount": signed_rows["sign_amount"].to_numpy(),
        "signed_at": signed_rows["signed"].to_numpy(), "approval_submitted_at": signed_rows["submitted"].to_numpy(),
        "approval_updated_at": signed_rows["approved"].to_numpy(),
    }))
    post = f[f["correction"] == "post"]
    parts.append(pd.DataFrame({
        "order_idx": post["order_idx"].to_numpy(), "slot": 4, "version_time": post["corrected_at"].to_numpy(),
        "status": "signed", "approval_status": "approved", "amount": post["amount"].to_numpy(),
        "signed_at": post["signed"].to_numpy(), "approval_submitted_at": post["submitted"].to_numpy(),
        "approval_updated_at": post["approved"].to_numpy(),
    }))
    gone = f[f["cancelled_at"] != MISSING]
    after = (gone["status"] == "cancel_after_sign").to_numpy()
    parts.append(pd.DataFrame({
        "order_idx": gone["order_idx"].to_numpy(), "slot": 5, "version_time": gone["cancelled_at"].to_numpy(),
        "status": "cancelled", "approval_status": "approved", "amount": gone["amount"].to_numpy(),
        "signed_at": np.where(after, gone["signed"].to_numpy(), MISSING),
        "approval_submitted_at": gone["submitted"].to_numpy(), "approval_updated_at": gone["approved"].to_numpy(),
    }))
    versions = pd.concat(parts, ignore_index=True)
    return versions.sort_values(["order_idx", "slot"], kind="stable").reset_index(drop=True)


def build_legal(rng: np.random.Generator, orders: Orders) -> pd.DataFrame:
    """Legal review and archive of signed orders: one archive record per order, in versions."""
    f = orders.frame
    signed = f[f["status"] == "signed"]
    n = len(signed)
    order_idx = signed["order_idx"].to_numpy()
    signed_at = signed["signed"].to_numpy()
    edge = signed["edge"].to_numpy()
    submitted = office_after(rng, signed_at, rng.integers(2 * HOUR, 2 * DAY, n))
    reviewed = office_after(rng, submitted, np.clip(rng.lognormal(np.log(1.5 * DAY), 0.6, n), 2 * HOUR, 10 * DAY))
    outcome_draw = rng.random(n)
    outcome = np.where(outcome_draw < 0.88, "approved", np.where(outcome_draw < 0.92, "rejected", "pending"))
    archived = office_after(rng, reviewed, rng.integers(1 * HOUR, 4 * DAY, n))
    never = rng.random(n) < 0.10  # signed, approved, but never archived
    forced = signed["forced"].to_numpy()
    outcome[forced] = "approved"
    never[forced] = False
    # Month-end edges: archive exactly around the cutoff, or the morning after it.
    for k in np.flatnonzero(edge != "").tolist():
        kind = edge[k]
        month_end = _month_end_after(signed_at[k])
        if kind in ("legal_1559", "legal_1601"):
            minute = 15 * HOUR + 59 * MINUTE if kind == "legal_1559" else 16 * HOUR + 1 * MINUTE
            archived[k] = month_end * DAY + minute + rng.integers(0, 59)
        elif kind == "legal_next_day":
            archived[k] = (month_end + 1) * DAY + 9 * HOUR + 30 * MINUTE + rng.integers(0, 600)
        elif kind.startswith("finance"):
            archived[k] = working_time(rng, np.array([signed_at[k] // DAY + 3 + rng.integers(0, 2)]))[0]
        else:
            continue
        reviewed[k] = min(reviewed[k], archived[k] - 2 * HOUR)
        submitted[k] = min(submitted[k], reviewed[k] - 2 * HOUR)
    frame = pd.DataFrame({
        "order_idx": order_idx, "submitted": submitted,
        "reviewed": np.where(outcome == "pending", MISSING, reviewed),
        "archived": np.where((outcome == "approved") & ~never, archived, MISSING),
        "outcome": outcome,
    })
    frame["order_id"] = f["order_id"].to_numpy()[order_idx]
    # A few archive records of orders the CRM does not have (last year's system).
    n_orphans = max(2, round(0.006 * len(f)))
    orphan_submitted = working_time(rng, rng.integers(5, 110, n_orphans))
    orphan_regions = rng.integers(0, len(REGIONS), n_orphans)
    orphans = pd.DataFrame({
        "order_idx": -1, "submitted": orphan_submitted,
        "reviewed": orphan_submitted + 5 * HOUR, "archived": orphan_submitted + 2 * DAY,
        "outcome": "approved",
        "order_id": [f"24{REGIONS[r][0]}{s:05d}" for r, s in zip(orphan_regions.tolist(), rng.integers(1, 3000, n_orphans).tolist())],
    })
    frame = pd.concat([frame, orphans], ignore_index=True)
    frame = frame.sort_values(["submitted", "order_id"], kind="stable").reset_index(drop=True)
    frame["archive_no"] = [f"GD25{i + 1:06d}" for i in range(len(frame))]
    return frame


def _month_end_after(seconds: int) -> int:
    day = int(seconds // DAY)
    return next((m for m in MONTH_END_DAYS if m >= day + 5), MONTH_END_DAYS[-1])


def legal_versions(legal: pd.DataFrame) -> pd.DataFrame:
    parts = []
    base = legal[["archive_no", "order_id", "order_idx", "submitted"]]
    parts.append(base.assign(slot=0, review_status="pending", reviewed_at=MISSING, archived_at=MISSING,
                             version_time=legal["submitted"]))
    reviewed = legal[legal["reviewed"] != MISSING]
    parts.append(reviewed[["archive_no", "order_id", "order_idx", "submitted"]].assign(
        slot=1, review_status=reviewed["outcome"], reviewed_at=reviewed["reviewed"], archived_at=MISSING,
        version_time=reviewed["reviewed"]))
    archived = legal[legal["archived"] != MISSING]
    parts.append(archived[["archive_no", "order_id", "order_idx", "submitted"]].assign(
        slot=2, review_status="approved", reviewed_at=archived["reviewed"], archived_at=archived["archived"],
        version_time=archived["archived"]))
    versions = pd.concat(parts, ignore_index=True)
    return versions.sort_values(["archive_no", "slot"], kind="stable").reset_index(drop=True)


INVOICE_PATTERNS = ("single", "installments", "red_reissue", "void_reissue", "none")
INVOICE_PATTERN_P = (0.68, 0.13, 0.06, 0.04, 0.09)


def build_invoices(rng: np.random.Generator, orders: Orders, tax_rates: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Invoice versions of signed orders; returns (versions, invoice pattern per order).

    Columns: order_idx, key (invoice sequence), invoice_day, total (cents, negative for red),
    invoice_type, status, version_time. Voiding is a second version of the same invoice.
    """
    f = orders.frame
    n = len(f)
    pattern = np.full(n, "", dtype=object)
    signed = (f["status"] == "signed").to_numpy()
    pattern[signed] = rng.choice(INVOICE_PATTERNS, size=signed.sum(), p=INVOICE_PATTERN_P)
    forced = f["forced"].to_numpy() & signed
    pattern[forced] = "single"
    ready = np.maximum(f["signed"].to_numpy(), np.where(f["corrected_at"].to_numpy() == MISSING, 0, f["corrected_at"].to_numpy()))
    first_day = ready // DAY + rng.integers(1, 13, n)
    first_day[forced] = f["signed"].to_numpy()[forced] // DAY + 1
    amount = f["amount"].to_numpy()
    rows = []  # (order_idx, seq, day, total, type, status, version_time)

    def issue(idx, day, total, kind="normal", seq=0, status="issued", version_time=None):
        t = version_time if version_time is not None else working_time(rng, day)
        rows.append(pd.DataFrame({"order_idx": idx, "seq": seq, "invoice_day": day, "total": total,
                                  "invoice_type": kind, "status": status, "version_time": t}))

    idx = np.flatnonzero(pattern == "single")
    issue(idx, first_day[idx], amount[idx])

    idx = np.flatnonzero(pattern == "installments")
    parts = rng.integers(2, 4, len(idx))
    shares = np.where(parts == 2, rng.choice([30, 50], len(idx)), 30)
    day = first_day[idx]
    paid = np.zeros(len(idx), dtype=np.int64)
    for k in range(3):
        live = parts > k
        last = parts == k + 1
        share_cents = (amount[idx] * shares // 100) // 100 * 100
        total = np.where(last, amount[idx] - paid, share_cents)
        issue(idx[live], day[live], total[live], seq=k)
        paid = paid + np.where(live, total, 0)
        day = day + rng.integers(20, 46, len(idx))

    idx = np.flatnonzero(pattern == "red_reissue")
    red_day = first_day[idx] + rng.integers(3, 21, len(idx))
    issue(idx, first_day[idx], amount[idx], seq=0)
    issue(idx, red_day, -amount[idx], kind="red", seq=1)
    issue(idx, red_day + rng.integers(0, 4, len(idx)), amount[idx], seq=2)

    idx = np.flatnonzero(pattern == "void_reissue")
    issued_at = working_time(rng, first_day[idx])
    void_at = office_after(rng, issued_at, rng.integers(2 * HOUR, 2 * DAY, len(idx)))
    issue(idx, first_day[idx], amount[idx], seq=0, version_time=issued_at)
    issue(idx, first_day[idx], amount[idx], seq=0, status="voided", version_time=void_at)
    issue(idx, void_at // DAY, amount[idx], seq=1, version_time=void_at + 30 * MINUTE)

    inv = pd.concat(rows, ignore_index=True)
    inv = inv[(inv["version_time"] < HORIZON) & (inv["invoice_day"] < LAST_DROP_DAY)]
    # Invoice numbers in the order the ERP issued them (the voided version keeps its number).
    first_versions = inv.sort_values(["version_time", "order_idx", "seq"], kind="stable").drop_duplicates(["order_idx", "seq"])
    start = int(rng.integers(10_000_000, 40_000_000))
    numbers = pd.Series([f"{start + i:08d}" for i in range(len(first_versions))],
                        index=pd.MultiIndex.from_frame(first_versions[["order_idx", "seq"]]))
    inv["invoice_no"] = numbers.reindex(pd.MultiIndex.from_frame(inv[["order_idx", "seq"]])).to_numpy()
    rate = tax_rates[inv["order_idx"].to_numpy()]
    total = inv["total"].to_numpy()
    excl = np.sign(total) * ((np.abs(total) * 100 + (100 + rate) // 2) // (100 + rate))
    inv["amount_excl_tax"] = excl
    inv["tax_amount"] = total - excl
    inv = inv.sort_values(["version_time", "invoice_no"], kind="stable").reset_index(drop=True)
    return inv, pattern
