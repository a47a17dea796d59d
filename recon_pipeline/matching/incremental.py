"""Incremental matching: re-evaluate only the bank lines a change can affect, keep the other links.

A layer around the engine (`build_receipt_links`), not a second engine. It rests on what a
line's links depend on:
- the line itself (payer name and account, memo, amount, time);
- the global context: the customer index (customers), the region codes of order IDs, the
  engine's options and code. When any of these changes, every line is re-evaluated;
- what finance learned under the line's payer keys (`learning.payer_keys`: payer account,
  normalized name): write-offs and feedback on any line of the same payer;
- finance's decisions on the line itself (write-offs and feedback naming its txn_id);
- the orders its memo refers to (which customer each belongs to, whether it exists), by order
  ID or by contract number (kept as `contract:<key>` among the memo's references);
- the customers whose orders decided its link besides the one it links to (a customer paying
  with another's order ID: the payer's and the memo's orders' amounts), reported by the engine;
- the order book of the customer it is linked to: that customer's orders, invoices,
  write-offs and every other line linked to it, allocated in time order.

So the affected lines are: new or changed lines; lines sharing a payer key with a line whose
write-offs or feedback changed; lines whose memo names a changed order; and every line of an
*affected customer* (whose orders, invoices, write-offs or feedback changed, or which gains or
loses a line). Customers are known only after linking, so the set is closed by iteration: the
engine runs on the affected lines, the customers it links them to join the affected set, until
nothing new joins. The result replaces the previous rows of exactly those lines. The rounds
share one run of the engine's phases (`_PhasedEvaluation`): the context is prepared once, each
line linked once, and allocation, which needs the whole set, runs once it is closed.

Each run stores what it saw: a hash per input row (`matching.input_state`), and per bank line
its row hash, payer keys and memo order references (`matching.line_state`). Write-off and
feedback hashes include whether their decision time is on or before the as-of, since learning
ignores later decisions: that is the one way the as-of reaches the engine.

The invariant (tests/matching/test_incremental.py): for any sequence of inputs, the incremental
result equals a full run's, row for row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable

import duckdb
import numpy as np
import pandas as pd

from recon_pipeline.matching.engine import (LinkedLine, allocate_to_frame, bank_in_order, build_receipt_links,
                                            clear_run_caches, link_bank_lines, prepare_matching)
from recon_pipeline.matching.inputs import LINK_COLUMNS, MatchingInputs, MatchOptions, column_values
from recon_pipeline.matching.learning import account_key, payer_keys
from recon_pipeline.matching.linking import memo_refs
from recon_pipeline.matching.memo import contract_key, contract_tokens_in_memo
from recon_pipeline.matching.names import parse_company_name
from recon_pipeline.settings import Settings

CONTRACT_REF = "contract:"  # a memo's reference to an order by its contract number
Engine = Callable[..., pd.DataFrame]  # build_receipt_links(inputs, settings, lines=None, linked_customers=None)

LINE_STATE_DDL = """
CREATE TABLE IF NOT EXISTS matching.line_state (
  account_no VARCHAR NOT NULL,
  txn_id VARCHAR NOT NULL,
  row_hash UBIGINT NOT NULL,
  payer_keys VARCHAR[] NOT NULL,
  memo_orders VARCHAR[] NOT NULL,
  customers VARCHAR[] NOT NULL
)
"""

INPUT_STATE_DDL = """
CREATE TABLE IF NOT EXISTS matching.input_state (
  source VARCHAR NOT NULL,
  key VARCHAR NOT NULL,
  row_hash UBIGINT NOT NULL,
  refs VARCHAR[] NOT NULL
)
"""

CONTEXT_DDL = """
CREATE TABLE IF NOT EXISTS matching.context_state (
  fingerprint VARCHAR NOT NULL
)
"""

_BANK_HASHED = ["account_no", "txn_id", "txn_time", "amount_cents", "currency", "counterparty_name",
                "counterparty_account", "memo"]
# Per source: its key column and the columns naming what a change of the row touches.
_REFS = {
    "contracts": ("order_id", ["customer_id", "contract_no"]),
    "invoices": ("invoice_no", ["order_id"]),
    "writeoffs": ("writeoff_id", ["txn_id", "order_id"]),
    "feedback": ("feedback_id", ["txn_id", "customer_id", "order_id"]),
}
_DECIDED_AT = {"writeoffs": "confirmed_at", "feedback": "decided_at"}


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    if frame.empty:
        return np.zeros(0, dtype="uint64")
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _text(values) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and v != v) or v is pd.NA else str(v) for v in values]


@dataclass
class Snapshot:
    """What one run's matching saw, in the form stored between runs."""

    context: str
    lines: pd.DataFrame  # account_no, txn_id, row_hash, payer_keys, memo_orders, customers (lists)
    inputs: pd.DataFrame  # source, key, row_hash, refs (list)


def _context_fingerprint(inputs: MatchingInputs, settings: Settings | None, code: str) -> str:
    options = MatchOptions.from_settings(settings)
    tolerance = settings.amount_tolerance if settings else 1
    regions = sorted(_region_codes(inputs))
    customers = _row_hashes(inputs.customers.sort_values("customer_id", kind="stable"))
    hasher = hashlib.sha256()
    hasher.update(json.dumps([repr(options), str(tolerance), regions, code], ensure_ascii=False).encode())
    hasher.update(customers.tobytes())
    return hasher.hexdigest()[:32]


def _region_codes(inputs: MatchingInputs) -> frozenset[str]:
    """The region codes of order IDs (the memo parser's vocabulary), as the engine derives them."""
    orders = column_values(inputs.contracts["order_id"])
    return frozenset(str(o)[2:4].upper() for o in orders if isinstance(o, str) and len(o) >= 4)


def _line_keys(bank: pd.DataFrame, options: MatchOptions, region_codes: frozenset[str]) -> tuple[list, list]:
    """Per line: the payer keys learning files knowledge under, and the orders its memo names."""
    keys_by_payer: dict[tuple, list[str]] = {}
    refs_by_memo: dict[str, list[str]] = {}
    payer_out, memo_out = [], []
    for name, account_raw, memo in zip(column_values(bank["counterparty_name"]),
                                       column_values(bank["counterparty_account"]), column_values(bank["memo"])):
        name = name if isinstance(name, str) else None
        account_raw = account_raw if isinstance(account_raw, str) else None
        payer_key = (name, account_raw)
        keys = keys_by_payer.get(payer_key)
        if keys is None:
            found: set[str] = set()
            # The engine parses the name as received, learning parses it stripped: both spellings.
            for spelling in {name, (name or "").strip() or None}:
                payer = parse_company_name(spelling, options.channel_prefixes)
                found.update(payer_keys(account_key(account_raw, payer), payer))
            keys = keys_by_payer[payer_key] = sorted(found)
        payer_out.append(keys)
        memo = memo if isinstance(memo, str) else ""
        refs = refs_by_memo.get(memo)
        if refs is None:
            refs = refs_by_memo[memo] = sorted({r.order_id for r in memo_refs(memo, region_codes)}
                                               | {CONTRACT_REF + key for _, key in contract_tokens_in_memo(memo)})
        memo_out.append(refs)
    return payer_out, memo_out


def _decided_in_time(frame: pd.DataFrame, column: str, inputs: MatchingInputs) -> pd.Series:
    when = pd.to_datetime(frame[column], errors="coerce")
    if inputs.as_of is None:
        return pd.Series(True, index=frame.index)
    return when.isna() | (when <= pd.Timestamp(inputs.as_of))


def take_snapshot(inputs: MatchingInputs, settings: Settings | None, code: str = "",
                  previous_lines: pd.DataFrame | None = None) -> Snapshot:
    """Hash the inputs; payer keys and memo references are computed only for lines not in
    `previous_lines` with the same hash (a line's keys depend only on the line and the context)."""
    options = MatchOptions.from_settings(settings)
    context = _context_fingerprint(inputs, settings, code)
    bank = inputs.bank.drop_duplicates(["account_no", "txn_id"], keep="first")
    lines = pd.DataFrame({"account_no": bank["account_no"].astype("str").to_numpy(),
                          "txn_id": bank["txn_id"].astype("str").to_numpy(),
                          "row_hash": _row_hashes(bank[_BANK_HASHED])})
    payer_col: list = [None] * len(lines)
    memo_col: list = [None] * len(lines)
    todo = np.ones(len(lines), dtype=bool)
    if previous_lines is not None and not previous_lines.empty:
        known = lines.merge(previous_lines, on=["account_no", "txn_id", "row_hash"], how="left", sort=False)
        todo = known["payer_keys"].isna().to_numpy()
        payer_col, memo_col = known["payer_keys"].tolist(), known["memo_orders"].tolist()
    if todo.any():
        region_codes = _region_codes(inputs)
        positions = np.flatnonzero(todo)
        payer_new, memo_new = _line_keys(bank.iloc[positions], options, region_codes)
        for i, keys, refs in zip(positions.tolist(), payer_new, memo_new):
            payer_col[i], memo_col[i] = keys, refs
    lines["payer_keys"] = payer_col
    lines["memo_orders"] = memo_col

    parts = []
    for source, (key, ref_columns) in _REFS.items():
        frame = getattr(inputs, source)
        if frame is None or frame.empty:
            continue
        hashed = frame.drop_duplicates([key], keep="first")
        if source in _DECIDED_AT:
            hashed = hashed.assign(_in_time=_decided_in_time(hashed, _DECIDED_AT[source], inputs))
        refs = [list(v) for v in zip(*(_text(column_values(hashed[c])) if c in hashed else [""] * len(hashed)
                                       for c in ref_columns))]
        parts.append(pd.DataFrame({"source": source, "key": _text(column_values(hashed[key])),
                                   "row_hash": _row_hashes(hashed), "refs": refs}))
    state = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"source": [], "key": [], "row_hash": np.zeros(0, dtype="uint64"), "refs": []})
    return Snapshot(context, lines, state)


@dataclass
class Change:
    """The lines to re-evaluate (before closing over customers) and the customers affected."""

    lines: set[tuple[str, str]] = field(default_factory=set)
    customers: set[str] = field(default_factory=set)
    removed_lines: set[tuple[str, str]] = field(default_factory=set)


def _keys_of(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame["account_no"], frame["txn_id"]])


def _lines_where(lines: pd.DataFrame, column: str, values: set[str]) -> pd.DataFrame:
    """The lines whose list column holds any of these values (vectorized: explode, isin)."""
    if not values or lines.empty:
        return lines.iloc[0:0]
    exploded = lines[["account_no", "txn_id", column]].explode(column)
    return exploded[exploded[column].isin(values)].drop_duplicates(["account_no", "txn_id"])


def detect_change(previous: Snapshot, current: Snapshot) -> Change:
    change = Change()
    prev_lines, cur_lines = previous.lines, current.lines
    merged = cur_lines[["account_no", "txn_id", "row_hash"]].merge(
        prev_lines[["account_no", "txn_id", "row_hash"]], on=["account_no", "txn_id"], how="outer",
        suffixes=("", "_prev"), indicator=True)
    differs = merged[(merged["_merge"] != "both") | (merged["row_hash"] != merged["row_hash_prev"])]
    change.lines |= set(zip(differs["account_no"], differs["txn_id"]))
    gone = merged[merged["_merge"] == "right_only"]
    change.removed_lines |= set(zip(gone["account_no"], gone["txn_id"]))

    both = current.inputs.merge(previous.inputs, on=["source", "key"], how="outer", suffixes=("", "_prev"),
                                indicator=True)
    changed = both[(both["_merge"] != "both") | (both["row_hash"] != both["row_hash_prev"])]
    order_customer = _order_customers(current.inputs, previous.inputs)
    changed_orders: set[str] = set()
    decided_txns: set[str] = set()
    for source, refs, refs_prev, key in zip(changed["source"], changed["refs"], changed["refs_prev"], changed["key"]):
        for values in (refs, refs_prev):
            if not isinstance(values, (list, np.ndarray)):
                continue
            values = list(values)
            if source == "contracts":
                changed_orders.add(key)
                change.customers.add(values[0])
                if len(values) > 1 and contract_key(values[1]):  # memos naming it by its contract number
                    changed_orders.add(CONTRACT_REF + contract_key(values[1]))
            elif source == "invoices":
                change.customers |= order_customer.get(values[0], set())
            elif source == "writeoffs":
                decided_txns.add(values[0])
                change.customers |= order_customer.get(values[1], set())
            elif source == "feedback":
                decided_txns.add(values[0])
                change.customers.add(values[1])
                change.customers |= order_customer.get(values[2], set())
    change.customers.discard("")

    touched_keys: set[str] = set()
    if decided_txns:
        for lines in (cur_lines, prev_lines):
            decided = lines[lines["txn_id"].isin(decided_txns)]
            change.lines |= set(zip(decided["account_no"], decided["txn_id"]))
            for keys in decided["payer_keys"]:
                touched_keys.update(keys)
    for column, values in (("payer_keys", touched_keys), ("memo_orders", changed_orders)):
        picked = _lines_where(cur_lines, column, values)
        change.lines |= set(zip(picked["account_no"], picked["txn_id"]))
    if change.lines:
        affected = prev_lines[_keys_of(prev_lines).isin(list(change.lines))]
        for customers in affected["customers"]:
            change.customers.update(customers)
    change.customers.discard("")
    return change


def _order_customers(*states: pd.DataFrame) -> dict[str, set[str]]:
    """Order -> its customers in any of these states (an order that changed customer has two)."""
    out: dict[str, set[str]] = {}
    for state in states:
        contracts = state[state["source"] == "contracts"]
        customers = contracts["refs"].str[0]
        for key, customer in zip(contracts["key"].tolist(), customers.tolist()):
            if isinstance(customer, str) and customer:
                out.setdefault(key, set()).add(customer)
    return out


@dataclass
class IncrementalResult:
    links: pd.DataFrame  # the rows of the re-evaluated lines (all rows when `full`)
    evaluated: set[tuple[str, str]] | None  # None: every line (a full run)
    snapshot: Snapshot  # what to store for the next run (with each line's customers)
    rounds: int = 0

    @property
    def full(self) -> bool:
        return self.evaluated is None


def _decision_customers(inputs: MatchingInputs) -> dict[str, set[str]]:
    """txn_id -> the customers of its write-offs' orders and of finance's feedback on it."""
    order_customer = dict(zip(column_values(inputs.contracts["order_id"]), column_values(inputs.contracts["customer_id"])))
    by_txn: dict[str, set[str]] = {}
    if inputs.writeoffs is not None:
        for txn_id, order_id in zip(column_values(inputs.writeoffs["txn_id"]), column_values(inputs.writeoffs["order_id"])):
            customer = order_customer.get(order_id)
            if isinstance(customer, str):
                by_txn.setdefault(str(txn_id), set()).add(customer)
    if inputs.feedback is not None:
        for txn_id, customer in zip(column_values(inputs.feedback["txn_id"]), column_values(inputs.feedback["customer_id"])):
            if isinstance(customer, str) and customer:
                by_txn.setdefault(str(txn_id), set()).add(customer)
    return by_txn


def _line_customers(inputs: MatchingInputs, links: pd.DataFrame, linked: dict,
                    by_txn: dict[str, set[str]] | None = None) -> dict[tuple, set[str]]:
    """Per evaluated line, every customer whose order book it may touch: the one it links to,
    those of its rows, of its write-offs' orders and of finance's feedback on it (`by_txn`:
    `_decision_customers(inputs)`, computed here when not given)."""
    out: dict[tuple, set[str]] = {
        line: ({c} if isinstance(c, str) else {x for x in c if isinstance(x, str)} if isinstance(c, tuple) else set())
        for line, c in linked.items()}
    for account_no, txn_id, customer_id in zip(column_values(links["account_no"]), column_values(links["txn_id"]),
                                               column_values(links["customer_id"])):
        if isinstance(customer_id, str):
            out.setdefault((account_no, txn_id), set()).add(customer_id)
    if by_txn is None:
        by_txn = _decision_customers(inputs)
    if by_txn:
        for line, customers in out.items():
            customers |= by_txn.get(line[1], set())
    return out


def _with_customers(current: Snapshot, previous: Snapshot | None, evaluated: dict[tuple, set[str]],
                    replaced: set[tuple] | None) -> Snapshot:
    """The current snapshot with each line's customers: new ones for evaluated lines, else carried."""
    lines = current.lines
    if previous is not None and replaced is not None:
        carried = lines[["account_no", "txn_id"]].merge(previous.lines[["account_no", "txn_id", "customers"]],
                                                         on=["account_no", "txn_id"], how="left", sort=False)
        column = [c if isinstance(c, list) else [] for c in carried["customers"].tolist()]
    else:
        column = [[] for _ in range(len(lines))]
    if evaluated:
        positions = np.flatnonzero(_keys_of(lines).isin(list(evaluated)))
        accounts, txns = lines["account_no"].to_numpy(), lines["txn_id"].to_numpy()
        for i in positions.tolist():
            column[i] = sorted(evaluated[(accounts[i], txns[i])])
    lines = lines.copy()
    lines["customers"] = column
    return Snapshot(current.context, lines, current.inputs)


def incremental_links(inputs: MatchingInputs, settings: Settings | None, previous: Snapshot | None,
                      current: Snapshot, engine: Engine = build_receipt_links) -> IncrementalResult:
    """The links to write: all of them (no usable previous state) or those of the affected lines."""
    if previous is None or previous.context != current.context or "customers" not in previous.lines:
        linked: dict = {}
        links = engine(inputs, settings, linked_customers=linked)
        return IncrementalResult(links, None, _with_customers(current, None, _line_customers(inputs, links, linked), None))
    change = detect_change(previous, current)
    current_keys = _keys_of(current.lines)

    def present(lines: set[tuple]) -> list[tuple]:
        if not lines:
            return []
        candidates = pd.MultiIndex.from_tuples(sorted(lines), names=["account_no", "txn_id"])
        return list(candidates[candidates.isin(current_keys)])

    if engine is build_receipt_links:
        evaluate = _PhasedEvaluation(inputs, settings).evaluate
    else:
        def evaluate(lines: list[tuple], allocate: bool = True) -> tuple[pd.DataFrame, dict[tuple, set[str]]]:
            linked: dict = {}
            links = engine(inputs, settings, lines=pd.MultiIndex.from_tuples(lines, names=["account_no", "txn_id"]),
                           linked_customers=linked)
            return links, _line_customers(inputs, links, linked)

    customers = set(change.customers)
    lines = set(change.lines)
    # Discovery: the changed lines alone, for the customers they link to now (their rows are
    # not kept: allocation needs every line of those customers, evaluated together).
    rounds = 0
    if present(lines):
        rounds += 1
        _, discovered = evaluate(present(lines), allocate=False)
        customers |= set().union(*discovered.values())
    added: set[str] = set()
    pending = set(customers)
    while True:
        rounds += 1
        of_customers = _lines_where(previous.lines, "customers", pending - added)
        added |= pending
        lines |= set(zip(of_customers["account_no"], of_customers["txn_id"]))
        evaluated = present(lines)
        if not evaluated:
            clear_run_caches()
            return IncrementalResult(_empty_links(), lines, _with_customers(current, previous, {}, lines), rounds)
        links, line_customers = evaluate(evaluated, allocate=False)
        grown = set().union(*line_customers.values()) - customers if line_customers else set()
        if not grown and links is None:
            # Closed over what linking says; the rows' customers may still add some.
            links, line_customers = evaluate(evaluated)
            grown = set().union(*line_customers.values()) - customers if line_customers else set()
        if not grown:
            clear_run_caches()
            return IncrementalResult(links, lines, _with_customers(current, previous, line_customers, lines), rounds)
        customers |= grown
        pending = grown


class _PhasedEvaluation:
    """The engine's phases for one incremental run (what `build_receipt_links` does per call,
    without redoing it per round): the context (customer index, learning, order book) prepared
    once; each line linked once, however many rounds it takes part in (linking reads only the
    context: a line links the same in any set of lines, `engine.link_bank_lines`); allocation
    redone over the round's whole set of lines (it depends on every line of a customer)."""

    def __init__(self, inputs: MatchingInputs, settings: Settings | None):
        self.inputs = inputs
        self.context = prepare_matching(inputs, settings)
        self.linked: dict[tuple, LinkedLine] = {}  # lines with a link (an unlinked debit has none)
        self.customers: dict[tuple, object] = {}  # every linked line's `linked_customers` entry
        self.by_txn = _decision_customers(inputs)

    def evaluate(self, lines: list[tuple], allocate: bool = True) -> tuple[pd.DataFrame | None, dict[tuple, set[str]]]:
        """`build_receipt_links(inputs, settings, lines=lines, linked_customers=...)`, and its
        `_line_customers`; without `allocate`, no rows (None) and the customers linking gives:
        allocation is redone only once the set of lines is closed over those."""
        wanted = pd.MultiIndex.from_tuples(lines, names=["account_no", "txn_id"])
        ordered = bank_in_order(self.inputs.bank, wanted)
        keys = list(zip(ordered["account_no"].astype(str), ordered["txn_id"].astype(str)))
        new = np.array([key not in self.customers for key in keys], dtype=bool)
        if new.any():
            for part in link_bank_lines(ordered[new], self.context, self.customers):
                self.linked.update(((line.account_no, line.txn_id), line) for line in part)
        linked = {key: self.customers[key] for key in keys if key in self.customers}
        if not allocate:
            return None, _line_customers(self.inputs, _empty_links(), linked, self.by_txn)
        links = allocate_to_frame([self.linked[key] for key in keys if key in self.linked], self.context)
        return links, _line_customers(self.inputs, links, linked, self.by_txn)


def _empty_links() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in LINK_COLUMNS})


# --- the warehouse side --------------------------------------------------------------------

_STATE_COLUMNS = {
    "line_state": ["account_no", "txn_id", "row_hash", "payer_keys", "memo_orders", "customers"],
    "input_state": ["source", "key", "row_hash", "refs"],
    "context_state": ["fingerprint"],
}


def ensure_state_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the state tables; state of another layout (an older version) is dropped: it is
    only a cache, and without it the next run is a full one."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS matching")
    for table, columns in _STATE_COLUMNS.items():
        found = [r[0] for r in conn.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'matching' AND table_name = ? ORDER BY ordinal_position""", [table]).fetchall()]
        if found and found != columns:
            conn.execute(f"DROP TABLE matching.{table}")
            conn.execute("DROP TABLE IF EXISTS matching.context_state")
    conn.execute(LINE_STATE_DDL)
    conn.execute(INPUT_STATE_DDL)
    conn.execute(CONTEXT_DDL)


def load_snapshot(conn: duckdb.DuckDBPyConnection) -> Snapshot | None:
    ensure_state_tables(conn)
    context = conn.execute("SELECT fingerprint FROM matching.context_state").fetchall()
    if not context:
        return None
    lines = conn.execute(
        "SELECT account_no, txn_id, row_hash, payer_keys, memo_orders, customers FROM matching.line_state").df()
    inputs = conn.execute("SELECT source, key, row_hash, refs FROM matching.input_state").df()
    for frame, columns in ((lines, ("payer_keys", "memo_orders", "customers")), (inputs, ("refs",))):
        for column in columns:
            frame[column] = [list(v) for v in frame[column]]
    return Snapshot(context[0][0], lines, inputs)


def save_snapshot(conn: duckdb.DuckDBPyConnection, snapshot: Snapshot) -> None:
    """Replace the stored state (inside the caller's transaction)."""
    ensure_state_tables(conn)
    conn.execute("DELETE FROM matching.context_state")
    conn.execute("INSERT INTO matching.context_state VALUES (?)", [snapshot.context])
    for table, frame in (("line_state", snapshot.lines), ("input_state", snapshot.inputs)):
        conn.register("_state", frame)
        try:
            conn.execute(f"DELETE FROM matching.{table}")
            conn.execute(f"INSERT INTO matching.{table} BY NAME SELECT * FROM _state")
        finally:
            conn.unregister("_state")


def forget_snapshot(conn: duckdb.DuckDBPyConnection) -> None:
    ensure_state_tables(conn)
    conn.execute("DELETE FROM matching.context_state")
