"""Journey engine throughput at N customers entering at once (all At Risk, all consenting): the
tick that admits them and emails the treated through the outbox, the tick a week later that texts
those who did not order, and gold.journey_results over both. Results in bench/results/journeys.json.

With --ledger-days N the journey store first holds N daily ticks' ledgers of --ledger-rows emails each
(committed through the store, as daily runs leave them) and the journey caps email at 2 per 7 days:
what a tick and the results cost once the journeys have run for a while."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import pyarrow as pa  # noqa: E402

from journey_lakes import NOON, JourneyLake, customer_ids, journey_set, win_back  # noqa: E402
from rfmlake.journeys.channels import build_senders  # noqa: E402
from rfmlake.journeys.engine import advance  # noqa: E402
from rfmlake.journeys.results import write_assignments, write_results  # noqa: E402
from rfmlake.journeys.store import ENTRY_SCHEMA, PLAN_SCHEMA, SEND_SCHEMA, JourneyStore  # noqa: E402
from rfmlake.lake import Lake  # noqa: E402
from rfmlake.settings import Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--ledger-days", type=int, default=0, help="daily ledgers already in the store")
    parser.add_argument("--ledger-rows", type=int, default=10_000, help="emails in each of those ledgers")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "journeys.json")
    args = parser.parse_args()
    os.environ.setdefault("RFMLAKE_PII_KEY", "bench-key-not-a-secret")
    work = Path(tempfile.mkdtemp(prefix="rfmlake-bench-journeys-"))
    try:
        lake = Lake(work / "lake")
        shop = JourneyLake(lake, args.customers)
        ids = customer_ids(args.customers)
        shop.score(NOON.date(), dict.fromkeys(ids, "At Risk"))
        journeys = journey_set(win_back())
        seeded = 0.0
        if args.ledger_days:
            journeys = journey_set(win_back(channels={"email": {"max_messages": 2, "per_days": 7}}))
            started = time.perf_counter()
            seed_ledger(JourneyStore(lake.location), args.ledger_days, min(args.ledger_rows, len(ids)), ids)
            seeded = round(time.perf_counter() - started, 2)
        senders = build_senders(Settings().journeys, lake.location)
        results = []

        def timed(case: str, step) -> None:  # noqa: ANN001
            started, cpu = time.perf_counter(), time.process_time()
            out = step()
            results.append({"case": case, "seconds": round(time.perf_counter() - started, 2),
                            "cpu_seconds": round(time.process_time() - cpu, 2), **out})

        def tick() -> dict:
            report = advance(lake, journeys, senders, now=NOON)
            return {"entered": sum(report.entered.values()), "sent": report.sent}

        timed("entry tick: admit, assign, email the treated (outbox)", tick)
        for cid in ids[: args.customers // 10]:
            shop.orders.append({"order_id": f"B{cid}", "customer_id": cid, "order_date": NOON.date() + timedelta(days=3),
                                "status": "completed", "amount_reporting": 40.0})
        shop.score(NOON.date() + timedelta(days=7), dict.fromkeys(ids, "At Risk"))
        timed("a week later: goal exits, branch, text those who did not order", tick)

        def tables() -> dict:
            store = JourneyStore(lake.location)
            write_assignments(lake, store)
            ref = write_results(lake, store, journeys)
            return {"result_rows": lake.count_rows(ref)}

        timed("gold.journey_assignments and gold.journey_results", tables)
        peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        payload = {"benchmark": "journeys", "customers": args.customers, "ledger_days": args.ledger_days,
                   "ledger_rows": args.ledger_rows if args.ledger_days else 0, "seed_seconds": seeded,
                   "at": datetime.now(UTC).isoformat(),
                   "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                   "load_average": os.getloadavg(), "peak_rss_mb": peak_mb, "results": results}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
        for r in results:
            print(f"{r['case']:64s} {r['seconds']:>8.2f} s  cpu {r['cpu_seconds']:>7.2f} s  "
                  f"{ {k: v for k, v in r.items() if k not in ('case', 'seconds', 'cpu_seconds')} }")
        print(f"peak RSS {peak_mb} MB; results: {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def seed_ledger(store: JourneyStore, days: int, rows: int, ids: list[str]) -> None:
    """`days` ticks committed on the days before NOON's, each sending `rows` win_back emails (variant
    A or B) to customers drawn at random, through the store's own start and commit."""
    rng = random.Random(7)
    for back in range(days, 0, -1):
        planned = NOON - timedelta(days=back)
        day = planned.date()
        tick = f"{planned:%Y%m%dT%H%M%S%fZ}-seed{back:04d}"
        chosen = rng.sample(ids, rows)
        sends = pa.table({
            "message_id": [f"{tick}-{i}" for i in range(rows)], "journey_id": ["win_back"] * rows,
            "customer_id": chosen, "entry_date": [day] * rows, "step_id": ["offer"] * rows,
            "channel": ["email"] * rows, "variant": [rng.choice("AB") for _ in range(rows)],
            "tick_id": [tick] * rows, "tick_date": [day] * rows, "status": ["sent"] * rows,
            "reason": [None] * rows, "sent_at": [planned] * rows}, schema=SEND_SCHEMA)
        meta = {"tick": tick, "as_of": day.isoformat(), "planned_at": planned.isoformat(), "batches": 0}
        store.start(meta, PLAN_SCHEMA.empty_table(), ENTRY_SCHEMA.empty_table(),
                    {"version": 1, "as_of": day.isoformat(), "journeys": {}})
        store.commit(meta, sends)


if __name__ == "__main__":
    sys.exit(main())
