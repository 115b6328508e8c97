"""The gold-side stages (segmentation, profiles, activate) on a built lake, run after run: their wall
time and the peak RSS of the process tree, for one code tree (`--src`), so two trees (before and
after a change) can be compared on the same lake.

Starting from a copy of `--lake` (a lake `rfmlake run` built, e.g. on 1M order lines), the history is
first given `--history-days` as_of dates (the last run's memberships repeated on the days before
it, in the layout of the lake), then each scenario rewrites gold.customer_rfm_features the way
dbt would and runs the three stages, each in its own process (`python -m rfmlake.pipeline.remote`):

  rerun        the lake's own as_of again (idempotent re-run)
  next_day     as_of + 1 day, no new orders (recency moves for everyone)
  small_change the same as_of + 1, where 1% of customers ordered the day before

Writes bench/results/<date>-<host>-gold-<label>.json and .md. Timing belongs here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from run_bench import PeakMemory, machine  # noqa: E402

STAGES = ("segmentation", "profiles", "activate")
SCENARIOS = ("rerun", "next_day", "small_change")


def _lake(path: Path):  # noqa: ANN202 - rfmlake is imported from the tree on sys.path
    from rfmlake.lake import Lake

    return Lake(path)


def seed_history(lake_dir: Path, days: int) -> int:
    """Repeat the history's last as_of on the `days - 1` days before it, in the table's own layout
    (unpartitioned for a lake built before partitioning). Returns the rows of the history."""
    lake = _lake(lake_dir)
    ref = lake.require("gold", "segment_membership_history")
    table = lake.read_arrow(ref)
    last = max(table.column("as_of_date").to_pylist())
    rows = table.filter(pc.equal(table.column("as_of_date"), pa.scalar(last, pa.date32())))
    copies = [rows.set_column(0, "as_of_date", pa.array([last - timedelta(days=k)] * rows.num_rows, pa.date32()))
              for k in range(days - 1, 0, -1)]
    if ref.is_partitioned:
        for copy in copies:
            lake.write_partitions("gold", "segment_membership_history", ref.partition_by,
                                  copy.set_column(0, "as_of_date", pc.cast(copy.column(0), pa.string())))
    else:
        lake.write_arrow("gold", "segment_membership_history",
                         pa.concat_tables([c.cast(table.schema) for c in copies] + [table]))
    return lake.count_rows(lake.require("gold", "segment_membership_history"))


def set_features(lake_dir: Path, scenario: str) -> str:
    """Rewrite gold.customer_rfm_features as dbt would for the scenario; returns its as_of."""
    lake = _lake(lake_dir)
    features = lake.read_arrow(lake.require("gold", "customer_rfm_features"))
    if scenario == "next_day":
        features = features.set_column(features.schema.get_field_index("as_of_date"), "as_of_date",
                                       pc.add(features.column("as_of_date"), pa.scalar(timedelta(days=1))).cast(pa.date32()))
        recency = features.schema.get_field_index("recency_days")
        features = features.set_column(recency, "recency_days",
                                       pc.add(features.column("recency_days"), 1).cast(features.schema.field(recency).type))
    elif scenario == "small_change":
        frame = features.to_pandas()
        picked = frame.index % 100 == 0  # 1% of customers ordered yesterday
        as_of = frame["as_of_date"].iloc[0]
        frame.loc[picked, "frequency"] += 1
        frame.loc[picked, "recency_days"] = 1
        frame.loc[picked, "last_order_date"] = as_of - timedelta(days=1)
        features = pa.Table.from_pandas(frame, schema=features.schema, preserve_index=False)
    if scenario != "rerun":
        lake.write_arrow("gold", "customer_rfm_features", features)
    return str(features.column("as_of_date")[0])


def run_stage(stage: str, src: Path, lake_dir: Path, landing: Path, config: Path | None = None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src), "DO_NOT_TRACK": "1"}
    command = [sys.executable, "-m", "rfmlake.pipeline.remote", "--stage", stage, "--lake", str(lake_dir),
               "--landing", str(landing), *(["--config", str(config)] if config else [])]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakMemory(process.pid) as memory:  # the stage's process tree, not this driver
        stdout, stderr = process.communicate()
        seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{stage} failed:\n{stderr[-3000:]}")
    # The machine is shared: the 1-minute load average when the stage ended says how busy it was.
    return {"stage": stage, "seconds": round(seconds, 2), "peak_rss_mb": round(memory.peak / 2**20, 1),
            "load_1m": round(os.getloadavg()[0], 1), "summary": stdout.strip()[-600:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", type=Path, required=True, help="a built lake (copied, never changed)")
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--src", type=Path, required=True, help="the src/ folder of the code tree to measure")
    parser.add_argument("--label", required=True, help="e.g. before / after")
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--refit-first", action="store_true",
                        help="refit the stored model once before the scenarios (a tree whose model format differs "
                             "from the lake's); that run is recorded apart")
    parser.add_argument("--work", type=Path, default=ROOT / "work" / "gold")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    args = parser.parse_args(argv)
    os.environ.setdefault("RFMLAKE_PII_KEY", "bench-key-not-a-secret")
    sys.path.insert(0, str(args.src))

    lake_dir = args.work / args.label / "lake"
    shutil.rmtree(lake_dir.parent, ignore_errors=True)
    shutil.copytree(args.lake, lake_dir, symlinks=True)
    history_rows = seed_history(lake_dir, args.history_days)
    customers = _lake(lake_dir).count_rows(_lake(lake_dir).require("gold", "customer_rfm_features"))
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "label": args.label,
        "src": str(args.src), "customers": customers, "history_days": args.history_days,
        "history_rows_before": history_rows, "scenarios": [],
    }
    print(f"{args.label}: {customers:,} customers, history {history_rows:,} rows", flush=True)
    if args.refit_first:
        config = lake_dir.parent / "refit.yaml"
        config.write_text("segmentation:\n  refit: true\n")
        results["prepare"] = run_stage("segmentation", args.src, lake_dir, args.landing, config)
        print(f"  prepare (refit) segmentation: {results['prepare']['seconds']}s", flush=True)
    for scenario in SCENARIOS:
        as_of = set_features(lake_dir, scenario)
        runs = []
        for stage in STAGES:
            run = run_stage(stage, args.src, lake_dir, args.landing)
            runs.append(run)
            print(f"  {scenario} ({as_of}) {stage}: {run['seconds']}s, peak {run['peak_rss_mb']} MB, "
                  f"load {run['load_1m']}", flush=True)
        results["scenarios"].append({"scenario": scenario, "as_of": as_of, "stages": runs})
    write_results(results, args.results)
    return 0


def write_results(results: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{results['started_at'][:10]}-{results['machine']['host']}-gold-{results['label']}"
    (folder / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [f"# Gold stages, {results['label']}: {results['customers']:,} customers, "
             f"{results['history_days']} as_of dates of history ({results['history_rows_before']:,} rows)", "",
             f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['memory_gb']} GB. Code: {results['src']}", "",
             "| scenario | as_of | stage | seconds | peak RSS (MB, process tree) | load (1 min) |",
             "| --- | --- | --- | ---: | ---: | ---: |"]
    for scenario in results["scenarios"]:
        for run in scenario["stages"]:
            lines.append(f"| {scenario['scenario']} | {scenario['as_of']} | {run['stage']} | {run['seconds']} "
                         f"| {run['peak_rss_mb']} | {run.get('load_1m', '')} |")
    (folder / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
