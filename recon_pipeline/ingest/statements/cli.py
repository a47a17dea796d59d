"""`recon statements convert FILE... --out DIR`: statement files -> canonical CSV, to check a
conversion by eye before dropping the file into the landing zone."""

from __future__ import annotations

from pathlib import Path

import typer

from . import CANONICAL_COLUMNS, ROW_NUMBER_COLUMN, StatementError, detect_format, read_statement

statements_app = typer.Typer(help="银行对账单（camt.053、MT940、国内银行/支付宝/微信导出）转换为标准流水 CSV。", no_args_is_help=True)


@statements_app.callback()
def _group() -> None:
    """银行对账单工具。"""


@statements_app.command("convert")
def convert(
    files: list[Path] = typer.Argument(..., help="对账单文件，可多个", exists=True, dir_okay=False, readable=True),
    out: Path = typer.Option(..., "--out", help="输出目录（每个输入文件写一个 CSV）"),
    account_no: str | None = typer.Option(None, "--account-no", help="文件中没有账号时使用的本方账号"),
) -> None:
    """把每个对账单文件转换为标准 bank_transactions CSV（UTF-8），文件名为 <原文件名>.csv。"""
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in files:
        try:
            fmt = detect_format(path)
            frame = read_statement(path, account_no=account_no)
        except StatementError as exc:
            failed += 1
            typer.echo(f"失败：{exc}", err=True)
            continue
        target = out / f"{path.name}.csv"
        frame[[*CANONICAL_COLUMNS, ROW_NUMBER_COLUMN]].to_csv(target, index=False, encoding="utf-8")
        typer.echo(f"{path.name}：格式 {fmt}，{len(frame)} 条流水 -> {target}")
    if failed:
        raise typer.Exit(code=1)
