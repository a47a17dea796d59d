"""After a Spark run: the tables it built, copied from their Parquet files into the DuckDB warehouse.

The Spark engine's tables are Parquet files in the Spark warehouse directory. Once every Spark
stage has succeeded, the tables dbt built (staging, intermediate, mart) and `matching.receipt_links`
are read from those files by DuckDB and replace their namesakes in the DuckDB file given by
`--warehouse`, in one transaction (which also forgets the DuckDB engine's incremental matching
state: those links are no longer the ones it computed, so its next run matches in full). From
there the rest is the DuckDB engine's own code: the alert rules and the health board (which keep
their history in that file), then the publication
(`<stem>.published.duckdb`) that the dashboard, BI tools and the acceptance scorer read. A Spark
run that fails earlier never reaches this step, so the DuckDB file and its publication keep their
last good state.

Types are the Spark tables' own, spelled for DuckDB; Spark's timestamps (instants, written as
UTC-adjusted Parquet) become the warehouse's naive local time again; rows are written sorted, so
two runs on the same inputs write the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from recon_pipeline.matching.incremental import forget_snapshot
from recon_pipeline.warehouse import connect

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DataType

# Written by Python on both engines: the seam between matching and the models.
PYTHON_TABLES = (("matching", "receipt_links"),)


@dataclass(frozen=True)
class SparkTable:
    schema: str
    name: str
    location: str  # a directory of Parquet files (partitions as `column=value` folders)
    columns: list[tuple[str, str, bool]]  # (name, DuckDB type, is a Spark timestamp with time zone)
    partition_columns: tuple[str, ...] = ()


def duckdb_type(spark_type: "DataType") -> tuple[str, bool]:
    """DuckDB's spelling of a Spark column type, and whether it is a Spark TIMESTAMP (an instant)."""
    from pyspark.sql import types as T

    simple = {T.StringType: "VARCHAR", T.IntegerType: "INTEGER", T.LongType: "BIGINT", T.ShortType: "SMALLINT",
              T.ByteType: "TINYINT", T.DoubleType: "DOUBLE", T.FloatType: "FLOAT", T.BooleanType: "BOOLEAN",
              T.DateType: "DATE", T.TimestampNTZType: "TIMESTAMP", T.BinaryType: "BLOB"}
    if isinstance(spark_type, T.DecimalType):
        return f"DECIMAL({spark_type.precision},{spark_type.scale})", False
    if isinstance(spark_type, T.TimestampType):
        return "TIMESTAMP", True
    for kind, name in simple.items():
        if isinstance(spark_type, kind):
            return name, False
    raise ValueError(f"Spark 列类型 {spark_type.simpleString()} 无法复制到 DuckDB")


def describe_table(session: "SparkSession", schema: str, name: str) -> SparkTable:
    qualified = f"{schema}.{name}"
    details = {row.col_name: row.data_type for row in session.sql(f"DESCRIBE TABLE EXTENDED {qualified}").collect()}
    location = details.get("Location")
    if not location:
        raise ValueError(f"Spark 表 {qualified} 没有存储位置（视图？），无法复制")
    partitions = tuple(c.name for c in session.catalog.listColumns(qualified) if c.isPartition)
    columns = [(f.name, *duckdb_type(f.dataType)) for f in session.table(qualified).schema.fields]
    return SparkTable(schema, name, location, columns, partitions)


def _local_path(location: str) -> Path:
    if location.startswith("file:"):
        return Path(location.removeprefix("file:").removeprefix("//"))
    if "://" in location:
        raise ValueError(f"Spark 表位于 {location}：DuckDB 只能读取本机可见的路径（设置 spark.warehouse_dir 为共享目录）")
    return Path(location)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def copy_sql(table: SparkTable, timezone: str) -> tuple[str, str | None]:
    """(CREATE TABLE, INSERT ... SELECT) replacing `schema.name` in DuckDB with the Spark table's rows."""
    qualified = f'{table.schema}."{table.name}"'
    create = f"CREATE OR REPLACE TABLE {qualified} (" + ", ".join(f'"{c}" {kind}' for c, kind, _ in table.columns) + ")"
    folder = _local_path(table.location)
    if not any(folder.rglob("*.parquet")):
        return create, None
    selected = ", ".join(
        f'CAST(timezone({_quote(timezone)}, "{c}") AS TIMESTAMP)' if instant else f'CAST("{c}" AS {kind})'
        for c, kind, instant in table.columns
    )
    hive = ""
    if table.partition_columns:
        types = ", ".join(f"'{c}': '{kind}'" for c, kind, _ in table.columns if c in table.partition_columns)
        hive = f", hive_partitioning = true, hive_types = {{{types}}}"
    source = f"read_parquet({_quote(str(folder / '**' / '*.parquet'))}{hive})"
    return create, f"INSERT INTO {qualified} SELECT {selected} FROM {source} ORDER BY ALL"


def built_tables(manifest) -> list[tuple[str, str]]:
    """The Spark tables to copy: every dbt model (from the run's manifest) and the seam."""
    models = sorted({(node.schema, node.alias) for node in manifest.nodes.values() if node.resource_type == "model"})
    return [*PYTHON_TABLES, *models]


def copy_into_duckdb(session: "SparkSession", tables: list[tuple[str, str]], warehouse: Path, timezone: str) -> dict[str, int]:
    """Replace these tables in the DuckDB warehouse with the Spark tables' rows (one transaction);
    row counts by `schema.table`."""
    described = [describe_table(session, schema, name) for schema, name in tables]
    statements = [copy_sql(table, timezone) for table in described]
    counts: dict[str, int] = {}
    with connect(warehouse) as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            for table, (create, insert) in zip(described, statements):
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {table.schema}")
                kind = conn.execute(
                    "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ? "
                    "AND table_catalog = current_database()", [table.schema, table.name]).fetchone()
                if kind and kind[0] == "VIEW":  # a DuckDB run's staging views
                    conn.execute(f'DROP VIEW {table.schema}."{table.name}"')
                conn.execute(create)
                if insert:
                    conn.execute(insert)
                counts[f"{table.schema}.{table.name}"] = conn.execute(
                    f'SELECT count(*) FROM {table.schema}."{table.name}"').fetchone()[0]
            forget_snapshot(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return counts
