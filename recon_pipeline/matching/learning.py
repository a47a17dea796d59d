"""Learning from finance: payer accounts and names confirmed by write-offs and feedback, and rejections.

What is learned is what identifies the customer: the payer *account* together with the company
it paid for, and a company name as a learned alias. A private person's name is never a company
alias (people pay for several companies): it is kept apart and gives at most a suggestion. A
payment intermediary's name and account, and the pooled account behind a channel prefix
(支付宝－某某), are never learned at all.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pandas as pd

from recon_pipeline.matching.inputs import MatchingInputs, MatchOptions, clean_text, column_values, row_records
from recon_pipeline.matching.names import NameParts, looks_like_person, parse_company_name
from recon_pipeline.matching.payers import Intermediaries


@dataclass
class Learned:
    """What finance confirmed or rejected, derived from the inputs on every run."""

    accounts: dict[str, dict[str, dict]] = field(default_factory=lambda: defaultdict(dict))
    names: dict[str, dict[str, dict]] = field(default_factory=lambda: defaultdict(dict))
    person_names: dict[str, dict[str, dict]] = field(default_factory=lambda: defaultdict(dict))
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
        return _only(self.names.get(normalized) if normalized else None)

    def person_customer(self, normalized: str) -> tuple[str | None, dict | None]:
        """The one company a person was confirmed paying for (a suggestion, never a link)."""
        return _only(self.person_names.get(normalized) if normalized else None)

    def rejected_for(self, account_no: str, txn_id: str, keys: list[str]) -> frozenset[str]:
        """Customers finance rejected for this bank line or this payer (account or name)."""
        if not self.rejected_txn and not self.rejected_payer:
            return frozenset()
        out = set(self.rejected_txn.get((account_no, txn_id), ()))
        for key in keys:
            out |= self.rejected_payer.get(key, set())
        return frozenset(out)


def _only(seen: dict[str, dict] | None) -> tuple[str | None, dict | None]:
    if seen and len(seen) == 1:
        ((customer_id, provenance),) = seen.items()
        return customer_id, provenance
    return None, None


def account_key(counterparty_account, payer: NameParts) -> str:
    digits = clean_text(counterparty_account)
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


CONFIRM_WORDS = ("confirm", "confirmed", "确认", "同意")
REJECT_WORDS = ("reject", "rejected", "驳回", "拒绝", "否")
# Order of decisions: when they were made, then where they were written (a later drop, file or
# row is a later decision; the dashboard names its files by a microsecond stamp).
DECISION_ORDER = ["decided_at", "_drop_date", "_source_file", "_row_number", "feedback_id"]


def latest_decisions(feedback: pd.DataFrame, order_customer: dict, decided_in_time) -> list[tuple]:
    """The latest decision per (account, bank line, customer) made by the as-of, as
    (row, customer_id, decision) in decision order. An `undo` (or an empty decision written
    after one) withdraws the earlier decision: that suggestion is pending again."""
    order = [c for c in DECISION_ORDER if c in feedback.columns]
    ordered = feedback.sort_values(order, na_position="first", kind="stable")
    latest: dict[tuple, tuple] = {}
    for fb in row_records(ordered, "Feedback"):
        if not decided_in_time(fb.decided_at):
            continue
        customer_id = clean_text(fb.customer_id) or order_customer.get(clean_text(getattr(fb, "order_id", "")))
        if not customer_id:
            continue
        decision = clean_text(fb.decision).lower()
        key = (clean_text(fb.account_no), clean_text(fb.txn_id), customer_id)
        if decision in CONFIRM_WORDS or decision in REJECT_WORDS:
            latest.pop(key, None)  # re-insert: dict order follows the latest decision
            latest[key] = (fb, customer_id, decision)
        elif decision in ("undo", "撤销"):
            latest.pop(key, None)
    return list(latest.values())


def learn_from_finance(inputs: MatchingInputs, contracts: pd.DataFrame, options: MatchOptions) -> Learned:
    """Confirmed payer accounts and names (learned aliases) and rejections, with provenance."""
    learned = Learned()
    intermediaries = Intermediaries.from_options(options)
    as_of = pd.Timestamp(inputs.as_of) if inputs.as_of is not None else None
    order_customer = dict(zip(column_values(contracts["order_id"]), column_values(contracts["customer_id"])))
    decided_txns: set[str] = set()
    for frame in (inputs.writeoffs, inputs.feedback):
        if frame is not None and not frame.empty:
            decided_txns |= {str(t) for t in frame["txn_id"].dropna()}
    lines_by_txn: dict[str, list[tuple]] = defaultdict(list)
    if decided_txns:
        txn_ids = inputs.bank["txn_id"]
        # A string column as it is: astype(str) copies a million Arrow strings one by one.
        bank = inputs.bank[(txn_ids if pd.api.types.is_string_dtype(txn_ids) else txn_ids.astype(str)).isin(decided_txns)]
        for line in zip(*(column_values(bank[c]) for c in ("account_no", "txn_id", "counterparty_name",
                                                              "counterparty_account"))):
            lines_by_txn[str(line[1])].append(line)

    # Payers repeat (a million lines' write-offs come from a third as many payers): where each
    # payer's confirmations are filed, worked out once per (name, account) as received.
    filed: dict[tuple, tuple[dict | None, dict | None]] = {}

    def filing(name, account_raw) -> tuple[dict | None, dict | None]:
        """(the account's table or None, the name's table or None) for this payer."""
        payer = parse_company_name(clean_text(name) or None, options.channel_prefixes)
        account = account_key(account_raw, payer)
        intermediary = intermediaries.covers(payer)
        by_account = by_name = None
        if account and not (intermediary or payer.channel):  # a channel's pooled account is everybody's
            by_account = learned.accounts[account]
        if payer.normalized and not payer.masked and not intermediary:
            by_name = (learned.person_names if looks_like_person(payer) else learned.names)[payer.normalized]
        return by_account, by_name

    def remember(account_no, txn_id, name, account_raw, customer_id, provenance):
        key = (name, account_raw)
        tables = filed.get(key)
        if tables is None:
            tables = filed[key] = filing(name, account_raw)
        provenance = {**provenance, "account_no": str(account_no), "txn_id": str(txn_id)}
        for table in tables:
            if table is not None:
                table.setdefault(customer_id, provenance)
        learned.confirmed_txn.setdefault((str(account_no), str(txn_id)), {"customer_id": customer_id, **provenance})

    def decided_in_time(when) -> bool:
        return as_of is None or pd.isna(when) or pd.Timestamp(when) <= as_of

    writeoffs = inputs.writeoffs
    if writeoffs is not None and not writeoffs.empty:
        active = writeoffs[writeoffs["status"].fillna("active") == "active"]
        if as_of is not None:  # decided_in_time, for the whole column at once
            when = pd.to_datetime(active["confirmed_at"], errors="coerce")
            active = active[active["confirmed_at"].isna() | (when <= as_of)]
        for wo in row_records(active[["writeoff_id", "txn_id", "order_id", "confirmed_by", "confirmed_at"]], "WriteOff"):
            customer_id = order_customer.get(wo.order_id)
            if not customer_id:
                continue
            provenance = {"source": "finance_writeoffs", "writeoff_id": wo.writeoff_id,
                          "confirmed_by": clean_text(wo.confirmed_by), "confirmed_at": clean_text(wo.confirmed_at)}
            for account_no, txn_id, name, account_raw in lines_by_txn.get(str(wo.txn_id), []):
                remember(account_no, txn_id, name, account_raw, customer_id, provenance)

    feedback = inputs.feedback
    if feedback is not None and not feedback.empty:
        for fb, customer_id, decision in latest_decisions(feedback, order_customer, decided_in_time):
            provenance = {"source": "match_feedback", "feedback_id": clean_text(fb.feedback_id),
                          "confirmed_by": clean_text(fb.decided_by), "confirmed_at": clean_text(fb.decided_at)}
            for account_no, txn_id, name, account_raw in lines_by_txn.get(clean_text(fb.txn_id), []):
                if clean_text(fb.account_no) and clean_text(fb.account_no) != str(account_no):
                    continue
                if decision in CONFIRM_WORDS:
                    learned.rejected_txn[(str(account_no), str(txn_id))].discard(customer_id)
                    remember(account_no, txn_id, name, account_raw, customer_id, provenance)
                elif decision in REJECT_WORDS:
                    learned.rejected_txn[(str(account_no), str(txn_id))].add(customer_id)
                    payer = parse_company_name(clean_text(name) or None, options.channel_prefixes)
                    if intermediaries.covers(payer):
                        continue  # the channel pays for everybody: the rejection is this line's only
                    account = "" if payer.channel else account_key(account_raw, payer)
                    for key in payer_keys(account, payer):
                        learned.rejected_payer[key].add(customer_id)
    return learned
