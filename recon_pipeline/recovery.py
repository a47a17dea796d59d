"""Backup, restore and integrity checks of the warehouse: what to do when the file is lost or damaged.

Raw history (`raw.*`) is the only copy of row versions whose drops were deleted from the
landing zone, and a few tables carry state no run can recompute (alert history, the
notification log, closed periods). `backup_warehouse` therefore exports every table of every
schema as Parquet, with a manifest (DDL, row counts, SHA-256 of each file) so that
`restore_warehouse` rebuilds the same tables with the same types and checks what it loaded.
Views (dbt's staging models) are not exported: the next run recreates them.

A restore is built into a file beside the target and swapped in with `os.replace`, so a
failed restore never leaves a half-loaded warehouse behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class RecoveryError(RuntimeError):
    """A backup, restore or check failed; the message is one line for the user."""


# DuckDB's messages for a file that is not (or no longer) a whole database.
_CORRUPT_MARKERS = (
    "not a valid DuckDB database file",
    "Could not read enough bytes",
    "Corrupt database file",
    "checksum",
    "INTERNAL Error",
    "database file is truncated",
    "Serialization Error",
)


def mentions_corruption(text: str) -> bool:
    """Whether an error text (DuckDB's, or dbt's log of it) says the database file is damaged."""
    lowered = text.lower()
    return any(marker.lower() in lowered for marker in _CORRUPT_MARKERS)


def is_corruption_error(error: BaseException) -> bool:
    """Whether a DuckDB error means the database file itself is damaged."""
    return isinstance(error, duckdb.Error) and mentions_corruption(str(error))


def corruption_message(path: str | os.PathLike, error: BaseException | str) -> str:
    """The one line a user reads when the warehouse (or a published copy) is damaged."""
    detail = str(error).strip().splitlines()[0][:160]
    return (f"数据仓库文件已损坏或不完整: {path}（{detail}）。恢复: recon rebuild --landing <落地目录> "
            f"--warehouse {path} --as-of <时点> [--from-backup <备份目录>]，详见 README「备份与恢复」")


@dataclass(frozen=True)
class TableCopy:
    schema: str
    name: str
    rows: int
    file: str
    sha256: str
    ddl: str


@dataclass
class BackupStats:
    directory: Path
    tables: list[TableCopy] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def _quoted(schema: str, name: str) -> str:
    return '"' + schema.replace('"', '""') + '"."' + name.replace('"', '""') + '"'


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tables(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(schema, table, CREATE TABLE statement) of every base table, in a stable order."""
    return conn.execute(
        "SELECT schema_name, table_name, sql FROM duckdb_tables() "
        "WHERE database_name = current_database() AND NOT temporary ORDER BY schema_name, table_name"
    ).fetchall()


def backup_warehouse(warehouse: str | os.PathLike, out_dir: str | os.PathLike) -> BackupStats:
    """Export every table of the warehouse as Parquet into `out_dir` (which must be empty or new).

    Opens the warehouse read-only: run it while no pipeline run holds the file.
    """
    started = time.perf_counter()
    warehouse, out = Path(warehouse), Path(out_dir)
    if not warehouse.is_file():
        raise RecoveryError(f"找不到仓库文件: {warehouse}")
    if out.exists() and any(out.iterdir()):
        raise RecoveryError(f"备份目录不是空的: {out}（请换一个新目录，避免与旧备份混在一起）")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        conn = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as error:
        shutil.rmtree(staging, ignore_errors=True)
        if is_corruption_error(error):
            raise RecoveryError(corruption_message(warehouse, error)) from None
        raise RecoveryError(f"无法打开仓库 {warehouse}: {str(error).splitlines()[0]}") from None
    stats = BackupStats(directory=out)
    try:
        for schema, name, ddl in _tables(conn):
            relative = f"{schema}/{name}.parquet"
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            conn.execute(f"COPY (SELECT * FROM {_quoted(schema, name)}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
            rows = conn.execute(f"SELECT count(*) FROM {_quoted(schema, name)}").fetchone()[0]
            stats.tables.append(TableCopy(schema, name, int(rows), relative, _sha256(target), ddl))
    except duckdb.Error as error:
        shutil.rmtree(staging, ignore_errors=True)
        if is_corruption_error(error):
            raise RecoveryError(corruption_message(warehouse, error)) from None
        raise RecoveryError(f"备份失败: {str(error).splitlines()[0]}") from None
    finally:
        conn.close()
    manifest = {
        "format_version": FORMAT_VERSION,
        "warehouse": str(warehouse.resolve()),
        "created_at": datetime.now().isoformat(timespec="seconds"),  # provenance only, never a time rule
        "duckdb_version": duckdb.__version__,
        "tables": [t.__dict__ for t in stats.tables],
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    if out.exists():
        out.rmdir()
    os.replace(staging, out)
    stats.seconds = round(time.perf_counter() - started, 2)
    return stats


def read_manifest(backup_dir: str | os.PathLike) -> dict:
    path = Path(backup_dir) / MANIFEST
    if not path.is_file():
        raise RecoveryError(f"不是备份目录（缺少 {MANIFEST}）: {backup_dir}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise RecoveryError(f"备份清单无法读取: {path}") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RecoveryError(f"不支持的备份格式版本 {manifest.get('format_version')}: {path}")
    return manifest


@dataclass
class RestoreStats:
    warehouse: Path
    tables: int = 0
    rows: int = 0
    moved_aside: Path | None = None
    seconds: float = 0.0


def restore_warehouse(backup_dir: str | os.PathLike, warehouse: str | os.PathLike, force: bool = False) -> RestoreStats:
    """Rebuild the warehouse from a backup. An existing warehouse is kept as
    `<name>.before-restore-<time>` (only with `force`); the files are verified against the manifest."""
    started = time.perf_counter()
    backup, warehouse = Path(backup_dir), Path(warehouse)
    manifest = read_manifest(backup)
    if warehouse.exists() and not force:
        raise RecoveryError(f"仓库文件已存在: {warehouse}（确认要用备份替换它，请加 --force；原文件会被保留在旁边）")
    for table in manifest["tables"]:
        path = backup / table["file"]
        if not path.is_file():
            raise RecoveryError(f"备份缺少文件: {path}")
        if _sha256(path) != table["sha256"]:
            raise RecoveryError(f"备份文件校验失败（内容与清单不符）: {path}")
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    building = warehouse.with_name(f"{warehouse.name}.restoring-{os.getpid()}")
    for leftover in (building, Path(str(building) + ".wal")):
        leftover.unlink(missing_ok=True)
    stats = RestoreStats(warehouse=warehouse)
    conn = duckdb.connect(str(building))
    try:
        for schema in sorted({t["schema"] for t in manifest["tables"]}):
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for table in manifest["tables"]:
            conn.execute(table["ddl"])
            path = backup / table["file"]
            conn.execute(f"INSERT INTO {_quoted(table['schema'], table['name'])} SELECT * FROM read_parquet('{path}')")
            loaded = conn.execute(f"SELECT count(*) FROM {_quoted(table['schema'], table['name'])}").fetchone()[0]
            if loaded != table["rows"]:
                raise RecoveryError(f"恢复 {table['schema']}.{table['name']} 行数不符: 备份 {table['rows']}，载入 {loaded}")
            stats.tables += 1
            stats.rows += int(loaded)
        conn.execute("CHECKPOINT")
    except duckdb.Error as error:
        conn.close()
        building.unlink(missing_ok=True)
        raise RecoveryError(f"恢复失败: {str(error).splitlines()[0]}") from None
    except RecoveryError:
        conn.close()
        building.unlink(missing_ok=True)
        raise
    conn.close()
    if warehouse.exists():
        stats.moved_aside = move_aside(warehouse, "before-restore")
    os.replace(building, warehouse)
    stats.seconds = round(time.perf_counter() - started, 2)
    return stats


def move_aside(path: Path, label: str) -> Path:
    """Keep a file (and its WAL) under a new name instead of deleting it: `<name>.<label>-<time>`."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")  # a file name, not a time rule
    aside = path.with_name(f"{path.name}.{label}-{stamp}")
    os.replace(path, aside)
    wal = Path(str(path) + ".wal")
    if wal.exists():
        os.replace(wal, Path(str(aside) + ".wal"))
    return aside


def check_warehouse(path: str | os.PathLike) -> dict[str, int]:
    """Read every value of every table (so every data block's checksum is verified).

    Returns the row count per table; raises RecoveryError with the recovery line when the file
    is damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise RecoveryError(f"找不到仓库文件: {path}")
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        if is_corruption_error(error):
            raise RecoveryError(corruption_message(path, error)) from None
        raise RecoveryError(f"无法打开 {path}: {str(error).splitlines()[0]}") from None
    counts: dict[str, int] = {}
    try:
        for schema, name, _ in _tables(conn):
            columns = [c[0] for c in conn.execute(f"DESCRIBE {_quoted(schema, name)}").fetchall()]
            # hash() needs every value; count(column) could be answered from statistics alone.
            values = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
            row = conn.execute(f"SELECT count(*), sum(hash({values})) FROM {_quoted(schema, name)}").fetchone()
            counts[f"{schema}.{name}"] = int(row[0])
    except duckdb.Error as error:
        raise RecoveryError(corruption_message(path, error)) from None
    finally:
        conn.close()
    return counts
