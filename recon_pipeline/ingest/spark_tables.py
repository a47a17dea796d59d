"""Ingestion on the Spark engine: the same readers and typing, written as Spark Parquet tables.

The drops that changed since the ingest log was written are read and typed exactly as on the
DuckDB engine (`loader.load_drops`, into a scratch DuckDB file: the typing is DuckDB SQL), then
each loaded (source, drop date) replaces its partition of the Spark table `raw.<source>`
(partitioned by `_drop_date`: a reload replaces whole drops, and a year of daily drops is a few
hundred folders however many lines they hold) and its rows of `raw.quarantine` and `raw.ingest_log`.
A partition is a folder of the table (`_drop_date=2025-03-01/`), found by listing, not registered
in the metastore. The ingest log (a row per drop) and the quarantine (the few rows that failed)
are small: they are not partitioned, because every query pays for every folder and file a table
has (the demo's log was ~400 one-row folders, read three times a run). New drops are appended;
forgetting a drop that is loaded again rewrites the table into a new folder and then points the
table at it (one metastore update), so a crash leaves either the old rows or the new ones.
Parquet tables have no transactions, so the order is what keeps a crash harmless: a drop leaves
the ingest log first and is recorded again last, so a run that dies in between reloads that
drop next time.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Collection

from recon_pipeline.ingest.loader import DropResult, IngestReport, changed_drops, drop_warnings, load_drops
from recon_pipeline.settings import Settings
from recon_pipeline.spark_session import ensure_spark_schema
from recon_pipeline.sources import SOURCES
from recon_pipeline.warehouse import connect

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import SparkSession

def _known_fingerprints(session: "SparkSession") -> dict[tuple[str, date], str]:
    rows = session.sql("SELECT source, _drop_date, fingerprint FROM raw.ingest_log").collect()
    return {(row.source, row._drop_date): row.fingerprint for row in rows}


def sync_landing_to_spark(
    session: "SparkSession", landing_dir: Path, until: date, settings: Settings, scratch_dir: Path,
    sources: Collection[str] | None = None,
) -> IngestReport:
    """`loader.sync_landing` for the Spark engine: load every new or changed drop dated on or
    before `until` into the Spark raw tables. A drop that fails is reported and left out."""
    ensure_spark_schema(session)
    report, fingerprints = changed_drops(landing_dir, until, settings, _known_fingerprints(session), sources)
    if fingerprints:
        report.loaded, report.failed = load_drops_to_spark(session, landing_dir, list(fingerprints), settings,
                                                           scratch_dir, fingerprints)
        report.warnings += drop_warnings(report.loaded)
    return report


def load_drops_to_spark(
    session: "SparkSession", landing_dir: Path, drops: list[tuple[str, date]], settings: Settings, scratch_dir: Path,
    fingerprints: dict[tuple[str, date], str] | None = None,
) -> tuple[list[DropResult], list[str]]:
    """`loader.load_drops` for the Spark engine: (loaded, failure messages)."""
    ensure_spark_schema(session)
    scratch_dir = Path(scratch_dir)
    shutil.rmtree(scratch_dir, ignore_errors=True)
    scratch_dir.mkdir(parents=True)
    try:
        with connect(scratch_dir / "typing.duckdb") as conn:
            loaded, failed = load_drops(conn, landing_dir, drops, settings, fingerprints)
            if loaded:
                _replace_partitions(session, conn, loaded, scratch_dir)
        return loaded, failed
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)


def _replace_partitions(session: "SparkSession", conn: "duckdb.DuckDBPyConnection", loaded: list[DropResult],
                        scratch_dir: Path) -> None:
    reloaded = sorted({(drop.source, drop.drop_date) for drop in loaded})
    # 1. Forget the drops (log first): from here until step 3, a crash means "reload them".
    for table in ("ingest_log", "quarantine"):
        _forget_drops(session, f"raw.{table}", reloaded)
    for source in sorted({s for s, _ in reloaded}):
        _delete_partitions(session, f"raw.{source}", [{"_drop_date": d} for s, d in reloaded if s == source])
    # 2. Their rows; 3. the log.
    for table in [*sorted({s for s, _ in reloaded}), "quarantine", "ingest_log"]:
        _append_from_duckdb(session, conn, table, scratch_dir)


def _location(session: "SparkSession", table: str) -> str:
    return next(row.data_type for row in session.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()
                if row.col_name == "Location")


def _delete_partitions(session: "SparkSession", table: str, specs: list[dict]) -> None:
    """Remove these partitions' folders (a partition is a folder `col=value/...` of the table)."""
    jvm = session.sparkContext._jvm
    location = _location(session, table)
    hadoop = session.sparkContext._jsc.hadoopConfiguration()
    for spec in specs:
        path = jvm.org.apache.hadoop.fs.Path(location + "/" + "/".join(f"{k}={v}" for k, v in spec.items()))
        path.getFileSystem(hadoop).delete(path, True)
    session.catalog.refreshTable(table)


def _forget_drops(session: "SparkSession", table: str, drops: list[tuple[str, date]]) -> None:
    """Remove the rows of these (source, drop date) from `raw.ingest_log` or `raw.quarantine`."""
    partitions = [c.name for c in session.catalog.listColumns(table) if c.isPartition]
    if partitions == ["source", "_drop_date"]:  # a folder made before these tables lost their partitions
        _delete_partitions(session, table, [{"source": s, "_drop_date": d} for s, d in drops])
        return
    keys = session.createDataFrame(drops, "source string, _drop_date date")
    if not session.table(table).join(keys, ["source", "_drop_date"], "left_semi").take(1):
        return  # new drops: nothing of theirs to forget
    # The rows to keep go to a new folder beside the table's, the table is pointed at it (one
    # metastore update), then the old folder goes: a crash leaves the old rows or the new ones.
    old = _location(session, table).rstrip("/")
    new = f"{old.rsplit('/', 1)[0]}/{table.split('.')[-1]}-{uuid.uuid4().hex[:12]}"
    kept = session.table(table).join(keys, ["source", "_drop_date"], "left_anti").select(*session.table(table).columns)
    kept.coalesce(1).write.parquet(new)
    session.sql(f"ALTER TABLE {table} SET LOCATION '{new}'")
    jvm = session.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(old)
    path.getFileSystem(session.sparkContext._jsc.hadoopConfiguration()).delete(path, True)
    session.catalog.refreshTable(table)


def _append_from_duckdb(session: "SparkSession", conn: "duckdb.DuckDBPyConnection", table: str, scratch_dir: Path) -> None:
    """Append the scratch warehouse's `raw.<table>` (only the reloaded drops) to the Spark table."""
    if conn.execute(f"SELECT count(*) FROM raw.{table}").fetchone()[0] == 0:
        return
    folder = scratch_dir / "export" / table
    folder.mkdir(parents=True, exist_ok=True)
    conn.execute(f"COPY raw.{table} TO '{folder / 'part.parquet'}' (FORMAT parquet)")
    view = f"_landing_{table}"
    session.read.parquet(str(folder)).createOrReplaceTempView(view)
    target = f"raw.{table}"
    rows = session.table(view).select(*session.table(target).columns)  # the table's order: partitions last
    # One file per partition (one file for a table without) instead of one per input split.
    keys = [c.name for c in session.catalog.listColumns(target) if c.isPartition]
    (rows.repartition(*keys) if keys else rows.coalesce(1)).write.insertInto(target)
    session.catalog.dropTempView(view)
