"""Benchmark: payer matching on 1M bank credits against 100k customers, next to brute force.

    .venv/bin/python bench/bench_matching.py [--credits 1000000] [--customers 100000] [--sample 200]

Synthetic data (seeded): customer names = region + two-character brand + industry word +
legal form, industry words from companynameparser's list; each credit's payer writes its
customer's name in one of several ways (exact, short, region moved into brackets, traditional
characters, channel prefix, account number run together, memo with the order ID, masked,
one-character typo) or is an unrelated payer.

Baseline (same process): rapidfuzz `process.cdist` of every payer name against every customer
name (`fuzz.token_set_ratio`, as ERPNext does), best score >= 85, timed on a sample of credits
and scaled to all of them. Both single worker. Prints times, the ratio and recall on the sample.

Matching stage on a real warehouse (read staging -> build_receipt_links -> write the seam):

    .venv/bin/python bench/bench_matching.py --warehouse W.duckdb [--baseline-code DIR] [--as-of ...]

runs `refresh_receipt_links` on a temporary copy of W (W itself is never written), in a child
process per code version, and prints wall/CPU seconds per phase and peak RSS (VmHWM). With
`--baseline-code` (a directory holding another `recon_pipeline` package, e.g. an older copy)
the baseline runs in the same way in the same run, and the script prints the ratios and
whether both wrote exactly the same rows.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import opencc
import pandas as pd
from rapidfuzz import fuzz, process

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recon_pipeline.matching.engine import build_receipt_links  # noqa: E402
from recon_pipeline.matching.inputs import MatchingInputs  # noqa: E402
from recon_pipeline.matching.names import vocabulary  # noqa: E402
from recon_pipeline.settings import load_settings  # noqa: E402

BRAND_CHARS = ("华恒信达鑫源泰和瑞丰盛隆佳宏博远凯德中科创新联天宇金海星辰东方北辰睿智云帆正通"
               "汇通明阳光大众晨曦嘉禾永兴昌顺安康锦程鸿运卓越精诚合力")
REGIONS = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "天津", "苏州", "重庆",
           "长沙", "郑州", "济南", "青岛", "合肥", "福州", "厦门", "宁波"]
REGION_CODES = ["BJ", "SH", "GZ", "SZ", "HZ", "NJ", "CD", "WH", "XA", "TJ", "SU", "CQ",
                "CS", "ZZ", "JN", "QD", "HF", "FZ", "XM", "NB"]
LEGAL = ["有限公司", "股份有限公司", "有限责任公司"]
VARIANTS = ["exact", "short", "bracket_region", "traditional", "channel", "with_account", "memo", "masked",
            "typo", "unrelated"]
WEIGHTS = [0.30, 0.12, 0.08, 0.05, 0.05, 0.05, 0.20, 0.03, 0.04, 0.08]


def make_customers(n: int, rng: random.Random) -> pd.DataFrame:
    industries = sorted(w for w in vocabulary().industry_words if len(w) == 2)[:200]
    seen, rows = set(), []
    while len(rows) < n:
        region_i = rng.randrange(len(REGIONS))
        brand = "".join(rng.sample(BRAND_CHARS, rng.choice((2, 2, 3))))
        industry = rng.choice(industries)
        name = f"{REGIONS[region_i]}{brand}{industry}{rng.choice(LEGAL)}"
        if name in seen:
            continue
        seen.add(name)
        rows.append((f"C{len(rows):06d}", name, REGION_CODES[region_i], REGIONS[region_i], brand, industry))
    return pd.DataFrame(rows, columns=["customer_id", "customer_name", "region_code", "region", "brand", "industry"])


def payer_name(customer, variant: str, rng: random.Random, t2s: opencc.OpenCC) -> str:
    region, brand, industry, full = customer.region, customer.brand, customer.industry, customer.customer_name
    if variant == "short":
        return f"{brand}{industry}"
    if variant == "bracket_region":
        return f"{brand}{industry}({region})有限公司"
    if variant == "traditional":
        return t2s.convert(full)
    if variant == "channel":
        return f"支付宝－{full}"
    if variant == "with_account":
        return f"{full}6222{rng.randrange(10**11, 10**12)}"
    if variant == "masked":
        return f"{full[:1]}***{full[-6:]}"
    if variant == "typo":
        chars = list(brand)
        chars[rng.randrange(len(chars))] = rng.choice(BRAND_CHARS)
        return f"{region}{''.join(chars)}{industry}有限公司"
    return full


def make_bank(customers: pd.DataFrame, n: int, seed: int):
    rng = random.Random(seed)
    s2t = opencc.OpenCC("s2t")
    start = datetime(2025, 1, 1)
    cust = list(customers.itertuples(index=False))
    # Payers repeat: most credits come from a smaller set of active customers.
    active = [cust[i] for i in np.random.default_rng(seed).zipf(1.3, size=n) % len(cust)]
    variants = rng.choices(VARIANTS, WEIGHTS, k=n)
    rows, truth = [], []
    for i, (customer, variant) in enumerate(zip(active, variants)):
        order_id = f"25{customer.region_code}{int(customer.customer_id[1:]) % 100000:05d}"
        memo = "货款"
        if variant == "unrelated":
            name, true_id = f"个人{rng.choice(BRAND_CHARS)}{rng.choice(BRAND_CHARS)}{rng.randrange(1000)}", ""
        else:
            name, true_id = payer_name(customer, variant, rng, s2t), customer.customer_id
            if variant == "memo":
                memo = f"订单{order_id.lower()}"
        rows.append(("6222000011110000", f"T{i:08d}", start + timedelta(seconds=17 * i), 100_000 + (i % 50) * 1000,
                     "CNY", name, "", memo))
        truth.append((true_id, variant))
    bank = pd.DataFrame(rows, columns=["account_no", "txn_id", "txn_time", "amount_cents", "currency",
                                       "counterparty_name", "counterparty_account", "memo"])
    return bank, pd.DataFrame(truth, columns=["true_customer_id", "variant"])


def contracts_for(customers: pd.DataFrame) -> pd.DataFrame:
    ids = customers["customer_id"].str[1:].astype(int) % 100000
    return pd.DataFrame({
        "order_id": "25" + customers["region_code"] + ids.map(lambda i: f"{i:05d}"),
        "customer_id": customers["customer_id"], "customer_name": customers["customer_name"],
        "salesperson_id": "S1", "amount_cents": 10_000_000, "status": "signed", "signed_at": "2025-01-01",
    }).drop_duplicates("order_id")


# Child process: one matching stage on a warehouse copy, figures as JSON on the last line.
_STAGE_SCRIPT = """
import json, resource, sys, time
from datetime import datetime
sys.path.insert(0, sys.argv[1])
import duckdb
from recon_pipeline.matching import seam as rl
from recon_pipeline.settings import load_settings

def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024

conn = duckdb.connect(sys.argv[2])
settings, as_of = load_settings(), datetime.fromisoformat(sys.argv[3])
figures, started = {}, time.perf_counter()
wall, cpu = time.perf_counter(), time.process_time()
def phase(name):
    global wall, cpu
    figures[name] = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "peak_mib": peak_mib()}
    wall, cpu = time.perf_counter(), time.process_time()
inputs = rl.read_matching_inputs(conn, as_of); phase("read")
links = rl.build_receipt_links(inputs, settings); del inputs; phase("build")
rows = rl.write_receipt_links(conn, links); phase("write")
usage = resource.getrusage(resource.RUSAGE_SELF)
figures["stage"] = {"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime,
                    "peak_mib": peak_mib(), "rows": rows}
digest = conn.execute(
    "SELECT bit_xor(hash(account_no, txn_id, customer_id, order_id, allocated_amount, match_method,"
    " match_score, match_status, evidence)), count(*) FROM matching.receipt_links").fetchone()
figures["digest"] = [str(digest[0]), digest[1]]
print(json.dumps(figures))
"""


def run_stage(code_root: Path, warehouse: Path, as_of: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_matching_") as tmp:
        copy = Path(tmp) / "w.duckdb"
        shutil.copyfile(warehouse, copy)
        done = subprocess.run([sys.executable, "-c", _STAGE_SCRIPT, str(code_root), str(copy), as_of],
                              capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_warehouse(warehouse: Path, baseline_code: Path | None, as_of: str) -> None:
    current = run_stage(Path(__file__).resolve().parent.parent, warehouse, as_of)
    results = {"current": current}
    if baseline_code is not None:
        results["baseline"] = run_stage(baseline_code, warehouse, as_of)
    for label, figures in results.items():
        print(f"{label}: " + "; ".join(
            f"{phase} {figures[phase]['wall']:.1f}s wall / {figures[phase]['cpu']:.1f}s CPU"
            for phase in ("read", "build", "write"))
              + f"; stage {figures['stage']['wall']:.1f}s wall / {figures['stage']['cpu']:.1f}s CPU (all threads), "
              f"peak RSS {figures['stage']['peak_mib']:,.0f} MiB, {figures['stage']['rows']:,} rows")
    if "baseline" in results:
        base = results["baseline"]["stage"]
        print(f"ratio baseline/current: wall {base['wall'] / current['stage']['wall']:.2f}x, "
              f"CPU {base['cpu'] / current['stage']['cpu']:.2f}x, "
              f"peak RSS {base['peak_mib'] / current['stage']['peak_mib']:.2f}x")
        same = results["baseline"]["digest"] == current["digest"]
        print("same rows as the baseline:", "yes" if same else "NO")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--credits", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warehouse", type=Path, help="run the matching stage on a copy of this warehouse")
    parser.add_argument("--baseline-code", type=Path, help="directory with another recon_pipeline to compare")
    parser.add_argument("--as-of", default="2025-05-06T09:00:00")
    args = parser.parse_args()
    if args.warehouse is not None:
        bench_warehouse(args.warehouse, args.baseline_code, args.as_of)
        return

    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    customers = make_customers(args.customers, rng)
    bank, truth = make_bank(customers, args.credits, args.seed)
    print(f"generated {len(customers):,} customers, {len(bank):,} credits "
          f"({bank['counterparty_name'].nunique():,} distinct payer names) in {time.perf_counter() - t0:.1f}s")

    empty_inv = pd.DataFrame(columns=["invoice_no", "order_id", "customer_name", "invoice_date",
                                      "total_amount_cents", "invoice_type", "status"])
    empty_wo = pd.DataFrame(columns=["writeoff_id", "txn_id", "order_id", "invoice_no", "amount_cents",
                                     "confirmed_by", "confirmed_at", "status"])
    inputs = MatchingInputs(bank, customers[["customer_id", "customer_name"]].assign(
        credit_code=None, aliases=None, region_code=customers["region_code"], industry=None),
        contracts_for(customers), empty_inv, empty_wo, datetime(2025, 12, 31))
    t0, c0 = time.perf_counter(), time.process_time()
    links = build_receipt_links(inputs, load_settings())
    engine_seconds, engine_cpu = time.perf_counter() - t0, time.process_time() - c0
    # CPU time too: the 2 cores are shared, and wall time then counts other people's work.
    print(f"engine: build_receipt_links (matching + allocation) {engine_seconds:.1f}s wall, "
          f"{engine_cpu:.1f}s CPU, {len(links):,} rows")

    # Baseline on a sample of credits, scaled to all of them.
    sample = np.random.default_rng(args.seed).choice(len(bank), size=min(args.sample, len(bank)), replace=False)
    names = customers["customer_name"].tolist()
    queries = bank["counterparty_name"].iloc[sample].tolist()
    t0, c0 = time.perf_counter(), time.process_time()
    scores = process.cdist(queries, names, scorer=fuzz.token_set_ratio, workers=1, dtype=np.uint8)
    sample_seconds, sample_cpu = time.perf_counter() - t0, time.process_time() - c0
    baseline_seconds = sample_seconds / len(sample) * len(bank)
    best = scores.argmax(axis=1)
    baseline_ids = [customers["customer_id"].iat[b] if scores[i, b] >= 85 else "" for i, b in enumerate(best)]

    per_txn = links.drop_duplicates("txn_id").set_index("txn_id")
    sample_truth = truth.iloc[sample].reset_index(drop=True)
    engine_ids = [per_txn.at[t, "customer_id"] if per_txn.at[t, "match_status"] != "unmatched" else ""
                  for t in bank["txn_id"].iloc[sample]]
    has = sample_truth["true_customer_id"] != ""
    engine_right = sum(e == t for e, t, h in zip(engine_ids, sample_truth["true_customer_id"], has) if h)
    base_right = sum(b == t for b, t, h in zip(baseline_ids, sample_truth["true_customer_id"], has) if h)
    engine_wrong = sum(bool(e) and e != t for e, t in zip(engine_ids, sample_truth["true_customer_id"]))
    base_wrong = sum(bool(b) and b != t for b, t in zip(baseline_ids, sample_truth["true_customer_id"]))

    print(f"baseline: cdist token_set_ratio over all pairs: {sample_seconds:.1f}s for {len(sample)} credits "
          f"-> {baseline_seconds:,.0f}s scaled to {len(bank):,}")
    print(f"speed-up: {baseline_seconds / engine_seconds:,.0f}x wall, "
          f"{sample_cpu / len(sample) * len(bank) / engine_cpu:,.0f}x CPU")
    print(f"recall on the sample (true customer reached, auto or suggested): engine {engine_right}/{int(has.sum())}, "
          f"baseline {base_right}/{int(has.sum())}; wrong customer: engine {engine_wrong}, baseline {base_wrong}")
    auto = links.drop_duplicates("txn_id")
    print("engine status counts:", auto["match_status"].value_counts().to_dict())


if __name__ == "__main__":
    main()
