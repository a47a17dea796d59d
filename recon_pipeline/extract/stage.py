"""The extract stage: run every configured extraction (or one) at an as-of, one after another.

Shared by `recon extract` and the Dagster extract assets. Each entry runs under its own lock
and on its own: one that fails (a bank server down) is reported and the others still run.
Drops are dated by the as-of's date and named by its time, so the same extraction always
writes the same drop, and repeating it writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from recon_pipeline.extract.config import ExtractError, ExtractSpec, extract_specs
from recon_pipeline.extract.landing import EntryState, entry_lock
from recon_pipeline.settings import Settings


@dataclass
class ExtractContext:
    landing: Path
    as_of: datetime
    settings: Settings
    state: EntryState
    accept_schema_change: bool = False


@dataclass
class ExtractResult:
    name: str
    source: str
    kind: str
    files: list[str] = field(default_factory=list)  # landing-relative paths written
    rows: int | None = None  # rows written (files fetched as they came have none)
    note: str = ""  # why nothing was written, for the summary
    error: str | None = None

    def summary(self) -> str:
        if self.error:
            return f"失败: {self.error}"
        if not self.files:
            return f"{self.name} → {self.source}: 无新数据（{self.note or '与上次相同'}）"
        rows = f"，{self.rows} 行" if self.rows is not None else ""
        return f"{self.name} → {self.source}: {len(self.files)} 个文件{rows}: {', '.join(self.files)}"


@dataclass
class ExtractReport:
    results: list[ExtractResult] = field(default_factory=list)

    @property
    def failed(self) -> list[ExtractResult]:
        return [r for r in self.results if r.error]

    @property
    def files(self) -> list[str]:
        return [f for r in self.results for f in r.files]


def _extractor(kind: str) -> Callable[[ExtractSpec, ExtractContext], ExtractResult]:
    # Imported on use: a SQL-only user never loads paramiko, an SFTP-only one never SQLAlchemy.
    if kind == "sql":
        from recon_pipeline.extract.sql import extract_sql as run
    elif kind == "sftp":
        from recon_pipeline.extract.sftp import extract_sftp as run
    else:
        from recon_pipeline.extract.http import extract_http as run
    return run


def selected_specs(settings: Settings, only: str | None = None) -> list[ExtractSpec]:
    specs = extract_specs(settings)
    if only is None:
        return specs
    chosen = [s for s in specs if s.name == only]
    if not chosen:
        configured = ", ".join(s.name for s in specs) or "无"
        raise ExtractError(f"设置中没有名为 {only} 的提取项（extract: 下已配置: {configured}）")
    return chosen


def extract_sources(
    landing: Path,
    as_of: datetime,
    settings: Settings,
    only: str | None = None,
    accept_schema_change: bool = False,
    progress: Callable[[str], None] = lambda name: None,
) -> ExtractReport:
    """Run the configured extractions at `as_of`; raises ExtractError only for bad settings."""
    landing = Path(landing)
    landing.mkdir(parents=True, exist_ok=True)
    report = ExtractReport()
    for spec in selected_specs(settings, only):
        progress(spec.name)
        try:
            with entry_lock(landing, spec.name):
                context = ExtractContext(landing, as_of, settings, EntryState.load(landing, spec.name),
                                         accept_schema_change)
                result = _extractor(spec.kind)(spec, context)
        except ExtractError as exc:
            result = ExtractResult(spec.name, spec.source, spec.kind, error=str(exc))
        report.results.append(result)
    return report


def relative(landing: Path, path: Path) -> str:
    return Path(path).relative_to(landing).as_posix()
