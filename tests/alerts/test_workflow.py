"""The alert workflow's time limits (mart.alert_sla): acknowledged, triaged, responded, resolved
in time or overdue at the run's as-of, and what escalates."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from recon_pipeline.alerts import notify, workflow
from recon_pipeline.settings import load_settings

T0 = datetime(2025, 5, 6, 9, 0)


def items(*rows) -> pd.DataFrame:
    return pd.DataFrame.from_records(rows, columns=["item_type", "item_id", "item_class", "episode_start", "episode_end",
                                                    "title", "owner", "escalate_to"])


def actions(*rows) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [(f"A{i}", *row) for i, row in enumerate(rows)],
        columns=["action_id", "target_type", "target_id", "action", "acted_by", "acted_at"])


def status(rows: pd.DataFrame, item_id: str, step: str) -> tuple:
    (row,) = rows[(rows["item_id"] == item_id) & (rows["step"] == step)].to_dict("records")
    return row["status"], None if pd.isna(row["done_by"]) else row["done_by"], row["due_at"]


@pytest.fixture
def limits():
    return workflow.sla_limits(load_settings())


def test_durations_in_the_settings():
    assert workflow.parse_duration("5m") == timedelta(minutes=5)
    assert workflow.parse_duration("24h") == timedelta(hours=24)
    assert workflow.parse_duration("3d") == timedelta(days=3)
    with pytest.raises(workflow.WorkflowSettingsError, match="无法识别的时限"):
        workflow.parse_duration("soon")


def test_the_packaged_limits_are_the_process_finance_agreed(limits):
    assert limits["health_red"] == {"acknowledge": timedelta(minutes=5), "triage": timedelta(minutes=10)}
    assert limits["diff_list"] == {"respond": timedelta(hours=24)}
    assert limits["level_2"] == {"acknowledge": timedelta(hours=24), "resolve": timedelta(days=3)}


def test_an_acknowledged_level_2_alert_still_escalates_when_not_handled_in_three_days(limits):
    alert = items(("alert", "a2", "level_2", T0, None, "receipt_not_written_off T-1", "李四", "boss@example.com"))
    acked = actions(("alert", "a2", "acknowledge", "李四", T0 + timedelta(hours=1)))

    next_day = workflow.evaluate_sla(alert, acked, T0 + timedelta(days=1), limits)
    assert status(next_day, "a2", "acknowledge")[:2] == ("met", "李四")
    assert status(next_day, "a2", "resolve")[0] == "pending"

    later = workflow.evaluate_sla(alert, acked, T0 + timedelta(days=3, seconds=1), limits)
    assert status(later, "a2", "resolve") == ("overdue", None, T0 + timedelta(days=3))
    sent = notify.plan_escalations(later, T0 + timedelta(days=3, seconds=1), load_settings(), ["email"])
    assert [(m.recipient, m.kind) for m in sent] == [("boss@example.com", "escalation:resolve")]
    assert sent[0].subject == "【销售对账·升级】回款未核销 T-1（3 天未处理完毕）"


def test_an_action_after_the_as_of_or_before_the_episode_does_not_count(limits):
    alert = items(("alert", "a2", "level_2", T0, None, "receipt_not_written_off T-1", "李四", None))
    early_and_late = actions(("alert", "a2", "acknowledge", "x", T0 - timedelta(hours=1)),
                             ("alert", "a2", "acknowledge", "y", T0 + timedelta(days=2)))
    rows = workflow.evaluate_sla(alert, early_and_late, T0 + timedelta(days=1, hours=1), limits)
    assert status(rows, "a2", "acknowledge")[0] == "overdue"


def test_the_red_board_is_acknowledged_in_5_minutes_and_triaged_in_10(limits):
    board = items(("health", "board", "health_red", T0, None, "健康看板红灯", "财务", "cfo@example.com"))
    late_ack = actions(("health", "board", "acknowledge", "王会计", T0 + timedelta(minutes=7)))
    rows = workflow.evaluate_sla(board, late_ack, T0 + timedelta(minutes=20), limits)
    assert status(rows, "board", "acknowledge")[0] == "late"
    assert status(rows, "board", "triage")[0] == "overdue"  # acknowledging is not triage
    triaged = actions(("health", "board", "acknowledge", "王会计", T0 + timedelta(minutes=2)),
                      ("health", "board", "assign", "王会计", T0 + timedelta(minutes=8)))
    rows = workflow.evaluate_sla(board, triaged, T0 + timedelta(minutes=20), limits)
    assert status(rows, "board", "acknowledge")[0] == "met" and status(rows, "board", "triage")[0] == "met"


def test_a_diff_item_needs_a_response_in_24_hours_and_a_fixed_fact_is_repaired(limits):
    diffs = items(("diff", "d1", "diff_list", T0, None, "contract_without_receipt 25SH00001", "张三", "boss@example.com"),
                  ("diff", "d2", "diff_list", T0, T0 + timedelta(hours=30), "receipt_without_contract T9", "财务", None))
    rows = workflow.evaluate_sla(diffs, actions(), T0 + timedelta(hours=40), limits)
    assert status(rows, "d1", "respond")[0] == "overdue"
    assert status(rows, "d2", "respond")[0] == "closed"  # resolved at the source before anyone answered
    assert status(rows, "d2", "resolve")[:2] == ("met", "（已自动解除）")
    sent = notify.plan_escalations(rows, T0 + timedelta(hours=40), load_settings(), ["email"])
    assert [m.subject for m in sent] == ["【销售对账·升级】差额清单 有合同无回款 25SH00001（1 天 16 小时未响应）"]
