"""`make bench`: the whole pipeline on N generated order lines, beside a one-engine reference on the
same data, then an incremental run after one new orders file (0.5% more orders), and the newcomer's
`rfmlake demo` (20k order lines) end to end.

Every measured thing runs as its own process (`rfmlake run`, `python bench/reference_duckdb.py`),
so wall time and the peak RSS of its process tree are its own. Reported: per-stage seconds of the
full and the incremental run, peak RSS, the reference's seconds, and the ratios the issue sets
targets for (full run / reference, incremental run / full run). Results with the machine and the
data size go to bench/results/<date>-<host>-<N>.json and .md. Timing belongs here, never in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent
RFMLAKE = [str(Path(sys.executable).parent / "rfmlake")]  # the CLI a user runs, from this venv
TARGETS = {"full_over_reference": 3.0, "incremental_over_full": 0.15, "peak_rss_gb_10m": 6.0, "demo_seconds": 30.0}


class PeakMemory:
    """Samples the RSS of a process and its children (recursively) every 50 ms."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _rss(self) -> int:
        total = 0
        with contextlib.suppress(psutil.Error):
            for proc in [self._process, *self._process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a child that exited between listing and reading
                    total += proc.memory_info().rss
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class StepFailed(Exception):
    """A measured command exited non-zero: the bench writes what it measured before it, and says so."""


def measure(command: list[str], log: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command as its own process tree: wall seconds, peak RSS (MB), exit code."""
    with log.open("w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT.parent,
                                   env={**os.environ, "COLUMNS": "120", **(env or {})})
        with PeakMemory(process.pid) as memory:
            code = process.wait()
        seconds = time.perf_counter() - started
    if code != 0:
        raise StepFailed(f"{' '.join(command)} failed ({code}); see {log}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(memory.peak / 2**20, 1)}


def machine() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _summary(lake: Path) -> dict[str, Any]:
    runs = sorted((lake / "_system" / "runs").glob("*/summary.json"))
    return json.loads(runs[-1].read_text())


def add_orders_file(landing: Path, share: float = 0.005, seed: int = 11) -> dict[str, Any]:
    """One new orders file with `share` more orders: new ids, existing customers, placed in the
    days after the latest order, header totals only (as a marketplace export lands them)."""
    import duckdb
    import numpy as np

    con = duckdb.connect()
    orders = con.execute(
        "SELECT count(*), max(try_cast(order_ts AS TIMESTAMPTZ)) FROM read_csv('"
        f"{landing}/orders/*.csv', all_varchar = true)").fetchone()
    json_orders = con.execute(
        f"SELECT count(*), max(try_cast(order_ts AS TIMESTAMPTZ)) FROM read_json('{landing}/orders/*.jsonl', "
        "columns = {order_ts: 'VARCHAR'})").fetchone()
    total = int(orders[0]) + int(json_orders[0])
    latest = max(orders[1], json_orders[1])
    customers = [r[0] for r in con.execute(
        f"SELECT DISTINCT customer_id FROM read_csv('{landing}/orders/*.csv', all_varchar = true) "
        "ORDER BY 1").fetchall()]
    rng = np.random.default_rng(seed)
    n = max(1, int(total * share))
    path = landing / "orders" / "orders-9999-incremental.csv"
    with path.open("w") as handle:
        handle.write("order_id,customer_id,order_ts,status,currency,order_total\n")
        for i in range(n):
            ts = latest.timestamp() + float(rng.uniform(60, 3 * 86400))
            placed = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            handle.write(f"OINC{i:09d},{customers[int(rng.integers(len(customers)))]},{placed},completed,EUR,"
                         f"{rng.uniform(5, 300):.2f}\n")
    return {"file": path.relative_to(landing).as_posix(), "orders": n, "share_of_orders": round(n / total, 4)}


def agreement(lake: Path, reference: Path) -> dict[str, Any]:
    """The pipeline's gold R/F/M features against the reference's, customer by customer. The
    reference knows no people: a customer id the identity graph joined to another person's
    (absent from gold) and a person of several customer ids (their orders added up) differ by
    design; `differing_otherwise` counts the rest, which should be none."""
    from rfmlake.lake import Lake
    from rfmlake.lake.catalog import connect

    con = connect(Lake(lake), zones=("gold",))
    con.execute(f"CREATE TABLE ref AS SELECT * FROM read_parquet('{reference / 'rfm.parquet'}')")
    rows = con.execute("""
        WITH differing AS (
            SELECT coalesce(g.customer_id, r.customer_id) AS customer_id
            FROM gold.customer_rfm_features g FULL JOIN ref r USING (customer_id)
            WHERE g.customer_id IS NULL OR r.customer_id IS NULL OR g.recency_days <> r.recency_days
               OR g.frequency <> r.frequency OR abs(g.monetary - r.monetary) > 0.011),
        people AS (
            SELECT person_customer_id, count(*) AS ids FROM gold.dim_customers GROUP BY 1)
        SELECT CASE WHEN p.ids > 1 THEN 'person_of_several_ids'
                    WHEN c.person_customer_id <> d.customer_id THEN 'joined_to_another_person'
                    ELSE 'otherwise' END, count(*)
        FROM differing d LEFT JOIN gold.dim_customers c USING (customer_id)
        LEFT JOIN people p ON p.person_customer_id = d.customer_id GROUP BY 1""").fetchall()
    kinds = dict(rows)
    customers = con.execute("SELECT count(*) FROM ref").fetchone()[0]
    return {"customers": customers, "customers_differing": sum(kinds.values()),
            "differing_by_identity": kinds.get("person_of_several_ids", 0) + kinds.get("joined_to_another_person", 0),
            "differing_otherwise": kinds.get("otherwise", 0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--order-lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=ROOT / "work")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--demo-order-lines", type=int, default=20_000,
                        help="size of the timed `rfmlake demo` run (0 skips it)")
    args = parser.parse_args(argv)
    os.environ.setdefault("RFMLAKE_PII_KEY", "bench-key-not-a-secret")

    work = args.work / f"{args.order_lines}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "order_lines": args.order_lines,
        "targets": TARGETS,
    }
    try:
        _measure_all(results, args, work)
    except StepFailed as exc:  # a failed step (an out-of-memory run, a full disk) keeps what came before it
        results["failed"] = str(exc)
    write_results(results, args.results)
    if "failed" in results:
        print(f"bench incomplete: {results['failed']}", file=sys.stderr)
        return 1
    return 0


def _measure_all(results: dict[str, Any], args: argparse.Namespace, work: Path) -> None:
    landing, lake, reference = work / "landing", work / "lake", work / "reference"
    print(f"generating {args.order_lines:,} order lines ...", flush=True)
    results["generate"] = measure([*RFMLAKE, "generate", "--out", str(landing), "--order-lines",
                                   str(args.order_lines), "--seed", str(args.seed)], work / "generate.log")
    manifest = json.loads((landing / "_generator_manifest.json").read_text())
    results["landing_rows"] = manifest["rows_per_entity"]

    print("full pipeline run ...", flush=True)
    results["full_run"] = measure([*RFMLAKE, "run", "--input", str(landing), "--lake", str(lake)], work / "full.log")
    summary = _summary(lake)
    results["full_run"]["stages"] = {s["name"]: round(s["seconds"], 2) for s in summary["stages"]}
    results["tables"] = summary["tables"]

    print("one-engine reference ...", flush=True)
    results["reference"] = measure([sys.executable, str(ROOT / "reference_duckdb.py"), str(landing), str(reference)],
                                   work / "reference.log")
    results["agreement"] = agreement(lake, reference)
    results["ratios"] = {"full_over_reference": round(results["full_run"]["seconds"] / results["reference"]["seconds"], 2)}

    print("incremental run after one new orders file ...", flush=True)
    results["incremental_file"] = add_orders_file(landing)
    results["incremental_run"] = measure([*RFMLAKE, "run", "--input", str(landing), "--lake", str(lake)],
                                         work / "incremental.log")
    summary = _summary(lake)
    results["incremental_run"]["stages"] = {s["name"]: round(s["seconds"], 2) for s in summary["stages"]}
    results["ratios"]["incremental_over_full"] = round(
        results["incremental_run"]["seconds"] / results["full_run"]["seconds"], 3)

    if args.demo_order_lines:
        print(f"rfmlake demo on {args.demo_order_lines:,} order lines ...", flush=True)
        # as a newcomer's first demo: no dbt parse cached from the runs above (rfmlake.modeling.parse_cache)
        results["demo"] = measure([*RFMLAKE, "demo", "--dir", str(work / "demo"), "--order-lines",
                                   str(args.demo_order_lines)], work / "demo.log",
                                  env={"RFMLAKE_CACHE_DIR": str(work / "demo-cache")})
        results["demo"]["caches"] = "cold"
        results["demo"]["order_lines"] = args.demo_order_lines


def write_results(results: dict[str, Any], folder: Path) -> None:
    """results as <date>T<hhmm>-<host>-<N>.json and a Markdown summary beside it; a bench that stopped
    at a failed step writes what it measured before it and names the step."""
    folder.mkdir(parents=True, exist_ok=True)
    started = results["started_at"]
    stem = f"{started[:10]}T{started[11:13]}{started[14:16]}-{results['machine']['host']}-{results['order_lines']}"
    (folder / f"{stem}.json").write_text(json.dumps(results, indent=2))
    m = results["machine"]
    lines = [
        f"# rfmlake benchmark: {results['order_lines']:,} order lines",
        "",
        f"- started: {started}",
        f"- machine: {m['cpus']} CPUs, {m['memory_gb']} GB, {m['platform']}, Python {m['python']}; "
        f"load average at start {m['load_average_at_start']}",
    ]
    if "landing_rows" in results:
        lines.append(f"- landing rows: {sum(results['landing_rows'].values()):,} ({results['landing_rows']})")
    if "incremental_file" in results:
        lines.append(f"- incremental step: {results['incremental_file']}")
    for key in ("note", "failed"):
        if key in results:
            lines.append(f"- **{key}**: {results[key]}")
    lines += ["", "| run | seconds | peak RSS of the process tree (MB) |", "| --- | ---: | ---: |"]
    for key, label in (("full_run", "full pipeline run (`rfmlake run`)"),
                       ("reference", "one-engine reference (bench/reference_duckdb.py)"),
                       ("incremental_run", "incremental run after the new file")):
        if key in results:
            lines.append(f"| {label} | {results[key]['seconds']} | {results[key]['peak_rss_mb']} |")
    ratios = results.get("ratios", {})
    lines.append("")
    if "full_over_reference" in ratios:
        lines.append(f"Full run / reference = **{ratios['full_over_reference']}** (target <= "
                     f"{TARGETS['full_over_reference']}).")
    if "full_run" in results:
        peaks = [results[k]["peak_rss_mb"] for k in ("full_run", "incremental_run") if k in results]
        lines.append(f"Peak RSS of the pipeline's process tree = **{max(peaks) / 1024:.2f} GB** (target <= "
                     f"{TARGETS['peak_rss_gb_10m']} GB at 10M order lines).")
    if "incremental_over_full" in ratios:
        lines.append(f"Incremental / full = **{ratios['incremental_over_full']}** (target <= "
                     f"{TARGETS['incremental_over_full']}).")
    if "demo" in results:
        demo = results["demo"]
        lines += ["", f"`rfmlake demo --order-lines {demo['order_lines']:,}` end to end: **{demo['seconds']} s** "
                      f"(target <= {TARGETS['demo_seconds']} s; {demo.get('caches', 'warm')} caches), peak RSS {demo['peak_rss_mb']} MB."]
    if "agreement" in results:
        lines += ["", f"Agreement of gold.customer_rfm_features with the reference: {results['agreement']}"]
    if "full_run" in results:
        incremental = results.get("incremental_run", {}).get("stages", {})
        lines += ["", "| stage | full run (s) | incremental run (s) |", "| --- | ---: | ---: |"]
        lines += [f"| {stage} | {seconds} | {incremental.get(stage, '')} |"
                  for stage, seconds in results["full_run"]["stages"].items()]
    lines.append("")
    (folder / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"results written to {folder / stem}.json and .md")


if __name__ == "__main__":
    sys.exit(main())
