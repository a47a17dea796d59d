"""Seeded random sequences of daily drops on top of a demo landing zone, for the incremental invariant.

`drop_sequence(landing, seed)` plans the runs of a sequence: an as-of per run and the files to
drop before it, beyond what the demo landing zone already holds (whose later drops become
visible as the as-of moves: new rows and upserts). On top of that, each run may add:
- `reversal`: a bank debit taking back an earlier credit (same payer, memo naming the order);
- `writeoff_reversal`: a later drop of an existing write-off with status `reversed`;
- `feedback`: finance confirms or rejects a customer for a bank line (`match_feedback`);
- `late_drop`: new bank lines and a contract upsert in a drop dated before the last run's as-of;
- `resent`: a bank file already loaded, dropped again with one line changed;
- `customer_update`: a customer's new version with a new alias;
- `same_as_of` / `minutes_later`: a rerun at the same as-of, or ten minutes later (the
  working-hours schedule), with nothing new.
`apply_step(landing, step)` writes a step's files. The same seed gives the same sequence.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

BANK_HEADER = ["account_no", "txn_id", "txn_time", "amount", "currency", "counterparty_name", "counterparty_account",
               "memo"]
WRITEOFF_HEADER = ["writeoff_id", "txn_id", "order_id", "invoice_no", "amount", "confirmed_by", "confirmed_at",
                   "status"]
FEEDBACK_HEADER = ["feedback_id", "account_no", "txn_id", "customer_id", "order_id", "decision", "decided_by",
                   "decided_at", "comment"]
CONTRACT_HEADER = ["order_id", "contract_no", "customer_id", "customer_name", "salesperson_id", "region_code",
                   "industry", "amount", "currency", "status", "signed_at", "approval_status",
                   "approval_submitted_at", "approval_updated_at", "updated_at"]
EVENTS = ("reversal", "writeoff_reversal", "feedback", "late_drop", "resent", "customer_update")
# A customer update re-evaluates every line (the customer index changed): rarer, so most runs
# exercise the incremental path.
EVENT_WEIGHTS = (0.22, 0.2, 0.25, 0.2, 0.1, 0.03)


@dataclass(frozen=True)
class Step:
    as_of: datetime
    events: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)  # landing-relative path -> CSV text

    @property
    def as_of_text(self) -> str:
        return self.as_of.strftime("%Y-%m-%dT%H:%M:%S")


def _read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _csv_text(header: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _utf8_bank_files(landing: Path) -> list[Path]:
    """Bank files in canonical UTF-8 CSV (the demo's other accounts use bank-specific headers)."""
    found = []
    for path in sorted((landing / "bank_transactions").rglob("*.csv")):
        try:
            header = path.read_text(encoding="utf-8").splitlines()[0]
        except UnicodeDecodeError:
            continue
        if header.split(",") == BANK_HEADER:
            found.append(path)
    return found


def _day(text: str) -> str:
    return text[:10]


def drop_sequence(landing: Path, seed: int, runs: int = 4) -> list[Step]:
    """The runs of one sequence: the first starts some days before the demo's as-of."""
    rng = np.random.default_rng(seed)
    landing = Path(landing)
    truth = landing.parent / "ground_truth"
    lines = [r for r in _read_csv(truth / "bank_truth.csv") if r["is_duplicate_of_earlier_download"] == "false"]
    orders = _read_csv(truth / "orders_truth.csv")
    bank_files = _utf8_bank_files(landing)
    customers_dir = landing / "customers"

    as_of = datetime(2025, 4, 22, 9, 0) + timedelta(days=int(rng.integers(0, 6)))
    steps = [Step(as_of, ("first",))]
    serial = 0
    for run in range(1, runs):
        move = rng.choice(["days", "days", "minutes", "same"])
        if move == "days":
            as_of = as_of + timedelta(days=int(rng.integers(1, 4)))
        elif move == "minutes":
            as_of = as_of + timedelta(minutes=10)
        day = as_of.strftime("%Y-%m-%d")
        events = [] if move == "same" else [str(e) for e in rng.choice(
            EVENTS, size=int(rng.integers(1, 4)), replace=False, p=EVENT_WEIGHTS)]
        files: dict[str, str] = {}
        visible = [r for r in lines if r["txn_time"] < as_of.strftime("%Y-%m-%d %H:%M:%S")]
        credits = [r for r in visible if not r["amount"].startswith("-") and r["true_customer_id"]]
        for event in events:
            serial += 1
            tag = f"s{seed}r{run}n{serial}"
            moment = (as_of - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
            if event == "reversal" and credits:
                line = credits[int(rng.integers(len(credits)))]
                order = (line["true_order_ids"].split(";") or [""])[0]
                files[f"bank_transactions/{day}/reversal_{tag}.csv"] = _csv_text(BANK_HEADER, [{
                    "account_no": line["account_no"], "txn_id": f"REV{tag}", "txn_time": moment,
                    "amount": f"-{line['amount']}", "currency": "CNY", "counterparty_name": _payer_of(line, landing),
                    "counterparty_account": "", "memo": f"退款 {order}".strip()}])
            elif event == "writeoff_reversal":
                wo = _existing_writeoff(landing, rng, as_of)
                if wo is not None:
                    files[f"finance_writeoffs/{day}/reversed_{tag}.csv"] = _csv_text(
                        WRITEOFF_HEADER, [{**wo, "status": "reversed", "confirmed_at": moment}])
            elif event == "feedback" and credits:
                line = credits[int(rng.integers(len(credits)))]
                pick = orders[int(rng.integers(len(orders)))]
                decision = "confirm" if rng.random() < 0.5 else "reject"
                customer = line["true_customer_id"] if decision == "confirm" else pick["customer_id"]
                files[f"match_feedback/{day}/decision_{tag}.csv"] = _csv_text(FEEDBACK_HEADER, [{
                    "feedback_id": f"FB{tag}", "account_no": line["account_no"], "txn_id": line["txn_id"],
                    "customer_id": customer, "order_id": "", "decision": decision, "decided_by": "财务 王敏",
                    "decided_at": moment, "comment": ""}])
            elif event == "late_drop" and credits:
                late_day = (steps[-1].as_of - timedelta(days=int(rng.integers(1, 5)))).strftime("%Y-%m-%d")
                base = credits[int(rng.integers(len(credits)))]
                order = orders[int(rng.integers(len(orders)))]
                files[f"bank_transactions/{late_day}/late_{tag}.csv"] = _csv_text(BANK_HEADER, [{
                    "account_no": base["account_no"], "txn_id": f"LATE{tag}", "txn_time": f"{late_day} 10:30:00",
                    "amount": base["amount"], "currency": "CNY", "counterparty_name": _payer_of(base, landing),
                    "counterparty_account": "", "memo": f"货款 {order['order_id']}"}])
                files[f"crm_contracts/{late_day}/late_{tag}.csv"] = _csv_text(CONTRACT_HEADER, [{
                    **{k: "" for k in CONTRACT_HEADER}, **_contract_row(order), "amount": order["contract_amount"],
                    "updated_at": moment}])
            elif event == "resent" and bank_files:
                candidates = [p for p in bank_files if p.parent.name <= steps[-1].as_of.strftime("%Y-%m-%d")]
                if candidates:
                    path = candidates[int(rng.integers(len(candidates)))]
                    rows = _read_csv(path)
                    if rows:
                        changed = int(rng.integers(len(rows)))
                        rows[changed] = {**rows[changed], "memo": (rows[changed]["memo"] + " 补").strip()}
                        files[str(path.relative_to(landing))] = _csv_text(BANK_HEADER, rows)
            elif event == "customer_update" and customers_dir.is_dir():
                update = _customer_update(customers_dir, rng, alias=f"别名{tag}", moment=moment)
                if update is not None:
                    files[f"customers/{day}/update_{tag}.csv"] = update
        steps.append(Step(as_of, tuple(events) or (str(move),), files))
    return steps


def _payer_of(line: dict, landing: Path) -> str:
    """The counterparty name as the line's file spelled it (the truth file does not keep it)."""
    try:
        rows = _read_csv(landing / line["source_file"])
    except (FileNotFoundError, UnicodeDecodeError):
        return ""
    return next((row.get("counterparty_name", "") for row in rows if row.get("txn_id") == line["txn_id"]), "")


def _existing_writeoff(landing: Path, rng: np.random.Generator, as_of: datetime) -> dict | None:
    import pyarrow.parquet as pq

    files = sorted(p for p in (landing / "finance_writeoffs").rglob("*.parquet")
                   if p.parent.name <= as_of.strftime("%Y-%m-%d"))
    if not files:
        return None
    table = pq.read_table(files[int(rng.integers(len(files)))]).to_pylist()
    if not table:
        return None
    row = table[int(rng.integers(len(table)))]
    return {k: ("" if v is None else str(v)) for k, v in row.items() if k in WRITEOFF_HEADER}


def _contract_row(order: dict) -> dict:
    return {"order_id": order["order_id"], "customer_id": order["customer_id"],
            "salesperson_id": order["salesperson_id"], "status": order["status"], "currency": "CNY",
            "signed_at": order["sales_leg_closed_at"]}


def _customer_update(customers_dir: Path, rng: np.random.Generator, alias: str, moment: str) -> str | None:
    """A new version of one customer, as its system exports it (same header), with a new alias."""
    files = sorted(customers_dir.rglob("*.csv"))
    if not files:
        return None
    text = files[int(rng.integers(len(files)))].read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        return None
    header, row = rows[0], list(rows[1 + int(rng.integers(len(rows) - 1))])
    if "简称" in header:
        row[header.index("简称")] = alias
    if "更新时间" in header:
        row[header.index("更新时间")] = moment
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, row])
    return "\ufeff" + out.getvalue()


def apply_step(landing: Path, step: Step) -> None:
    for relative, text in step.files.items():
        path = Path(landing) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
