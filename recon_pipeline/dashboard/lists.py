"""The list pages' tables (orders, alerts, diff list, customers, review queue, a salesperson's
period): one `Table` each, built from the filters and the user's scope, shown a page at a time
and exported whole with the same filters.

The alert and diff-list tables carry each item's workflow state (acknowledged, assigned,
resolved) from `action_log`, a view the request registers over the published actions plus
the action records not ingested yet (see actions.py), so a click shows at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from recon_pipeline.dashboard.access import Scope
from recon_pipeline.dashboard.labels import (
    ALERT_LEVELS,
    ALERT_TYPES,
    DIFF_TYPES,
    MATCH_METHODS,
    MATCH_STATUSES,
    ORDER_STAGES,
)
from recon_pipeline.dashboard.queries import LINKED_STATUSES, MartReader, signed_at_sql
from recon_pipeline.dashboard.tables import Column, Table

ORDERS = "mart.fct_order_reconciliation"
MATCHES = "mart.fct_receipt_matches"


def _label(mapping):
    return lambda value: mapping.get(value, value) if value is not None else None


def stage_sql(reader: MartReader, alias: str = "o") -> str:
    """The order's lifecycle stage: the mart's when published, else derived from its legs."""
    if reader.has_column(ORDERS, "lifecycle_stage"):
        return f"{alias}.lifecycle_stage"
    return (f"CASE WHEN {alias}.status = 'cancelled' THEN 'cancelled' WHEN {alias}.is_closed THEN 'closed' "
            f"WHEN {alias}.sales_leg_closed_at IS NULL THEN 'awaiting_signature' "
            f"WHEN {alias}.legal_leg_closed_at IS NULL THEN 'awaiting_archive' "
            f"WHEN {alias}.invoiced_amount < {alias}.contract_amount THEN 'awaiting_invoice' ELSE 'awaiting_payment' END")


# ---------------------------------------------------------------- orders


@dataclass(frozen=True)
class OrderQuery:
    text: str = ""
    region: str = ""
    salesperson: str = ""
    customer: str = ""
    stage: str = ""
    signed_period: str = ""
    recognized_period: str = ""
    scope: Scope = Scope()


def order_columns(region_name, salesperson_name) -> tuple[Column, ...]:
    return (
        Column("order_id", "订单号", link="/orders/{order_id}"),
        Column("contract_no", "合同编号"),
        Column("customer_name", "客户", link="/customers/{customer_id}"),
        Column("salesperson_name", "销售", link="/salespeople/{salesperson_id}"),
        Column("region_code", "区域", display=region_name),
        Column("contract_amount", "合同金额", "money"),
        Column("invoiced_amount", "已开票", "money"),
        Column("received_amount", "已回款", "money"),
        Column("outstanding_amount", "未回款", "money"),
        Column("stage", "状态", display=_label(ORDER_STAGES)),
        Column("signed_at", "签约时间", "datetime"),
        Column("recognized_period", "确认期间"),
    )


def orders_table(reader: MartReader, query: OrderQuery, region_name, salesperson_names: dict) -> Table:
    clauses, params = ["TRUE"], []
    scope_sql, scope_params = query.scope.sql("o.salesperson_id")
    clauses.append(scope_sql)
    params += scope_params
    for column, value in (("o.region_code", query.region), ("o.salesperson_id", query.salesperson),
                          ("o.customer_id", query.customer), ("o.recognized_period", query.recognized_period)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    stage = stage_sql(reader)
    if query.stage:
        clauses.append(f"{stage} = ?")
        params.append(query.stage)
    if query.signed_period:
        clauses.append(f"strftime({signed_at_sql(reader)}, '%Y-%m') = ?")
        params.append(query.signed_period)
    if query.text:
        like = f"%{query.text}%"
        texts = ["o.order_id ILIKE ?", "o.customer_id = ?"]
        params_text = [like, query.text]
        for optional in ("contract_no", "customer_name"):
            if reader.has_column(ORDERS, optional):
                texts.append(f"o.{optional} ILIKE ?")
                params_text.append(like)
        clauses.append("(" + " OR ".join(texts) + ")")
        params += params_text
    name = reader.column(ORDERS, "salesperson_name", prefix="o")
    if not reader.has_column(ORDERS, "salesperson_name"):
        name = "o.salesperson_id AS salesperson_name"
    sql = f"""
        SELECT o.order_id, {reader.column(ORDERS, 'contract_no', prefix='o')},
               o.customer_id, coalesce({'o.customer_name' if reader.has_column(ORDERS, 'customer_name') else 'NULL'}, o.customer_id) AS customer_name,
               o.salesperson_id, {name}, o.region_code, o.contract_amount, o.invoiced_amount, o.received_amount,
               o.outstanding_amount, {stage} AS stage, {signed_at_sql(reader)} AS signed_at, o.recognized_period
        FROM {ORDERS} o WHERE {' AND '.join(clauses)}"""
    return Table("订单", order_columns(region_name, salesperson_names), sql, tuple(params),
                 default_sort="signed_at", default_desc=True, tiebreak=("order_id",))


# ---------------------------------------------------------------- a salesperson's period


def salesperson_period_table(reader: MartReader, salesperson_id: str, period: str, collected_after, collected_until,
                             tolerance: Decimal, region_name) -> Table:
    """Every order that matters for the period: signed in it, recognized in it, paid in it, or
    still open; with what it adds to each total and why it is or is not recognized."""
    signed = signed_at_sql(reader)
    tol = f"CAST({tolerance} AS DECIMAL(18,2))"
    # The salesperson's own lines only (the mart carries the order's salesperson on each line).
    own = "AND salesperson_id = ?" if reader.has_column(MATCHES, "salesperson_id") else ""
    collected = (
        f"""SELECT order_id, sum(allocated_amount) AS collected FROM {MATCHES}
            WHERE order_id IS NOT NULL AND match_status IN {LINKED_STATUSES} AND txn_time > ? AND txn_time <= ? {own}
            GROUP BY 1"""
        if reader.has_column(MATCHES, "txn_time") else "SELECT NULL::VARCHAR AS order_id, NULL::DECIMAL(18,2) AS collected WHERE FALSE"
    )
    params = [collected_after, collected_until] + ([salesperson_id] if own else []) if reader.has_column(MATCHES, "txn_time") else []
    customer = "o.customer_name" if reader.has_column(ORDERS, "customer_name") else "o.customer_id"
    sql = f"""
        WITH paid AS ({collected}),
        mine AS (
          SELECT o.*, {signed} AS signed_time, strftime({signed}, '%Y-%m') AS signed_month, p.collected
          FROM {ORDERS} o LEFT JOIN paid p USING (order_id)
          WHERE o.salesperson_id = ?
        )
        SELECT order_id, customer_id, coalesce({customer.replace('o.', '')}, customer_id) AS customer_name, region_code,
               signed_time AS signed_at, contract_amount,
               CASE WHEN signed_month = ? AND sales_leg_closed_at IS NOT NULL THEN contract_amount END AS signed_here,
               CASE WHEN is_closed AND recognized_period = ? THEN contract_amount END AS recognized_here,
               collected AS collected_here,
               CASE WHEN is_closed AND recognized_period = ? THEN '计入本期确认'
                    WHEN is_closed AND recognized_period > ? THEN '本期未确认：' || recognized_period || ' 期才闭环'
                    WHEN is_closed THEN '已在 ' || recognized_period || ' 期确认'
                    WHEN status = 'cancelled' THEN '合同已取消，不计业绩'
                    ELSE '未确认：' || concat_ws('；',
                      CASE WHEN sales_leg_closed_at IS NULL THEN '合同未签约' END,
                      CASE WHEN legal_leg_closed_at IS NULL THEN '法务未归档' END,
                      CASE WHEN coalesce(invoiced_amount, 0) < contract_amount - {tol}
                           THEN '发票未开齐（差 ¥' || format('{{:,.2f}}', contract_amount - coalesce(invoiced_amount, 0)) || '）' END,
                      CASE WHEN coalesce(received_amount, 0) < contract_amount - {tol}
                           THEN '回款未到齐（差 ¥' || format('{{:,.2f}}', contract_amount - coalesce(received_amount, 0)) || '）' END)
               END AS reason,
               is_closed AND recognized_period = ? AS counted
        FROM mine
        WHERE signed_month = ? OR recognized_period = ? OR collected IS NOT NULL
           OR (NOT coalesce(is_closed, FALSE) AND status <> 'cancelled' AND sales_leg_closed_at IS NOT NULL AND signed_month <= ?)"""
    params = params + [salesperson_id, period, period, period, period, period, period, period, period]
    columns = (
        Column("order_id", "订单号", link="/orders/{order_id}"),
        Column("customer_name", "客户", link="/customers/{customer_id}"),
        Column("signed_at", "签约时间", "datetime"),
        Column("contract_amount", "合同金额", "money"),
        Column("signed_here", "本期签约", "money"),
        Column("recognized_here", "本期确认", "money"),
        Column("collected_here", "本期回款", "money"),
        Column("reason", "是否计入本期及原因"),
    )
    return Table("我的业绩", columns, sql, tuple(params), default_sort="signed_at", default_desc=True, tiebreak=("order_id",))


# ---------------------------------------------------------------- alerts and the diff list

WORKFLOW_COLUMNS = """
    min(l.acted_at) AS acknowledged_at,
    arg_min(l.acted_by, l.acted_at) AS acknowledged_by,
    arg_max(l.assignee, l.acted_at) FILTER (WHERE l.action = 'assign') AS assignee,
    arg_max(coalesce(l.note, ''), l.acted_at) FILTER (WHERE l.note IS NOT NULL AND l.note <> '') AS last_note,
    max(l.acted_at) FILTER (WHERE l.action = 'resolve') AS resolved_at,
    arg_max(l.acted_by, l.acted_at) FILTER (WHERE l.action = 'resolve') AS resolved_by,
    count(*) AS action_count,
    bool_or(l.pending) AS has_pending
"""

STATUS_FILTERS = {"open": "未处理", "handled": "已处理", "all": "全部"}


def _status_clause(status: str) -> str:
    if status == "open":
        return "w.resolved_at IS NULL"
    if status == "handled":
        return "w.resolved_at IS NOT NULL"
    return "TRUE"


@dataclass(frozen=True)
class AlertQuery:
    level: str = ""  # 1 / 2 / 3 / reminder
    alert_type: str = ""
    owner: str = ""
    status: str = "open"
    scope: Scope = Scope()


def alerts_table(reader: MartReader, query: AlertQuery, salesperson_name) -> Table:
    table = "mart.alerts"
    clauses, params = ["TRUE"], []
    if query.level == "reminder":
        clauses.append("a.alert_level IS NULL")
    elif query.level in ("1", "2", "3"):
        clauses.append("a.alert_level = ?")
        params.append(int(query.level))
    if query.alert_type:
        clauses.append("a.alert_type = ?")
        params.append(query.alert_type)
    if query.owner:
        owner_column = "a.salesperson_id" if reader.has_column(table, "salesperson_id") else "a.recipient"
        clauses.append(f"({owner_column} = ? OR a.recipient = ?)")
        params += [query.owner, query.owner]
    if not query.scope.everything:
        if reader.has_column(table, "salesperson_id"):
            scope_sql, scope_params = query.scope.sql("a.salesperson_id")
            clauses.append(scope_sql)
            params += scope_params
        else:
            clauses.append("FALSE")
    clauses.append(_status_clause(query.status))
    first_seen = "a.first_seen_as_of" if reader.has_column(table, "first_seen_as_of") else "a.as_of"
    sql = f"""
        WITH w AS (
          SELECT l.target_id, {WORKFLOW_COLUMNS}
          FROM action_log l JOIN {table} a ON a.alert_id = l.target_id
          WHERE l.target_type = 'alert' AND l.acted_at >= {first_seen}
          GROUP BY l.target_id
        )
        SELECT a.alert_id, CAST(a.alert_level AS INTEGER) AS alert_level,
               coalesce(CAST(a.alert_level AS VARCHAR), 'reminder') AS level_key, a.alert_type, a.entity_id,
               {reader.column(table, 'order_id', prefix='a')}, {reader.column(table, 'salesperson_id', prefix='a')},
               coalesce({'a.owner_name' if reader.has_column(table, 'owner_name') else 'NULL'}, a.recipient) AS owner,
               a.recipient, {reader.column(table, 'cc', prefix='a')}, a.message, {first_seen} AS first_seen_as_of,
               {reader.column(table, 'amount', prefix='a')}, {reader.column(table, 'runbook_url', prefix='a')},
               w.acknowledged_at, w.acknowledged_by, w.assignee, w.last_note, w.resolved_at, w.resolved_by,
               coalesce(w.has_pending, FALSE) AS has_pending
        FROM {table} a LEFT JOIN w ON w.target_id = a.alert_id
        WHERE {' AND '.join(clauses)}"""
    columns = (
        Column("level_key", "级别", display=_label(ALERT_LEVELS)),
        Column("alert_type", "类型", display=_label(ALERT_TYPES)),
        Column("entity_id", "对象"),
        Column("owner", "负责人"),
        Column("amount", "金额", "money"),
        Column("message", "内容"),
        Column("first_seen_as_of", "首次发现", "datetime"),
        Column("acknowledged_by", "确认人"),
        Column("acknowledged_at", "确认时间", "datetime"),
        Column("assignee", "处理人"),
        Column("last_note", "备注"),
        Column("resolved_at", "处理完毕", "datetime"),
    )
    return Table("预警", columns, sql, tuple(params), default_sort="level_key", tiebreak=("alert_type", "entity_id", "alert_id"),
                 page_size=25)


@dataclass(frozen=True)
class DiffQuery:
    diff_type: str = ""
    owner: str = ""
    status: str = "open"
    scope: Scope = Scope()


def diff_table(reader: MartReader, query: DiffQuery) -> Table:
    table = "mart.diff_list"
    has_orders = reader.has(ORDERS)
    join = f"LEFT JOIN {ORDERS} o ON o.order_id = d.entity_id" if has_orders else ""
    owner = "o.salesperson_id" if has_orders else "NULL"
    if reader.has_column(table, "salesperson_id"):
        owner = f"coalesce(d.salesperson_id, {owner})"
    owner_name = "o.salesperson_name" if reader.has_column(ORDERS, "salesperson_name") else owner
    customer = "o.customer_name" if reader.has_column(ORDERS, "customer_name") else "NULL"
    if reader.has("mart.dim_customers") and reader.has_column(table, "customer_id"):
        join += " LEFT JOIN mart.dim_customers dc ON dc.customer_id = d.customer_id"
        customer = f"coalesce({customer}, dc.customer_name)"
    diff_id = "d.diff_id" if reader.has_column(table, "diff_id") else (
        "d.diff_type || ':' || coalesce(" + ("d.account_no" if reader.has_column(table, "account_no") else "NULL") + ", '') || ':' || d.entity_id")
    clauses, params = ["d.as_of_date = (SELECT max(as_of_date) FROM mart.diff_list)"], []
    if query.diff_type:
        clauses.append("d.diff_type = ?")
        params.append(query.diff_type)
    if query.owner:
        clauses.append(f"{owner} = ?")
        params.append(query.owner)
    if not query.scope.everything:
        scope_sql, scope_params = query.scope.sql(owner)
        clauses.append(scope_sql)
        params += scope_params
    sql = f"""
        WITH items AS (
          SELECT {diff_id} AS diff_id, d.diff_type, d.entity_id, d.amount, {owner} AS salesperson_id,
                 {owner_name} AS owner, {customer} AS customer_name,
                 {('d.description' if reader.has_column(table, 'description') else 'NULL')} AS description,
                 {('d.as_of' if reader.has_column(table, 'as_of') else 'CAST(d.as_of_date AS TIMESTAMP)')} AS listed_at
          FROM {table} d {join}
          WHERE {' AND '.join(clauses)}
        ), w AS (
          SELECT l.target_id, {WORKFLOW_COLUMNS}
          FROM action_log l WHERE l.target_type = 'diff' GROUP BY l.target_id
        )
        SELECT i.*, w.acknowledged_at, w.acknowledged_by, w.assignee, w.last_note, w.resolved_at, w.resolved_by,
               coalesce(w.has_pending, FALSE) AS has_pending
        FROM items i LEFT JOIN w ON w.target_id = i.diff_id
        WHERE {_status_clause(query.status)}"""
    columns = (
        Column("diff_type", "差异类型", display=_label(DIFF_TYPES)),
        Column("entity_id", "对象"),
        Column("customer_name", "客户"),
        Column("owner", "负责销售"),
        Column("amount", "金额", "money"),
        Column("acknowledged_by", "响应人"),
        Column("acknowledged_at", "响应时间", "datetime"),
        Column("assignee", "处理人"),
        Column("last_note", "备注"),
        Column("resolved_at", "处理完毕", "datetime"),
    )
    return Table("差额清单", columns, sql, tuple(params), default_sort="diff_type", tiebreak=("amount", "entity_id", "diff_id"),
                 page_size=25)


# ---------------------------------------------------------------- customers


def customers_table(reader: MartReader, only_high_risk: bool, text: str, scope: Scope) -> Table:
    base = "mart.dim_customers" if reader.has("mart.dim_customers") else "mart.customer_collection_health"
    health = reader.has("mart.customer_collection_health")
    join = ""
    if health and base != "mart.customer_collection_health":
        join = "LEFT JOIN mart.customer_collection_health h USING (customer_id)"
    risk = "h.high_risk" if join else ("c.high_risk" if health else "FALSE")
    reason = "h.reason" if join else ("c.reason" if health else "NULL")
    clauses, params = ["TRUE"], []
    if only_high_risk:
        clauses.append(f"coalesce({risk}, FALSE)")
    if text:
        like = f"%{text}%"
        alias = " OR c.aliases ILIKE ?" if reader.has_column(base, "aliases") else ""
        clauses.append(f"(c.customer_name ILIKE ? OR c.customer_id = ?{alias})")
        params += [like, text] + ([like] if alias else [])
    scope_sql, scope_params = scope.customer_sql("c.customer_id", reader.has("mart.dim_customers"))
    clauses.append(scope_sql)
    params += scope_params
    open_orders = (
        f"""LEFT JOIN (SELECT customer_id, sum(outstanding_amount) FILTER (WHERE sales_leg_closed_at IS NOT NULL
                                                                         AND NOT coalesce(is_closed, FALSE)) AS outstanding,
                              count(*) FILTER (WHERE NOT coalesce(is_closed, FALSE) AND status <> 'cancelled') AS open_orders
                       FROM {ORDERS} GROUP BY 1) o USING (customer_id)"""
        if reader.has(ORDERS) else "LEFT JOIN (SELECT NULL::VARCHAR AS customer_id, NULL::DECIMAL(18,2) AS outstanding, NULL::BIGINT AS open_orders) o USING (customer_id)"
    )
    owner = reader.column(base, "owner_salesperson_name", "owner", prefix="c")
    sql = f"""
        SELECT c.customer_id, c.customer_name, {owner}, coalesce({risk}, FALSE) AS high_risk, {reason} AS reason,
               o.outstanding, o.open_orders
        FROM {base} c {join} {open_orders}
        WHERE {' AND '.join(clauses)}"""
    columns = (
        Column("customer_id", "客户编号", link="/customers/{customer_id}"),
        Column("customer_name", "客户名称", link="/customers/{customer_id}"),
        Column("owner", "负责销售"),
        Column("high_risk", "风险", display=lambda v: "高风险" if v else "正常"),
        Column("reason", "原因"),
        Column("outstanding", "未回款金额", "money"),
        Column("open_orders", "未结订单", "int"),
    )
    return Table("客户", columns, sql, tuple(params), default_sort="outstanding", default_desc=True, tiebreak=("customer_id",))


# ---------------------------------------------------------------- review queue


def review_table(reader: MartReader) -> Table:
    m = MATCHES
    sql = f"""
        SELECT m.account_no, m.txn_id, m.customer_id, coalesce(m.order_id, '') AS order_id, m.allocated_amount,
               m.match_method, m.match_score, {reader.column(m, 'txn_time', prefix='m')},
               coalesce({'m.amount' if reader.has_column(m, 'amount') else 'NULL'}, m.allocated_amount) AS amount,
               {reader.column(m, 'counterparty_name', prefix='m')}, {reader.column(m, 'memo', prefix='m')},
               {reader.column(m, 'evidence', prefix='m')}
        FROM {m} m WHERE m.match_status = 'suggested'"""
    columns = (
        Column("txn_time", "到账时间", "datetime"),
        Column("txn_id", "流水号"),
        Column("account_no", "本方账号"),
        Column("amount", "金额", "money"),
        Column("allocated_amount", "分配金额", "money"),
        Column("counterparty_name", "付款方（对方户名）"),
        Column("memo", "附言"),
        Column("customer_id", "建议客户编号"),
        Column("order_id", "建议订单号"),
        Column("match_method", "匹配方式", display=_label(MATCH_METHODS)),
        Column("match_score", "得分", "score"),
        Column("evidence", "证据", sortable=False, export=False),
    )
    return Table("财务复核队列", columns, sql, (), default_sort="txn_time", tiebreak=("account_no", "txn_id", "order_id"),
                 page_size=25)


RECEIPT_STATUS = _label(MATCH_STATUSES)


# ---------------------------------------------------------------- a customer's receipts


def customer_receipts_table(reader: MartReader, customer_id: str, scope: Scope) -> Table:
    """Every bank line linked or suggested to the customer, one row per order it pays (a line
    split over two orders is two rows). A salesperson or manager sees the lines of their own
    orders (and the customer's lines not yet on any order)."""
    m = MATCHES
    scope_sql, scope_params = "TRUE", []
    if not scope.everything and reader.has_column(m, "salesperson_id"):
        own_sql, scope_params = scope.sql("m.salesperson_id")
        scope_sql = f"(m.order_id IS NULL OR {own_sql})"
    sql = f"""
        SELECT {reader.column(m, 'txn_time', prefix='m')}, m.txn_id, m.account_no,
               {reader.column(m, 'counterparty_name', prefix='m')}, {reader.column(m, 'counterparty_account', prefix='m')},
               coalesce({'m.amount' if reader.has_column(m, 'amount') else 'NULL'}, m.allocated_amount) AS amount,
               m.allocated_amount, m.order_id, m.match_method, m.match_score, m.match_status,
               {reader.column(m, 'memo', prefix='m')}
        FROM {m} m WHERE m.customer_id = ? AND {scope_sql}"""
    columns = (
        Column("txn_time", "到账时间", "datetime"),
        Column("txn_id", "流水号"),
        Column("account_no", "本方账号"),
        Column("counterparty_name", "付款户名"),
        Column("counterparty_account", "付款账号"),
        Column("amount", "到账金额", "money"),
        Column("allocated_amount", "分配到订单", "money"),
        Column("order_id", "订单号", link="/orders/{order_id}"),
        Column("match_method", "识别方式", display=_label(MATCH_METHODS)),
        Column("match_score", "得分", "score"),
        Column("match_status", "状态", display=RECEIPT_STATUS),
        Column("memo", "附言"),
    )
    return Table("客户到账", columns, sql, (customer_id, *scope_params), default_sort="txn_time", default_desc=True,
                 tiebreak=("account_no", "txn_id", "order_id"), page_size=25, prefix="r_")
