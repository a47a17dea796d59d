"""The DuckDB warehouse: connections and the tables the Python side owns.

DuckDB takes one writing process at a time: every step that writes opens the file, does its
work and closes it (`connect` is a context manager), and the pipeline runs those steps one
after another. A whole run (`recon run`, a Dagster run) holds the writer lock `hold_warehouse`
beside the file, so a second run waits for the first instead of slipping in between its steps.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import sys
import threading
import time
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb

from recon_pipeline.sources import SOURCES, SourceSpec

SQL_TYPES = {
    "text": "VARCHAR",
    "enum": "VARCHAR",
    "decimal": "DECIMAL(18,2)",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse; the message (one Chinese line) says who."""


_DUCKDB_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


@contextmanager
def connect(path: str | Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    # No progress bar: `recon run` prints its own stages, and cron logs stay clean.
    try:
        conn = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        # DuckDB's own lock: a process outside the pipeline (a BI tool, a notebook, dbt by hand)
        # has the working file open. Not an internal error: say who, and what to open instead.
        holder = _DUCKDB_HOLDER.search(str(exc))
        if holder is None and "lock" not in str(exc).lower():
            raise
        from recon_pipeline.publish.publication import default_published_path

        who = f"PID {holder['pid']}（{holder['program']}）" if holder else "另一个进程"
        raise WarehouseBusyError(
            f"数据仓库 {path} 正被 {who} 打开，无法写入；请关闭它（BI 工具与看板请连接只读发布文件 "
            f"{default_published_path(path).name}）后重试"
        ) from None
    try:
        conn.execute("SET enable_progress_bar = false")
        yield conn
    finally:
        conn.close()


def raw_table_ddl(spec: SourceSpec) -> str:
    columns = [f"{c.name} {SQL_TYPES[c.type]}" for c in spec.columns]
    columns += [
        "_drop_date DATE NOT NULL",
        "_source_file VARCHAR NOT NULL",
        "_row_number INTEGER NOT NULL",
        "_extra_columns VARCHAR",
    ]
    return f"CREATE TABLE IF NOT EXISTS raw.{spec.name} (\n  " + ",\n  ".join(columns) + "\n)"


RECEIPT_LINKS_DDL = """
CREATE TABLE IF NOT EXISTS matching.receipt_links (
  account_no VARCHAR NOT NULL,
  txn_id VARCHAR NOT NULL,
  customer_id VARCHAR,
  order_id VARCHAR,
  allocated_amount DECIMAL(18,2) NOT NULL,
  match_method VARCHAR NOT NULL,
  match_score INTEGER NOT NULL,
  match_status VARCHAR NOT NULL,
  evidence VARCHAR
)
"""

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS raw.quarantine (
  source VARCHAR NOT NULL,
  _drop_date DATE NOT NULL,
  _source_file VARCHAR NOT NULL,
  _row_number INTEGER,
  reason VARCHAR NOT NULL,
  raw_record VARCHAR
)
"""

INGEST_LOG_DDL = """
CREATE TABLE IF NOT EXISTS raw.ingest_log (
  source VARCHAR NOT NULL,
  _drop_date DATE NOT NULL,
  files VARCHAR NOT NULL,
  fingerprint VARCHAR NOT NULL,
  rows_loaded BIGINT NOT NULL,
  rows_quarantined BIGINT NOT NULL,
  PRIMARY KEY (source, _drop_date)
)
"""


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the Python-owned schemas and tables if missing (idempotent)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
    conn.execute("CREATE SCHEMA IF NOT EXISTS matching")
    for spec in SOURCES.values():
        conn.execute(raw_table_ddl(spec))
    conn.execute(QUARANTINE_DDL)
    conn.execute(INGEST_LOG_DDL)
    conn.execute(RECEIPT_LINKS_DDL)


# ---------------------------------------------------------------------------- one writer at a time

# An advisory lock file beside the warehouse (`<warehouse>.lock`), held for a whole run: `flock`
# (released by the kernel when the process dies, so a crash never leaves a stale lock) and, in
# the file, who holds it (pid, host, command, since) for the message the next writer prints.
# Readers are never concerned: BI tools and the dashboard open only the published file.
# (`filelock` truncates the lock file on every attempt, erasing the holder a waiting run reports.)


# Lock files this thread holds: a nested hold (the CLI around `run_stages`, which holds it too)
# is a no-op instead of waiting for itself.
_held = threading.local()


def lock_path(warehouse: str | os.PathLike) -> Path:
    warehouse = Path(warehouse).resolve()
    return warehouse.with_name(warehouse.name + ".lock")


def describe_holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "另一个进程"
    return f"{holder.get('command', '?')}（PID {holder.get('pid', '?')}，主机 {holder.get('host', '?')}，自 {holder.get('since', '?')} 起）"


def current_command() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join([name, *sys.argv[1:]])[:300]


@contextmanager
def hold_warehouse(
    warehouse: str | os.PathLike,
    wait_seconds: float = 600,
    command: str | None = None,
    on_wait: Callable[[str], None] = lambda holder: None,
    poll_seconds: float = 0.5,
) -> Iterator[Path]:
    """Hold the warehouse's writer lock for the block; wait up to `wait_seconds` for it.

    Raises WarehouseBusyError naming the holder when the wait runs out. Re-entrant within one
    thread: an inner hold of a lock the thread already holds does nothing.
    """
    path = lock_path(warehouse)
    held = _held.__dict__.setdefault("paths", set())
    if path in held:
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(0.0, wait_seconds)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = describe_holder(path)
                if time.monotonic() >= deadline:
                    waited = f"，已等待 {wait_seconds:g} 秒" if wait_seconds > 0 else ""
                    raise WarehouseBusyError(f"数据仓库 {Path(warehouse)} 正被占用: {holder}{waited}；请稍后重试或加大 --wait") from None
                if not told:
                    on_wait(holder)
                    told = True
                time.sleep(poll_seconds)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command or current_command(),
            "since": datetime.now().replace(microsecond=0).isoformat(sep=" "),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record, ensure_ascii=False).encode("utf-8"), 0)
        held.add(path)
        try:
            yield path
        finally:
            held.discard(path)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def registered(conn: duckdb.DuckDBPyConnection, frames: dict[str, Any]) -> Iterator[None]:
    """Frames (pandas or Arrow) visible to SQL under these names for the block. An error inside
    the block is raised as it is: in an aborted transaction DuckDB refuses the unregistering
    too, and that second error must not hide the first (a damaged file, say)."""
    for name, frame in frames.items():
        conn.register(name, frame)
    try:
        yield
    except BaseException:
        for name in frames:
            with suppress(duckdb.Error):
                conn.unregister(name)
        raise
    for name in frames:
        conn.unregister(name)
