"""Linking one bank line to a customer, strongest evidence first (memo order ID, payer account, name)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from recon_pipeline.matching.customer_index import NOT_RESOLVED, CustomerIndex, NameMatch, NameResolver, name_score
from recon_pipeline.matching.inputs import MatchOptions
from recon_pipeline.matching.learning import Learned, payer_keys
from recon_pipeline.matching.memo import order_refs_in_memo
from recon_pipeline.matching.names import NameParts


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
def memo_refs(memo: str, region_codes: frozenset[str]) -> tuple:
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
    refs = [r for r in memo_refs(memo, region_codes) if r.order_id in order_customer]
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
    if name_match is NOT_RESOLVED:
        return LineLink(None, "none", 0, "unmatched", [], evidence, complete=False)
    if name_match.customer_id is None:
        return LineLink(None, "none", name_match.score, "unmatched", [], evidence)
    status = "auto_linked" if name_match.strong else "suggested"
    return LineLink(name_match.customer_id, name_match.method, name_match.score, status, [], evidence)
