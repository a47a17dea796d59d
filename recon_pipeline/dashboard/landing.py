"""What the dashboard writes into the landing zone, and reads back until the pipeline has it.

The dashboard never writes the warehouse (the pipeline is its single writer). A decision or an
action is a one-row CSV `<landing>/<source>/<YYYY-MM-DD>/<prefix>-<stamp>-<id>.csv`, an ordinary
drop of that source, which the next `recon run` ingests into raw history and publishes. Until
then `pending_records` reads the files back so the pages count them at once.

Paths: the folder is built from a fixed source name and a date, the file name from the clock
and a random id, never from what a form sent; `_inside` checks the result stays under the
landing dir all the same. Values are written by the csv module, so quotes, commas and newlines
in a note stay inside their cell.

Time: the record carries business time (`business_now`): the publication's as-of plus the time
elapsed since it was published. In production a run publishes at its as-of and this is the
wall clock; on a demo or a backfill (as-of in the past) the action still lands just after the
as-of, so the next run (a later as-of) sees it happen in its past. The wall clock goes into the
audit column `recorded_at`.
"""

from __future__ import annotations

import csv
import os
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Sequence


class UnsafePath(ValueError):
    """A landing path that would leave the landing dir (never happens with our names)."""


def business_now(as_of: datetime, published_at: datetime | None, wall_now: datetime) -> datetime:
    """The dashboard's clock in business time (see the module note)."""
    if published_at is None or wall_now < published_at:
        return as_of
    return (as_of + (wall_now - published_at)).replace(microsecond=0)


def record_folder(landing_dir: str | os.PathLike, source: str, day: date) -> Path:
    return _inside(Path(landing_dir), Path(landing_dir) / source / day.isoformat())


def _inside(landing_dir: Path, path: Path) -> Path:
    root = landing_dir.resolve()
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise UnsafePath(f"拒绝写入落地目录之外的路径：{path}")
    return path


_last_stamp = 0
_stamp_lock = threading.Lock()


def new_record_id() -> str:
    """Sortable by creation (a strictly increasing microsecond stamp of this process) and
    unique (random tail): two clicks in the same second keep their order."""
    global _last_stamp
    with _stamp_lock:
        _last_stamp = max(time.time_ns() // 1000, _last_stamp + 1)
        stamp = _last_stamp
    moment = datetime.fromtimestamp(stamp // 1_000_000).replace(microsecond=stamp % 1_000_000)
    return f"{moment:%Y%m%d%H%M%S%f}{uuid.uuid4().hex[:12]}"


def write_record(
    landing_dir: str | os.PathLike,
    source: str,
    day: date,
    prefix: str,
    record_id: str,
    columns: Sequence[str],
    values: Sequence[str],
) -> Path:
    """Write one record atomically (temporary name the loader ignores, then rename)."""
    folder = record_folder(landing_dir, source, day)
    folder.mkdir(parents=True, exist_ok=True)
    target = _inside(Path(landing_dir), folder / f"{prefix}-{record_id}.csv")
    temporary = folder / f".{target.name}.tmp"
    # utf-8-sig: finance opens these in Excel, which needs the BOM to show Chinese names.
    with open(temporary, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        writer.writerow(list(values))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target


def pending_records(
    landing_dir: str | os.PathLike | None, source: str, since: date | None, prefix: str, days_back: int = 1
) -> list[dict[str, str]]:
    """Records written into folders dated `since - days_back` or later (oldest file first).

    Older folders were ingested by the run that published what is shown; the caller drops the
    records the publication already holds (by id).
    """
    if landing_dir is None or since is None:
        return []
    base = Path(landing_dir) / source
    if not base.is_dir():
        return []
    first = (since - timedelta(days=days_back)).isoformat()
    records: list[dict[str, str]] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and p.name >= first):
        for path in sorted(folder.glob(f"{prefix}-*.csv")):
            try:
                with open(path, encoding="utf-8-sig", newline="") as handle:
                    records.extend(dict(row) for row in csv.DictReader(handle))
            except (OSError, UnicodeDecodeError, csv.Error):
                continue  # a file being replaced or not ours: the next run reports it
    return records
