"""Matching on the Spark engine: the same pure engine (`engine.py`), run where the data is.

1. The driver reads everything but the bank lines (customers, contracts, invoices, finance's
   write-offs and feedback, and the few bank lines those name) and builds the run's
   `MatchContext`: the customer index, what finance taught, the open orders. It is broadcast.
2. Linking runs per partition of bank lines (`mapInPandas`): `engine.link_bank_lines` with
   the broadcast context. Linking never reads the order book, so any partitioning links
   every line the same way.
3. Allocation runs per customer (`cogroup` of the linked lines with that customer's open
   orders, `applyInPandas`): `engine.allocate_linked_lines` over the customer's lines in
   allocation order. Allocation touches only the orders of the line's customer, so each group
   allocates exactly as the single pass of the DuckDB engine does. Lines linked to nobody
   need no order book and are allocated per partition (no group holding them all).

The result replaces the Spark table `matching.receipt_links` (amounts back to DECIMAL(18,2)).
"""

from __future__ import annotations

import pickle
import uuid
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Iterator, NamedTuple

import pandas as pd

from recon_pipeline.matching.allocation import OpenOrder
from recon_pipeline.matching.engine import (
    LinkedLine, MatchContext, allocate_linked_lines, allocation_customer, bank_in_order, clear_run_caches,
    in_allocation_order, link_bank_lines, prepare_matching,
)
from recon_pipeline.matching.inputs import LINK_COLUMNS, MatchingInputs
from recon_pipeline.matching.seam import INPUT_SELECTS, input_query
from recon_pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark import Broadcast
    from pyspark.sql import DataFrame, SparkSession

# A linked line travels pickled (`engine.LinkedLine`, its link with the evidence objects) next to
# what Spark needs to route it: the customer it is allocated to, and the allocation order.
LINKED_SCHEMA = "account_no string, txn_id string, txn_time timestamp, allocation_customer string, line binary"
ORDERS_SCHEMA = (
    "order_id string, customer_id string, due_cents bigint, no_date int, signed_ticks bigint, "
    "allocated_cents bigint, cancelled boolean"
)
LINKS_SCHEMA = (
    "account_no string, txn_id string, customer_id string, order_id string, allocated_cents bigint, "
    "match_method string, match_score int, match_status string, evidence string"
)
# Lines finance decided on are read on the driver too: learning from finance needs them.
_DECIDED_LINES = (
    INPUT_SELECTS["bank"][0]
    + " WHERE txn_id IN (SELECT txn_id FROM staging.stg_finance_writeoffs"
    " UNION SELECT txn_id FROM staging.stg_match_feedback)"
)


def read_driver_inputs(session: "SparkSession", as_of: datetime) -> MatchingInputs:
    """The engine's inputs but the bank: each small enough for the driver (the bank lines
    finance decided on are included, as the context needs them)."""
    frames = {name: session.sql(input_query(name)).toPandas() for name in INPUT_SELECTS if name != "bank"}
    frames["bank"] = session.sql(_DECIDED_LINES).toPandas()
    return MatchingInputs(as_of=as_of, **frames)


def orders_frame(context: MatchContext) -> pd.DataFrame:
    """The context's open orders as rows (with what finance already reserved on them)."""
    orders = context.orders
    return pd.DataFrame({
        "order_id": [o.order_id for o in orders],
        "customer_id": [o.customer_id for o in orders],
        "due_cents": pd.array([o.due_cents for o in orders], dtype="int64"),
        "no_date": pd.array([o.age_key[0] for o in orders], dtype="int32"),
        "signed_ticks": pd.array([o.age_key[1] for o in orders], dtype="int64"),
        "allocated_cents": pd.array([o.allocated_cents for o in orders], dtype="int64"),
        "cancelled": pd.array([o.cancelled for o in orders], dtype="bool"),
    })


# ---------------------------------------------------------------------------- on the workers

class Shipped(NamedTuple):
    """The broadcast context and a token naming the run it belongs to."""

    run_token: str
    context: "Broadcast"


_worker_context: dict[str, MatchContext] = {}


def _context(shipped: Shipped) -> MatchContext:
    """The broadcast context, unpickled once per worker process and run."""
    context = _worker_context.get(shipped.run_token)
    if context is None:
        from pyspark import cloudpickle

        _worker_context.clear()
        clear_run_caches()  # a new run: the previous run's payer caches are stale
        context = _worker_context[shipped.run_token] = cloudpickle.loads(shipped.context.value)
    return context


def _link_partition(shipped, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    context = _context(shipped)
    for batch in batches:
        for lines in link_bank_lines(bank_in_order(batch), context):
            yield _linked_frame(lines, batch, context)


def _linked_frame(lines: list[LinkedLine], batch: pd.DataFrame, context: MatchContext) -> pd.DataFrame:
    times = dict(zip(zip(batch["account_no"].tolist(), batch["txn_id"].tolist()), batch["txn_time"]))
    return pd.DataFrame({
        "account_no": [line.account_no for line in lines],
        "txn_id": [line.txn_id for line in lines],
        "txn_time": pd.Series([times[(line.account_no, line.txn_id)] for line in lines], dtype="datetime64[us]"),
        "allocation_customer": [allocation_customer(line, context) for line in lines],
        "line": [pickle.dumps(line, protocol=pickle.HIGHEST_PROTOCOL) for line in lines],
    })


def _linked_lines(frame: pd.DataFrame) -> list[LinkedLine]:
    """The frame's linked lines in allocation order."""
    return [pickle.loads(line) for line in in_allocation_order(frame)["line"].tolist()]


def _rows_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=LINK_COLUMNS).astype({"allocated_cents": "int64", "match_score": "int32"})


def _allocate_group(shipped, lines: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """One customer: its lines in allocation order against its open orders."""
    if lines.empty:
        return _rows_frame([])
    context = _context(shipped)
    book = context.order_book(
        OpenOrder(order_id, customer_id, int(due), (int(no_date), int(ticks), order_id), int(allocated), bool(cancelled))
        for order_id, customer_id, due, no_date, ticks, allocated, cancelled in zip(
            orders["order_id"], orders["customer_id"], orders["due_cents"], orders["no_date"], orders["signed_ticks"],
            orders["allocated_cents"], orders["cancelled"]))
    return _rows_frame(allocate_linked_lines(_linked_lines(lines), book, context))


def _allocate_unassigned(shipped, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Lines allocated to no customer: nothing to allocate them to, any split will do."""
    context = _context(shipped)
    empty_book = context.order_book([])
    for batch in batches:
        yield _rows_frame(allocate_linked_lines(_linked_lines(batch), empty_book, context))


# ---------------------------------------------------------------------------- the driver


def build_receipt_links_spark(session: "SparkSession", as_of: datetime, settings: Settings) -> "DataFrame":
    """The rows of `matching.receipt_links` (cents), computed on the cluster (lazy)."""
    from pyspark import cloudpickle
    from pyspark.sql import functions as F

    context = prepare_matching(read_driver_inputs(session, as_of), settings)
    clear_run_caches()
    shipped = Shipped(uuid.uuid4().hex, session.sparkContext.broadcast(cloudpickle.dumps(context)))
    bank = session.sql(INPUT_SELECTS["bank"][0])
    linked = bank.mapInPandas(partial(_link_partition, shipped), LINKED_SCHEMA)
    orders = session.createDataFrame(orders_frame(context), ORDERS_SCHEMA)
    assigned = (
        linked.filter(F.col("allocation_customer").isNotNull())
        .groupBy("allocation_customer")
        .cogroup(orders.groupBy("customer_id"))
        .applyInPandas(partial(_allocate_group, shipped), LINKS_SCHEMA)
    )
    unassigned = linked.filter(F.col("allocation_customer").isNull()).mapInPandas(
        partial(_allocate_unassigned, shipped), LINKS_SCHEMA)
    return assigned.unionByName(unassigned)


def refresh_receipt_links_spark(session: "SparkSession", as_of: datetime, settings: Settings) -> None:
    """Replace `matching.receipt_links` in Spark with this run's links."""
    from recon_pipeline.spark_session import ensure_spark_schema

    ensure_spark_schema(session)
    build_receipt_links_spark(session, as_of, settings).createOrReplaceTempView("_receipt_links")
    columns = ", ".join(session.table("matching.receipt_links").columns)
    session.sql(f"""
        INSERT OVERWRITE TABLE matching.receipt_links
        SELECT {columns} FROM (
            SELECT account_no, txn_id, customer_id, order_id,
                   CAST(CAST(allocated_cents AS DECIMAL(18,0)) / 100 AS DECIMAL(18,2)) AS allocated_amount,
                   match_method, match_score, match_status, evidence
            FROM _receipt_links)""")
    session.catalog.dropTempView("_receipt_links")


def receipt_link_counts(session: "SparkSession") -> tuple[int, dict[str, int], dict[str, int], int, int]:
    """(rows, rows by status, rows by method, credits, credits linked auto or confirmed) of the
    Spark seam table, counted where it lives."""
    by = session.sql("SELECT match_status, match_method, count(*) AS n FROM matching.receipt_links GROUP BY 1, 2").collect()
    credits = session.sql("""
        SELECT count(DISTINCT account_no, txn_id) AS credits,
               count(DISTINCT CASE WHEN match_status IN ('auto_linked', 'confirmed') THEN account_no END,
                              CASE WHEN match_status IN ('auto_linked', 'confirmed') THEN txn_id END) AS linked
        FROM matching.receipt_links WHERE allocated_amount > 0""").collect()[0]
    by_status: dict[str, int] = {}
    by_method: dict[str, int] = {}
    for row in by:
        by_status[row.match_status] = by_status.get(row.match_status, 0) + int(row.n)
        by_method[row.match_method] = by_method.get(row.match_method, 0) + int(row.n)
    return sum(by_status.values()), by_status, by_method, int(credits.credits), int(credits.linked)
