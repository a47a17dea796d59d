"""Payer matching: link every bank line to a customer and allocate it to orders.

`build_receipt_links` is the seam between the pipeline and the matching engine: it takes the
current state of the sources as pandas frames (amounts as int64 cents) and returns the rows of
`matching.receipt_links` (see docs/architecture.md).

Linking, strongest first (CONTRACT.md section 3); only the first four link automatically:
1. `memo_order_id`: an existing order's ID in the memo, and a payer plausible for that
   order's customer (else the link is only suggested: someone else may have paid for them);
2. `payer_account`: a payer account finance already confirmed for one customer (write-offs,
   confirmed feedback);
3. `exact_name`: the same core name (names.py) as exactly one customer in a compatible region,
   or the customer's credit code in the name or memo;
4. `alias`: a registered alias, or a payer name finance confirmed before (learned alias);
5. `fuzzy`: rapidfuzz scores against candidates from a character-bigram index; at or above
   `matching.fuzzy_suggest_threshold` it is a suggestion, and when the best two candidates are
   within `payer_matching.abstain_margin` the engine abstains. Same brand with another region
   or industry word (confusable companies) is never an exact match, so never auto-linked.

Finance's decisions win: an active write-off confirms its (txn, order) link (method kept when
the engine found that customer, else `manual`); `match_feedback` confirms or rejects a
customer for a bank line, and a rejected customer is never proposed again for that line or
that payer.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, namedtuple
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from recon_pipeline.money import cents_text
from recon_pipeline.allocation import (
    AllocationResult,
    OpenOrder,
    OrderBook,
    due_amounts,
)
from recon_pipeline.memo import (  # noqa: F401
    credit_codes_in_text,
    order_ids_in_memo,
    order_refs_in_memo,
)
from recon_pipeline.names import (
    DEFAULT_CHANNEL_PREFIXES,
    NameParts,
    masked_regex,
    parse_company_name,
    regions_compatible,
)
from recon_pipeline.settings import Settings

LINK_COLUMNS = [
    "account_no",
    "txn_id",
    "customer_id",
    "order_id",
    "allocated_cents",
    "match_method",
    "match_score",
    "match_status",
    "evidence",
]

FEEDBACK_COLUMNS = ["feedback_id", "account_no", "txn_id", "customer_id", "order_id", "decision",
                    "decided_by", "decided_at", "comment"]

STRONG_METHODS = ("memo_order_id", "payer_account", "exact_name", "alias")


@dataclass
class MatchingInputs:
    """Current state of the sources the engine reads (one frame per staging model).

    bank:       account_no, txn_id, txn_time, amount_cents, currency, counterparty_name,
                counterparty_account, memo
    customers:  customer_id, customer_name, credit_code, aliases, region_code, industry
    contracts:  order_id, customer_id, customer_name, salesperson_id, amount_cents, status,
                signed_at
    invoices:   invoice_no, order_id, customer_name, invoice_date, total_amount_cents,
                invoice_type, status
    writeoffs:  writeoff_id, txn_id, order_id, invoice_no, amount_cents, confirmed_by,
                confirmed_at, status
    feedback:   (optional, source `match_feedback`) feedback_id, account_no, txn_id,
                customer_id, order_id, decision (`confirm`/`reject`), decided_by, decided_at
    """

    bank: pd.DataFrame
    customers: pd.DataFrame
    contracts: pd.DataFrame
    invoices: pd.DataFrame
    writeoffs: pd.DataFrame
    as_of: datetime
    feedback: pd.DataFrame | None = None


@dataclass(frozen=True)
class MatchOptions:
    suggest_threshold: int = 85
    abstain_margin: int = 5
    plausible_payer_score: int = 60
    max_candidates: int = 30
    blocking_max_postings: int = 1000
    region_conflict_penalty: int = 15
    channel_prefixes: tuple[str, ...] = DEFAULT_CHANNEL_PREFIXES
    subset_sum_max_orders: int = 16
    subset_sum_max_size: int = 4

    @classmethod
    def from_settings(cls, settings: Settings | None) -> "MatchOptions":
        if settings is None:
            return cls()
        own = dict((settings.raw or {}).get("payer_matching") or {})
        values: dict[str, Any] = {"suggest_threshold": int(settings.matching.get("fuzzy_suggest_threshold", 85))}
        for name in cls.__dataclass_fields__:
            if name in own and name != "suggest_threshold":
                values[name] = tuple(own[name]) if name == "channel_prefixes" else int(own[name])
        return cls(**values)


# ---------------------------------------------------------------------------------------------
# Customer index and name resolution


@dataclass(frozen=True, slots=True)
class NameMatch:
    """What a payer name says about the customer. `customer_id` None: no link."""

    customer_id: str | None
    method: str  # exact_name / alias / fuzzy / none
    score: int
    reason: str = ""  # why no link: tie, below_threshold, ambiguous_exact, ...
    candidates: tuple[tuple[str, int], ...] = ()  # (customer_id, score), best first
    learned: dict | None = None

    @property
    def strong(self) -> bool:
        return self.customer_id is not None and self.method in STRONG_METHODS


_NO_MATCH = NameMatch(None, "none", 0, "no_payer_name")
# Placeholder for a name only fuzzy scoring could link, on a line where that cannot matter.
_NOT_RESOLVED = NameMatch(None, "none", 0, "not_resolved")
_UNRESOLVED = object()
_RESCORE = 10  # candidates re-scored name-aware after the plain C ratio


def bigrams(text: str) -> list[str]:
    grams = []
    for segment in text.split("*"):
        grams.extend(segment[i:i + 2] for i in range(len(segment) - 1))
    return grams


@dataclass
class CustomerIndex:
    ids: list[str]
    names: list[str]
    parts: list[NameParts]
    by_core: dict[str, list[int]]
    by_alias: dict[str, list[int]]
    by_credit_code: dict[str, int]
    postings: dict[str, list[int]]
    position: dict[str, int]
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # postings as arrays, on demand

    @classmethod
    def build(cls, customers: pd.DataFrame, channel_prefixes: tuple[str, ...] = DEFAULT_CHANNEL_PREFIXES) -> "CustomerIndex":
        customers = customers.drop_duplicates("customer_id", keep="last")
        ids = [str(c) for c in customers["customer_id"]]
        names = [n if isinstance(n, str) else "" for n in customers["customer_name"]]
        parts = [parse_company_name(n, channel_prefixes) for n in names]
        by_core: dict[str, list[int]] = defaultdict(list)
        postings: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(parts):
            if p.is_empty:
                continue
            by_core[p.core].append(i)
            for gram in set(bigrams(p.core)):
                postings[gram].append(i)
        by_alias: dict[str, list[int]] = defaultdict(list)
        aliases = customers["aliases"] if "aliases" in customers else [None] * len(ids)
        for i, cell in enumerate(aliases):
            if not isinstance(cell, str):
                continue
            for alias in {a.strip() for a in cell.replace("；", ";").split(";") if a.strip()}:
                core = parse_company_name(alias, channel_prefixes).core
                if core and i not in by_alias[core]:
                    by_alias[core].append(i)
        by_credit: dict[str, int] = {}
        codes = customers["credit_code"] if "credit_code" in customers else [None] * len(ids)
        for i, code in enumerate(codes):
            if isinstance(code, str) and code.strip():
                by_credit[code.strip().upper()] = i
        return cls(ids, names, parts, dict(by_core), dict(by_alias), by_credit, dict(postings),
                   {cid: i for i, cid in enumerate(ids)})

    def candidates(self, payer: NameParts, options: MatchOptions) -> list[int]:
        """Customers sharing the payer's rarer core bigrams (blocking instead of all pairs).

        Most shared bigrams first; ties broken by customer position, not by set order (which
        changes with the process' string hash seed): the same inputs give the same candidates
        on every run.
        """
        grams = set(bigrams(payer.core)) or ({payer.core} if payer.core else set())
        postings = self.postings
        rare = [g for g in grams if 0 < len(postings.get(g, ())) <= options.blocking_max_postings]
        if rare:
            hits = np.concatenate([self._posting_array(g) for g in rare])
        else:  # only common bigrams: fall back to the least common one
            known = [g for g in grams if g in postings]
            if not known:
                return []
            least = min(known, key=lambda g: (len(postings[g]), g))
            hits = self._posting_array(least)[: options.blocking_max_postings]
        customers, counts = np.unique(hits, return_counts=True)  # customers ascending
        best = np.argsort(-counts, kind="stable")[: options.max_candidates]
        return customers[best].tolist()

    def _posting_array(self, gram: str) -> np.ndarray:
        array = self._arrays.get(gram)
        if array is None:
            array = self._arrays[gram] = np.asarray(self.postings[gram], dtype=np.int64)
        return array


def name_score(payer: NameParts, customer: NameParts, options: MatchOptions) -> int:
    """0-100 similarity of two company names on their core, aware of brand/industry/region."""
    if not payer.core or not customer.core:
        return 0
    if payer.masked:
        pattern = payer.mask_pattern()
        return 90 if pattern.match(customer.core) or _masked_full_match(payer, customer) else 0
    score = fuzz.ratio(payer.core, customer.core)
    if payer.brand and payer.brand == customer.brand and payer.industry != customer.industry:
        if not payer.industry or not customer.industry:
            score = max(score, 90)  # short name without the industry word: 某某 for 某某科技
        elif payer.industry in customer.industry or customer.industry in payer.industry:
            score = max(score, 86)  # 某某科技 vs 某某信息科技: maybe, never certain
    if not regions_compatible(payer.regions, customer.regions):
        score -= options.region_conflict_penalty
    return max(int(round(score)), 0)


def _masked_full_match(payer: NameParts, customer: NameParts) -> bool:
    return masked_regex(payer.normalized).match(customer.normalized) is not None


@dataclass
class Learned:
    """What finance confirmed or rejected, derived from the inputs on every run."""

    accounts: dict[str, dict[str, dict]] = field(default_factory=lambda: defaultdict(dict))
    names: dict[str, dict[str, dict]] = field(default_factory=lambda: defaultdict(dict))
    confirmed_txn: dict[tuple[str, str], dict] = field(default_factory=dict)  # -> {customer_id, provenance}
    rejected_txn: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    rejected_payer: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # payer key -> customers

    def account_customer(self, account: str) -> tuple[str | None, dict | None]:
        seen = self.accounts.get(account) if account else None
        if seen and len(seen) == 1:
            ((customer_id, provenance),) = seen.items()
            return customer_id, provenance
        return None, None

    def name_customer(self, normalized: str) -> tuple[str | None, dict | None]:
        seen = self.names.get(normalized) if normalized else None
        if seen and len(seen) == 1:
            ((customer_id, provenance),) = seen.items()
            return customer_id, provenance
        return None, None

    def rejected_for(self, account_no: str, txn_id: str, keys: list[str]) -> frozenset[str]:
        """Customers finance rejected for this bank line or this payer (account or name)."""
        if not self.rejected_txn and not self.rejected_payer:
            return frozenset()
        out = set(self.rejected_txn.get((account_no, txn_id), ()))
        for key in keys:
            out |= self.rejected_payer.get(key, set())
        return frozenset(out)


def _clean(value) -> str:
    if type(value) is str:
        return value.strip()
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA or value is pd.NaT:
        return ""
    return str(value).strip()


def account_key(counterparty_account, payer: NameParts) -> str:
    digits = _clean(counterparty_account)
    if not digits.isalnum():
        digits = "".join(ch for ch in digits if ch.isalnum())
    return digits or payer.account_digits


def payer_keys(account: str, payer: NameParts) -> list[str]:
    keys = []
    if account:
        keys.append("account:" + account)
    if payer.normalized:
        keys.append("name:" + payer.normalized)
    return keys


def learn_from_finance(inputs: MatchingInputs, contracts: pd.DataFrame, options: MatchOptions) -> Learned:
    """Confirmed payer accounts and names (learned aliases) and rejections, with provenance."""
    learned = Learned()
    as_of = pd.Timestamp(inputs.as_of) if inputs.as_of is not None else None
    order_customer = dict(zip(_column_values(contracts["order_id"]), _column_values(contracts["customer_id"])))
    decided_txns: set[str] = set()
    for frame in (inputs.writeoffs, inputs.feedback):
        if frame is not None and not frame.empty:
            decided_txns |= {str(t) for t in frame["txn_id"].dropna()}
    lines_by_txn: dict[str, list[tuple]] = defaultdict(list)
    if decided_txns:
        bank = inputs.bank[inputs.bank["txn_id"].astype(str).isin(decided_txns)]
        for line in zip(*(_column_values(bank[c]) for c in ("account_no", "txn_id", "counterparty_name",
                                                              "counterparty_account"))):
            lines_by_txn[str(line[1])].append(line)

    def remember(account_no, txn_id, name, account_raw, customer_id, provenance):
        payer = parse_company_name(_clean(name) or None, options.channel_prefixes)
        account = account_key(account_raw, payer)
        provenance = {**provenance, "account_no": str(account_no), "txn_id": str(txn_id)}
        if account:
            learned.accounts[account].setdefault(customer_id, provenance)
        if payer.normalized and not payer.masked:
            learned.names[payer.normalized].setdefault(customer_id, provenance)
        learned.confirmed_txn.setdefault((str(account_no), str(txn_id)), {"customer_id": customer_id, **provenance})

    def decided_in_time(when) -> bool:
        return as_of is None or pd.isna(when) or pd.Timestamp(when) <= as_of

    writeoffs = inputs.writeoffs
    if writeoffs is not None and not writeoffs.empty:
        active = writeoffs[writeoffs["status"].fillna("active") == "active"]
        for wo in _records(active[["writeoff_id", "txn_id", "order_id", "confirmed_by", "confirmed_at"]], "WriteOff"):
            customer_id = order_customer.get(wo.order_id)
            if not customer_id or not decided_in_time(wo.confirmed_at):
                continue
            provenance = {"source": "finance_writeoffs", "writeoff_id": wo.writeoff_id,
                          "confirmed_by": _clean(wo.confirmed_by), "confirmed_at": _clean(wo.confirmed_at)}
            for account_no, txn_id, name, account_raw in lines_by_txn.get(str(wo.txn_id), []):
                remember(account_no, txn_id, name, account_raw, customer_id, provenance)

    feedback = inputs.feedback
    if feedback is not None and not feedback.empty:
        ordered = feedback.sort_values(["decided_at", "feedback_id"], na_position="first")
        for fb in _records(ordered, "Feedback"):
            if not decided_in_time(fb.decided_at):
                continue
            customer_id = _clean(fb.customer_id) or order_customer.get(_clean(getattr(fb, "order_id", "")))
            if not customer_id:
                continue
            decision = _clean(fb.decision).lower()
            provenance = {"source": "match_feedback", "feedback_id": _clean(fb.feedback_id),
                          "confirmed_by": _clean(fb.decided_by), "confirmed_at": _clean(fb.decided_at)}
            for account_no, txn_id, name, account_raw in lines_by_txn.get(_clean(fb.txn_id), []):
                if _clean(fb.account_no) and _clean(fb.account_no) != str(account_no):
                    continue
                if decision in ("confirm", "confirmed", "确认", "同意"):
                    learned.rejected_txn[(str(account_no), str(txn_id))].discard(customer_id)
                    remember(account_no, txn_id, name, account_raw, customer_id, provenance)
                elif decision in ("reject", "rejected", "驳回", "拒绝", "否"):
                    learned.rejected_txn[(str(account_no), str(txn_id))].add(customer_id)
                    payer = parse_company_name(_clean(name) or None, options.channel_prefixes)
                    for key in payer_keys(account_key(account_raw, payer), payer):
                        learned.rejected_payer[key].add(customer_id)
    return learned


class NameResolver:
    """Resolves distinct payer names once (payers repeat a lot across bank lines).

    Resolution has two stages: the strong one (credit code, exact core name, alias, learned
    alias), then fuzzy scoring. `strong_only` stops after the first stage, for lines whose
    outcome a fuzzy suggestion cannot change (bank debits nobody decided on).
    """

    def __init__(self, index: CustomerIndex, learned: Learned, options: MatchOptions):
        self.index, self.learned, self.options = index, learned, options
        # key -> final match; None: the strong stage found nothing, fuzzy not computed yet.
        self._cache: dict[tuple[str, frozenset, bool], NameMatch | None] = {}

    def resolve(self, payer: NameParts, excluded: frozenset[str] = frozenset(), use_learned: bool = True,
                strong_only: bool = False, remember: bool = True) -> NameMatch:
        """`remember` False: the name will not come again, do not keep its result."""
        key = (payer.raw, excluded, use_learned)
        found = self._cache.get(key, _UNRESOLVED)
        if found is _UNRESOLVED:
            found = self._resolve_strong(payer, excluded, use_learned)
            if remember:
                self._cache[key] = found
        if found is not None:
            return found
        if strong_only:
            return _NOT_RESOLVED
        found = self._fuzzy(payer, excluded)
        if remember:
            self._cache[key] = found
        return found

    def _resolve_strong(self, payer: NameParts, excluded: frozenset[str], use_learned: bool) -> NameMatch | None:
        """The match without fuzzy scoring, or None when only fuzzy scoring can tell."""
        index = self.index
        if payer.is_empty:
            return _NO_MATCH
        if payer.masked:
            return None
        allowed = lambda i: index.ids[i] not in excluded  # noqa: E731
        for code in credit_codes_in_text(payer.raw):
            i = index.by_credit_code.get(code)
            if i is not None and allowed(i):
                return NameMatch(index.ids[i], "exact_name", 100, "credit_code", ((index.ids[i], 100),))
        same_core = [i for i in index.by_core.get(payer.core, []) if allowed(i)]
        compatible = [i for i in same_core if regions_compatible(payer.regions, index.parts[i].regions)]
        if len(compatible) > 1 and payer.regions:  # the payer's own region picks one
            exact_region = [i for i in compatible if set(index.parts[i].regions) == set(payer.regions)]
            compatible = exact_region if len(exact_region) == 1 else compatible
        if len(compatible) == 1:
            return NameMatch(index.ids[compatible[0]], "exact_name", 100, "", ((index.ids[compatible[0]], 100),))
        if len(compatible) > 1:
            # Several customers share the core name; one registered alias settles it.
            aliased = [i for i in compatible if i in index.by_alias.get(payer.core, [])]
            if len(aliased) == 1:
                return NameMatch(index.ids[aliased[0]], "alias", 100, "", ((index.ids[aliased[0]], 100),))
            return NameMatch(None, "none", 0, "ambiguous_exact_name",
                             tuple((index.ids[i], 100) for i in compatible[:5]))
        aliased = [i for i in index.by_alias.get(payer.core, []) if allowed(i)
                   and regions_compatible(payer.regions, index.parts[i].regions)]
        if len(aliased) == 1:
            return NameMatch(index.ids[aliased[0]], "alias", 100, "", ((index.ids[aliased[0]], 100),))
        customer_id, provenance = self.learned.name_customer(payer.normalized) if use_learned else (None, None)
        if customer_id and customer_id not in excluded and customer_id in index.position:
            return NameMatch(customer_id, "alias", 100, "learned_alias", ((customer_id, 100),), provenance)
        return None

    def _fuzzy(self, payer: NameParts, excluded: frozenset[str]) -> NameMatch:
        index, options = self.index, self.options
        pool = [i for i in index.candidates(payer, options) if index.ids[i] not in excluded]
        if not payer.masked and len(pool) > _RESCORE:
            # Plain ratio in C for the whole pool; the name-aware score for the best and for
            # those sharing the brand (which the plain ratio underrates).
            ratios = process.cdist([payer.core], [index.parts[i].core for i in pool], scorer=fuzz.ratio)[0].tolist()
            order = sorted(range(len(pool)), key=lambda k: (-ratios[k], pool[k]))
            keep = set(order[:_RESCORE]) | {k for k in range(len(pool)) if index.parts[pool[k]].brand == payer.brand}
            pool = [pool[k] for k in sorted(keep)]
        scored = []
        for i in pool:
            score = name_score(payer, index.parts[i], options)
            if score > 0:
                scored.append((score, index.ids[i]))
        scored.sort(key=lambda s: (-s[0], s[1]))
        candidates = tuple((cid, score) for score, cid in scored[:5])
        if not scored:
            return NameMatch(None, "none", 0, "no_candidate")
        best_score, best_id = scored[0]
        if len(scored) > 1 and best_score - scored[1][0] < options.abstain_margin:
            return NameMatch(None, "none", best_score, "tie", candidates)
        if best_score < options.suggest_threshold:
            return NameMatch(None, "none", best_score, "below_threshold", candidates)
        return NameMatch(best_id, "fuzzy", best_score, "", candidates)


# ---------------------------------------------------------------------------------------------
# Linking one bank line


@dataclass(slots=True)
class LineLink:
    customer_id: str | None
    method: str
    score: int
    status: str  # auto_linked / suggested / confirmed / unmatched
    memo_orders: list[str]
    evidence: dict
    static_json: str | None = None  # the evidence serialized once, for lines sharing a payer
    shareable: bool = False  # lines with the same payer get the same link (and evidence)
    complete: bool = True  # False: fuzzy scoring skipped (`strong_only`), valid for that line only


def _plausible(payer: NameParts, account: str, customer_id: str, name_match: NameMatch,
               learned: Learned, index: CustomerIndex, options: MatchOptions) -> tuple[bool, int]:
    """Is this payer believable for the memo order's customer? (no name: yes)."""
    if payer.is_empty:
        return True, 100
    if learned.account_customer(account)[0] == customer_id or name_match.customer_id == customer_id:
        return True, 100
    position = index.position.get(customer_id)
    if position is None:
        return False, 0
    score = name_score(payer, index.parts[position], options)
    if score < options.plausible_payer_score and _looks_like_person(payer) and name_match.customer_id is None:
        return True, score  # a person (the buyer's staff or owner) paying for the company's order
    return score >= options.plausible_payer_score, score


@lru_cache(maxsize=65_536)
def _memo_refs(memo: str, region_codes: frozenset[str]) -> tuple:
    """Order references in a memo; cached because most memos repeat (运费, 货款, ...)."""
    return tuple(order_refs_in_memo(memo, region_codes))


_PERSON_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")


def _looks_like_person(payer: NameParts) -> bool:
    """A 2-4 character Chinese name without legal form or industry word: 朱佳怡, not 某某科技."""
    return not payer.legal_form and not payer.industry and not payer.regions and bool(_PERSON_NAME.match(payer.core))


def _learned_here(provenance: dict | None, account_no: str, txn_id: str) -> bool:
    """Knowledge learned from this very line does not count as the engine having found it."""
    return bool(provenance) and provenance.get("account_no") == account_no and provenance.get("txn_id") == txn_id


def link_line(account_no: str, txn_id: str, payer: NameParts, account: str, memo: str,
              region_codes: frozenset[str], order_customer: dict[str, str], resolver: NameResolver,
              learned: Learned, strong_only: bool = False, remember: bool = True) -> LineLink:
    """How one bank line links to a customer. `strong_only`: the caller uses the link only when
    it is automatic (a debit nobody decided on), so fuzzy suggestions need not be computed."""
    index, options = resolver.index, resolver.options
    keys = payer_keys(account, payer)
    rejected = learned.rejected_for(account_no, txn_id, keys)
    evidence: dict[str, Any] = {"payer": payer}
    if account:
        evidence["payer_account"] = account
    refs = [r for r in _memo_refs(memo, region_codes) if r.order_id in order_customer]
    if refs:
        evidence["memo"] = memo
        evidence["memo_tokens"] = {r.token: r.order_id for r in refs}
    strong_only = strong_only and not refs  # memo orders: a fuzzy name match makes the payer plausible
    name_match = resolver.resolve(payer, rejected, strong_only=strong_only, remember=remember)
    if name_match.learned and _learned_here(name_match.learned, account_no, txn_id):
        name_match = resolver.resolve(payer, rejected, use_learned=False, strong_only=strong_only, remember=remember)
    account_customer, account_provenance = learned.account_customer(account)
    if account_customer in rejected or _learned_here(account_provenance, account_no, txn_id):
        account_customer = None

    # 1. Order IDs in the memo.
    memo_customers = list(dict.fromkeys(order_customer[r.order_id] for r in refs))
    memo_customers = [c for c in memo_customers if c and c not in rejected]
    if memo_customers:
        judged = [(c, *_plausible(payer, account, c, name_match, learned, index, options)) for c in memo_customers]
        plausible = [c for c, ok, _ in judged if ok]
        strong_other = (account_customer or (name_match.customer_id if name_match.strong else None))
        if strong_other and strong_other not in memo_customers:
            evidence["memo_conflict"] = {"memo_customers": memo_customers, "payer_customer": strong_other}
        elif len(plausible) == 1 or (len(memo_customers) == 1 and plausible):
            customer_id = plausible[0]
            orders = [r.order_id for r in refs if order_customer[r.order_id] == customer_id]
            return LineLink(customer_id, "memo_order_id", 100, "auto_linked", orders, evidence)
        else:
            customer_id, _, score = judged[0]
            evidence["memo_payer_score"] = score
            orders = [r.order_id for r in refs if order_customer[r.order_id] == customer_id]
            return LineLink(customer_id, "memo_order_id", max(score, options.suggest_threshold), "suggested",
                            orders, evidence)

    # 2. A payer account finance confirmed for one customer.
    if account_customer:
        evidence["learned_account"] = account_provenance
        return LineLink(account_customer, "payer_account", 100, "auto_linked", [], evidence)

    # 3-5. The payer name.
    if name_match.candidates:
        evidence["candidates"] = [{"customer_id": c, "score": s} for c, s in name_match.candidates]
    if name_match.reason:
        evidence["reason"] = name_match.reason
    if name_match.learned:
        evidence["learned_alias"] = name_match.learned
    if name_match is _NOT_RESOLVED:
        return LineLink(None, "none", 0, "unmatched", [], evidence, complete=False)
    if name_match.customer_id is None:
        return LineLink(None, "none", name_match.score, "unmatched", [], evidence)
    status = "auto_linked" if name_match.strong else "suggested"
    return LineLink(name_match.customer_id, name_match.method, name_match.score, status, [], evidence)


# ---------------------------------------------------------------------------------------------
# The seam


def _order_book(inputs: MatchingInputs, options: MatchOptions, tolerance_cents: int) -> OrderBook:
    contracts = inputs.contracts
    live = contracts[contracts["customer_id"].notna() & contracts["amount_cents"].notna()]
    invoices = inputs.invoices
    if invoices is not None and not invoices.empty:
        issued = invoices[(invoices["status"].fillna("issued") != "voided") & invoices["order_id"].notna()
                          & invoices["total_amount_cents"].notna()]
        invoice_rows = zip(_column_values(issued["order_id"]), _column_values(issued["total_amount_cents"].astype("int64")),
                           _column_values(issued["invoice_type"].fillna("normal")))
    else:
        invoice_rows = iter(())
    contract_cents = dict(zip(_column_values(live["order_id"]), _column_values(live["amount_cents"].astype("int64"))))
    due = due_amounts(contract_cents, invoice_rows)
    signed = pd.to_datetime(live["signed_at"], errors="coerce")
    # Oldest first: (no date?, signed_at as an integer, order_id) sorts like the timestamps.
    unsigned = signed.isna().to_numpy()
    signed_ticks = signed.to_numpy(dtype="datetime64[us]").astype("int64")
    signed_ticks[unsigned] = 0
    orders = [
        OpenOrder(order_id, str(customer_id), int(due[order_id]), (int(no_date), ticks, order_id),
                  cancelled=status == "cancelled")
        for order_id, customer_id, no_date, ticks, status in zip(
            _column_values(live["order_id"]), _column_values(live["customer_id"]), unsigned.tolist(),
            signed_ticks.tolist(), _column_values(live["status"].fillna("signed")))
    ]
    return OrderBook.from_orders(orders, tolerance_cents=tolerance_cents,
                                 max_subset_orders=options.subset_sum_max_orders,
                                 max_subset_size=options.subset_sum_max_size)


def build_receipt_links(inputs: MatchingInputs, settings: Settings | None = None) -> pd.DataFrame:
    options = MatchOptions.from_settings(settings)
    tolerance_cents = int((settings.amount_tolerance if settings else 1) * 100)
    bank = inputs.bank[list(_BANK_COLUMNS) + ["txn_time"]].drop_duplicates(["account_no", "txn_id"], keep="first")
    bank = bank.assign(_time=pd.to_datetime(bank["txn_time"], errors="coerce"))
    bank = bank.sort_values(["_time", "account_no", "txn_id"], kind="stable", na_position="last")
    contracts = inputs.contracts
    contract_orders = _column_values(contracts["order_id"])
    order_customer = {o: str(c) for o, c in zip(contract_orders, _column_values(contracts["customer_id"]))
                      if isinstance(c, str)}
    region_codes = frozenset(str(o)[2:4].upper() for o in contract_orders if isinstance(o, str) and len(o) >= 4)
    del contract_orders

    index = CustomerIndex.build(inputs.customers, options.channel_prefixes)
    learned = learn_from_finance(inputs, contracts, options)
    resolver = NameResolver(index, learned, options)
    book = _order_book(inputs, options, tolerance_cents)

    writeoffs_by_txn: dict[str, list] = defaultdict(list)
    if inputs.writeoffs is not None and not inputs.writeoffs.empty:
        active = inputs.writeoffs[inputs.writeoffs["status"].fillna("active") == "active"]
        for wo in _records(active[["writeoff_id", "txn_id", "order_id", "amount_cents"]], "WriteOff"):
            if isinstance(wo.order_id, str) and wo.order_id in book.orders and not pd.isna(wo.amount_cents):
                writeoffs_by_txn[str(wo.txn_id)].append(wo)
                book.reserve(wo.order_id, int(wo.amount_cents))

    # Lines whose memo names no order and that finance has not decided on depend on the payer
    # only: link each distinct payer once (payers repeat a lot). Links computed `strong_only`
    # are kept apart: a credit from the same payer needs the fuzzy suggestion too. Only
    # payers that occur again are remembered (most occur once: no point keeping them).
    payer_repeats = bank.duplicated(["counterparty_name", "counterparty_account"], keep=False).to_numpy()
    name_repeats = bank.duplicated(["counterparty_name"], keep=False).to_numpy()
    by_payer: dict[tuple, LineLink] = {}
    by_payer_strong: dict[tuple, LineLink] = {}
    decided = set(learned.confirmed_txn) | set(learned.rejected_txn)
    share = not learned.rejected_payer
    frames: list[pd.DataFrame] = []
    # Bank lines in slices: Python objects for one slice at a time; each slice's rows become a
    # compact (Arrow-backed) frame right away.
    for start in range(0, len(bank), _SLICE_ROWS):
        part = bank.iloc[start:start + _SLICE_ROWS]
        columns = zip(*(_column_values(part[c]) for c in _BANK_COLUMNS), payer_repeats[start:start + _SLICE_ROWS].tolist(),
                      name_repeats[start:start + _SLICE_ROWS].tolist())
        rows: list[tuple] = []
        for account_no, txn_id, amount, name, account_raw, memo, payer_repeat, name_repeat in columns:
            account_no, txn_id, amount = str(account_no), str(txn_id), int(amount)
            memo = memo if isinstance(memo, str) else ""
            name = name if isinstance(name, str) else None
            writeoffs = writeoffs_by_txn.get(txn_id, _NONE)
            # A debit counts only when linked automatically (or by finance): no fuzzy suggestion needed.
            strong_only = amount < 0 and not writeoffs and (account_no, txn_id) not in learned.confirmed_txn
            cacheable = payer_repeat and share and not _HAS_DIGIT.search(memo) and (account_no, txn_id) not in decided
            link = None
            if cacheable:
                cache_key = (name, account_raw if isinstance(account_raw, str) else None)
                link = by_payer.get(cache_key)
                if link is None and strong_only:
                    link = by_payer_strong.get(cache_key)
            if link is None:
                payer = parse_company_name(name, options.channel_prefixes)
                account = account_key(account_raw, payer)
                link = link_line(account_no, txn_id, payer, account, memo, region_codes, order_customer, resolver,
                                 learned, strong_only=strong_only, remember=name_repeat)
                if cacheable:
                    if link.complete:
                        link.shareable = True
                        by_payer[cache_key] = link
                    else:  # only whether it links automatically matters: keep no evidence for it
                        by_payer_strong[cache_key] = link if link.status == "auto_linked" else _UNLINKED_DEBIT
            if amount < 0 and strong_only and link.status != "auto_linked":
                continue  # an unlinked debit leaves no row
            rows.extend(_allocate_line(account_no, txn_id, amount, link, book, learned, writeoffs))
        if rows:
            frames.append(_links_frame(rows))
        del rows, columns, part
    del by_payer, by_payer_strong, resolver, bank
    # The per-run caches of distinct payer names are not needed after the run.
    parse_company_name.cache_clear()
    _payer_json.cache_clear()
    _memo_refs.cache_clear()
    return _concat_frames(frames)


_BANK_COLUMNS = ("account_no", "txn_id", "amount_cents", "counterparty_name", "counterparty_account", "memo")
_SLICE_ROWS = 100_000


_NONE: list = []
_UNLINKED_DEBIT = LineLink(None, "none", 0, "unmatched", [], {}, complete=False)


def _column_values(column: pd.Series) -> list:
    """A column as a Python list, the same values as iterating it, in one call (iterating a
    pandas column element by element is slow for Arrow-backed strings)."""
    return column.tolist()


def _records(frame: pd.DataFrame, name: str) -> list[tuple]:
    """The rows as named tuples, like `itertuples(index=False)`, built from whole columns."""
    row = namedtuple(name, list(frame.columns), rename=True)
    return [row(*values) for values in zip(*(_column_values(frame[c]) for c in frame.columns))]


def _links_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=LINK_COLUMNS)


def _concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame from the slices' frames, typed as if built from all rows at once."""
    if not frames:
        return _links_frame([])
    if len(frames) == 1:
        return frames[0]
    # A slice whose column holds only missing values infers `object`; the whole column is text.
    for column in ("customer_id", "order_id", "evidence"):
        if any(f[column].dtype == "str" for f in frames):
            for f in frames:
                if f[column].dtype != "str":
                    f[column] = f[column].astype("str")
    return pd.concat(frames, ignore_index=True)


_HAS_DIGIT = re.compile(r"[0-9０-９]")
# One encoder for all evidence (`json.dumps` with options builds a new one on every call).
_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


@lru_cache(maxsize=500_000)
def _payer_json(payer: NameParts) -> str:
    return _JSON.encode(payer.evidence())


def _dump(evidence: dict) -> str:
    """Evidence as JSON; the payer part is serialized once per distinct payer."""
    payer = evidence.get("payer")
    if not isinstance(payer, NameParts):
        return _JSON.encode(evidence)
    rest = {k: v for k, v in evidence.items() if k != "payer"}
    tail = _JSON.encode(rest)[1:] if rest else "}"
    return '{"payer": ' + _payer_json(payer) + (", " + tail if rest else tail)


_EXTRA_JSON: dict[tuple, str] = {}


def _extra_json(extra: dict) -> str:
    """JSON of what allocation adds; the common shapes (fit, mismatch flags) serialized once."""
    if extra.keys() <= {"allocation", "amount_mismatch"}:
        allocation = extra.get("allocation")
        key = (tuple(extra), tuple(allocation.items()) if isinstance(allocation, dict) else allocation,
               extra.get("amount_mismatch"))
        text = _EXTRA_JSON.get(key)
        if text is None:
            text = _EXTRA_JSON[key] = _JSON.encode(extra)
        return text
    return _JSON.encode(extra)


def _allocate_line(account_no: str, txn_id: str, amount: int, link: LineLink, book: OrderBook,
                   learned: Learned, writeoffs: list) -> list[tuple]:
    extra: dict[str, Any] = {}  # evidence this step adds to the link's

    def dump() -> str:
        static = link.static_json
        if static is None:
            static = _dump(link.evidence)
            if link.shareable:  # serialized once, when a line of this payer first needs it
                link.static_json = static
        if not extra:
            return static
        return static[:-1] + (", " if len(static) > 2 else "") + _extra_json(extra)[1:]

    customer_id, method, score, status = link.customer_id, link.method, link.score, link.status
    rows: list[tuple] = []

    confirmed = learned.confirmed_txn.get((account_no, txn_id))
    if writeoffs:
        wo_customer = book.customer_of(writeoffs[0].order_id)
        if wo_customer != customer_id:
            method, score = "manual", 100
        customer_id, status = wo_customer, "confirmed"
        extra["writeoff_ids"] = [wo.writeoff_id for wo in writeoffs]
        extra["confirmed_by"] = confirmed.get("confirmed_by") if confirmed else None
    elif confirmed:
        if confirmed["customer_id"] != customer_id:
            method, score = "manual", 100
        customer_id, status = confirmed["customer_id"], "confirmed"
        extra["confirmed"] = confirmed

    def row(order_id, cents, ev_json):
        return (account_no, txn_id, customer_id, order_id, int(cents), method, int(score), status, ev_json)

    if amount < 0:  # a debit appears only as a refund taken back from an order
        if customer_id is None or status not in ("auto_linked", "confirmed"):
            return []
        result = book.allocate_refund(customer_id, amount, link.memo_orders)
        if result is None:
            return []
        extra["allocation"] = result.evidence()
        ev = dump()
        return [row(p.order_id, p.cents, ev) for p in result.parts]

    if customer_id is None:
        ev = dump()
        return [row(None, amount, ev)]

    remaining = amount
    for wo in writeoffs:  # already reserved on the order book
        rows_ev = None
        rows.append((wo.order_id, int(wo.amount_cents), rows_ev))
        remaining -= int(wo.amount_cents)
    result: AllocationResult | None = None
    if remaining > 0 and writeoffs:  # finance allocated this credit; the rest stays unapplied
        rows.append((None, remaining, None))
    elif remaining > 0:
        linked = status in ("auto_linked", "confirmed")
        memo_orders = link.memo_orders if not writeoffs else []
        result = book.allocate_credit(customer_id, remaining, memo_orders, commit=linked)
        rows.extend((p.order_id, p.cents, None) for p in result.parts)
        extra["allocation"] = result.evidence()
        if result.amount_mismatch and linked and not writeoffs:
            extra["amount_mismatch"] = True  # read by the level-1 alert
    ev = dump()
    merged: dict[str | None, int] = {}
    for order_id, cents, _ in rows:
        merged[order_id] = merged.get(order_id, 0) + cents
    return [row(order_id, cents, ev) for order_id, cents in merged.items()]


# ---------------------------------------------------------------------------------------------
# Review queue for finance

REVIEW_QUEUE_HEADERS = {
    "feedback_id": "反馈编号",
    "account_no": "本方账号",
    "txn_id": "流水号",
    "txn_time": "交易时间",
    "amount": "金额",
    "counterparty_name": "对方户名",
    "counterparty_account": "对方账号",
    "memo": "附言",
    "customer_id": "建议客户编号",
    "customer_name": "建议客户名称",
    "order_id": "建议订单号",
    "match_method": "匹配方式",
    "match_score": "匹配分数",
    "candidates": "其他候选",
    "decision": "决定(confirm/reject)",
    "decided_by": "确认人",
    "decided_at": "确认时间",
}


def review_queue(links: pd.DataFrame, bank: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Suggested links for finance to confirm or reject, largest amount first (Chinese headers).

    The `决定` / `确认人` columns are left empty for finance; a filled-in file dropped into the
    `match_feedback` source feeds the decisions back (rejected ones never come back).
    """
    suggested = links[links["match_status"] == "suggested"]
    if suggested.empty:
        return pd.DataFrame(columns=list(REVIEW_QUEUE_HEADERS.values()))
    per_txn = (suggested.groupby(["account_no", "txn_id"], sort=False)
               .agg(customer_id=("customer_id", "first"), match_method=("match_method", "first"),
                    match_score=("match_score", "first"), evidence=("evidence", "first"),
                    order_id=("order_id", lambda s: ";".join(sorted(o for o in s if isinstance(o, str)))))
               .reset_index())
    lines = bank.drop_duplicates(["account_no", "txn_id"])[
        ["account_no", "txn_id", "txn_time", "amount_cents", "counterparty_name", "counterparty_account", "memo"]]
    queue = per_txn.merge(lines, on=["account_no", "txn_id"], how="left")
    names = dict(zip(customers["customer_id"], customers["customer_name"]))
    queue["customer_name"] = queue["customer_id"].map(names)
    queue["candidates"] = [
        "; ".join(f"{c['customer_id']}({c['score']})" for c in json.loads(ev).get("candidates", [])[1:])
        if isinstance(ev, str) else "" for ev in queue["evidence"]]
    queue = queue.sort_values(["amount_cents", "txn_time", "txn_id"], ascending=[False, True, True])
    queue["amount"] = [cents_text(c) for c in queue["amount_cents"]]
    # A filled-in queue dropped into the landing zone's match_feedback/ folder is read back as
    # decisions: each line carries its own feedback id.
    queue["feedback_id"] = "RQ-" + queue["account_no"].astype(str) + "-" + queue["txn_id"].astype(str)
    queue["decision"] = ""
    queue["decided_by"] = ""
    queue["decided_at"] = ""
    return queue[list(REVIEW_QUEUE_HEADERS)].rename(columns=REVIEW_QUEUE_HEADERS).reset_index(drop=True)


def export_review_queue(links: pd.DataFrame, bank: pd.DataFrame, customers: pd.DataFrame,
                        out_dir: str | Path, stem: str = "review_queue") -> tuple[Path, Path]:
    """Write the review queue as CSV (UTF-8 with BOM, opens in Chinese Excel) and XLSX."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    queue = review_queue(links, bank, customers)
    csv_path, xlsx_path = out / f"{stem}.csv", out / f"{stem}.xlsx"
    queue.to_csv(csv_path, index=False, encoding="utf-8-sig")
    queue.to_excel(xlsx_path, index=False, sheet_name="待确认匹配")
    return csv_path, xlsx_path
