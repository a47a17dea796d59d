"""Publish the `mart` schema into a separate read-only DuckDB file for BI tools and the dashboard.

DuckDB takes one writer or many readers, never both: a Metabase connection on the working
warehouse would block the nightly run. So after each successful run the mart is copied into
a new file built aside (`<published>.tmp-<pid>`) and swapped over the published file with
`os.replace`, which is atomic on one filesystem. Readers already connected keep the old
file's snapshot (they hold its inode); new connections see the new one; a failed publish
removes its temporary file and leaves the last good publication in place.

Every table and view of `mart` becomes a table in schema `mart` of the published file, so a
query written against the warehouse runs unchanged on the publication. `meta.publication`
records when and from what it was built.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from recon_pipeline.faults import crash_point

MART_SCHEMA = "mart"
PUBLISHED_ALIAS = "published_mart"
RESERVED_STEMS = {"mart", "meta", PUBLISHED_ALIAS}


class PublishError(RuntimeError):
    """The mart could not be published; the previous publication is untouched."""


@dataclass(frozen=True)
class PublishStats:
    published_path: Path
    row_counts: dict[str, int] = field(default_factory=dict)
    size_bytes: int = 0
    seconds: float = 0.0

    @property
    def table_count(self) -> int:
        return len(self.row_counts)


def default_published_path(warehouse_path: str | os.PathLike) -> Path:
    """`/data/recon.duckdb` -> `/data/recon.published.duckdb`."""
    warehouse = Path(warehouse_path)
    return warehouse.with_name(f"{warehouse.stem}.published.duckdb")


def publish_mart(
    warehouse_path: str | os.PathLike,
    published_path: str | os.PathLike | None = None,
    as_of: datetime | str | None = None,
) -> PublishStats:
    """Copy `mart` of the warehouse into the published file, atomically replacing it.

    Call it once the pipeline's write connection is closed (the warehouse is opened read-only
    here). To publish from inside a step that still holds the connection, use
    `publish_mart_from_connection`. `as_of` (the run's as-of) is recorded in
    `meta.publication`.
    """
    warehouse = Path(warehouse_path)
    if not warehouse.is_file():
        raise PublishError(f"找不到仓库文件：{warehouse}")
    target = Path(published_path) if published_path else default_published_path(warehouse)
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        return publish_mart_from_connection(conn, target, as_of=as_of, source=warehouse)
    finally:
        conn.close()


def publish_mart_from_connection(
    conn: duckdb.DuckDBPyConnection,
    published_path: str | os.PathLike,
    as_of: datetime | str | None = None,
    source: str | os.PathLike | None = None,
) -> PublishStats:
    """Publish `mart` as seen by `conn` (its default catalog) into `published_path`."""
    started = time.perf_counter()
    target = Path(published_path).resolve()
    if target.stem.lower() in RESERVED_STEMS:
        # DuckDB names a file's catalog after its stem: `mart.duckdb` makes `mart.x` ambiguous.
        raise PublishError(f"发布文件不能命名为 {target.name}（与模式同名，查询 mart.* 会产生歧义），请换一个文件名")
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    _remove_abandoned_builds(target)

    relations = _mart_relations(conn)
    if not relations:
        raise PublishError("仓库中没有 mart 模式或其中没有任何表，未发布（保留上一次的发布）")

    attached = False
    try:
        conn.execute(f"ATTACH '{_sql_literal(str(building))}' AS {PUBLISHED_ALIAS} (READ_WRITE)")
        attached = True
        conn.execute(f"CREATE SCHEMA {PUBLISHED_ALIAS}.{MART_SCHEMA}")
        conn.execute(f"CREATE SCHEMA {PUBLISHED_ALIAS}.meta")
        row_counts: dict[str, int] = {}
        for name in relations:
            qualified = f'{MART_SCHEMA}."{name}"'
            conn.execute(
                f"CREATE TABLE {PUBLISHED_ALIAS}.{qualified} AS SELECT * FROM {qualified}"
            )
            row_counts[name] = conn.execute(
                f"SELECT count(*) FROM {PUBLISHED_ALIAS}.{qualified}"
            ).fetchone()[0]
        _write_publication_record(conn, row_counts, as_of, source)
        conn.execute(f"CHECKPOINT {PUBLISHED_ALIAS}")
        conn.execute(f"DETACH {PUBLISHED_ALIAS}")
        attached = False
        _fsync(building)
        crash_point("publish:replace")
        os.replace(building, target)
        _fsync_dir(target.parent)
    except Exception as error:
        if attached:
            try:
                conn.execute(f"DETACH {PUBLISHED_ALIAS}")
            except duckdb.Error:
                pass
        _remove_database_file(building)
        if isinstance(error, PublishError):
            raise
        if _disk_full(error):
            raise PublishError(f"磁盘空间不足，发布 mart 失败，已保留上一次的发布（{target.parent}）") from error
        raise PublishError(f"发布 mart 失败，已保留上一次的发布：{error}") from error

    return PublishStats(
        published_path=target,
        row_counts=row_counts,
        size_bytes=target.stat().st_size,
        seconds=time.perf_counter() - started,
    )


def _mart_relations(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables and views of `mart` in the connection's default catalog, sorted by name."""
    rows = conn.execute(
        """
        SELECT table_name FROM information_schema.tables
        WHERE table_schema = ? AND table_catalog = current_database()
        ORDER BY table_name
        """,
        [MART_SCHEMA],
    ).fetchall()
    return [row[0] for row in rows]


def _write_publication_record(
    conn: duckdb.DuckDBPyConnection,
    row_counts: dict[str, int],
    as_of: datetime | str | None,
    source: str | os.PathLike | None,
) -> None:
    conn.execute(
        f"""
        CREATE TABLE {PUBLISHED_ALIAS}.meta.publication (
          published_at TIMESTAMP, as_of TIMESTAMP, source_warehouse VARCHAR,
          table_name VARCHAR, row_count BIGINT
        )
        """
    )
    # published_at is a fact about the publication (wall clock), not a business rule.
    published_at = datetime.now().replace(microsecond=0)
    as_of_value = str(as_of) if as_of is not None else None
    conn.executemany(
        f"INSERT INTO {PUBLISHED_ALIAS}.meta.publication VALUES (?, CAST(? AS TIMESTAMP), ?, ?, ?)",
        [
            [published_at, as_of_value, str(source) if source else None, name, count]
            for name, count in row_counts.items()
        ],
    )


def _remove_abandoned_builds(target: Path) -> None:
    """Temporary files of publishes whose process is gone (killed mid-build), and our own."""
    for leftover in target.parent.glob(f"{target.name}.tmp-*"):
        pid_text = leftover.name.rsplit("-", 1)[1].removesuffix(".wal")
        if pid_text.isdigit() and (int(pid_text) == os.getpid() or not _process_alive(int(pid_text))):
            leftover.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    return "no space left on device" in str(error).lower()


def _sql_literal(text: str) -> str:
    return text.replace("'", "''")


def _remove_database_file(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
