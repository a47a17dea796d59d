"""Linking one bank line to a customer, strongest evidence first (memo order ID, payer account, name).

An order is named in a memo by its ID (`25SH00137`, mangled forms: memo.py) or by its contract
number (`合同号HT2025SH00137`, crm_contracts.contract_no).

The memo's order ID is the strongest evidence (CONTRACT.md section 3). When the payer is
someone else than the order's customer (a parent company that is itself a customer, a person,
a payment intermediary, a company we do not know), the line still links to the order's
customer and the payer relationship is kept in the evidence (`payer_relation`,
`payer_customer`). It is only suggested when the memo's IDs name orders of several customers,
or when the amount contradicts them (checked at allocation, see `LineLink.memo_check`). A
payer that is another customer and writes an order ID whose amount its own order fits, not
the memo's, mistyped the ID: its own link wins, with the conflict in the evidence.

Memo purpose (押金, 保证金, 利息, ...; payers.py): a fuzzy suggestion is never made for such a
credit; a strong link keeps the customer but the money is held unapplied, not allocated to an
order; an order ID next to such a word is only a suggestion.

`risk_flags` in the evidence name what finance should look at (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from recon_pipeline.matching.customer_index import NOT_RESOLVED, CustomerIndex, NameMatch, NameResolver, name_score
from recon_pipeline.matching.inputs import MatchOptions
from recon_pipeline.matching.learning import Learned, payer_keys
from recon_pipeline.matching.memo import contract_refs_in_memo, order_refs_in_memo
from recon_pipeline.matching.names import NameParts, looks_like_person
from recon_pipeline.matching.payers import Intermediaries

# memo_check values: what allocation verifies before a memo link counts as automatic.
MEMO_CONSISTENT = "consistent"  # the amount must not exceed what the memo's orders still owe
MEMO_FIT = "fit"  # the amount must be what the memo's orders owe (alone or together)


@dataclass(slots=True)
class LineLink:
    customer_id: str | None
    method: str
    score: int
    status: str  # auto_linked / suggested / confirmed / unmatched
    memo_orders: list[str]
    evidence: dict | None  # None: a stored link's, kept as its JSON text only (`static_json`)
    static_json: str | None = None  # the evidence serialized once, for lines sharing a payer
    shareable: bool = False  # lines with the same payer get the same link (and evidence)
    complete: bool = True  # False: fuzzy scoring skipped (`strong_only`), valid for that line only
    memo_check: str = ""  # MEMO_CONSISTENT / MEMO_FIT: a memo link made automatic only if the amount agrees
    hold: bool = False  # the memo says the money is not for goods: keep it unapplied
    depends_on: tuple[str, ...] = ()  # other customers whose orders decided the link (incremental runs)


@dataclass
class LinkContext:
    """What linking reads besides the line: built once per run from the inputs (static)."""

    resolver: NameResolver
    learned: Learned
    region_codes: frozenset[str]
    order_customer: dict[str, str]
    order_due: dict[str, int]  # contract amounts (cents) by order, for the memo's amount checks
    customer_orders: dict[str, list[str]] = field(default_factory=dict)
    tolerance_cents: int = 100
    orders_by_contract: dict[str, tuple[str, ...]] = field(default_factory=dict)  # contract_key -> orders

    def __post_init__(self) -> None:
        self.intermediaries = Intermediaries.from_options(self.resolver.options)
        if not self.customer_orders:
            for order_id, customer_id in self.order_customer.items():
                self.customer_orders.setdefault(customer_id, []).append(order_id)

    @property
    def index(self) -> CustomerIndex:
        return self.resolver.index

    @property
    def options(self) -> MatchOptions:
        return self.resolver.options


@lru_cache(maxsize=65_536)
def memo_refs(memo: str, region_codes: frozenset[str]) -> tuple:
    """Order references in a memo; cached because most memos repeat (运费, 货款, ...)."""
    return tuple(order_refs_in_memo(memo, region_codes))


def _learned_here(provenance: dict | None, account_no: str, txn_id: str) -> bool:
    """Knowledge learned from this very line does not count as the engine having found it."""
    return bool(provenance) and provenance.get("account_no") == account_no and provenance.get("txn_id") == txn_id


def _flag(evidence: dict, flag: str) -> None:
    flags = evidence.setdefault("risk_flags", [])
    if flag not in flags:
        flags.append(flag)


def link_line(account_no: str, txn_id: str, amount: int, payer: NameParts, account: str, memo: str,
              purpose: str, context: LinkContext, strong_only: bool = False, remember: bool = True) -> LineLink:
    """How one bank line links to a customer. `purpose`: the memo's non-sales word (credits only,
    "" otherwise). `strong_only`: the caller uses the link only when it is automatic (a debit
    nobody decided on), so fuzzy suggestions need not be computed."""
    resolver, learned, index, options = context.resolver, context.learned, context.index, context.options
    keys = payer_keys(account, payer)
    rejected = learned.rejected_for(account_no, txn_id, keys)
    evidence: dict[str, Any] = {"payer": payer}
    if account:
        evidence["payer_account"] = account
    if purpose:
        evidence["memo"] = memo
        evidence["memo_purpose"] = purpose
        _flag(evidence, "non_sales_memo")
    refs = [r for r in memo_refs(memo, context.region_codes) if r.order_id in context.order_customer]
    if context.orders_by_contract and memo:
        known = {r.order_id for r in refs}
        refs += [r for r in contract_refs_in_memo(memo, context.orders_by_contract)
                 if r.order_id in context.order_customer and r.order_id not in known]
    if refs:
        evidence["memo"] = memo
        evidence["memo_tokens"] = {r.token: r.order_id for r in refs}
    intermediary = context.intermediaries.covers(payer)
    strong_only = strong_only and not refs  # memo orders: a fuzzy name match makes the payer plausible
    name_match = resolver.resolve(payer, rejected, strong_only=strong_only, remember=remember)
    if name_match.learned and _learned_here(name_match.learned, account_no, txn_id):
        name_match = resolver.resolve(payer, rejected, use_learned=False, strong_only=strong_only, remember=remember)
    if intermediary and name_match.reason not in ("registered_name", "credit_code"):
        name_match = NameMatch(None, "none", 0, "payment_intermediary")  # its name says nothing about whose money
    account_customer, account_provenance = learned.account_customer(account)
    if account_customer in rejected or _learned_here(account_provenance, account_no, txn_id):
        account_customer = None

    # 1. Order IDs in the memo.
    memo_customers = list(dict.fromkeys(context.order_customer[r.order_id] for r in refs))
    memo_customers = [c for c in memo_customers if c and c not in rejected]
    depends_on: tuple[str, ...] = ()
    if memo_customers:
        link = _memo_link(amount, payer, account_customer, name_match, intermediary, refs, memo_customers,
                          purpose, evidence, context)
        if link is not None:
            return link
        depends_on = tuple(memo_customers)  # their orders' amounts said the ID was mistyped

    # 2. A payer account finance confirmed for one customer.
    if account_customer:
        evidence["learned_account"] = account_provenance
        return LineLink(account_customer, "payer_account", 100, "auto_linked", [], evidence, hold=bool(purpose),
                        depends_on=depends_on)

    # 3-5. The payer name.
    if intermediary:
        evidence["payer_relation"] = "payment_intermediary"
        _flag(evidence, "payment_intermediary")
    if name_match.candidates:
        evidence["candidates"] = [{"customer_id": c, "score": s} for c, s in name_match.candidates]
    if name_match.reason:
        evidence["reason"] = name_match.reason
    if name_match.learned:
        evidence["learned_alias" if name_match.strong else "learned_payer"] = name_match.learned
    if name_match.relation:
        evidence["payer_relation"] = name_match.relation
        _flag(evidence, "personal_payer" if name_match.relation == "learned_person" else "branch_payer")
    if name_match is NOT_RESOLVED:
        return LineLink(None, "none", 0, "unmatched", [], evidence, complete=False)
    if name_match.customer_id is None:
        return LineLink(None, "none", name_match.score, "unmatched", [], evidence)
    if name_match.strong:
        return LineLink(name_match.customer_id, name_match.method, name_match.score, "auto_linked", [], evidence,
                        hold=bool(purpose), depends_on=depends_on)
    if purpose:  # a name that only resembles a customer's, for money that is not a payment for goods
        evidence["reason"] = "non_sales_memo"
        return LineLink(None, "none", name_match.score, "unmatched", [], evidence)
    return LineLink(name_match.customer_id, name_match.method, name_match.score, "suggested", [], evidence)


def _memo_link(amount: int, payer: NameParts, account_customer: str | None, name_match: NameMatch,
               intermediary: bool, refs: list, memo_customers: list[str], purpose: str, evidence: dict,
               context: LinkContext) -> LineLink | None:
    """The link the memo's order IDs make, or None when the payer's own link wins (a mistyped ID)."""
    options = context.options
    payer_customer = account_customer or (name_match.customer_id if name_match.strong else None)
    relations = {c: _relation(c, payer, account_customer, name_match, payer_customer, intermediary, context)
                 for c in memo_customers}
    status = "auto_linked"
    if len(memo_customers) == 1:
        customer_id = memo_customers[0]
    else:
        own = [c for c in memo_customers if relations[c][0] == "customer"]
        customer_id = own[0] if len(own) == 1 else memo_customers[0]
        if len(own) != 1:
            status = "suggested"
            evidence["memo_customers"] = memo_customers
            _flag(evidence, "ambiguous_memo")
    relation, score = relations[customer_id]
    orders = [r.order_id for r in refs if context.order_customer[r.order_id] == customer_id]
    if relation != "customer":
        evidence["payer_relation"] = relation
        _flag(evidence, "third_party_payer")
    if relation == "other_customer":
        evidence["payer_customer"] = payer_customer
        if amount > 0 and _mistyped_memo(amount, orders, payer_customer, context):
            evidence.pop("payer_relation")
            evidence["risk_flags"].remove("third_party_payer")
            evidence["memo_conflict"] = {"memo_customers": memo_customers, "payer_customer": payer_customer}
            return None
    if relation == "unknown":
        evidence["memo_payer_score"] = score
    if purpose:  # 保证金 25SH00137: money about the order, not a payment of it
        status = "suggested"
    link_score = 100 if status == "auto_linked" else max(score, options.relation_score)
    memo_check = {"customer": "", "unknown": MEMO_FIT}.get(relation, MEMO_CONSISTENT)
    if status == "auto_linked" and relation == "unknown" and amount <= 0:
        status = "suggested"  # a debit to someone we do not know: not a refund we can tell
    depends_on = (payer_customer,) if relation == "other_customer" else ()  # its orders' amounts were checked
    return LineLink(customer_id, "memo_order_id", link_score, status, orders, evidence, memo_check=memo_check,
                    depends_on=depends_on)


def _relation(customer_id: str, payer: NameParts, account_customer: str | None, name_match: NameMatch,
              payer_customer: str | None, intermediary: bool, context: LinkContext) -> tuple[str, int]:
    """Who the payer is for the memo order's customer: customer / payment_intermediary / person /
    other_customer / unknown, with the payer name's score against that customer."""
    if payer.is_empty or account_customer == customer_id or name_match.customer_id == customer_id:
        return "customer", 100
    if intermediary:
        return "payment_intermediary", 0
    position = context.index.position.get(customer_id)
    score = name_score(payer, context.index.parts[position], context.options) if position is not None else 0
    if score >= context.options.plausible_payer_score:
        return "customer", score
    if payer_customer:
        return "other_customer", score
    if looks_like_person(payer):
        return "person", score
    return "unknown", score


def _mistyped_memo(amount: int, memo_orders: list[str], payer_customer: str, context: LinkContext) -> bool:
    """The credit is more than the memo's orders are worth and exactly what one of the payer's
    own orders is: the payer wrote someone else's order ID by mistake (contract amounts only,
    so the answer does not depend on which other lines were seen)."""
    tolerance = context.tolerance_cents
    if amount <= sum(context.order_due.get(o, 0) for o in memo_orders) + tolerance:
        return False
    return any(abs(context.order_due.get(o, 0) - amount) <= tolerance
               for o in context.customer_orders.get(payer_customer, ()))
