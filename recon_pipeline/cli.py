"""The `recon` command: run the pipeline, write demo drops, and the tools around them."""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape

from recon_pipeline.as_of import AsOfError, parse_as_of
from recon_pipeline.settings import load_settings

app = typer.Typer(help="销售对账流水线 (sales-to-cash reconciliation)", no_args_is_help=True, add_completion=False)
err = Console(stderr=True)
out = Console()

STAGE_LABELS = {
    "ingest": "读取落地文件",
    "dbt_staging": "dbt 构建 staging",
    "matching": "付款方匹配与分配",
    "dbt_marts": "dbt 构建对账报表",
    "close": "封账调整",
    "alerts": "预警与健康指标",
    "notify": "发送通知",
    "publish": "发布只读报表库",
    "dbt build": "dbt 构建与测试",
    "dbt run": "dbt 构建",
    "ingest drops": "读取落地批次",
}


def _register_subcommands() -> None:
    from recon_pipeline.ingest.statements.cli import statements_app

    app.add_typer(statements_app, name="statements", help="银行对账单格式转换")


# Colour codes that other tools (dbt's unit-test diff) put into their messages.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def fail(message: str, code: int = 1) -> None:
    """One line on stderr, non-zero exit: what cron users and CI read (colour only at a terminal)."""
    line = " ".join(_ANSI_ESCAPE.sub("", str(message)).split())
    err.print(f"[bold red]错误:[/] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def sole_writer(warehouse: Path, wait_seconds: float | None = None) -> Iterator[None]:
    """The warehouse's writer lock around a command that writes it, as `recon run` holds it: waits
    (`RECON_LOCK_WAIT` seconds, default 600) for a running pipeline (either door), else raises
    WarehouseBusyError (one line for `fail`)."""
    import os

    from recon_pipeline.warehouse import hold_warehouse

    if wait_seconds is None:
        wait_seconds = float(os.environ.get("RECON_LOCK_WAIT", "600"))

    def waiting(holder: str) -> None:
        if err.is_terminal:
            err.print(f"[dim]数据仓库正被占用: {holder}；最多等待 {wait_seconds:g} 秒…[/]", highlight=False)

    with hold_warehouse(warehouse, wait_seconds, on_wait=waiting):
        yield


@app.command()
def run(
    landing: Path = typer.Option(..., "--landing", envvar="RECON_LANDING_DIR", help="落地目录 (landing zone)"),
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE", help="DuckDB 数据仓库文件"),
    as_of: str = typer.Option(..., "--as-of", help="评估时点, 如 2025-05-06T09:00:00 (默认时区 Asia/Shanghai)"),
    settings_file: Optional[Path] = typer.Option(None, "--settings", envvar="RECON_SETTINGS", help="设置文件 (YAML)"),
    send: bool = typer.Option(False, "--notify", help="发送新预警（邮件 / 群机器人），每条只发一次"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只打印将要发送的通知，不发送"),
    wait: float = typer.Option(600, "--wait", envvar="RECON_LOCK_WAIT", min=0, help="仓库正被另一次运行（Dagster 或 recon run）占用时最多等待的秒数"),
    engine: Optional[str] = typer.Option(
        None, "--engine", envvar="RECON_ENGINE", help="计算引擎: duckdb（默认，单机）或 spark（PySpark + dbt-spark）"),
    debug: bool = typer.Option(False, "--debug", help="出错时打印完整堆栈"),
    full_refresh: bool = typer.Option(False, "--full-refresh", help="全量重算（忽略上次运行的增量状态）"),
) -> None:
    """Ingest every drop dated on or before the as-of, rebuild what changed, evaluate the rules."""
    from recon_pipeline.pipeline import PipelineError, RunContext, RunOptions, run_stages
    from recon_pipeline.progress import TerminalProgress, reporting
    from recon_pipeline.spark_session import SparkEngineError, engine_choice, stop_spark_session
    from recon_pipeline.summary import print_run_summary
    from recon_pipeline.warehouse import WarehouseBusyError

    try:
        settings = load_settings(settings_file)
        moment = parse_as_of(as_of, settings.timezone)
        chosen = engine_choice(engine, settings)

        def progress(stage: str) -> None:
            # Only for people at a terminal: cron and CI read a single error line on stderr.
            if err.is_terminal:
                err.print(f"[dim]→ {STAGE_LABELS.get(stage, stage)}…[/]", highlight=False)

        run_context = RunContext(
            landing_dir=landing, warehouse=warehouse, as_of=moment, settings=settings,
            options=RunOptions(notify=send, dry_run=dry_run, full_refresh=full_refresh, engine=chosen),
            echo=lambda line: out.print(line, highlight=False),
        )
        # Long stages draw a bar with counts and time left, only for people at a terminal.
        with (reporting(TerminalProgress(err, STAGE_LABELS) if err.is_terminal else None),
              sole_writer(warehouse, wait)):
            result = run_stages(run_context, progress)
            # The summary reads the warehouse: still under the lock, so the next writer waits for it.
            print_run_summary(result, out)
    except (PipelineError, AsOfError, FileNotFoundError, WarehouseBusyError, SparkEngineError) as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - a cron user needs one line, not a traceback
        from recon_pipeline.recovery import corruption_message, is_corruption_error

        if is_corruption_error(exc):
            fail(corruption_message(warehouse, exc))
        if debug:
            raise
        fail(f"内部错误 {type(exc).__name__}: {exc}（加 --debug 查看详情）", code=2)
    finally:
        stop_spark_session()  # the JVM of a Spark run ends with the command


@app.command(
    "dbt",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
)
def dbt_command(
    ctx: typer.Context,
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE", help="生产数据仓库（只读取它的副本）"),
    refresh: bool = typer.Option(False, "--refresh", help="重新复制开发副本"),
    wait: float = typer.Option(600, "--wait", envvar="RECON_LOCK_WAIT", min=0, help="复制时仓库被占用最多等待的秒数"),
) -> None:
    """dbt for analysts: any dbt command on a development copy, with the last production run's vars.

    Example: recon dbt build --select fct_order_reconciliation+ ; recon dbt docs generate.
    """
    from recon_pipeline.transform.dev_loop import DevLoopError, run_dev_dbt
    from recon_pipeline.warehouse import WarehouseBusyError

    try:
        code = run_dev_dbt(list(ctx.args), warehouse, refresh=refresh, wait_seconds=wait,
                           echo=lambda line: err.print(line, highlight=False))
    except (DevLoopError, WarehouseBusyError) as exc:
        fail(str(exc))
    raise typer.Exit(code)


@app.command()
def extract(
    landing: Path = typer.Option(..., "--landing", envvar="RECON_LANDING_DIR", help="落地目录 (landing zone)"),
    as_of: str = typer.Option(..., "--as-of", help="提取时点：落地批次按它的日期存放, 如 2025-05-06T00:30:00"),
    source: Optional[str] = typer.Option(None, "--source", help="只提取 settings 中 extract: 下的这一项"),
    settings_file: Optional[Path] = typer.Option(None, "--settings", envvar="RECON_SETTINGS", help="设置文件 (YAML)"),
    accept_schema_change: bool = typer.Option(False, "--accept-schema-change", help="接受源表列类型的变化（确认后使用）"),
) -> None:
    """Pull the sources configured under `extract:` (SQL, SFTP, HTTP) into landing drops."""
    from recon_pipeline.extract.config import ExtractError
    from recon_pipeline.extract.stage import extract_sources

    try:
        settings = load_settings(settings_file)
        moment = parse_as_of(as_of, settings.timezone)
        report = extract_sources(
            landing, moment, settings, only=source, accept_schema_change=accept_schema_change,
            progress=lambda name: err.print(f"[dim]→ 提取 {name}…[/]", highlight=False) if err.is_terminal else None,
        )
    except (ExtractError, AsOfError, FileNotFoundError) as exc:
        fail(str(exc))
    if not report.results:
        fail("设置中没有 extract: 项（见 README「接入你的系统」）")
    for result in report.results:
        if not result.error or result.files:
            out.print(result.summary(), highlight=False, soft_wrap=True)
    if report.failed:
        for result in report.failed[:-1]:  # one line per failed entry; the others still ran
            err.print(f"[bold red]错误:[/] {result.error}", highlight=False, soft_wrap=True)
        fail(report.failed[-1].error)


def _published_file(warehouse: Optional[Path], published: Optional[Path]) -> Path:
    """--published, else the warehouse's publication; one line and exit 1 when there is none."""
    from recon_pipeline.publish.publication import default_published_path

    if published is None:
        if warehouse is None:
            fail("请指定 --warehouse 或 --published")
        published = default_published_path(warehouse)
    if not Path(published).is_file():
        fail(f"发布的报表库不存在: {published}（请先运行 recon run 或 Dagster 作业 nightly_reconciliation）")
    return Path(published)


@app.command()
def status(
    warehouse: Optional[Path] = typer.Option(None, "--warehouse", envvar="RECON_WAREHOUSE", help="数据仓库文件（读取其发布副本）"),
    published: Optional[Path] = typer.Option(None, "--published", help="发布的只读报表库（默认 <仓库>.published.duckdb）"),
) -> None:
    """What the published mart says: its as-of, the reconciliation figures, open alerts, the health board."""
    from recon_pipeline.summary import print_publication_summary

    print_publication_summary(_published_file(warehouse, published), out)


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo"), "--out", help="输出目录: 生成 landing/ 与 ground_truth/"),
    seed: int = typer.Option(7, "--seed"),
    bank_lines: Optional[int] = typer.Option(None, "--bank-lines", help="按银行流水条数放大 (基准测试)"),
) -> None:
    """Write the seeded demo drops (and their ground truth) into OUT/landing."""
    from recon_pipeline.demo.generator import generate_demo

    summary = generate_demo(out_dir, seed=seed, n_bank_lines=bank_lines)
    out.print(f"演示数据已生成: {Path(out_dir) / 'landing'}", highlight=False)
    out.print(f"建议评估时点 (as-of): {summary.as_of}", highlight=False)


@app.command()
def dashboard(
    warehouse: Optional[Path] = typer.Option(None, "--warehouse", envvar="RECON_WAREHOUSE", help="数据仓库文件（读取其发布副本）"),
    published: Optional[Path] = typer.Option(None, "--published", help="发布的只读报表库（默认 <仓库>.published.duckdb）"),
    landing: Optional[Path] = typer.Option(None, "--landing", envvar="RECON_LANDING_DIR", help="落地目录（复核决定与预警处理写入 match_feedback / alert_actions）"),
    host: Optional[str] = typer.Option(None, "--host", help="监听地址（默认 127.0.0.1）"),
    port: Optional[int] = typer.Option(None, "--port", help="端口（默认 8765）"),
    token: Optional[str] = typer.Option(None, "--token", envvar="RECON_DASHBOARD_TOKEN", help="访问令牌（可选）"),
    settings_file: Optional[Path] = typer.Option(None, "--settings", envvar="RECON_SETTINGS", help="设置文件（账号、区域名称等）"),
) -> None:
    """Serve the reconciliation dashboard (看板) from the published mart."""
    from recon_pipeline.dashboard import serve

    published = _published_file(warehouse, published)
    from recon_pipeline.dashboard import DashboardRefused
    from recon_pipeline.dashboard.access import AccountError
    from recon_pipeline.recovery import RecoveryError, check_warehouse

    try:
        check_warehouse(published)
    except RecoveryError:
        fail(f"发布的报表库已损坏: {published}。恢复: recon publish --warehouse <数据仓库文件>（从仓库重新发布）")
    try:
        serve(published, host=host, port=port, token=token, landing_dir=landing,
              settings=load_settings(settings_file))
    except (DashboardRefused, AccountError, FileNotFoundError) as exc:
        fail(str(exc))


@app.command("dashboard-password")
def dashboard_password(
    password: str = typer.Option(..., prompt="密码", hide_input=True, confirmation_prompt=True, help="看板账号的密码"),
) -> None:
    """Print the argon2 hash of a dashboard password, for `dashboard.accounts` in the settings."""
    from recon_pipeline.dashboard.access import hash_password

    if len(password) < 8:
        fail("密码至少 8 位")
    out.print(hash_password(password), highlight=False, soft_wrap=True)


@app.command()
def evaluate(
    truth: Path = typer.Argument(..., help="bank_truth.csv（演示数据的 ground_truth）"),
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE"),
) -> None:
    """Score payer matching and allocation against a ground truth (precision / recall)."""
    from recon_pipeline.matching.evaluation import main as evaluation_main

    raise typer.Exit(evaluation_main([str(warehouse), str(truth)]))


@app.command("review-queue")
def review_queue(
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE"),
    out_dir: Path = typer.Option(Path("."), "--out", help="输出目录"),
) -> None:
    """Export the suggested payer matches for finance (CSV and XLSX, largest amount first).

    Fill in 决定 (confirm/reject) and 确认人, then drop the file into
    <landing>/match_feedback/<date>/: the next run learns from it.
    """
    from recon_pipeline.matching.evaluation import links_from_warehouse
    from recon_pipeline.matching.review_queue import export_review_queue
    from recon_pipeline.matching.seam import read_matching_inputs
    from recon_pipeline.warehouse import connect

    links = links_from_warehouse(str(warehouse))
    with connect(warehouse, read_only=True) as conn:
        inputs = read_matching_inputs(conn, as_of=None)
    csv_path, xlsx_path = export_review_queue(links, inputs.bank, inputs.customers, out_dir)
    count = links.loc[links["match_status"] == "suggested", ["account_no", "txn_id"]].drop_duplicates().shape[0]
    out.print(f"待确认匹配 {count} 笔: {csv_path} / {xlsx_path}", highlight=False)


@app.command()
def inspect(
    file: Path = typer.Argument(..., help="要检查的文件"),
    source: Optional[str] = typer.Option(None, "--source", help="数据源（默认按所在目录或表头判断）"),
    settings_file: Optional[Path] = typer.Option(None, "--settings", envvar="RECON_SETTINGS"),
    rows: int = typer.Option(10, "--rows", help="显示前几行"),
) -> None:
    """Show how a file would be read: format, encoding, mapped columns, first rows, quarantine."""
    from recon_pipeline.ingest.archives import is_archive
    from recon_pipeline.ingest.inspection import inspect_archive, inspect_file, print_inspection
    from recon_pipeline.ingest.readers import FileReadError

    try:
        settings = load_settings(settings_file)
        if file.is_file() and is_archive(file):
            members = inspect_archive(file, settings, source, rows)
            out.print(f"压缩包: {file}（{len(members)} 个文件）", highlight=False)
            for name, result in members:
                out.rule(name)
                if isinstance(result, str):
                    out.print(f"[red]无法读取:[/] {result}", highlight=False)
                else:
                    print_inspection(out, f"{file}/{name}", result)
            return
        result = inspect_file(file, settings, source, rows)
    except (FileReadError, FileNotFoundError) as exc:
        fail(str(exc))
    print_inspection(out, str(file), result)



@app.command("close-period")
def close_period(
    period: str = typer.Argument(..., help="要封账的期间 YYYY-MM"),
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE", help="DuckDB 数据仓库文件"),
    by: Optional[str] = typer.Option(None, "--by", help="封账人（默认当前系统用户）"),
    settings_file: Optional[Path] = typer.Option(None, "--settings", envvar="RECON_SETTINGS", help="设置文件 (YAML)"),
) -> None:
    """Close (封账) a period: freeze every salesperson's figures as of the last run, then republish."""
    from recon_pipeline.close.commands import close_command
    from recon_pipeline.close.periods import CloseError
    from recon_pipeline.warehouse import WarehouseBusyError

    try:
        with sole_writer(warehouse):
            outcome = close_command(warehouse, period, load_settings(settings_file), closed_by=by)
    except (CloseError, FileNotFoundError, WarehouseBusyError) as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - one line, as for recon run
        fail(f"内部错误 {type(exc).__name__}: {exc}", code=2)
    out.print(outcome.message(), highlight=False, soft_wrap=True)


@app.command("reopen-period")
def reopen_period(
    period: str = typer.Argument(..., help="要重开的已封账期间 YYYY-MM"),
    reason: str = typer.Option(..., "--reason", help="重开原因（必填，记录在封账日志中）"),
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE", help="DuckDB 数据仓库文件"),
    by: Optional[str] = typer.Option(None, "--by", help="重开人（默认当前系统用户）"),
    settings_file: Optional[Path] = typer.Option(None, "--settings", envvar="RECON_SETTINGS", help="设置文件 (YAML)"),
) -> None:
    """Reopen a closed period (who, when and why are recorded); the next close makes a new version."""
    from recon_pipeline.close.commands import reopen_command
    from recon_pipeline.close.periods import CloseError
    from recon_pipeline.warehouse import WarehouseBusyError

    try:
        with sole_writer(warehouse):
            outcome = reopen_command(warehouse, period, reason, load_settings(settings_file), reopened_by=by)
    except (CloseError, FileNotFoundError, WarehouseBusyError) as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - one line, as for recon run
        fail(f"内部错误 {type(exc).__name__}: {exc}", code=2)
    out.print(outcome.message(), highlight=False, soft_wrap=True)


@app.command("period-statements")
def period_statements(
    period: str = typer.Argument(..., help="期间 YYYY-MM"),
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE", help="数据仓库文件（读取其发布副本）"),
    out_dir: Path = typer.Option(Path("."), "--out", help="输出目录"),
    salesperson: Optional[str] = typer.Option(None, "--salesperson", help="只导出这位销售（默认全部）"),
    settings_file: Optional[Path] = typer.Option(None, "--settings", envvar="RECON_SETTINGS", help="设置文件 (YAML)"),
) -> None:
    """Write each salesperson's 业绩确认单 of a period as XLSX."""
    from recon_pipeline.close.commands import export_statements
    from recon_pipeline.close.periods import CloseError

    try:
        written = export_statements(warehouse, period, out_dir, load_settings(settings_file), salesperson)
    except (CloseError, FileNotFoundError) as exc:
        fail(str(exc))
    out.print(f"已导出 {len(written)} 份业绩确认单到 {out_dir}", highlight=False)
@app.command()
def backup(
    out_dir: Path = typer.Argument(..., help="备份目录（新目录或空目录）"),
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE", help="数据仓库文件"),
) -> None:
    """Export every warehouse table (raw history included) as Parquet with a checked manifest."""
    from recon_pipeline.recovery import RecoveryError, backup_warehouse

    try:
        stats = backup_warehouse(warehouse, out_dir)
    except RecoveryError as exc:
        fail(str(exc))
    out.print(f"已备份 {len(stats.tables)} 张表、{stats.rows} 行到 {stats.directory}（{stats.seconds}s）", highlight=False)


@app.command()
def restore(
    backup_dir: Path = typer.Argument(..., help="recon backup 写出的目录"),
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE", help="要恢复的数据仓库文件"),
    force: bool = typer.Option(False, "--force", help="仓库文件已存在时替换它（原文件改名保留）"),
) -> None:
    """Rebuild the warehouse from a backup (verified against its manifest), then republish."""
    from recon_pipeline.publish.publication import PublishError, publish_mart
    from recon_pipeline.recovery import RecoveryError, restore_warehouse
    from recon_pipeline.warehouse import WarehouseBusyError

    # Under the writer lock: a running pipeline would otherwise write into the file moved aside.
    try:
        with sole_writer(warehouse):
            stats = restore_warehouse(backup_dir, warehouse, force=force)
            out.print(f"已恢复 {stats.tables} 张表、{stats.rows} 行到 {stats.warehouse}（{stats.seconds}s）", highlight=False)
            if stats.moved_aside:
                out.print(f"原仓库文件保留为 {stats.moved_aside}", highlight=False)
            try:
                publish_mart(warehouse)
            except PublishError as exc:
                fail(f"已恢复，但发布只读报表库失败: {exc}")
    except (RecoveryError, WarehouseBusyError) as exc:
        fail(str(exc))


@app.command()
def check(
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE", help="数据仓库文件（或发布的只读库）"),
) -> None:
    """Read every value of every table: a damaged file is reported with how to recover."""
    from recon_pipeline.recovery import RecoveryError, check_warehouse

    try:
        counts = check_warehouse(warehouse)
    except RecoveryError as exc:
        fail(str(exc))
    out.print(f"完好: {warehouse}（{len(counts)} 张表，{sum(counts.values())} 行）", highlight=False)


@app.command()
def publish(
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE", help="数据仓库文件"),
) -> None:
    """Publish the mart again (e.g. after the published file was deleted or damaged)."""
    from recon_pipeline.publish.publication import PublishError, publish_mart
    from recon_pipeline.warehouse import WarehouseBusyError

    try:
        with sole_writer(warehouse):
            stats = publish_mart(warehouse)
    except (PublishError, WarehouseBusyError) as exc:
        fail(str(exc))
    out.print(f"已发布 {stats.table_count} 张表到 {stats.published_path}", highlight=False)


@app.command()
def rebuild(
    landing: Path = typer.Option(..., "--landing", envvar="RECON_LANDING_DIR", help="落地目录 (landing zone)"),
    warehouse: Path = typer.Option(..., "--warehouse", envvar="RECON_WAREHOUSE", help="DuckDB 数据仓库文件"),
    as_of: str = typer.Option(..., "--as-of", help="评估时点, 如 2025-05-06T09:00:00"),
    from_backup: Optional[Path] = typer.Option(None, "--from-backup", help="先从 recon backup 的目录恢复原始历史"),
    settings_file: Optional[Path] = typer.Option(None, "--settings", envvar="RECON_SETTINGS", help="设置文件 (YAML)"),
) -> None:
    """Recover a lost or damaged warehouse: set the damaged file aside, restore the backup if
    given, then rebuild everything from raw history and the landing zone."""
    from recon_pipeline.pipeline import PipelineError, run_pipeline
    from recon_pipeline.recovery import RecoveryError, check_warehouse, move_aside, restore_warehouse
    from recon_pipeline.summary import print_run_summary
    from recon_pipeline.warehouse import WarehouseBusyError

    try:
        settings = load_settings(settings_file)
        moment = parse_as_of(as_of, settings.timezone)
        if warehouse.exists() and from_backup is None:
            try:
                check_warehouse(warehouse)
            except RecoveryError:
                aside = move_aside(warehouse, "damaged")
                out.print(f"损坏的仓库文件已移到 {aside}；从落地目录重建（已删除的落地文件需用 --from-backup 恢复）",
                          highlight=False)
        if from_backup is not None:
            stats = restore_warehouse(from_backup, warehouse, force=True)
            out.print(f"已从备份恢复 {stats.tables} 张表、{stats.rows} 行", highlight=False)
        result = run_pipeline(landing, warehouse, moment, settings, echo=lambda line: out.print(line, highlight=False),
                              full_refresh=True)  # nothing of the old run state is trusted
    except (PipelineError, RecoveryError, AsOfError, FileNotFoundError, WarehouseBusyError) as exc:
        fail(str(exc))
    print_run_summary(result, out)


_register_subcommands()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
