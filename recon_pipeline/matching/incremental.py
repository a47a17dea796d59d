"""Incremental matching: re-evaluate only the bank lines a change can affect, keep the other links.

A layer around the engine (`build_receipt_links`), not a second engine. It rests on what a
line's links depend on:
- the line itself (payer name and account, memo, amount, time);
- the global context: the customer index (customers), the region codes of order IDs, the
  engine's options and code. When any of these changes, every line is re-evaluated;
- what finance learned under the line's payer keys (`learning.payer_keys`: payer account,
  normalized name): the customers confirmed for that account or name by write-offs and
  feedback on any line of the same payer, with their provenance, and rejections (a digest per
  key, `learned_digests`: a new write-off from a payer already learned usually teaches nothing);
- finance's decisions on the line itself (write-offs and feedback naming its txn_id);
- the orders its memo refers to (which customer each belongs to, whether it exists), by order
  ID or by contract number (kept as `contract:<key>` among the memo's references);
- the customers whose orders decided its link besides the one it links to (a customer paying
  with another's order ID: the payer's and the memo's orders' amounts), reported by the engine;
- the order book of the customer it is linked to: that customer's orders, invoices,
  write-offs and every other line linked to it, allocated in time order.

So the affected lines are: new or changed lines; lines finance decided on (a changed write-off
or feedback row naming them); lines under a payer key whose learning changed; lines whose memo
names a changed order; and every line of an
*affected customer* (whose orders, invoices, write-offs or feedback changed, or which gains or
loses a line). Customers are known only after linking, so the set is closed by iteration: the
engine runs on the affected lines, the customers it links them to join the affected set, until
nothing new joins. The result replaces the previous rows of exactly those lines. The rounds
share one run of the engine's phases (`_PhasedEvaluation`): the context is prepared once, each
line linked once, and allocation, which needs the whole set, runs once it is closed.

Each run stores what it saw in the warehouse: a hash per input row with the keys it refers to
(`matching.input_state`), per bank line its row hash (`matching.line_state`), per line its
payer keys, memo order references and customers, one row each (`matching.line_keys`), and the
learning digest per payer key (`matching.learned_state`). Write-off
and feedback hashes include whether their decision time is on or before the as-of, since
learning ignores later decisions: that is the one way the as-of reaches the engine. A run reads
only what differs from that state (the diff is SQL over the stored tables) and writes back only
the rows of the lines and inputs it saw change or re-evaluated: at a million lines the state is
never loaded into Python as a whole.

The invariant (tests/matching/test_incremental.py, tests/test_incremental_invariant.py): for
any sequence of inputs, the incremental result equals a full run's, row for row.
"""

from __future__ import annotations

import hashlib
import json
from itertools import chain
from dataclasses import dataclass, field
from typing import Callable, Iterable

import duckdb
import numpy as np
import pandas as pd

from recon_pipeline.matching.engine import (LinkedLine, MatchContext, allocate_to_frame, bank_in_order,
                                            build_receipt_links, clear_run_caches, link_bank_lines, link_from_record,
                                            link_record, prepare_matching)
from recon_pipeline.matching.inputs import LINK_COLUMNS, MatchingInputs, MatchOptions, column_values
from recon_pipeline.matching.learning import Learned, account_key, learn_from_finance, payer_keys
from recon_pipeline.matching.linking import memo_refs
from recon_pipeline.matching.memo import contract_key, contract_tokens_in_memo
from recon_pipeline.matching.names import parse_company_name
from recon_pipeline.settings import Settings
from recon_pipeline.warehouse import registered

CONTRACT_REF = "contract:"  # a memo's reference to an order by its contract number
Engine = Callable[..., pd.DataFrame]  # build_receipt_links(inputs, settings, lines=None, linked_customers=None)

# The kinds of `matching.line_keys` rows: what the line's links depend on besides the line
# (DEPENDS: the other customers whose orders decided its link, among its CUSTOMERs too).
PAYER, MEMO, CUSTOMER, DEPENDS = "payer", "memo", "customer", "depends"

# The state tables: name -> columns (all NOT NULL). A table found with other columns is from an
# older version and is dropped (`ensure_state_tables`).
_STATE_TABLES: dict[str, list[tuple[str, str]]] = {
    "line_state": [("account_no", "VARCHAR"), ("txn_id", "VARCHAR"), ("row_hash", "UBIGINT")],
    "line_keys": [("account_no", "VARCHAR"), ("txn_id", "VARCHAR"), ("kind", "VARCHAR"), ("value", "VARCHAR")],
    "input_state": [("source", "VARCHAR"), ("key", "VARCHAR"), ("row_hash", "UBIGINT"), ("ref1", "VARCHAR"),
                    ("ref2", "VARCHAR"), ("ref3", "VARCHAR")],
    "learned_state": [("key", "VARCHAR"), ("digest", "VARCHAR")],
    "line_links": [("account_no", "VARCHAR"), ("txn_id", "VARCHAR"), ("link", "VARCHAR")],
    "context_state": [("fingerprint", "VARCHAR")],
}

_BANK_HASHED = ["account_no", "txn_id", "txn_time", "amount_cents", "currency", "counterparty_name",
                "counterparty_account", "memo"]
# Per source: its key column and the columns naming what a change of the row touches (ref1..3).
_REFS = {
    "contracts": ("order_id", ["customer_id", "contract_no"]),
    "invoices": ("invoice_no", ["order_id"]),
    "writeoffs": ("writeoff_id", ["txn_id", "order_id"]),
    "feedback": ("feedback_id", ["txn_id", "customer_id", "order_id"]),
}
_DECIDED_AT = {"writeoffs": "confirmed_at", "feedback": "decided_at"}
_REF_COLUMNS = ["ref1", "ref2", "ref3"]


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    if frame.empty:
        return np.zeros(0, dtype="uint64")
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _text(values) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and v != v) or v is pd.NA else str(v) for v in values]


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


def learned_digests(learned: Learned) -> pd.DataFrame:
    """Per payer key (`learning.payer_keys`), a digest of everything finance taught under it:
    the customers confirmed for the account or name (with provenance) and the rejections. A
    line's link reads learning only under its own payer keys, so a key whose digest did not
    change changes no link (a new write-off from a payer already learned usually teaches nothing)."""
    entries: dict[str, list] = {}
    for prefix, kind, table in (("account:", "account", learned.accounts), ("name:", "name", learned.names),
                                ("name:", "person", learned.person_names)):
        for key, seen in table.items():
            if seen:
                entries.setdefault(prefix + key, []).append([kind, sorted(seen.items())])
    for key, customers in learned.rejected_payer.items():
        if customers:
            entries.setdefault(key, []).append(["rejected", sorted(customers)])
    keys = sorted(entries)
    digests = [hashlib.sha256(json.dumps(entries[k], sort_keys=True, ensure_ascii=False, default=str).encode())
               .hexdigest()[:24] for k in keys]
    return pd.DataFrame({"key": pd.Series(keys, dtype="object"), "digest": pd.Series(digests, dtype="object")})


def _current_lines(inputs: MatchingInputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bank lines the engine reads (one per key), and their keys with row hashes."""
    bank = inputs.bank.drop_duplicates(["account_no", "txn_id"], keep="first")
    lines = pd.DataFrame({"account_no": bank["account_no"].astype("str").to_numpy(),
                          "txn_id": bank["txn_id"].astype("str").to_numpy(),
                          "row_hash": _row_hashes(bank[_BANK_HASHED])})
    return bank, lines


def _current_inputs(inputs: MatchingInputs) -> pd.DataFrame:
    """source, key, row_hash, ref1..3 of every contract, invoice, write-off and feedback row."""
    parts = []
    for source, (key, ref_columns) in _REFS.items():
        frame = getattr(inputs, source)
        if frame is None or frame.empty:
            continue
        hashed = frame.drop_duplicates([key], keep="first")
        if source in _DECIDED_AT:
            hashed = hashed.assign(_in_time=_decided_in_time(hashed, _DECIDED_AT[source], inputs))
        part = {"source": source, "key": _text(column_values(hashed[key])), "row_hash": _row_hashes(hashed)}
        for name, column in zip(_REF_COLUMNS, ref_columns + [None] * (3 - len(ref_columns))):
            part[name] = _text(column_values(hashed[column])) if column and column in hashed else [""] * len(hashed)
        parts.append(pd.DataFrame(part))
    if not parts:
        return pd.DataFrame({"source": pd.Series(dtype="str"), "key": pd.Series(dtype="str"),
                             "row_hash": np.zeros(0, dtype="uint64"),
                             **{c: pd.Series(dtype="str") for c in _REF_COLUMNS}})
    return pd.concat(parts, ignore_index=True)


def _keys_frame(accounts: Iterable, txns: Iterable, kind: str, values: Iterable[list]) -> pd.DataFrame:
    """One `line_keys` row per (line, value) of a list per line."""
    values = values if isinstance(values, list) else list(values)
    counts = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    flat = list(chain.from_iterable(values))
    return pd.DataFrame({"account_no": np.repeat(np.asarray(accounts, dtype=object), counts),
                         "txn_id": np.repeat(np.asarray(txns, dtype=object), counts),
                         "kind": kind, "value": np.asarray(flat, dtype=object)})


class StateStore:
    """The state of the last run's matching, in the warehouse (`matching.line_state`, `line_keys`,
    `input_state`, `context_state`): read by SQL for what a change touches, written back as deltas."""

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn = conn
        ensure_state_tables(conn)

    def context(self) -> str | None:
        rows = self.conn.execute("SELECT fingerprint FROM matching.context_state").fetchall()
        return rows[0][0] if rows else None

    def _query(self, sql: str, params: list | None = None, **frames: pd.DataFrame) -> pd.DataFrame:
        names = _view_names(frames)
        with registered(self.conn, {names[key]: frame for key, frame in frames.items()}):
            return self.conn.execute(sql.format(**names), params or []).df()

    def changed_lines(self, lines: pd.DataFrame) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
        """The current lines that are new or differ from the stored ones, and the stored lines gone."""
        diff = self._query(
            """SELECT coalesce(now.account_no, stored.account_no) AS account_no,
                      coalesce(now.txn_id, stored.txn_id) AS txn_id, now.row_hash IS NULL AS gone
               FROM {now} AS now FULL OUTER JOIN matching.line_state AS stored
                 ON now.account_no = stored.account_no AND now.txn_id = stored.txn_id
               WHERE now.row_hash IS DISTINCT FROM stored.row_hash""", now=lines[["account_no", "txn_id", "row_hash"]])
        gone = diff[diff["gone"]]
        return diff[~diff["gone"]][["account_no", "txn_id"]], set(zip(gone["account_no"], gone["txn_id"]))

    def changed_inputs(self, current: pd.DataFrame) -> pd.DataFrame:
        """source, key and both sides' refs (None where the row is not there) of the changed rows."""
        return self._query(
            """SELECT coalesce(now.source, stored.source) AS source, coalesce(now.key, stored.key) AS key,
                      now.row_hash IS NOT NULL AS is_now, now.ref1, now.ref2, now.ref3,
                      stored.row_hash IS NOT NULL AS was, stored.ref1 AS ref1_prev, stored.ref2 AS ref2_prev,
                      stored.ref3 AS ref3_prev
               FROM {now} AS now FULL OUTER JOIN matching.input_state AS stored
                 ON now.source = stored.source AND now.key = stored.key
               WHERE now.row_hash IS DISTINCT FROM stored.row_hash
               ORDER BY 1, 2""", now=current)

    def stored_order_customers(self, orders: set[str]) -> list[tuple[str, str]]:
        if not orders:
            return []
        found = self._query("""SELECT key, ref1 FROM matching.input_state AS s JOIN {orders} AS o ON s.key = o.value
                               WHERE s.source = 'contracts'""", orders=pd.DataFrame({"value": sorted(orders)}))
        return list(zip(found["key"], found["ref1"]))

    def lines_with_txn(self, txn_ids: set[str]) -> set[tuple[str, str]]:
        """The stored lines of these txn_ids."""
        found = self._query("SELECT s.account_no, s.txn_id FROM matching.line_state AS s JOIN {txns} AS t ON s.txn_id = t.value",
                            txns=pd.DataFrame({"value": sorted(txn_ids)}))
        return set(zip(found["account_no"], found["txn_id"]))

    def changed_learning(self, learned: pd.DataFrame) -> set[str]:
        """The payer keys whose learned digest differs from the stored one (or is new, or gone)."""
        found = self._query(
            """SELECT coalesce(now.key, stored.key) AS key FROM {now} AS now
               FULL OUTER JOIN matching.learned_state AS stored ON now.key = stored.key
               WHERE now.digest IS DISTINCT FROM stored.digest""", now=learned)
        return set(found["key"])

    def lines_with(self, kind: str, values: set[str]) -> set[tuple[str, str]]:
        """The stored lines with a `line_keys` row of this kind holding any of these values."""
        if not values:
            return set()
        found = self._query(
            """SELECT DISTINCT k.account_no, k.txn_id FROM matching.line_keys AS k JOIN {values} AS v ON k.value = v.value
               WHERE k.kind = ?""", [kind], values=pd.DataFrame({"value": sorted(values)}))
        return set(zip(found["account_no"], found["txn_id"]))

    def customers_of(self, lines: set[tuple[str, str]]) -> set[str]:
        """The stored customers of these lines."""
        if not lines:
            return set()
        found = self._query(
            """SELECT DISTINCT k.value FROM matching.line_keys AS k
               JOIN {lines} AS l ON k.account_no = l.account_no AND k.txn_id = l.txn_id
               WHERE k.kind = 'customer'""", lines=_pairs_frame(lines))
        return set(found["value"])

    def stored_links(self, lines: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The stored links (`engine.link_record`) of these lines, where there is one."""
        if not lines:
            return {}
        found = self._query("""SELECT s.account_no, s.txn_id, s.link FROM matching.line_links AS s
                               JOIN {lines} AS l ON s.account_no = l.account_no AND s.txn_id = l.txn_id""",
                            lines=_pairs_frame(lines))
        return dict(zip(zip(found["account_no"], found["txn_id"]), found["link"]))

    def clear_links(self) -> None:
        self.conn.execute("DELETE FROM matching.line_links")

    def add_links(self, records: dict[tuple[str, str], str | None]) -> None:
        records = {k: r for k, r in records.items() if r is not None}
        if records:
            items = sorted(records.items())
            self._insert_frame("line_links", pd.DataFrame({
                "account_no": [k[0] for k, _ in items], "txn_id": [k[1] for k, _ in items],
                "link": [r for _, r in items]}))

    def replace_all(self, context: str, lines: pd.DataFrame, keys: pd.DataFrame, inputs: pd.DataFrame,
                    learned: pd.DataFrame) -> None:
        """A full run's state (inside the caller's transaction)."""
        for table in ("context_state", "line_state", "line_keys", "input_state", "learned_state"):
            self.conn.execute(f"DELETE FROM matching.{table}")
        self.conn.execute("INSERT INTO matching.context_state VALUES (?)", [context])
        self._insert(lines, keys, inputs, learned)

    def apply_delta(self, *, gone: set[tuple], changed: pd.DataFrame, changed_keys: pd.DataFrame,
                    evaluated_customers: pd.DataFrame, evaluated: set[tuple], inputs: pd.DataFrame,
                    changed_inputs: pd.DataFrame, learned: pd.DataFrame, changed_learning: set[str],
                    records: dict[tuple[str, str], str | None]) -> None:
        """An incremental run's state: the rows of the lines and inputs it saw change or
        re-evaluated; `records`: the links of the lines linked anew."""
        line_rows = _pairs_frame(gone | set(zip(changed["account_no"], changed["txn_id"])))
        customer_rows = _pairs_frame(gone | evaluated)
        frames = {"lines": line_rows, "customers": customer_rows, "relinked": _pairs_frame(gone | set(records)),
                  "inputs": changed_inputs[["source", "key"]],
                  "learned": pd.DataFrame({"key": pd.Series(sorted(changed_learning), dtype="object")})}
        names = _view_names(frames)
        with registered(self.conn, {names[key]: frame for key, frame in frames.items()}):
            self.conn.execute(f"""DELETE FROM matching.line_state AS s USING {names['lines']} AS l
                                  WHERE s.account_no = l.account_no AND s.txn_id = l.txn_id""")
            self.conn.execute(f"""DELETE FROM matching.line_keys AS k USING {names['lines']} AS l
                                  WHERE k.account_no = l.account_no AND k.txn_id = l.txn_id
                                    AND k.kind IN ('payer', 'memo')""")
            self.conn.execute(f"""DELETE FROM matching.line_keys AS k USING {names['customers']} AS l
                                  WHERE k.account_no = l.account_no AND k.txn_id = l.txn_id
                                    AND k.kind IN ('customer', 'depends')""")
            self.conn.execute(f"""DELETE FROM matching.line_links AS k USING {names['relinked']} AS l
                                  WHERE k.account_no = l.account_no AND k.txn_id = l.txn_id""")
            self.conn.execute(f"""DELETE FROM matching.input_state AS s USING {names['inputs']} AS i
                                  WHERE s.source = i.source AND s.key = i.key""")
            self.conn.execute(f"DELETE FROM matching.learned_state AS s USING {names['learned']} AS l WHERE s.key = l.key")
        wanted = inputs.merge(changed_inputs[["source", "key"]], on=["source", "key"], how="inner")
        self._insert(changed, pd.concat([changed_keys, evaluated_customers], ignore_index=True), wanted,
                     learned[learned["key"].isin(changed_learning)])
        self.add_links(records)

    def _insert(self, lines: pd.DataFrame, keys: pd.DataFrame, inputs: pd.DataFrame, learned: pd.DataFrame) -> None:
        # In the frames' order (built deterministically): the same inputs store the same rows.
        for table, frame in (("line_state", lines[["account_no", "txn_id", "row_hash"]]), ("line_keys", keys),
                             ("input_state", inputs), ("learned_state", learned)):
            self._insert_frame(table, frame)

    def _insert_frame(self, table: str, frame: pd.DataFrame) -> None:
        if len(frame):
            with registered(self.conn, {"_incremental_rows": frame}):
                self.conn.execute(f"INSERT INTO matching.{table} BY NAME SELECT * FROM _incremental_rows")


def _view_names(frames: dict[str, pd.DataFrame]) -> dict[str, str]:
    """The name each frame of one statement is registered under (`registered` drops them after)."""
    return {key: f"_incremental_{key}" for key in frames}


def _pairs_frame(lines: Iterable[tuple[str, str]]) -> pd.DataFrame:
    """(account_no, txn_id) pairs to join the state with (in no particular order: they select rows)."""
    pairs = list(lines)
    return pd.DataFrame({"account_no": pd.Series([a for a, _ in pairs], dtype="object"),
                         "txn_id": pd.Series([t for _, t in pairs], dtype="object")})


@dataclass
class Change:
    """The lines to re-evaluate (before closing over customers) and the customers affected."""

    lines: set[tuple[str, str]] = field(default_factory=set)
    customers: set[str] = field(default_factory=set)
    removed_lines: set[tuple[str, str]] = field(default_factory=set)


def _keys_of(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame["account_no"], frame["txn_id"]])


def detect_change(store: StateStore, changed: pd.DataFrame, gone: set[tuple], changed_keys: pd.DataFrame,
                  current_inputs: pd.DataFrame, inputs_diff: pd.DataFrame, lines: pd.DataFrame,
                  touched_keys: set[str]) -> Change:
    """What the stored state and the current inputs differ in, as lines and customers to re-evaluate.
    `touched_keys`: the payer keys under which learning changed (`StateStore.changed_learning`)."""
    change = Change()
    change.lines |= set(zip(changed["account_no"], changed["txn_id"])) | gone
    change.removed_lines |= gone

    changed_orders: set[str] = set()
    decided_txns: set[str] = set()
    referenced: set[str] = set()  # orders whose customers an invoice, write-off or feedback change affects
    for row in inputs_diff.itertuples(index=False):
        for present, values in ((row.is_now, (row.ref1, row.ref2, row.ref3)),
                                (row.was, (row.ref1_prev, row.ref2_prev, row.ref3_prev))):
            if not present:
                continue
            if row.source == "contracts":
                changed_orders.add(row.key)
                change.customers.add(values[0])
                if contract_key(values[1]):  # memos naming it by its contract number
                    changed_orders.add(CONTRACT_REF + contract_key(values[1]))
            elif row.source == "invoices":
                referenced.add(values[0])
            elif row.source == "writeoffs":
                decided_txns.add(values[0])
                referenced.add(values[1])
            elif row.source == "feedback":
                decided_txns.add(values[0])
                change.customers.add(values[1])
                referenced.add(values[2])
    if referenced:  # the customers of those orders, in the current state or the stored one
        contracts = current_inputs[(current_inputs["source"] == "contracts") & current_inputs["key"].isin(list(referenced))]
        for order, customer in [*zip(contracts["key"], contracts["ref1"]), *store.stored_order_customers(referenced)]:
            if isinstance(customer, str) and customer:
                change.customers.add(customer)
    change.customers.discard("")

    if decided_txns:  # finance's decisions on the line itself
        decided_now = lines[lines["txn_id"].isin(decided_txns)]
        change.lines |= set(zip(decided_now["account_no"], decided_now["txn_id"]))
        change.lines |= store.lines_with_txn(decided_txns)
    # The current lines holding a touched payer key or naming a changed order: stored lines (the
    # stored keys of changed or removed lines are the old ones, but those lines are in already)
    # and the changed lines' new keys.
    for kind, values in ((PAYER, touched_keys), (MEMO, changed_orders)):
        change.lines |= store.lines_with(kind, values)
        picked = changed_keys[(changed_keys["kind"] == kind) & changed_keys["value"].isin(values)]
        change.lines |= set(zip(picked["account_no"], picked["txn_id"]))
    change.customers |= store.customers_of(change.lines)
    change.customers.discard("")
    return change


@dataclass
class IncrementalResult:
    links: pd.DataFrame  # the rows of the re-evaluated lines (all rows when `full`)
    evaluated: set[tuple[str, str]] | None  # None: every line (a full run)
    rounds: int = 0
    lines: int = 0  # the bank lines the engine read (one per key)

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


def refresh_links(conn: duckdb.DuckDBPyConnection, inputs: MatchingInputs, settings: Settings | None,
                  code: str = "", full_refresh: bool = False, engine: Engine = build_receipt_links) -> IncrementalResult:
    """The links to write, all of them (no usable stored state, a context change, `full_refresh`)
    or those of the affected lines, and the new state stored in `conn` (inside the caller's
    transaction, if any)."""
    store = StateStore(conn)
    context = _context_fingerprint(inputs, settings, code)
    bank, lines = _current_lines(inputs)
    current_inputs = _current_inputs(inputs)
    phased = engine is build_receipt_links
    prepared = prepare_matching(inputs, settings) if phased else None
    learned = learned_digests(prepared.learned if prepared else
                              learn_from_finance(inputs, inputs.contracts, MatchOptions.from_settings(settings)))
    if full_refresh or store.context() != context:
        # Before the engine: it parses the same payer names and memos, from the same run caches.
        payer, memo = _line_keys(bank, MatchOptions.from_settings(settings), _region_codes(inputs))
        linked: dict = {}
        store.clear_links()
        if phased:
            with_line: set[tuple] = set()

            def keep_links(part: list[LinkedLine], entries: dict) -> None:
                # Each slice's links go to the warehouse at once (a million of them do not wait in memory).
                records, by_link = {}, {}
                for line in part:
                    key = (line.account_no, line.txn_id)
                    if not _has_customer(entries[key]):
                        continue
                    record = by_link.get(id(line.link))
                    if record is None:
                        record = by_link[id(line.link)] = link_record(line.link, entries[key])
                    records[key] = record
                with_line.update(records)
                store.add_links(records)

            links = build_receipt_links(inputs, settings, linked_customers=linked, context=prepared, on_linked=keep_links)
            store.add_links({key: link_record(None, entry) for key, entry in linked.items()
                             if key not in with_line and _has_customer(entry)})
        else:
            links = engine(inputs, settings, linked_customers=linked)
        customers = _line_customers(inputs, links, linked)
        accounts, txns = lines["account_no"].tolist(), lines["txn_id"].tolist()
        keys = pd.concat([_keys_frame(accounts, txns, PAYER, payer), _keys_frame(accounts, txns, MEMO, memo),
                          _customers_frame(customers), _depends_frame(linked)], ignore_index=True)
        store.replace_all(context, lines, keys, current_inputs, learned)
        return IncrementalResult(links, None, 0, len(lines))

    changed, gone = store.changed_lines(lines)
    is_changed = _keys_of(lines).isin(_keys_of(changed))  # `lines` is `bank` row for row
    changed = lines[is_changed]
    payer, memo = _line_keys(bank[is_changed], MatchOptions.from_settings(settings), _region_codes(inputs))
    accounts, txns = changed["account_no"].tolist(), changed["txn_id"].tolist()
    changed_keys = pd.concat([_keys_frame(accounts, txns, PAYER, payer), _keys_frame(accounts, txns, MEMO, memo)],
                             ignore_index=True)
    inputs_diff = store.changed_inputs(current_inputs)
    touched_keys = store.changed_learning(learned)
    change = detect_change(store, changed, gone, changed_keys, current_inputs, inputs_diff, lines, touched_keys)
    evaluation = _PhasedEvaluation(inputs, prepared, store, _to_relink(store, change, inputs_diff, inputs)) \
        if phased else None
    links, evaluated, line_customers, rounds = _close_over_customers(store, change, inputs, settings, lines, engine,
                                                                     evaluation)
    entries = {key: evaluation.customers[key] for key in line_customers} if evaluation else {}
    store.apply_delta(gone=gone, changed=changed, changed_keys=changed_keys,
                      evaluated_customers=pd.concat([_customers_frame(line_customers), _depends_frame(entries)],
                                                    ignore_index=True),
                      evaluated=set(line_customers), inputs=current_inputs, changed_inputs=inputs_diff,
                      learned=learned, changed_learning=touched_keys,
                      records=evaluation.records if evaluation else {})
    return IncrementalResult(links, evaluated, rounds, len(lines))


def _to_relink(store: StateStore, change: Change, inputs_diff: pd.DataFrame, inputs: MatchingInputs) -> set[tuple]:
    """The lines whose link (not only their allocation) may differ from the stored one: the
    changed lines, those finance decided on, under a payer key whose learning changed or naming
    a changed order (`change.lines`); lines whose link the orders of a customer with changed
    contracts decided (DEPENDS); lines with a write-off of a changed order (whether the write-off
    counts depends on the order)."""
    contracts = inputs_diff[inputs_diff["source"] == "contracts"]
    customers = {c for c in [*contracts["ref1"], *contracts["ref1_prev"]] if isinstance(c, str) and c}
    relink = set(change.lines) | store.lines_with(DEPENDS, customers)
    orders = set(contracts["key"])
    writeoffs = inputs.writeoffs
    if orders and writeoffs is not None and not writeoffs.empty:
        txns = {str(t) for t in writeoffs.loc[writeoffs["order_id"].isin(orders), "txn_id"].dropna()}
        if txns:
            relink |= store.lines_with_txn(txns)
    return relink


def _has_customer(entry) -> bool:
    """Whether a `linked_customers` entry names a customer. Only a line with a customer can be
    re-allocated with its stored link (the customer closure reaches it); one without is
    re-linked when it changes, so its link is not worth storing."""
    return isinstance(entry, str) or (isinstance(entry, tuple) and any(isinstance(c, str) for c in entry))


def _depends_frame(entries: dict[tuple, object]) -> pd.DataFrame:
    """DEPENDS rows from `linked_customers` entries (a tuple: the customer, then the others whose
    orders decided the link). The linked customer counts too: a payer that mistyped another
    customer's order ID is linked to itself because of its own orders' amounts."""
    items = sorted((k, list(v)) for k, v in entries.items() if isinstance(v, tuple) and len(v) > 1)
    return _keys_frame([k[0] for k, _ in items], [k[1] for k, _ in items], DEPENDS,
                       [[c for c in v if isinstance(c, str)] for _, v in items])


def _customers_frame(line_customers: dict[tuple, set[str]]) -> pd.DataFrame:
    items = sorted(line_customers.items())
    return _keys_frame([k[0] for k, _ in items], [k[1] for k, _ in items], CUSTOMER, [sorted(c) for _, c in items])


def _close_over_customers(store: StateStore, change: Change, inputs: MatchingInputs, settings: Settings | None,
                          lines: pd.DataFrame, engine: Engine,
                          evaluation: "_PhasedEvaluation | None") -> tuple[pd.DataFrame, set[tuple], dict, int]:
    """Evaluate the changed lines and every line of the customers they (and the change) touch,
    until no customer joins: the links of those lines, the lines, each one's customers, rounds."""
    current = evaluation.position if evaluation is not None else set(zip(lines["account_no"], lines["txn_id"]))

    def present(wanted: set[tuple]) -> list[tuple]:
        # In no particular order: the engine takes the lines in allocation order.
        return [key for key in wanted if key in current]

    if evaluation is not None:
        evaluate = evaluation.evaluate
    else:
        def evaluate(wanted: list[tuple], allocate: bool = True) -> tuple[pd.DataFrame, dict[tuple, set[str]]]:
            linked: dict = {}
            links = engine(inputs, settings, lines=pd.MultiIndex.from_tuples(wanted, names=["account_no", "txn_id"]),
                           linked_customers=linked)
            return links, _line_customers(inputs, links, linked)

    customers = set(change.customers)
    wanted = set(change.lines)
    # Discovery: the changed lines alone, for the customers they link to now (their rows are
    # not kept: allocation needs every line of those customers, evaluated together).
    rounds = 0
    if present(wanted):
        rounds += 1
        _, discovered = evaluate(present(wanted), allocate=False)
        customers |= set().union(*discovered.values())
    added: set[str] = set()
    pending = set(customers)
    while True:
        rounds += 1
        wanted |= store.lines_with(CUSTOMER, pending - added)
        added |= pending
        evaluated = present(wanted)
        if not evaluated:
            clear_run_caches()
            return _empty_links(), wanted, {}, rounds
        links, line_customers = evaluate(evaluated, allocate=False)
        grown = set().union(*line_customers.values()) - customers if line_customers else set()
        if not grown and links is None:
            # Closed over what linking says; the rows' customers may still add some.
            links, line_customers = evaluate(evaluated)
            grown = set().union(*line_customers.values()) - customers if line_customers else set()
        if not grown:
            clear_run_caches()
            return links, wanted, line_customers, rounds
        customers |= grown
        pending = grown


class _PhasedEvaluation:
    """The engine's phases for one incremental run (what `build_receipt_links` does per call,
    without redoing it per round): the context (customer index, learning, order book) prepared
    once; each line linked once, however many rounds it takes part in (linking reads only the
    context: a line links the same in any set of lines, `engine.link_bank_lines`); allocation
    redone over the round's whole set of lines (it depends on every line of a customer). A line
    outside `relink` takes its link as stored by the run that last linked it (nothing it
    depends on changed since): it is only allocated again."""

    def __init__(self, inputs: MatchingInputs, context: MatchContext, store: StateStore | None = None,
                 relink: set[tuple] | None = None):
        self.inputs = inputs
        self.context = context
        self.store = store
        self.relink = relink or set()
        self.linked: dict[tuple, LinkedLine] = {}  # lines with a link (an unlinked debit has none)
        self.customers: dict[tuple, object] = {}  # every linked line's `linked_customers` entry
        self.records: dict[tuple, str | None] = {}  # the links of the lines linked anew, to store
        self.by_txn = _decision_customers(inputs)
        # The bank in allocation order once: a round's lines are a subset, taken in that order
        # (a stable sort of the subset gives the same order; sorting a million lines per round did not).
        self.ordered = bank_in_order(inputs.bank)
        self.keys = list(zip(self.ordered["account_no"].astype(str), self.ordered["txn_id"].astype(str)))
        self.position = {key: i for i, key in enumerate(self.keys)}

    def evaluate(self, lines: list[tuple], allocate: bool = True) -> tuple[pd.DataFrame | None, dict[tuple, set[str]]]:
        """`build_receipt_links(inputs, settings, lines=lines, linked_customers=...)`, and its
        `_line_customers`; without `allocate`, no rows (None) and the customers linking gives:
        allocation is redone only once the set of lines is closed over those."""
        positions = sorted(self.position[key] for key in lines)
        ordered = self.ordered.iloc[positions]
        keys = [self.keys[p] for p in positions]
        new = np.array([key not in self.customers for key in keys], dtype=bool)
        if new.any() and self.store is not None:
            self._reuse(ordered[new], [key for key, n in zip(keys, new) if n and key not in self.relink])
            new = np.array([key not in self.customers for key in keys], dtype=bool)
        if new.any():
            for part in link_bank_lines(ordered[new], self.context, self.customers):
                for line in part:
                    self.linked[(line.account_no, line.txn_id)] = line
            # What to store for each line linked anew (`apply_delta` first deletes the stored link
            # of every key here): nothing for a line without a customer (see `_has_customer`).
            for key in (k for k, n in zip(keys, new) if n):
                entry = self.customers[key]
                line = self.linked.get(key)  # None: a debit nobody can link
                self.records[key] = link_record(line.link if line else None, entry) if _has_customer(entry) else None
        linked = {key: self.customers[key] for key in keys if key in self.customers}
        if not allocate:
            return None, _line_customers(self.inputs, _empty_links(), linked, self.by_txn)
        links = allocate_to_frame([self.linked[key] for key in keys if key in self.linked], self.context)
        return links, _line_customers(self.inputs, links, linked, self.by_txn)

    def _reuse(self, bank: pd.DataFrame, candidates: list[tuple]) -> None:
        """Take the stored links of these lines (where there is one)."""
        stored = self.store.stored_links(candidates)
        if not stored:
            return
        for account_no, txn_id, amount, memo in zip(bank["account_no"].astype(str), bank["txn_id"].astype(str),
                                                    column_values(bank["amount_cents"]), column_values(bank["memo"])):
            record = stored.get((account_no, txn_id))
            if record is None:
                continue
            link, entry = link_from_record(record)
            self.customers[(account_no, txn_id)] = entry
            if link is not None:
                self.linked[(account_no, txn_id)] = LinkedLine(account_no, txn_id, int(amount),
                                                               memo if isinstance(memo, str) else "", link)


def _empty_links() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in LINK_COLUMNS})


# --- the warehouse side --------------------------------------------------------------------

def ensure_state_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the state tables; state of another layout (an older version) is dropped: it is
    only a cache, and without it the next run is a full one."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS matching")
    for table, columns in _STATE_TABLES.items():
        found = [r[0] for r in conn.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'matching' AND table_name = ? ORDER BY ordinal_position""", [table]).fetchall()]
        if found and found != [name for name, _ in columns]:
            conn.execute(f"DROP TABLE matching.{table}")
            conn.execute("DROP TABLE IF EXISTS matching.context_state")
    for table, columns in _STATE_TABLES.items():
        body = ", ".join(f"{name} {kind} NOT NULL" for name, kind in columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS matching.{table} ({body})")


def forget_snapshot(conn: duckdb.DuckDBPyConnection) -> None:
    ensure_state_tables(conn)
    conn.execute("DELETE FROM matching.context_state")
