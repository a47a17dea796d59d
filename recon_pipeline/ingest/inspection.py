"""`recon inspect FILE`: how a file would be read, before it is dropped into the landing zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from recon_pipeline.ingest.loader import Staging
from recon_pipeline.ingest.readers import FileReadError, header_mapping, read_landing_file
from recon_pipeline.settings import Settings
from recon_pipeline.sources import SOURCES, SourceSpec


@dataclass
class Inspection:
    source: str
    format: str
    encoding: str | None
    mapped: dict[str, str]  # the file's header -> canonical column
    unmapped: list[str]  # headers kept in _extra_columns
    missing_optional: list[str]
    rows: int
    sample: pd.DataFrame  # first typed rows
    quarantined: pd.DataFrame  # row number + reason of every row that would be quarantined


def guess_source(path: Path, settings: Settings) -> str | None:
    """The landing folder it sits in (`<source>/<date>/file`), else the source whose required
    columns its header covers best."""
    for parent in path.resolve().parents:
        if parent.name in SOURCES:
            return parent.name
    best, best_score = None, 0
    for spec in SOURCES.values():
        try:
            opened = read_landing_file(path, spec, settings)
        except FileReadError:
            continue
        score = len(opened.columns)
        if score > best_score:
            best, best_score = spec.name, score
    return best


def inspect_file(path: Path, settings: Settings, source: str | None = None, sample_rows: int = 10) -> Inspection:
    path = Path(path)
    if not path.is_file():
        raise FileReadError(f"文件不存在: {path}")
    source = source or guess_source(path, settings)
    if source is None:
        raise FileReadError(f"{path.name}: 无法判断属于哪个数据源，请用 --source 指定（{', '.join(SOURCES)}）")
    spec: SourceSpec = SOURCES[source]
    opened = read_landing_file(path, spec, settings)
    headers = opened.headers or []
    mapping = opened.mapping if opened.mapping is not None else header_mapping(headers, spec, settings)
    with duckdb.connect() as conn:
        staging = Staging(conn, settings)
        staging.add_file(opened, spec, date(1970, 1, 1), path.name)  # not a drop: any date
        view = staging.typed_view(spec)
        rows = conn.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
        # Shown as text: a DataFrame would turn DECIMAL money into floats.
        columns = ", ".join(["_row_number", *[f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in spec.column_names if c in opened.columns]])
        sample = conn.execute(f"SELECT {columns} FROM {view} WHERE _errors = '' ORDER BY _row_number LIMIT {sample_rows}").df()
        quarantined = conn.execute(f"SELECT _row_number, _errors AS reason FROM {view} WHERE _errors <> '' ORDER BY _row_number").df()
    return Inspection(
        source=source,
        format=opened.format,
        encoding=opened.encoding,
        mapped={headers[p]: c for p, c in sorted(mapping.items())} if headers else {c: c for c in opened.columns},
        unmapped=[h for p, h in enumerate(headers) if p not in mapping],
        missing_optional=[c for c in spec.column_names if c not in opened.columns],
        rows=rows,
        sample=sample,
        quarantined=quarantined,
    )
