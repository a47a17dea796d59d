"""Extraction drops in the landing zone, and what each extraction remembers between runs.

A drop is written aside (under `<landing>/.extract/tmp/`) and then linked into
`<source>/<YYYY-MM-DD>/` in one step that never replaces an existing file: a failed or
interrupted extraction leaves no partial file where ingest looks, and nothing received is
overwritten (a name already taken gets `_2`, `_3`, ... which sort after it).

Each entry's state (watermark, fetched files, content digest, column types) is the JSON file
`<landing>/.extract/<entry>.json`, replaced atomically once the drop is in place. It lives
beside the drops it describes rather than in the warehouse: extraction must be able to run
while a pipeline run holds DuckDB's single writer lock, `recon extract` is given only the
landing zone, and a landing zone wiped clean is re-pulled in full instead of being trusted to
a watermark that no longer matches it. Ingest ignores the folder (its name starts with a dot).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from recon_pipeline.extract.config import ExtractError

STATE_DIR = ".extract"
LOCK_TIMEOUT_SECONDS = 600


def state_dir(landing: Path) -> Path:
    path = Path(landing) / STATE_DIR
    (path / "tmp").mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def entry_lock(landing: Path, name: str) -> Iterator[None]:
    """One extraction of an entry at a time (the CLI and Dagster may both start one)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(state_dir(landing) / f"{name}.lock"))
    try:
        lock.acquire(timeout=LOCK_TIMEOUT_SECONDS)
    except Timeout:
        raise ExtractError(f"{name}: 另一个提取任务正在运行，{LOCK_TIMEOUT_SECONDS} 秒后仍未结束") from None
    try:
        yield
    finally:
        lock.release()


class EntryState:
    """An entry's memory across runs, saved atomically (write aside, then rename)."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path, self.data = path, data

    @classmethod
    def load(cls, landing: Path, name: str) -> "EntryState":
        path = state_dir(landing) / f"{name}.json"
        if not path.is_file():
            return cls(path, {})
        try:
            return cls(path, json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ExtractError(f"{name}: 状态文件 {path} 无法读取（{exc}）；确认后删除它将重新全量提取") from None

    def save(self) -> None:
        scratch = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        scratch.write_text(json.dumps(self.data, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(scratch, self.path)


def scratch_path(landing: Path, suffix: str) -> Path:
    """A private file on the landing zone's file system, to be placed with `place_file`."""
    return state_dir(landing) / "tmp" / f"{uuid.uuid4().hex}{suffix}"


def place_file(scratch: Path, landing: Path, source: str, day: date, name: str) -> Path:
    """Move a finished file into `<source>/<day>/` under `name` (or `stem_N.ext` if taken)."""
    folder = Path(landing) / source / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = os.path.splitext(name)
    candidate, number = name, 2
    while True:
        target = folder / candidate
        try:
            os.link(scratch, target)  # atomic and never replaces: fails if the name is taken
            break
        except FileExistsError:
            candidate, number = f"{stem}_{number}{suffix}", number + 1
        except OSError:  # a file system without hard links: rename, having checked the name is free
            if target.exists():
                candidate, number = f"{stem}_{number}{suffix}", number + 1
                continue
            os.rename(scratch, target)
            return target
    scratch.unlink()
    return target


def drop_name(as_of: datetime, suffix: str = ".parquet") -> str:
    """`extract-<HHMMSS>` of the as-of: the same extraction gives the same name everywhere."""
    return f"extract-{as_of:%H%M%S}{suffix}"


def write_parquet_drop(table: pa.Table, landing: Path, source: str, as_of: datetime) -> Path:
    import pyarrow.parquet as pq

    scratch = scratch_path(landing, ".parquet")
    try:
        pq.write_table(table, scratch, compression="zstd")
        return place_file(scratch, landing, source, as_of.date(), drop_name(as_of))
    finally:
        scratch.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- arrow helpers


def type_family(data_type: pa.DataType) -> str:
    """What a column holds, at the level where a change breaks readers: numbers stay numbers
    whether integer, decimal or float (SQLite even mixes them row by row)."""
    checks = [
        (pa.types.is_null, "null"), (pa.types.is_boolean, "boolean"), (pa.types.is_integer, "number"),
        (pa.types.is_floating, "number"), (pa.types.is_decimal, "number"), (pa.types.is_timestamp, "timestamp"),
        (pa.types.is_date, "date"), (pa.types.is_time, "time"), (pa.types.is_string, "text"),
        (pa.types.is_large_string, "text"), (pa.types.is_binary, "binary"), (pa.types.is_large_binary, "binary"),
    ]
    return next((name for check, name in checks if check(data_type)), str(data_type))


def localize_timestamps(table: pa.Table, timezone: str) -> pa.Table:
    """Timestamps with an offset -> naive local time in `timezone`, as the warehouse stores them."""
    for position, column_field in enumerate(table.schema):
        if pa.types.is_timestamp(column_field.type) and column_field.type.tz is not None:
            local = pc.local_timestamp(table.column(position).cast(pa.timestamp(column_field.type.unit, tz=timezone)))
            table = table.set_column(position, column_field.name, local)
    return table


def row_hashes(table: pa.Table) -> list[str]:
    """A stable 64-bit hash per row of its values (as text), for comparing rows across runs."""
    if table.num_rows == 0:
        return []
    if table.num_columns == 0:
        return [hashlib.blake2b(b"", digest_size=8).hexdigest()] * table.num_rows
    text = []
    for column in table.columns:
        try:
            values = pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            values = pa.array([None if v is None else repr(v) for v in column.to_pylist()], pa.string())
        text.append(pc.fill_null(values, "\x00"))  # NULL differs from every text, the empty one included
    joined = pc.binary_join_element_wise(*text, "\x1f") if len(text) > 1 else text[0]
    return [hashlib.blake2b(value.encode(), digest_size=8).hexdigest() for value in joined.to_pylist()]


def table_digest(table: pa.Table) -> str:
    """Content of a table regardless of row order: the same rows give the same digest."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[f.name, type_family(f.type)] for f in table.schema], ensure_ascii=False).encode())
    for value in sorted(row_hashes(table)):
        digest.update(value.encode())
    return digest.hexdigest()
