"""What `recon run` prints when it finishes, and `recon status` for the published mart: counts a person can check at a glance."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from recon_pipeline.as_of import as_of_text
from recon_pipeline.pipeline import RunResult
from recon_pipeline.warehouse import connect

ALERT_LABELS = {
    "amount_mismatch": "一级 金额不符",
    "receipt_not_written_off": "二级 到账未核销",
    "salesperson_discrepancy": "三级 销售差异率",
    "cutoff_unarchived": "封关前未归档",
    "approval_stalled": "审批停滞",
    "match_rate_low": "匹配率偏低",
}


def _number(value) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:,.4g}" if isinstance(value, float) else str(value)


def _mart_figures(warehouse) -> dict[str, object]:
    with connect(warehouse, read_only=True) as conn:
        orders = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE is_closed), count(*) FILTER (WHERE status = 'open'),
                      coalesce(sum(contract_amount) FILTER (WHERE status IN ('open', 'closed')), 0),
                      coalesce(sum(received_amount), 0), coalesce(sum(outstanding_amount) FILTER (WHERE status = 'open'), 0)
               FROM mart.fct_order_reconciliation"""
        ).fetchone()
        diffs = dict(conn.execute("SELECT diff_type, count(*) FROM mart.diff_list GROUP BY 1").fetchall())
        overdue = {}
        if conn.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'mart' AND table_name = 'alert_sla'").fetchone()[0]:
            overdue = dict(conn.execute(
                "SELECT item_class, count(DISTINCT item_id || CAST(episode_start AS VARCHAR)) FROM mart.alert_sla "
                "WHERE status = 'overdue' GROUP BY 1").fetchall())
    return {"orders": orders, "diffs": diffs, "overdue": overdue}


def _results_table(figures: dict[str, object], links: dict[str, int]) -> Table:
    total, closed, open_, signed, received, outstanding = figures["orders"]
    table = Table(title="对账结果", show_header=True)
    table.add_column("指标")
    table.add_column("值", justify="right")
    table.add_row("订单数 / 已三联闭环 / 未闭环", f"{total} / {closed} / {open_}")
    table.add_row("已签约合同金额", f"¥{signed:,.2f}")
    table.add_row("已到账金额", f"¥{received:,.2f}")
    table.add_row("未闭环订单待收金额", f"¥{outstanding:,.2f}")
    table.add_row(
        "银行流水匹配 自动/建议/确认/未匹配",
        f"{links.get('auto_linked', 0)} / {links.get('suggested', 0)} / {links.get('confirmed', 0)} / {links.get('unmatched', 0)}",
    )
    for diff_type, label in [
        ("contract_without_receipt", "差额清单: 已签约未回款"),
        ("receipt_without_contract", "差额清单: 回款无合同"),
        ("archive_without_order", "差额清单: 归档无订单"),
    ]:
        table.add_row(label, str(figures["diffs"].get(diff_type, 0)))
    return table


def _print_alerts_and_health(alert_counts: dict[str, int], health: list[dict], console: Console) -> None:
    if alert_counts:
        alerts = Table(title="未关闭预警（mart.alerts）", show_header=True)
        alerts.add_column("类型")
        alerts.add_column("数量", justify="right")
        for alert_type, count in alert_counts.items():
            alerts.add_row(f"{ALERT_LABELS.get(alert_type, alert_type)} ({alert_type})", str(count))
        console.print(alerts)
    if health:
        board = Table(title="健康看板（mart.health_metrics）", show_header=True)
        board.add_column("指标")
        board.add_column("值", justify="right")
        board.add_column("阈值", justify="right")
        board.add_column("状态")
        for row in health:
            colour = "green" if row["status"] == "green" else "red"
            board.add_row(row["metric"], _number(row["value"]), _number(row["threshold"]),
                          f"[{colour}]{'正常' if row['status'] == 'green' else '异常'}[/]")
        console.print(board)


def _print_overdue(figures: dict[str, object], console: Console) -> None:
    overdue = figures.get("overdue") or {}
    if overdue:
        labels = {"health_red": "健康看板红灯", "diff_list": "差额清单", "level_1": "一级预警", "level_2": "二级预警",
                  "level_3": "三级预警", "reminder": "提醒"}
        shown = "，".join(f"{labels.get(k, k)} {v} 项" for k, v in sorted(overdue.items()))
        console.print(f"[red]超过处理时限（--notify 时升级主管）：{shown}[/]", highlight=False)


def print_run_summary(result: RunResult, console: Console) -> None:
    ingest = result.ingest
    console.print(f"[bold green]对账完成[/] as-of {as_of_text(result.as_of)}", highlight=False)
    if ingest is not None:
        console.print(
            f"入库 {ingest.rows_loaded} 行（新增/变更批次 {len(ingest.loaded)}，未变 {ingest.unchanged}），"
            f"隔离 {ingest.rows_quarantined} 行（见 raw.quarantine）",
            highlight=False,
        )
        for warning in ingest.warnings:
            console.print(f"[yellow]注意:[/] {warning}", highlight=False)
    figures = _mart_figures(result.warehouse)
    console.print(_results_table(figures, result.link_counts))
    _print_alerts_and_health(result.alert_counts, result.health, console)
    if result.close is not None and result.close.to_text():
        console.print(result.close.to_text(), highlight=False)
    _print_overdue(figures, console)
    if result.dispatch is not None:
        console.print(result.dispatch.to_text(), highlight=False)
    stages = "，".join(f"{k} {v:.1f}s" for k, v in result.stage_seconds.items())
    console.print(f"耗时: {stages}", highlight=False)
    if result.skipped:
        console.print(f"输入与上次运行相同（落地批次、设置、版本、as-of），未重算: {'、'.join(result.skipped)}",
                      highlight=False)
    elif result.matching is not None and not result.matching.full:
        console.print(f"增量匹配: 重新评估 {result.matching.evaluated_lines} 条银行流水", highlight=False)
    console.print(f"数据仓库: {result.warehouse.resolve()}（schema mart）", highlight=False)
    if result.publication is not None:
        console.print(f"只读发布（BI / 看板读取这个文件）: {result.publication.published_path}", highlight=False)


def print_publication_summary(published: Path, console: Console) -> None:
    """`recon status`: what the published mart says (whichever door ran last), read-only."""
    with connect(published, read_only=True) as conn:
        as_of, published_at = conn.execute("SELECT max(as_of), max(published_at) FROM meta.publication").fetchone()
        links = dict(conn.execute(
            "SELECT match_status, count(DISTINCT (account_no, txn_id)) FROM mart.fct_receipt_matches GROUP BY 1"
        ).fetchall())
        alert_counts = dict(conn.execute(
            "SELECT alert_type, count(*) FROM mart.alerts GROUP BY 1 ORDER BY 1").fetchall())
        health = [
            dict(zip(("metric", "value", "threshold", "status"), row))
            for row in conn.execute(
                "SELECT metric, value, threshold, status FROM mart.health_metrics "
                "WHERE as_of = (SELECT max(as_of) FROM mart.health_metrics) ORDER BY metric").fetchall()
        ]
    console.print(f"[bold]已发布[/] as-of {as_of_text(as_of)}（发布于 {published_at}）: {published}", highlight=False)
    figures = _mart_figures(published)
    console.print(_results_table(figures, links))
    _print_alerts_and_health(alert_counts, health, console)
    _print_overdue(figures, console)
