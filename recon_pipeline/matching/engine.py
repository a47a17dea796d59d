"""Payer matching: link every bank line to a customer and allocate it to orders.

`build_receipt_links` is the seam between the pipeline and the matching engine: it takes the
current state of the sources as pandas frames (amounts as int64 cents) and returns the rows of
`matching.receipt_links` (see docs/architecture.md).

Linking, strongest first (CONTRACT.md section 3); only the first four link automatically:
1. `memo_order_id`: an existing order's ID in the memo links to that order's customer, whoever
   pays (the customer, a parent company, a person, a payment intermediary: the relation is in
   the evidence); suggested only when the IDs name several customers' orders, or when the
   amount contradicts them (more than they still owe; a payer we know nothing about must pay
   what they owe), see linking.py;
2. `payer_account`: a payer account finance already confirmed for one customer (write-offs,
   confirmed feedback);
3. `exact_name`: the full registered name as written (before any normalization), else the same
   core name (names.py) and branch as exactly one customer in a compatible region, or the
   customer's credit code in the name; a branch of a customer is only suggested;
4. `alias`: a registered alias, or a payer name finance confirmed before (learned alias);
5. `fuzzy`: rapidfuzz scores against candidates from a character-bigram index; at or above
   `matching.fuzzy_suggest_threshold` it is a suggestion, and when the best two candidates are
   within `payer_matching.abstain_margin` the engine abstains. Same brand with another region
   or industry word (confusable companies) is never an exact match, so never auto-linked.

A memo that says the money is not for goods (押金, 保证金, 利息, ...) blocks a fuzzy suggestion;
a strong link keeps the customer and the money unapplied. `risk_flags` in the evidence say why
finance should look twice (docs/architecture.md).

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
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import pandas as pd

from recon_pipeline.matching.allocation import AllocationResult, OpenOrder, OrderBook, due_amounts
from recon_pipeline.matching.customer_index import CustomerIndex, NameResolver
from recon_pipeline.matching.inputs import LINK_COLUMNS, MatchingInputs, MatchOptions, column_values, row_records
from recon_pipeline.matching.learning import Learned, account_key, learn_from_finance
from recon_pipeline.matching.linking import MEMO_FIT, LineLink, LinkContext, link_line, memo_refs
from recon_pipeline.matching.memo import contract_key
from recon_pipeline.matching.names import NameParts, parse_company_name
from recon_pipeline.matching.payers import memo_purpose, says_surplus_refund
from recon_pipeline.progress import start_tracking
from recon_pipeline.settings import Settings


def _order_book(inputs: MatchingInputs, options: MatchOptions, tolerance_cents: int) -> OrderBook:
    contracts = inputs.contracts
    live = contracts[contracts["customer_id"].notna() & contracts["amount_cents"].notna()]
    invoices = inputs.invoices
    if invoices is not None and not invoices.empty:
        issued = invoices[(invoices["status"].fillna("issued") != "voided") & invoices["order_id"].notna()
                          & invoices["total_amount_cents"].notna()]
        invoice_rows = zip(column_values(issued["order_id"]), column_values(issued["total_amount_cents"].astype("int64")),
                           column_values(issued["invoice_type"].fillna("normal")))
    else:
        invoice_rows = iter(())
    contract_cents = dict(zip(column_values(live["order_id"]), column_values(live["amount_cents"].astype("int64"))))
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
            column_values(live["order_id"]), column_values(live["customer_id"]), unsigned.tolist(),
            signed_ticks.tolist(), column_values(live["status"].fillna("signed")))
    ]
    return OrderBook.from_orders(orders, tolerance_cents=tolerance_cents,
                                 max_subset_orders=options.subset_sum_max_orders,
                                 max_subset_size=options.subset_sum_max_size)


def _orders_by_contract(contracts: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """Orders by contract number (compared without case and separators), when the CRM gives one."""
    if "contract_no" not in contracts:
        return {}
    found: dict[str, list[str]] = defaultdict(list)
    for order_id, contract_no in zip(column_values(contracts["order_id"]), column_values(contracts["contract_no"])):
        key = contract_key(contract_no)
        if key and isinstance(order_id, str) and order_id not in found[key]:
            found[key].append(order_id)
    return {key: tuple(orders) for key, orders in found.items()}


@dataclass
class MatchContext:
    """Everything linking and allocation read besides the bank lines, built once per run from
    the other inputs (the Spark engine builds it on the driver and broadcasts it)."""

    options: MatchOptions
    tolerance_cents: int
    order_customer: dict[str, str]  # order -> customer, every contract with a customer
    region_codes: frozenset[str]
    index: CustomerIndex
    learned: Learned
    orders: list[OpenOrder]  # the open orders, finance's write-offs already reserved (never mutated)
    writeoffs_by_txn: dict[str, list]  # active write-offs of orders in the book, per txn_id
    orders_by_contract: dict[str, tuple[str, ...]]  # contract_key -> orders
    _link: LinkContext | None = field(default=None, repr=False)
    _owner: dict[str, str] | None = field(default=None, repr=False)

    def link_context(self) -> LinkContext:
        """What linking reads (built once per process: the name resolver keeps caches)."""
        if self._link is None:
            self._link = LinkContext(NameResolver(self.index, self.learned, self.options), self.learned,
                                     self.region_codes, self.order_customer,
                                     {o.order_id: o.due_cents for o in self.orders},
                                     tolerance_cents=self.tolerance_cents, orders_by_contract=self.orders_by_contract)
        return self._link

    def order_owner(self) -> dict[str, str]:
        """The customer of each order in the book."""
        if self._owner is None:
            self._owner = {o.order_id: o.customer_id for o in self.orders}
        return self._owner

    def __getstate__(self) -> dict:  # per-process caches
        return {**self.__dict__, "_link": None, "_owner": None}

    def order_book(self, orders: Iterable[OpenOrder] | None = None) -> OrderBook:
        """A fresh book (copies: allocation mutates it) of these orders, by default all of them."""
        fresh = [OpenOrder(o.order_id, o.customer_id, o.due_cents, o.age_key, o.allocated_cents, o.cancelled)
                 for o in (self.orders if orders is None else orders)]
        return OrderBook.from_orders(fresh, tolerance_cents=self.tolerance_cents,
                                     max_subset_orders=self.options.subset_sum_max_orders,
                                     max_subset_size=self.options.subset_sum_max_size)


class LinkedLine(NamedTuple):
    """A bank line with its customer link: what allocation reads of it (it pickles: the Spark
    engine carries it from the linking to the allocation stage)."""

    account_no: str
    txn_id: str
    amount_cents: int
    memo: str
    link: LineLink


def prepare_matching(inputs: MatchingInputs, settings: Settings | None = None) -> MatchContext:
    """The run's context. `inputs.bank` is read only for the lines finance decided on (write-offs,
    feedback): the caller may pass just those."""
    options = MatchOptions.from_settings(settings)
    tolerance_cents = int((settings.amount_tolerance if settings else 1) * 100)
    contracts = inputs.contracts
    contract_orders = column_values(contracts["order_id"])
    order_customer = {o: str(c) for o, c in zip(contract_orders, column_values(contracts["customer_id"]))
                      if isinstance(c, str)}
    region_codes = frozenset(str(o)[2:4].upper() for o in contract_orders if isinstance(o, str) and len(o) >= 4)
    del contract_orders

    index = CustomerIndex.build(inputs.customers, options.channel_prefixes)
    learned = learn_from_finance(inputs, contracts, options)
    book = _order_book(inputs, options, tolerance_cents)

    writeoffs_by_txn: dict[str, list] = defaultdict(list)
    if inputs.writeoffs is not None and not inputs.writeoffs.empty:
        active = inputs.writeoffs[inputs.writeoffs["status"].fillna("active") == "active"]
        for wo in row_records(active[["writeoff_id", "txn_id", "order_id", "amount_cents"]], "WriteOff"):
            if isinstance(wo.order_id, str) and wo.order_id in book.orders and not pd.isna(wo.amount_cents):
                writeoffs_by_txn[str(wo.txn_id)].append(_WriteOff(*wo))
                book.reserve(wo.order_id, int(wo.amount_cents))
    return MatchContext(options, tolerance_cents, order_customer, region_codes, index, learned,
                        list(book.orders.values()), dict(writeoffs_by_txn), _orders_by_contract(contracts))


# Module-level, so that the context pickles (the Spark engine ships it to its workers).
_WriteOff = namedtuple("WriteOff", ["writeoff_id", "txn_id", "order_id", "amount_cents"])


def bank_in_order(bank: pd.DataFrame, lines: pd.MultiIndex | None = None) -> pd.DataFrame:
    """The bank lines the engine reads, one per (account_no, txn_id), only `lines` if given, in
    the order credits are allocated: txn_time, then account and id (lines without a time last)."""
    bank = bank[list(_BANK_COLUMNS) + ["txn_time"]].drop_duplicates(["account_no", "txn_id"], keep="first")
    if lines is not None:
        bank = bank[pd.MultiIndex.from_arrays([bank["account_no"], bank["txn_id"]]).isin(lines)]
    return in_allocation_order(bank)


def in_allocation_order(lines: pd.DataFrame) -> pd.DataFrame:
    """Lines (with txn_time, account_no, txn_id) sorted as credits are allocated."""
    lines = lines.assign(_time=pd.to_datetime(lines["txn_time"], errors="coerce"))
    return lines.sort_values(["_time", "account_no", "txn_id"], kind="stable", na_position="last")


def build_receipt_links(inputs: MatchingInputs, settings: Settings | None = None,
                        lines: pd.MultiIndex | None = None, linked_customers: dict | None = None,
                        context: MatchContext | None = None,
                        on_linked: Callable[[list[LinkedLine], dict], None] | None = None) -> pd.DataFrame:
    """The rows of `matching.receipt_links` for every bank line, or only for `lines` ((account_no,
    txn_id) pairs): all inputs still count (learning, order book), only those lines are evaluated.
    `linked_customers` receives (account_no, txn_id) -> the customer each evaluated line links
    to, rows or not (a debit that finds nothing to take back leaves none), or a tuple (that
    customer, then other customers whose orders decided the link: a customer paying with another
    customer's order ID). `matching.incremental` uses both.

    The phases (`prepare_matching`, `link_bank_lines`, `allocate_linked_lines`) are what the
    Spark engine runs apart: once, per partition of lines, per customer. `context`: the run's
    `prepare_matching(inputs, settings)` when the caller already has it. `on_linked` receives
    each slice's linked lines (with `linked_customers`) before they are allocated."""
    context = context or prepare_matching(inputs, settings)
    book = context.order_book()
    bank = bank_in_order(inputs.bank, lines)
    frames: list[pd.DataFrame] = []
    tracker = start_tracking("matching", len(bank), "条流水")
    for done, linked in enumerate(link_bank_lines(bank, context, linked_customers), 1):
        if on_linked is not None:
            on_linked(linked, linked_customers)
        rows = allocate_linked_lines(linked, book, context)
        if rows:  # each slice's rows become a compact (Arrow-backed) frame right away
            frames.append(_links_frame(rows))
        del rows, linked
        tracker.update(min(done * _SLICE_ROWS, len(bank)))
    tracker.close()
    del bank
    clear_run_caches()
    return _concat_frames(frames)


def clear_run_caches() -> None:
    """The per-run caches of distinct payer names are not needed after the run."""
    parse_company_name.cache_clear()
    _payer_json.cache_clear()
    memo_refs.cache_clear()


def link_bank_lines(bank: pd.DataFrame, context: MatchContext,
                    linked_customers: dict | None = None) -> Iterator[list[LinkedLine]]:
    """Link each bank line to a customer, in slices of `_SLICE_ROWS` lines (Python objects for
    one slice at a time). Debits nobody can link leave no line, but `linked_customers` (if given)
    receives every line's customer. Linking reads only the context (the contract amounts, never
    what allocation has taken from them): any split of the lines links each one the same way."""
    options, learned, link_context = context.options, context.learned, context.link_context()
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
    for start in range(0, len(bank), _SLICE_ROWS):
        part = bank.iloc[start:start + _SLICE_ROWS]
        columns = zip(*(column_values(part[c]) for c in _BANK_COLUMNS), payer_repeats[start:start + _SLICE_ROWS].tolist(),
                      name_repeats[start:start + _SLICE_ROWS].tolist())
        lines: list[LinkedLine] = []
        for account_no, txn_id, amount, name, account_raw, memo, payer_repeat, name_repeat in columns:
            account_no, txn_id, amount = str(account_no), str(txn_id), int(amount)
            memo = memo if isinstance(memo, str) else ""
            name = name if isinstance(name, str) else None
            purpose = memo_purpose(memo, options) if amount > 0 else ""
            writeoffs = context.writeoffs_by_txn.get(txn_id, _NONE)
            # A debit counts only when linked automatically (or by finance): no fuzzy suggestion needed.
            strong_only = amount < 0 and not writeoffs and (account_no, txn_id) not in learned.confirmed_txn
            cacheable = payer_repeat and share and not _HAS_DIGIT.search(memo) and (account_no, txn_id) not in decided
            link = None
            if cacheable:
                cache_key = (name, account_raw if isinstance(account_raw, str) else None, purpose)
                link = by_payer.get(cache_key)
                if link is None and strong_only:
                    link = by_payer_strong.get(cache_key)
            if link is None:
                payer = parse_company_name(name, options.channel_prefixes)
                account = account_key(account_raw, payer)
                link = link_line(account_no, txn_id, amount, payer, account, memo, purpose, link_context,
                                 strong_only=strong_only, remember=name_repeat)
                if cacheable:
                    if link.complete:
                        link.shareable = True
                        by_payer[cache_key] = link
                    else:  # only whether it links automatically matters: keep no evidence for it
                        by_payer_strong[cache_key] = link if link.status == "auto_linked" else _UNLINKED_DEBIT
            if linked_customers is not None:
                linked_customers[(account_no, txn_id)] = (
                    (link.customer_id, *link.depends_on) if link.depends_on else link.customer_id)
            if amount < 0 and strong_only and link.status != "auto_linked":
                continue  # an unlinked debit leaves no row
            lines.append(LinkedLine(account_no, txn_id, amount, memo, link))
        yield lines
        del lines, columns, part


def allocate_linked_lines(lines: Iterable[LinkedLine], book: OrderBook, context: MatchContext) -> list[tuple]:
    """Allocate linked lines, in allocation order (`bank_in_order`), to the book's open orders;
    the rows of `matching.receipt_links` (amounts in cents). Allocation touches only the orders of
    the line's customer (`allocation_customer`): any split of the lines by that customer, each
    part with its customers' orders, allocates the same way."""
    rows: list[tuple] = []
    for line in lines:
        rows.extend(_allocate_line(line.account_no, line.txn_id, line.amount_cents, line.memo, line.link, book,
                                   context.learned, context.writeoffs_by_txn.get(line.txn_id, _NONE),
                                   context.options))
    return rows


def allocate_to_frame(lines: list[LinkedLine], context: MatchContext) -> pd.DataFrame:
    """Allocate these linked lines (in allocation order) on a fresh order book: their rows of
    `matching.receipt_links`, built slice by slice like `build_receipt_links` builds them."""
    book = context.order_book()
    frames = []
    for start in range(0, len(lines), _SLICE_ROWS):
        rows = allocate_linked_lines(lines[start:start + _SLICE_ROWS], book, context)
        if rows:
            frames.append(_links_frame(rows))
    return _concat_frames(frames)


def allocation_customer(line: LinkedLine, context: MatchContext) -> str | None:
    """The customer whose orders the line is allocated to (finance's decision wins over the link)."""
    return _decided(line.account_no, line.txn_id, line.link, context.order_owner().get, context.learned,
                    context.writeoffs_by_txn.get(line.txn_id, _NONE))[0]


_BANK_COLUMNS = ("account_no", "txn_id", "amount_cents", "counterparty_name", "counterparty_account", "memo")
_SLICE_ROWS = 100_000


_NONE: list = []
_UNLINKED_DEBIT = LineLink(None, "none", 0, "unmatched", [], {}, complete=False)


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


def link_record(link: LineLink | None, customers) -> str:
    """A line's link as JSON, to be read back by `link_from_record` in a later run (None: a debit
    nobody can link, which leaves no line); `customers`: its `linked_customers` entry."""
    if link is None:
        return _JSON.encode({"customers": customers})
    static = link.static_json
    if static is None:
        static = _dump(link.evidence)
        if link.shareable:  # as allocation would: serialized once for the lines of this payer
            link.static_json = static
    return _JSON.encode({"customers": customers, "customer_id": link.customer_id, "method": link.method,
                         "score": link.score, "status": link.status, "memo_orders": link.memo_orders,
                         "complete": link.complete, "memo_check": link.memo_check, "hold": link.hold,
                         "depends_on": list(link.depends_on), "evidence": static})


def link_from_record(record: str) -> tuple[LineLink | None, Any]:
    """(the link, the `linked_customers` entry) of a `link_record`. The evidence comes back as
    its JSON text, which allocation writes as it is; it is parsed only when allocation adds to
    it (`_link_evidence`)."""
    data = json.loads(record)
    customers = data["customers"]
    customers = tuple(customers) if isinstance(customers, list) else customers
    if "method" not in data:
        return None, customers
    link = LineLink(data["customer_id"], data["method"], data["score"], data["status"], data["memo_orders"],
                    None, static_json=data["evidence"], complete=data["complete"],
                    memo_check=data["memo_check"], hold=data["hold"], depends_on=tuple(data["depends_on"]))
    return link, customers


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


def _decided(account_no: str, txn_id: str, link: LineLink, customer_of, learned: Learned,
             writeoffs: list) -> tuple[str | None, str, int, str, dict]:
    """(customer, method, score, status, evidence) once finance's decisions are applied: an
    active write-off names the customer of its order, a confirmation its customer."""
    customer_id, method, score, status = link.customer_id, link.method, link.score, link.status
    extra: dict[str, Any] = {}
    confirmed = learned.confirmed_txn.get((account_no, txn_id))
    if writeoffs:
        wo_customer = customer_of(writeoffs[0].order_id)
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
    return customer_id, method, score, status, extra


def _link_evidence(link: LineLink) -> dict:
    return link.evidence if link.evidence is not None else json.loads(link.static_json)


def _allocate_line(account_no: str, txn_id: str, amount: int, memo: str, link: LineLink, book: OrderBook,
                   learned: Learned, writeoffs: list, options: MatchOptions) -> list[tuple]:
    extra: dict[str, Any] = {}  # evidence this step adds to the link's
    evidence_override: dict | None = None  # the link's evidence with this line's own additions

    def dump() -> str:
        if evidence_override is not None:
            static = _dump(evidence_override)
        else:
            static = link.static_json
            if static is None:
                static = _dump(link.evidence)
                if link.shareable:  # serialized once, when a line of this payer first needs it
                    link.static_json = static
        if not extra:
            return static
        return static[:-1] + (", " if len(static) > 2 else "") + _extra_json(extra)[1:]

    customer_id, method, score, status, decided_extra = _decided(account_no, txn_id, link, book.customer_of,
                                                                 learned, writeoffs)
    extra.update(decided_extra)
    rows: list[tuple] = []

    if not decided_extra and link.memo_check and status == "auto_linked" and amount > 0:
        # Someone else paid with the memo's order ID: automatic only if the amount agrees.
        verdict = book.memo_fit(customer_id, amount, link.memo_orders)
        if verdict != "fit" and (link.memo_check == MEMO_FIT or verdict in ("over", "closed")):
            status, score = "suggested", options.relation_score
            evidence = _link_evidence(link)
            evidence_override = {**evidence, "memo_amount": verdict,
                                 "risk_flags": [*evidence.get("risk_flags", ()), "amount_contradicts_memo"]}

    def row(order_id, cents, ev_json):
        return (account_no, txn_id, customer_id, order_id, int(cents), method, int(score), status, ev_json)

    linked = status in ("auto_linked", "confirmed")
    if amount < 0:  # a debit appears only as a refund: of unapplied cash, or taken back from an order
        if customer_id is None or not linked:
            return []
        result = book.allocate_refund(customer_id, amount, link.memo_orders,
                                      surplus_hint=says_surplus_refund(memo, options))
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
        book.hold(customer_id, remaining, writeoffs[-1].order_id if len(writeoffs) == 1 else None)
    elif remaining > 0 and link.hold and linked and not link.memo_orders:
        result = book.hold(customer_id, remaining)  # the memo says it is not a payment for goods
        rows.extend((p.order_id, p.cents, None) for p in result.parts)
        extra["allocation"] = result.evidence()
    elif remaining > 0:
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
