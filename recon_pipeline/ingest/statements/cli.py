"""`recon statements convert FILE... --out DIR`: statement files -> canonical CSV, to check a
conversion by eye before dropping the file into the landing zone."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from . import CANONICAL_COLUMNS, ROW_NUMBER_COLUMN, StatementError, read_statement_file

statements_app = typer.Typer(help="银行对账单（camt.052/053/054、MT940/MT942、国内银行/信用卡/支付宝/微信导出及其他表格）转换为标准流水 CSV。",
                             no_args_is_help=True)


@statements_app.callback()
def _group() -> None:
    """银行对账单工具。"""


def _inputs(path: Path, scratch: Path) -> list[tuple[str, Path | None, str | None]]:
    """(display name, file to read, problem) for a file, or for each member of an archive
    (written to a private temporary folder under a cleaned name, never next to the input)."""
    from recon_pipeline.ingest.archives import ArchiveError, IngestLimits, is_archive, read_members

    if not is_archive(path):
        return [(path.name, path, None)]
    found = []
    try:
        for index, member in enumerate(read_members(path, IngestLimits())):
            shown = f"{path.name}/{member.name}"
            if member.data is None:
                found.append((shown, None, member.problem))
                continue
            target = scratch / str(index) / Path(member.name).name
            target.parent.mkdir(parents=True)
            target.write_bytes(member.data)
            found.append((shown, target, None))
    except ArchiveError as exc:
        found.append((path.name, None, str(exc)))
    return found


def _target(out: Path, display: str, used: set[str], sources: set[Path]) -> Path:
    """`<name>.csv` for `name.xml` (not `name.xml.csv`); a second file of the same name, or
    one that would overwrite an input, gets `-2`, `-3`, ..."""
    stem = Path(display.rsplit("/", 1)[-1]).stem or "statement"
    candidate, n = f"{stem}.csv", 1
    while candidate in used or (out / candidate).resolve() in sources:
        n += 1
        candidate = f"{stem}-{n}.csv"
    used.add(candidate)
    return out / candidate


@statements_app.command("convert")
def convert(
    files: list[Path] = typer.Argument(..., help="对账单文件或 .zip/.gz 压缩包，可多个", exists=True, dir_okay=False, readable=True),
    out: Path = typer.Option(..., "--out", help="输出目录（每个对账单写一个 CSV）"),
    account_no: str | None = typer.Option(None, "--account-no", help="文件中没有账号时使用的本方账号"),
) -> None:
    """把每个对账单文件转换为标准 bank_transactions CSV（UTF-8 带 BOM，Excel 可直接打开），文件名为 <原文件名>.csv。"""
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    used: set[str] = set()
    sources = {p.resolve() for p in files}
    with tempfile.TemporaryDirectory(prefix="recon-convert-") as scratch:
        for number, path in enumerate(files):
            for display, source, problem in _inputs(path, Path(scratch) / str(number)):
                if source is None:
                    failed += 1
                    typer.echo(f"失败：{display}：{problem}", err=True)
                    continue
                try:
                    read = read_statement_file(source, account_no=account_no)
                except StatementError as exc:
                    failed += 1
                    typer.echo(f"失败：{display}：{exc}", err=True)
                    continue
                target = _target(out, display, used, sources)
                read.frame[[*CANONICAL_COLUMNS, ROW_NUMBER_COLUMN]].to_csv(target, index=False, encoding="utf-8-sig")
                detail = f"（{read.inference.convention_label}）" if read.inference is not None else ""
                typer.echo(f"{display}：格式 {read.format}{detail}，{len(read.frame)} 条流水 -> {target}")
    if failed:
        raise typer.Exit(code=1)
