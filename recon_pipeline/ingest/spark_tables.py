"""Ingestion on the Spark engine: the same readers and typing, written as Spark Parquet tables.

The drops that changed since the ingest log was written are read and typed exactly as on the
DuckDB engine (`loader.load_drops`, into a scratch DuckDB file: the typing is DuckDB SQL), then
each loaded (source, drop date) partition replaces its partition of the Spark tables
`raw.<source>` (partitioned by `_drop_date`) and `raw.quarantine` (by `source`, `_drop_date`),
and `raw.ingest_log` records it. Parquet tables have no transactions, so the order is what keeps
a crash harmless: a drop leaves the ingest log first and is recorded again last, so a run that
dies in between reloads that drop next time.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from recon_pipeline.ingest.loader import DropResult, IngestReport, changed_drops, load_drops
from recon_pipeline.settings import Settings
from recon_pipeline.spark_session import mirror_warehouse_tables
from recon_pipeline.sources import SOURCES
from recon_pipeline.warehouse import connect, ensure_schema

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import SparkSession

# How the raw tables are partitioned in Spark (a reload replaces whole partitions).
PARTITIONS = {**{source: ("_drop_date",) for source in SOURCES}, "quarantine": ("source", "_drop_date"), "ingest_log": ()}


def _known_fingerprints(session: "SparkSession") -> dict[tuple[str, date], str]:
    rows = session.sql("SELECT source, _drop_date, fingerprint FROM raw.ingest_log").collect()
    return {(row.source, row._drop_date): row.fingerprint for row in rows}


def sync_landing_to_spark(
    session: "SparkSession", landing_dir: Path, until: date, settings: Settings, scratch_dir: Path
) -> IngestReport:
    """`loader.sync_landing` for the Spark engine: load every new or changed drop dated on or
    before `until` into the Spark raw tables. A drop that fails is reported and left out."""
    scratch_dir = Path(scratch_dir)
    shutil.rmtree(scratch_dir, ignore_errors=True)
    scratch_dir.mkdir(parents=True)
    try:
        with connect(scratch_dir / "typing.duckdb") as conn:
            ensure_schema(conn)
            mirror_warehouse_tables(session, "raw", list(PARTITIONS), PARTITIONS)
            report, fingerprints = changed_drops(landing_dir, until, settings, _known_fingerprints(session))
            if fingerprints:
                report.loaded, report.failed = load_drops(conn, landing_dir, list(fingerprints), settings, fingerprints)
            if report.loaded:
                _replace_partitions(session, conn, report.loaded, scratch_dir)
        return report
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)


def _partition_spec(values: dict[str, object]) -> str:
    return "PARTITION (" + ", ".join(f"{k} = '{v}'" for k, v in values.items()) + ")"


def _replace_partitions(session: "SparkSession", conn: "duckdb.DuckDBPyConnection", loaded: list[DropResult],
                        scratch_dir: Path) -> None:
    reloaded = {(drop.source, drop.drop_date) for drop in loaded}
    # 1. Forget the drops first: from here until step 3, a crash means "reload them".
    log = session.table("raw.ingest_log").toPandas()
    log = log[[(s, d) not in reloaded for s, d in zip(log["source"], log["_drop_date"])]]
    _overwrite_from_pandas(session, "raw.ingest_log", log)

    # 2. Replace the partitions of every reloaded drop (dropped even when the drop is now empty).
    days_by_source: dict[str, list[date]] = defaultdict(list)
    for source, day in sorted(reloaded):
        days_by_source[source].append(day)
    for source, days in days_by_source.items():
        _drop_partitions(session, f"raw.{source}", [{"_drop_date": d} for d in days])
        _insert_from_duckdb(session, conn, source, scratch_dir)
    _drop_partitions(session, "raw.quarantine",
                     [{"source": s, "_drop_date": d} for s, d in sorted(reloaded)])
    _insert_from_duckdb(session, conn, "quarantine", scratch_dir)

    # 3. Record them.
    _insert_from_duckdb(session, conn, "ingest_log", scratch_dir)


def _drop_partitions(session: "SparkSession", table: str, specs: list[dict]) -> None:
    for start in range(0, len(specs), 200):  # one statement per batch of partitions
        clause = ", ".join(_partition_spec(spec) for spec in specs[start:start + 200])
        session.sql(f"ALTER TABLE {table} DROP IF EXISTS {clause}")


def _insert_from_duckdb(session: "SparkSession", conn: "duckdb.DuckDBPyConnection", table: str, scratch_dir: Path) -> None:
    """Append the scratch warehouse's `raw.<table>` (only the reloaded drops) to the Spark table."""
    if conn.execute(f"SELECT count(*) FROM raw.{table}").fetchone()[0] == 0:
        return
    folder = scratch_dir / "export" / table
    folder.mkdir(parents=True, exist_ok=True)
    conn.execute(f"COPY raw.{table} TO '{folder / 'part.parquet'}' (FORMAT parquet)")
    view = f"_landing_{table}"
    session.read.parquet(str(folder)).createOrReplaceTempView(view)
    target = f"raw.{table}"
    columns = ", ".join(f"`{c}`" for c in session.table(target).columns)
    partitioned = PARTITIONS[table]
    # One file per partition instead of one per partition and input split.
    distribute = f" DISTRIBUTE BY {', '.join(partitioned)}" if partitioned else ""
    session.sql(f"INSERT INTO {target} SELECT {columns} FROM {view}{distribute}")
    session.catalog.dropTempView(view)


def _overwrite_from_pandas(session: "SparkSession", table: str, frame) -> None:
    schema = session.table(table).schema
    session.createDataFrame(frame, schema=schema).write.insertInto(table, overwrite=True)
