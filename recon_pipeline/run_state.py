"""What each stage last computed from: input fingerprints per stage, so a run does only the work its inputs require.

A stage's inputs are fingerprinted from five parts:
- `data`: the drops visible at the run's as-of (`raw.ingest_log` rows dated on or before the
  as-of date: every drop's file fingerprint), i.e. everything the warehouse received that the
  run may see. Drops dated after the as-of are invisible and so not part of it.
- `code`: the pipeline's own source and the dbt project (a new version recomputes everything).
- `settings`: the merged settings file (business rules, mappings, thresholds).
- `as_of`: the run's as-of itself. Time rules (alerts, health, which lines are booked, which
  legs have closed) read it, so every stage that evaluates time rules depends on it.
- `engine`: `duckdb` or `spark`. The Spark engine keeps its raw history in its own tables (its
  ingest log gives `data`); switching engines recomputes everything once.

A *no-change run* is one whose five parts equal the last successful run's: every stage after
ingestion is skipped (the warehouse and the publication already hold its result). When only
the as-of moved, the models are rebuilt and the rules re-evaluated, but the data tests (which
read data, not the clock) are not run again, and matching recomputes only the lines the move
touched (see `matching.incremental`). `--full-refresh` ignores this state.

The state lives in `raw.stage_state`: `run` (the inputs of the last publication; any stage that
changes the warehouse forgets it first, whichever door runs it) and `<dbt stage>_tests` (the
data the tests last passed on), each written only after the work succeeded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import duckdb

from recon_pipeline.as_of import as_of_text
from recon_pipeline.settings import DBT_PROJECT_DIR, Settings

STAGE_STATE_DDL = """
CREATE TABLE IF NOT EXISTS raw.stage_state (
  stage VARCHAR PRIMARY KEY,
  fingerprint VARCHAR NOT NULL
)
"""

_PACKAGE_DIR = Path(__file__).resolve().parent
_CODE_SUFFIXES = {".py", ".sql", ".yml", ".yaml", ".json", ".txt", ".csv"}


def _digest(*parts: object) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(str(part).encode("utf-8"))
        hasher.update(b"\x00")
    return hasher.hexdigest()[:32]


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """The pipeline package and the dbt project, by content (not by modification time). What
    tools leave beside the code does not count: dbt's output folders, Python's caches, hidden
    files (dbt writes `.user.yml` into the project the first time anyone runs it there)."""
    hasher = hashlib.sha256()
    roots = [_PACKAGE_DIR, Path(DBT_PROJECT_DIR)]
    for root in roots:
        for path in sorted(root.rglob("*")):
            parts = path.relative_to(root).parts
            if (not path.is_file() or path.suffix not in _CODE_SUFFIXES or any(part.startswith(".") for part in parts)
                    or set(parts) & {"target", "logs", "__pycache__", "dbt_packages"}):
                continue
            hasher.update(str(path.relative_to(root)).encode("utf-8"))
            hasher.update(path.read_bytes())
    return hasher.hexdigest()[:32]


def settings_fingerprint(settings: Settings) -> str:
    return _digest(json.dumps(settings.raw or {}, sort_keys=True, ensure_ascii=False, default=str))


# The ingest log's rows visible at the as-of date (the SQL runs on DuckDB and Spark alike).
VISIBLE_DROPS_SQL = """SELECT source, CAST(_drop_date AS STRING), fingerprint FROM raw.ingest_log
                       WHERE _drop_date <= ? ORDER BY source, _drop_date"""


def data_fingerprint(conn: duckdb.DuckDBPyConnection, visible_until: date) -> str:
    """The drops visible at the as-of date, by their files' fingerprints."""
    return drops_fingerprint(conn.execute(VISIBLE_DROPS_SQL, [visible_until]).fetchall())


def drops_fingerprint(rows: Iterable[tuple[str, str, str]]) -> str:
    """(source, drop date, file fingerprint) of the visible drops, in that order, as one fingerprint."""
    return _digest(*("|".join(row) for row in rows))


@dataclass(frozen=True)
class RunInputs:
    """The fingerprints of one run's inputs; `key(...)` combines the parts a stage depends on."""

    data: str
    code: str
    settings: str
    as_of: str
    engine: str = "duckdb"

    @classmethod
    def measure(cls, conn: duckdb.DuckDBPyConnection, as_of: datetime, settings: Settings, engine: str = "duckdb",
                data: str | None = None) -> "RunInputs":
        """`data`: the visible drops' fingerprint when the ingest log is not the warehouse's (Spark)."""
        return cls(data if data is not None else data_fingerprint(conn, as_of.date()), code_fingerprint(),
                   settings_fingerprint(settings), as_of_text(as_of), engine)

    def key(self, *, with_as_of: bool = True) -> str:
        return _digest(self.data, self.code, self.settings, self.engine, self.as_of if with_as_of else "")


def ensure_state(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
    conn.execute(STAGE_STATE_DDL)


def stored_fingerprints(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    ensure_state(conn)
    return dict(conn.execute("SELECT stage, fingerprint FROM raw.stage_state").fetchall())


def record_fingerprint(conn: duckdb.DuckDBPyConnection, stage: str, fingerprint: str) -> None:
    ensure_state(conn)
    conn.execute("INSERT OR REPLACE INTO raw.stage_state VALUES (?, ?)", [stage, fingerprint])


def forget_fingerprints(conn: duckdb.DuckDBPyConnection, stage: str | None = None) -> None:
    """`--full-refresh`: nothing counts as already computed (or only `stage` no longer does)."""
    ensure_state(conn)
    if stage is None:
        conn.execute("DELETE FROM raw.stage_state")
    else:
        conn.execute("DELETE FROM raw.stage_state WHERE stage = ?", [stage])
