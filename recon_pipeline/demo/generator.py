"""Seeded demo, test-fixture and benchmark data: the seven landing-zone sources and their truth.

`generate_demo(out_dir)` writes `out_dir/landing/<source>/<YYYY-MM-DD>/<file>` (CONTRACT.md
section 1) and `out_dir/ground_truth/*.csv` (outside the landing zone), and returns a summary.
The default is a demo of realistic size; `n_bank_lines=N` scales every source with it for
benchmarks. The same seed gives the same bytes.

What the drops contain, and why:
- customers: UTF-8 with BOM and Chinese headers (an Excel export), weekly, with updates.
- salespeople: canonical CSV, an initial drop and one update (reps change manager).
- crm_contracts: daily (some days missing), every state change of an order as a new version.
- erp_invoices: weekdays; one drop is an `.xlsx`; installments, red-letter notes, voids.
- legal_archive: Mon/Wed/Fri; the month-end drop of 2025-04-30 arrives late (resent).
- bank_transactions: one file per company account and download; the ICBC account is GB18030
  with Chinese headers and thousands separators; downloads overlap.
- finance_writeoffs: Parquet (typed money and timestamps), Tuesdays and Thursdays.
A few malformed rows (bad date, non-numeric amount, missing key) are listed in
`ground_truth/quarantine_truth.csv`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from recon_pipeline.demo.bank import (
    ALL_VARIANTS,
    COMPANY_ACCOUNTS,
    assign_accounts_and_ids,
    assign_labels,
    build_credits,
    build_customer_deposits,
    build_unrelated,
    build_writeoffs,
    downloads,
    is_non_sales_memo,
    render_lines,
)
from recon_pipeline.demo.files import (
    cents_to_decimal,
    csv_line,
    csv_lines,
    set_arrival_time,
    write_csv_lines,
    write_parquet,
    write_xlsx,
)
from recon_pipeline.demo.clock import (
    AS_OF,
    AS_OF_SECONDS,
    HOUR,
    MINUTE,
    MISSING,
    DropSchedule,
    day_label,
    format_cents,
    format_cents_grouped,
    format_dates,
    format_times,
    schedule_days,
)
from recon_pipeline.demo.truth import allocation_rows, allocation_unambiguous, join_present, line_evidence, orders_truth
from recon_pipeline.demo.vocab import INDUSTRY_WORDS, REGIONS
from recon_pipeline.demo.world import (
    Scale,
    build_customers,
    build_invoices,
    build_legal,
    build_orders,
    build_people,
    contract_versions,
    finalize_customers,
    legal_versions,
)
from recon_pipeline.settings import load_settings

__all__ = ["DemoSummary", "generate_demo", "ALL_VARIANTS"]

XLSX_INVOICE_DAY = 61  # 2025-03-03: that day's ERP export was saved from Excel
LATE_LEGAL_DAY = 119  # 2025-04-30: the month-end archive drop, resent on 2025-05-05
LATE_LEGAL_ARRIVAL = datetime(2025, 5, 5, 10, 12)


@dataclass(frozen=True)
class DemoSummary:
    out_dir: Path
    landing_dir: Path
    ground_truth_dir: Path
    as_of: str  # suggested as-of for `recon run`, local time
    seed: int
    n_customers: int
    n_salespeople: int
    n_orders: int
    n_bank_transactions: int  # distinct (account_no, txn_id)
    n_bank_rows: int  # rows in bank files, overlapping downloads included
    rows_by_source: dict[str, int] = field(default_factory=dict)
    files_by_source: dict[str, int] = field(default_factory=dict)
    quarantine_rows: int = 0
    late_drops: tuple[str, ...] = ()
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)


def generate_demo(out_dir: Path, seed: int = 7, n_bank_lines: int | None = None) -> DemoSummary:
    started = time.perf_counter()
    out_dir = Path(out_dir)
    landing, truth_dir = out_dir / "landing", out_dir / "ground_truth"
    settings = load_settings()
    cutoff_hour = settings.cutoff_hour
    tolerance = int(settings.amount_tolerance * 100)
    stale_hours = int(settings.alerts.get("receipt_not_written_off_hours", 72))
    scale = Scale.for_lines(n_bank_lines)
    rng = np.random.default_rng(seed)
    stages: dict[str, float] = {}
    clock = [time.perf_counter()]

    def stage(name: str) -> None:
        now = time.perf_counter()
        stages[name] = round(now - clock[0], 3)
        clock[0] = now

    people = build_people(rng, scale)
    customers, spare_brands = build_customers(rng, scale, people)
    orders = build_orders(rng, scale, customers, people)
    finalize_customers(rng, customers, orders)
    f = orders.frame
    order_ids = f["order_id"].to_numpy()
    tax_rate = np.array([INDUSTRY_WORDS[w][2] for w in customers.word.tolist()])[f["customer"].to_numpy()]
    crm = contract_versions(orders)
    legal = build_legal(rng, orders)
    legal_v = legal_versions(legal)
    invoices, invoice_pattern = build_invoices(rng, orders, tax_rate)
    f["invoice_pattern"] = invoice_pattern
    stage("world")

    credit_lines = build_credits(rng, orders, customers, invoices)
    assign_labels(rng, credit_lines, customers, min_per_label=3)
    credits = credit_lines.frame
    last_invoice = _last_normal_invoice(invoices, len(f))
    render_lines(rng, credits, customers, order_ids, last_invoice["invoice_no"].fillna("").to_numpy())
    deposits = build_customer_deposits(rng, customers, max(3, len(customers.ids) // 20))
    unrelated = build_unrelated(rng, max(30, scale.bank_lines - len(credits) - len(deposits)), customers, spare_brands)
    lines = _all_lines(credits, unrelated, deposits)
    lines = assign_accounts_and_ids(rng, lines)
    writeoffs = build_writeoffs(rng, lines, orders, last_invoice, AS_OF_SECONDS, stale_hours)
    stage("bank_lines")

    writer = _LandingWriter(landing, rng)
    crm_current = writer.contracts(crm, orders, customers, people)
    writer.customers(customers, people)
    writer.salespeople(people)
    invoices_current = writer.invoices(invoices, orders, customers)
    legal_current = writer.legal(legal_v)
    writeoffs_current = writer.writeoffs(writeoffs, order_ids)
    stage("write_business_sources")
    appearances = writer.bank(lines, downloads(rng, lines))
    stage("write_bank")

    # Ground truth from the delivered events.
    evidence = line_evidence(lines, customers, writeoffs_current)
    allocations = allocation_rows(lines)
    active = writeoffs_current[writeoffs_current["status"] == "active"]
    written_pairs = pd.MultiIndex.from_arrays([active["line_pos"], active["order_idx"]])
    by_writeoff = pd.MultiIndex.from_arrays([allocations["line_pos"], allocations["order_idx"]]).isin(written_pairs)
    line_strong = (evidence["customer_strong"] | evidence["memo_strong"]).to_numpy()
    strong_alloc = line_strong[allocations["line_pos"].to_numpy()] | by_writeoff
    unambiguous = allocation_unambiguous(lines, orders, tolerance)
    truth = orders_truth(orders, crm_current, legal_current, invoices_current, allocations, strong_alloc,
                         ~unambiguous, cutoff_hour, tolerance)
    truth_dir.mkdir(parents=True, exist_ok=True)
    stage("truth")
    _write_orders_truth(truth_dir, truth, orders, customers, people)
    _write_bank_truth(truth_dir, lines, appearances, evidence, unambiguous, writeoffs_current, customers, order_ids)
    _write_customers_truth(truth_dir, customers)
    quarantine = sorted(writer.quarantine)
    write_csv_lines(truth_dir / "quarantine_truth.csv", ["source", "file", "row_number", "reason_kind"],
                    [csv_line([s, f, str(r), k]) for s, f, r, k in quarantine])
    stage("write_truth")

    return DemoSummary(
        out_dir=out_dir,
        landing_dir=landing,
        ground_truth_dir=truth_dir,
        as_of=AS_OF,
        seed=seed,
        n_customers=len(customers.ids),
        n_salespeople=len(people.frame),
        n_orders=len(f),
        n_bank_transactions=len(lines),
        n_bank_rows=writer.rows["bank_transactions"],
        rows_by_source=dict(writer.rows),
        files_by_source=dict(writer.files),
        quarantine_rows=len(quarantine),
        late_drops=(f"legal_archive/{day_label(LATE_LEGAL_DAY)}",),
        seconds=time.perf_counter() - started,
        stage_seconds=stages,
    )


def _last_normal_invoice(invoices: pd.DataFrame, n_orders: int) -> pd.DataFrame:
    current = invoices.drop_duplicates("invoice_no", keep="last")
    normal = current[(current["invoice_type"] == "normal") & (current["status"] == "issued")]
    last = normal.sort_values(["order_idx", "invoice_day", "invoice_no"], kind="stable").drop_duplicates("order_idx", keep="last")
    return last.set_index("order_idx")[["invoice_no", "invoice_day"]].reindex(range(n_orders))


def _all_lines(credits: pd.DataFrame, unrelated: pd.DataFrame, deposits: pd.DataFrame) -> pd.DataFrame:
    customer_lines = credits.assign(account=-1, kind="customer").drop(columns=["txn_order"])
    no_order = dict(proxy=False, force_writeoff=False, forced=False, group_size=0, payer=-1, payer_form="",
                    **{f"o{k}": -1 for k in range(3)}, **{f"a{k}": 0 for k in range(3)})
    # Money that says what it is (押金, 保证金, 退税, 补贴) from a non-customer: tagged apart.
    variant = np.where(is_non_sales_memo(unrelated["memo"].to_numpy()) & (unrelated["amount"].to_numpy() > 0),
                       "non_sales_memo", "unrelated")
    other = unrelated.assign(customer=-1, pattern="", variant=variant, name_form="", memo_form="", unapplied=0,
                             **no_order)
    deposits = deposits.assign(**no_order)
    lines = pd.concat([customer_lines, other[customer_lines.columns], deposits[customer_lines.columns]],
                      ignore_index=True)
    lines["line"] = np.arange(len(lines))
    return lines


def _deliver(versions: pd.DataFrame, key: list[str], schedule: DropSchedule) -> pd.DataFrame:
    """Rows as delivered: each drop shows a record's last state before its extraction."""
    delivered = versions.assign(drop_day=schedule.drop_day(versions["version_time"].to_numpy()))
    delivered = delivered[delivered["drop_day"] != MISSING]
    delivered = delivered.sort_values([*key, "version_time"], kind="stable")
    return delivered.drop_duplicates([*key, "drop_day"], keep="last")


def _current(delivered: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """The contract's upsert rule: latest version time, then latest drop."""
    ordered = delivered.sort_values([*key, "version_time", "drop_day"], kind="stable")
    return ordered.drop_duplicates(key, keep="last").reset_index(drop=True)


class _LandingWriter:
    """Writes the drops of every source and remembers the rows it broke on purpose."""

    def __init__(self, landing: Path, rng: np.random.Generator):
        self.landing = landing
        self.rng = rng
        self.rows: dict[str, int] = {}
        self.files: dict[str, int] = {}
        self.quarantine: list[tuple[str, str, int, str]] = []

    # -- helpers -------------------------------------------------------------------------
    def _path(self, source: str, day: int, name: str) -> Path:
        return self.landing / source / day_label(day) / name

    def _count(self, source: str, rows: int) -> None:
        self.rows[source] = self.rows.get(source, 0) + rows
        self.files[source] = self.files.get(source, 0) + 1

    def _junk_plan(self, days: np.ndarray, kinds: tuple[str, ...], total_rows: int) -> dict[int, list[str]]:
        """Which drops get which malformed rows: at least one of each kind, more at scale."""
        per_kind = max(1, round(total_rows * 0.00005))
        plan: dict[int, list[str]] = {}
        for kind in kinds:
            for day in self.rng.choice(days, size=per_kind).tolist():
                plan.setdefault(int(day), []).append(kind)
        return plan

    def _junk(self, columns: list[pa.Array], rows: np.ndarray, kinds: list[str], make) -> list[tuple[int, list[str], str]]:
        """Malformed copies of random rows (`rows` index `columns`) of a drop: (position, values, kind)."""
        junk = []
        for kind in kinds:
            template = [c[int(rows[int(self.rng.integers(0, len(rows)))])].as_py() for c in columns]
            junk.append((int(self.rng.integers(0, len(rows) + 1)), make(template, kind), kind))
        return junk

    def _write_table(self, source: str, day: int, name: str, header: list[str], lines: list[str],
                     junk=(), encoding="utf-8", newline="\n") -> np.ndarray:
        """Write a drop (CSV text lines) with its malformed rows inserted; returns each good row's
        row number (header = row 1)."""
        junk = sorted(junk, key=lambda j: j[0])
        positions = np.array([j[0] for j in junk], dtype=np.int64)
        numbers = np.arange(len(lines)) + 2 + np.searchsorted(positions, np.arange(len(lines)), side="right")
        relative = f"{source}/{day_label(day)}/{name}"
        for k, (position, values, kind) in enumerate(junk):
            lines.insert(position + k, csv_line(values))
            self.quarantine.append((source, relative, position + k + 2, kind))
        path = self._path(source, day, name)
        write_csv_lines(path, header, lines, encoding, newline)
        set_arrival_time(path, _arrival(day))
        self._count(source, len(lines))
        return numbers

    @staticmethod
    def _by_day(delivered: pd.DataFrame, columns: list):
        """(day, CSV lines, row indexes into the sorted columns, positions in `delivered`, sorted
        columns) per drop, rows in the order the source system changed them."""
        drop_days = delivered["drop_day"].to_numpy()
        order = np.lexsort((delivered["version_time"].to_numpy(), drop_days))
        days_sorted = drop_days[order]
        take = pa.array(order)
        cols = [(c if isinstance(c, pa.Array) else pa.array(np.asarray(c, dtype=object), type=pa.string())).take(take)
                for c in columns]
        lines = csv_lines(cols)
        bounds = np.flatnonzero(np.r_[True, days_sorted[1:] != days_sorted[:-1], True])
        for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            yield int(days_sorted[start]), lines[start:end], np.arange(start, end), order[start:end], cols

    # -- sources -------------------------------------------------------------------------
    def contracts(self, versions: pd.DataFrame, orders, customers, people) -> pd.DataFrame:
        f = orders.frame
        days = schedule_days(self.rng, 1, tuple(range(7)), 0.04)
        delivered = _deliver(versions, ["order_idx"], DropSchedule(days, 8 * HOUR + 30 * MINUTE))
        o = delivered["order_idx"].to_numpy()
        cust = f["customer"].to_numpy()[o]
        region_codes = np.array([r[0] for r in REGIONS], dtype=object)
        registered = np.array([x.registered for x in customers.names], dtype=object)
        contract_no = np.array([f"HT2025{r[0]}{s:05d}" for r, s in zip(
            (REGIONS[x] for x in f["region"].tolist()), f["serial"].tolist())], dtype=object)
        columns = {
            "order_id": _lookup(f["order_id"].to_numpy(dtype=object), o),
            "contract_no": _lookup(contract_no, o),
            "customer_id": _lookup(customers.ids, cust),
            "customer_name": _lookup(registered, cust),
            "salesperson_id": _lookup(people.rep_ids, f["rep"].to_numpy()[o]),
            "region_code": _lookup(region_codes, f["region"].to_numpy()[o]),
            "industry": _lookup(customers.industry, cust),
            "amount": format_cents(delivered["amount"].to_numpy()),
            "currency": np.full(len(o), "CNY", dtype=object),
            "status": delivered["status"].to_numpy(dtype=object),
            "signed_at": format_times(delivered["signed_at"].to_numpy()),
            "approval_status": delivered["approval_status"].to_numpy(dtype=object),
            "approval_submitted_at": format_times(delivered["approval_submitted_at"].to_numpy()),
            "approval_updated_at": format_times(delivered["approval_updated_at"].to_numpy()),
            "updated_at": format_times(delivered["version_time"].to_numpy()),
        }
        drop_days = delivered["drop_day"].to_numpy()
        plan = self._junk_plan(np.unique(drop_days), ("bad_date", "missing_key"), len(delivered))
        serial = [int(f["serial"].max()) + 100]

        def make(row, kind):
            if kind == "bad_date":  # a new order whose signing time cannot be a date
                serial[0] += 1
                row[0], row[9], row[10] = f"25SH{serial[0]:05d}", "signed", "2025-02-30 10:00:00"
            else:
                row[0] = ""
            return row

        for day, lines, rows, _, cols in self._by_day(delivered, list(columns.values())):
            ymd = day_label(day).replace("-", "")
            junk = self._junk(cols, rows, plan.get(day, []), make)
            self._write_table("crm_contracts", day, f"crm_orders_{ymd}.csv", list(columns), lines, junk)
        return _current(delivered, ["order_idx"])

    def customers(self, customers, people) -> None:
        days = np.union1d([1], schedule_days(self.rng, 5, (0,), 0.0))
        delivered = _deliver(customers.versions, ["customer_id"], DropSchedule(days, 6 * HOUR))
        header = ["客户编号", "客户名称", "统一社会信用代码", "简称", "区域", "行业", "负责销售", "更新时间"]
        columns = [
            *(delivered[c].to_numpy(dtype=object) for c in ("customer_id", "customer_name", "credit_code", "aliases",
                                                            "region_code", "industry")),
            people.rep_ids.astype(object)[delivered["owner"].to_numpy()],
            format_times(delivered["version_time"].to_numpy()),
        ]
        for day, lines, _, _, _ in self._by_day(delivered, columns):
            ymd = day_label(day).replace("-", "")
            self._write_table("customers", day, f"customers_{ymd}.csv", header, lines, encoding="utf-8-sig", newline="\r\n")

    def salespeople(self, people) -> None:
        delivered = _deliver(people.versions, ["salesperson_id"], DropSchedule(np.array([1, 62]), 6 * HOUR))
        header = ["salesperson_id", "name", "email", "manager_email", "region_code", "updated_at"]
        columns = [*(delivered[c].to_numpy(dtype=object) for c in header[:-1]), format_times(delivered["version_time"].to_numpy())]
        for day, lines, _, _, _ in self._by_day(delivered, columns):
            self._write_table("salespeople", day, f"salespeople_{day_label(day).replace('-', '')}.csv", header, lines)

    def invoices(self, invoices: pd.DataFrame, orders, customers) -> pd.DataFrame:
        f = orders.frame
        days = np.union1d(schedule_days(self.rng, 2, (0, 1, 2, 3, 4), 0.03), [XLSX_INVOICE_DAY])
        delivered = _deliver(invoices, ["invoice_no"], DropSchedule(days, 6 * HOUR))
        o = delivered["order_idx"].to_numpy()
        registered = np.array([x.registered for x in customers.names], dtype=object)
        header = ["invoice_no", "order_id", "customer_name", "invoice_date", "amount_excl_tax", "tax_amount",
                  "total_amount", "invoice_type", "status", "updated_at"]
        columns = [
            delivered["invoice_no"].to_numpy(dtype=object), _lookup(f["order_id"].to_numpy(dtype=object), o),
            _lookup(registered, f["customer"].to_numpy()[o]),
            format_dates(delivered["invoice_day"].to_numpy()),
            format_cents(delivered["amount_excl_tax"].to_numpy()),
            format_cents(delivered["tax_amount"].to_numpy()),
            format_cents(delivered["total"].to_numpy()),
            delivered["invoice_type"].to_numpy(dtype=object), delivered["status"].to_numpy(dtype=object),
            format_times(delivered["version_time"].to_numpy()),
        ]
        drop_days = delivered["drop_day"].to_numpy()
        plan = self._junk_plan(np.setdiff1d(np.unique(drop_days), [XLSX_INVOICE_DAY]), ("bad_amount", "missing_key"),
                               len(delivered))
        number = [99_000_000]

        def make(row, kind):
            if kind == "bad_amount":  # a new invoice whose total is not a number
                number[0] += 1
                row[0], row[6] = f"{number[0]:08d}", "12,3OO.00"
            else:
                row[0] = ""
            return row

        for day, lines, rows, positions, cols in self._by_day(delivered, columns):
            ymd = day_label(day).replace("-", "")
            if day == XLSX_INVOICE_DAY:
                self._invoice_xlsx(day, f"erp_invoices_{ymd}.xlsx", header, delivered.iloc[positions],
                                   [c.take(pa.array(rows)) for c in cols])
                continue
            junk = self._junk(cols, rows, plan.get(day, []), make)
            self._write_table("erp_invoices", day, f"erp_invoices_{ymd}.csv", header, lines, junk)
        return _current(delivered, ["invoice_no"])

    def _invoice_xlsx(self, day: int, name: str, header: list[str], frame: pd.DataFrame, cols: list[pa.Array]) -> None:
        """Excel keeps amounts as numbers and dates as dates; invoice numbers stay text (leading zeros)."""
        text = [c.to_pylist() for c in cols]
        base = datetime(2025, 1, 1)
        typed = []
        for i, (total, excl, tax, inv_day, t) in enumerate(zip(frame["total"], frame["amount_excl_tax"], frame["tax_amount"],
                                                             frame["invoice_day"], frame["version_time"])):
            typed.append((text[0][i], text[1][i], text[2][i], base + timedelta(days=int(inv_day)),
                          cents_to_decimal(excl), cents_to_decimal(tax), cents_to_decimal(total), text[7][i], text[8][i],
                          base + timedelta(seconds=int(t))))
        path = self._path("erp_invoices", day, name)
        write_xlsx(path, header, typed)
        set_arrival_time(path, _arrival(day))
        self._count("erp_invoices", len(typed))

    def legal(self, versions: pd.DataFrame) -> pd.DataFrame:
        days = np.union1d(schedule_days(self.rng, 1, (0, 2, 4), 0.03), [LATE_LEGAL_DAY])
        delivered = _deliver(versions, ["archive_no"], DropSchedule(days, 6 * HOUR))
        header = ["archive_no", "order_id", "review_status", "submitted_at", "reviewed_at", "archived_at", "updated_at"]
        columns = [
            delivered["archive_no"].to_numpy(dtype=object), delivered["order_id"].to_numpy(dtype=object),
            delivered["review_status"].to_numpy(dtype=object),
            *(format_times(delivered[c].to_numpy()) for c in ("submitted", "reviewed_at", "archived_at", "version_time")),
        ]
        drop_days = delivered["drop_day"].to_numpy()
        plan = self._junk_plan(np.setdiff1d(np.unique(drop_days), [LATE_LEGAL_DAY]), ("bad_date",), len(delivered))

        def make(row, kind):  # a new archive record archived on a day that does not exist
            row[0], row[2], row[5] = f"GD25{990000 + len(self.quarantine):06d}", "approved", "2025-04-31 10:00:00"
            return row

        for day, lines, rows, _, cols in self._by_day(delivered, columns):
            ymd = day_label(day).replace("-", "")
            late = day == LATE_LEGAL_DAY
            name = f"legal_archive_{ymd}_resent_20250505.csv" if late else f"legal_archive_{ymd}.csv"
            self._write_table("legal_archive", day, name, header, lines, self._junk(cols, rows, plan.get(day, []), make))
            if late:
                set_arrival_time(self._path("legal_archive", day, name), LATE_LEGAL_ARRIVAL)
        return _current(delivered, ["archive_no"])

    def writeoffs(self, writeoffs: pd.DataFrame, order_ids: np.ndarray) -> pd.DataFrame:
        days = schedule_days(self.rng, 2, (1, 3), 0.0)
        delivered = _deliver(writeoffs, ["writeoff_id"], DropSchedule(days, 6 * HOUR))
        base = datetime(2025, 1, 1)
        for day in np.unique(delivered["drop_day"]).tolist():
            part = delivered[delivered["drop_day"] == day].sort_values(["version_time", "writeoff_id"], kind="stable")
            columns = {
                "writeoff_id": part["writeoff_id"].tolist(),
                "txn_id": part["txn_id"].tolist(),
                "order_id": order_ids[part["order_idx"].to_numpy()].tolist(),
                "invoice_no": [x or None for x in part["invoice_no"].tolist()],
                "amount": [cents_to_decimal(x) for x in part["amount"].tolist()],
                "confirmed_by": part["confirmed_by"].tolist(),
                "confirmed_at": [base + timedelta(seconds=int(x)) for x in part["confirmed_at"].tolist()],
                "status": part["status"].tolist(),
            }
            types = {k: "string" for k in columns} | {"amount": "decimal", "confirmed_at": "timestamp"}
            path = self._path("finance_writeoffs", day, f"writeoffs_{day_label(day).replace('-', '')}.parquet")
            write_parquet(path, columns, types)
            set_arrival_time(path, _arrival(day))
            self._count("finance_writeoffs", len(part))
        return _current(delivered, ["writeoff_id"])

    def bank(self, lines: pd.DataFrame, appearances: pd.DataFrame) -> pd.DataFrame:
        """One file per account and download day; returns the appearances with file and row."""
        times = format_times(lines["time"].to_numpy())
        plain = format_cents(lines["amount"].to_numpy())
        account = lines["account"].to_numpy()
        icbc = np.flatnonzero(account == 0)
        grouped_values = np.full(len(lines), "", dtype=object)
        grouped_values[icbc] = format_cents_grouped(lines["amount"].to_numpy()[icbc])
        grouped = pa.array(grouped_values, type=pa.string())
        text = {c: pa.array(lines[c].to_numpy(dtype=object), type=pa.string())
                for c in ("txn_id", "account_no", "counterparty_name", "counterparty_account", "memo")}
        currency = pa.array(np.full(len(lines), "CNY", dtype=object), type=pa.string())
        appearances = appearances.assign(account=account[appearances["line_pos"].to_numpy()],
                                         time=lines["time"].to_numpy()[appearances["line_pos"].to_numpy()])
        appearances = appearances.sort_values(["account", "drop_day", "time", "line_pos"], kind="stable").reset_index(drop=True)
        plans = {}
        for a, kinds in ((0, ("bad_amount", "bad_date")), (1, ("missing_key",))):
            mine = appearances[appearances["account"] == a]
            plans[a] = self._junk_plan(np.unique(mine["drop_day"]), kinds, len(mine))
        # ICBC portal: Chinese headers, GB18030, thousands separators, CRLF; the others canonical.
        layouts = {
            0: (["交易时间", "流水号", "交易金额", "币种", "对方户名", "对方账号", "摘要", "账号"],
                [times, text["txn_id"], grouped, currency, text["counterparty_name"], text["counterparty_account"],
                 text["memo"], text["account_no"]], (2, 0, 1), "gb18030", "\r\n"),
            1: (["account_no", "txn_id", "txn_time", "amount", "currency", "counterparty_name", "counterparty_account", "memo"],
                [text["account_no"], text["txn_id"], times, plain, currency, text["counterparty_name"],
                 text["counterparty_account"], text["memo"]], (3, 2, 1), "utf-8", "\n"),
        }
        line_text = np.empty(len(lines), dtype=object)
        for a in range(len(COMPANY_ACCOUNTS)):
            mine = np.flatnonzero(account == a)
            line_text[mine] = csv_lines([c.take(pa.array(mine)) for c in layouts[min(a, 1)][1]])
        files = np.empty(len(appearances), dtype=object)
        numbers = np.zeros(len(appearances), dtype=np.int64)
        counter = [0]
        keys = appearances[["account", "drop_day"]].to_numpy()
        bounds = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]).any(axis=1), True])
        all_pos = appearances["line_pos"].to_numpy()
        for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            a, day = int(keys[start, 0]), int(keys[start, 1])
            pos = all_pos[start:end]
            account_no, prefix, _ = COMPANY_ACCOUNTS[a]
            ymd = day_label(day).replace("-", "")
            header, source, (amount_col, time_col, key_col), encoding, newline = layouts[min(a, 1)]

            def make(row, kind, ymd=ymd, key_col=key_col, amount_col=amount_col, time_col=time_col):
                counter[0] += 1
                row[key_col] = "" if kind == "missing_key" else f"{ymd}99{counter[0]:08d}"
                if kind == "bad_amount":
                    row[amount_col] = "1,2OO.00"
                elif kind == "bad_date":
                    row[time_col] = "2025-02-30 10:15:00"
                return row

            junk = self._junk(source, pos, plans.get(a, {}).get(day, []), make)
            file_name = f"{prefix}_{account_no[-4:]}_{ymd}.csv"
            numbers[start:end] = self._write_table("bank_transactions", day, file_name, header, line_text[pos].tolist(),
                                                   junk, encoding, newline)
            files[start:end] = f"bank_transactions/{day_label(day)}/{file_name}"
        appearances["source_file"] = files
        appearances["row_number"] = numbers
        return appearances


def _text(series: pd.Series) -> pa.Array:
    return pa.array(series.astype("str"), type=pa.string())


def _lookup(values, index: np.ndarray) -> pa.Array:
    """values[index] as an Arrow string array (a take, not a Python loop)."""
    return pa.array(np.asarray(values, dtype=object), type=pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))


def _arrival(day: int) -> datetime:
    return datetime(2025, 1, 1) + timedelta(days=int(day), hours=6, minutes=30)


def _bool_text(values) -> np.ndarray:
    return np.where(np.asarray(values, dtype=bool), "true", "false").astype(object)


def _write_truth(path: Path, columns: dict) -> None:
    write_csv_lines(path, list(columns), csv_lines(list(columns.values())))


def _write_orders_truth(truth_dir: Path, truth: pd.DataFrame, orders, customers, people) -> None:
    f = orders.frame
    _write_truth(truth_dir / "orders_truth.csv", {
        "order_id": f["order_id"].to_numpy(dtype=object),
        "customer_id": customers.ids.astype(object)[f["customer"].to_numpy()],
        "salesperson_id": people.rep_ids.astype(object)[f["rep"].to_numpy()],
        "status": truth["status"].to_numpy(dtype=object),
        "contract_amount": format_cents(truth["contract_amount"].to_numpy()),
        "invoiced_amount": format_cents(truth["invoiced_amount"].to_numpy()),
        "received_linked_amount": format_cents(truth["received_linked_amount"].to_numpy()),
        "received_all_amount": format_cents(truth["received_all_amount"].to_numpy()),
        "sales_leg_closed_at": format_times(truth["sales_leg_closed_at"].to_numpy()),
        "legal_leg_closed_at": format_times(truth["legal_leg_closed_at"].to_numpy()),
        "finance_leg_closed_at": format_times(truth["finance_leg_closed_at"].to_numpy()),
        "is_closed": _bool_text(truth["is_closed"]),
        "recognized_period": truth["recognized_period"].to_numpy(dtype=object),
        "depends_on_fuzzy": _bool_text(truth["depends_on_fuzzy"]),
        "depends_on_allocation_guess": _bool_text(truth["depends_on_allocation_guess"]),
        "finance_leg_closed_at_if_all_linked": format_times(truth["finance_leg_closed_at_if_all_linked"].to_numpy()),
        "is_closed_if_all_linked": _bool_text(truth["is_closed_if_all_linked"]),
        "recognized_period_if_all_linked": truth["recognized_period_if_all_linked"].to_numpy(dtype=object),
        "payment_pattern": f["payment_pattern"].replace("", "none").to_numpy(dtype=object),
        "invoice_pattern": f["invoice_pattern"].replace("", "none").to_numpy(dtype=object),
        "edge_case": f["edge"].to_numpy(dtype=object),
        "amount_correction": f["correction"].to_numpy(dtype=object),
    })


def _write_bank_truth(truth_dir: Path, lines: pd.DataFrame, appearances: pd.DataFrame, evidence: pd.DataFrame,
                      unambiguous: np.ndarray, writeoffs_current: pd.DataFrame, customers, order_ids: np.ndarray) -> None:
    cust = lines["customer"].to_numpy()
    true_customer = np.where(cust >= 0, customers.ids.astype(object)[np.maximum(cust, 0)], "")
    ids_parts, alloc_parts = [], []
    for k in range(3):
        o = lines[f"o{k}"].to_numpy()
        has = pa.array(o >= 0)
        ids = pa.array(order_ids.astype(object)[np.maximum(o, 0)], type=pa.string())
        allocation = pa.compute.binary_join_element_wise(ids, format_cents(lines[f"a{k}"].to_numpy()), ":")
        ids_parts.append(pa.compute.if_else(has, ids, ""))
        alloc_parts.append(pa.compute.if_else(has, allocation, ""))
    orders_text, alloc_text = join_present(ids_parts), join_present(alloc_parts)
    active = writeoffs_current[writeoffs_current["status"] == "active"]
    written = np.zeros(len(lines), dtype=bool)
    written[active["line_pos"].to_numpy()] = True
    per_line = {
        "account_no": _text(lines["account_no"]),
        "txn_id": _text(lines["txn_id"]),
        "txn_time": format_times(lines["time"].to_numpy()),
        "amount": format_cents(lines["amount"].to_numpy()),
        "true_customer_id": true_customer,
        "true_order_ids": orders_text,
        "expected_allocations": alloc_text,
        "expected_unapplied": format_cents(lines["unapplied"].to_numpy()),
        "variant": _text(lines["variant"]),
        "name_form": _text(lines["name_form"].replace("region_keeping", "region_variant")),
        "memo_form": _text(lines["memo_form"]),
        "payment_pattern": _text(lines["pattern"].replace("deposit", "partial")),
        "strong_evidence": _text(evidence["strong_evidence"]),
        "name_evidence": _text(evidence["name_evidence"]),
        "allocation_unambiguous": _bool_text(unambiguous),
        "written_off": _bool_text(written),
    }
    # One row per appearance in a file, in file order.
    order = np.lexsort((appearances["row_number"].to_numpy(), appearances["source_file"].to_numpy().astype(str)))
    pos = pa.array(appearances["line_pos"].to_numpy()[order])
    columns = {k: (v if isinstance(v, pa.Array) else pa.array(np.asarray(v, dtype=object), type=pa.string())).take(pos)
               for k, v in per_line.items()}
    columns["source_file"] = appearances["source_file"].to_numpy()[order]
    columns["row_number"] = appearances["row_number"].to_numpy()[order].astype(str).astype(object)
    columns["is_duplicate_of_earlier_download"] = _bool_text(appearances["duplicate"].to_numpy()[order])
    _write_truth(truth_dir / "bank_truth.csv", columns)


def _write_customers_truth(truth_dir: Path, customers) -> None:
    _write_truth(truth_dir / "customers_truth.csv", {
        "customer_id": customers.ids.astype(object),
        "customer_name": [x.registered for x in customers.names],
        "short_name": [x.short for x in customers.names],
        "aliases": customers.aliases_final,
        "credit_code": customers.credit_code_final,
        "confusable_with": customers.confusable_with,
        "confusable_kind": customers.confusable_kind,
        "primary_account": customers.primary_account,
    })
