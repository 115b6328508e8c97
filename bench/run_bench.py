"""`make bench`: the pipeline on N order lines, stage by stage, beside the same RFM computed by a plain
pandas groupby and by a single DuckDB query over the same silver data.

Writes bench/results/<date>-<host>-<N>.json and .md (machine, data size, per-stage wall time, peak
memory, rows/s). Timing belongs here, never in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent
RFM_SQL = """
WITH lines AS (
    SELECT order_id, sum(line_amount) AS items_amount FROM silver.order_items GROUP BY 1
), orders AS (
    SELECT o.customer_id, o.order_id, o.order_date,
           round(coalesce(l.items_amount, o.order_total) * CAST(r.rate_to_reporting AS DECIMAL(18, 6)), 2) AS amount
    FROM silver.orders o
    LEFT JOIN lines l USING (order_id)
    JOIN silver.currency_rates r USING (currency)
    WHERE o.status = 'completed' AND o.order_date < DATE '{as_of}'
)
SELECT customer_id,
       date_diff('day', max(order_date), DATE '{as_of}') AS recency_days,
       count(DISTINCT order_id) AS frequency,
       round(sum(amount), 2) AS monetary
FROM orders GROUP BY customer_id
"""


class PeakMemory:
    """Samples the RSS of this process and its children (the Spark JVM is one) every 100 ms."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _rss(self) -> int:
        total = 0
        for proc in [self._process, *self._process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a child that exited between listing and reading
                total += proc.memory_info().rss
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._rss())
            time.sleep(0.1)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> None:
        self._peak = self._rss()

    @property
    def peak_mb(self) -> float:
        return round(max(self._peak, self._rss()) / 2**20, 1)


def machine() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--order-lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=ROOT / "work")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    args = parser.parse_args(argv)
    os.environ.setdefault("RFMLAKE_PII_KEY", "bench-key-not-a-secret")

    from rfmlake.generate import generate_landing
    from rfmlake.lake import Lake
    from rfmlake.lake.catalog import connect
    from rfmlake.pipeline.context import RunContext
    from rfmlake.pipeline.runner import run_pipeline
    from rfmlake.rfm.features import compute_rfm_features_pandas
    from rfmlake.settings import load_settings

    work = args.work / f"{args.order_lines}"
    shutil.rmtree(work, ignore_errors=True)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "order_lines": args.order_lines,
        "stages": [],
        "baselines": [],
    }
    with PeakMemory() as memory:
        memory.reset()
        t0 = time.perf_counter()
        generated = generate_landing(work / "landing", order_lines=args.order_lines, seed=args.seed)
        seconds = time.perf_counter() - t0
        landing_rows = sum(generated.rows_per_entity.values())
        results["landing_rows"] = generated.rows_per_entity
        results["stages"].append({"stage": "generate (not part of the pipeline)", "seconds": round(seconds, 2),
                                  "peak_memory_mb": memory.peak_mb, "rows": landing_rows})
        print(f"generated {landing_rows:,} landing rows in {seconds:.1f}s", flush=True)

        ctx = RunContext(landing_dir=work / "landing", lake=Lake(work / "lake"), settings=load_settings())
        stage_rows = {"ingest_bronze": landing_rows, "conform_silver": landing_rows}

        def on_stage(stage, event, seconds):  # noqa: ANN001
            if event == "started":
                memory.reset()
                return
            results["stages"].append({"stage": stage.name, "status": event, "seconds": round(seconds, 2),
                                      "peak_memory_mb": memory.peak_mb, "rows": stage_rows.get(stage.name)})
            print(f"{stage.name}: {event} in {seconds:.1f}s, peak {memory.peak_mb} MB", flush=True)

        summary = run_pipeline(ctx, on_stage=on_stage)
        customers = summary.tables.get("gold.customer_rfm", 0)
        for entry in results["stages"]:
            if entry["rows"] is None and entry["stage"] in ("quality_silver", "dbt_build"):
                entry["rows"] = summary.tables.get("silver.order_items", 0) + summary.tables.get("silver.orders", 0)
            elif entry["rows"] is None:
                entry["rows"] = customers
        results["pipeline_seconds"] = summary.seconds
        results["tables"] = summary.tables

        con = connect(ctx.lake)
        as_of = summary.as_of
        memory.reset()
        t0 = time.perf_counter()
        duck = con.execute(RFM_SQL.format(as_of=as_of)).to_arrow_table()
        results["baselines"].append({"method": "single DuckDB query on silver", "seconds": round(time.perf_counter() - t0, 2),
                                     "peak_memory_mb": memory.peak_mb, "customers": duck.num_rows})
        memory.reset()
        t0 = time.perf_counter()
        orders = con.execute("SELECT o.customer_id, o.order_id, o.order_date, o.status, "
                             "round(coalesce(l.items_amount, o.order_total) * CAST(r.rate_to_reporting AS DECIMAL(18, 6)), 2) AS amount "
                             "FROM silver.orders o LEFT JOIN (SELECT order_id, sum(line_amount) AS items_amount "
                             "FROM silver.order_items GROUP BY 1) l USING (order_id) "
                             "JOIN silver.currency_rates r USING (currency)").df()
        load_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        features = compute_rfm_features_pandas(orders, as_of=datetime.fromisoformat(as_of).date())
        results["baselines"].append({"method": "plain pandas groupby (after loading silver via DuckDB)",
                                     "seconds": round(time.perf_counter() - t1, 2),
                                     "load_seconds": round(load_seconds, 2),
                                     "peak_memory_mb": memory.peak_mb, "customers": len(features)})
        # The comparison only means something if all three computed the same thing (amounts are
        # converted and rounded to cents per order, as the dbt marts do).
        con.register("duck_rfm", duck)
        mismatches = con.execute(
            "SELECT count(*) FROM gold.customer_rfm_features g FULL JOIN duck_rfm d USING (customer_id) "
            "WHERE g.customer_id IS NULL OR d.customer_id IS NULL OR g.recency_days <> d.recency_days "
            "OR g.frequency <> d.frequency OR g.monetary <> d.monetary"
        ).fetchone()[0]
        pandas_total = round(float(features["monetary"].sum()), 2)
        gold_total = round(float(con.execute("SELECT sum(monetary) FROM gold.customer_rfm_features").fetchone()[0]), 2)
        results["agreement"] = {"customers_differing_from_duckdb": mismatches,
                                "pandas_minus_gold_monetary": round(pandas_total - gold_total, 2)}
        con.close()

    pipeline_rfm = sum(s["seconds"] for s in results["stages"] if s["stage"] in ("dbt_build", "segmentation"))
    results["ratio_note"] = (
        f"dbt_build + segmentation = {pipeline_rfm:.1f}s vs DuckDB query {results['baselines'][0]['seconds']}s "
        f"and pandas groupby {results['baselines'][1]['seconds']}s (the pipeline also runs dbt tests, writes "
        "marts, scores, clusters and history)"
    )
    write_results(results, args.results)
    return 0


def write_results(results: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{results['started_at'][:10]}-{results['machine']['host']}-{results['order_lines']}"
    (folder / f"{stem}.json").write_text(json.dumps(results, indent=2))
    lines = [
        f"# rfmlake benchmark: {results['order_lines']:,} order lines",
        "",
        f"- started: {results['started_at']}",
        f"- machine: {results['machine']['cpus']} CPUs, {results['machine']['memory_gb']} GB, "
        f"{results['machine']['platform']}, Python {results['machine']['python']}",
        f"- landing rows: {results['landing_rows']}",
        f"- pipeline wall time: {results['pipeline_seconds']} s",
        "",
        "| stage | seconds | peak memory (MB) | rows | rows/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for s in results["stages"]:
        rate = f"{s['rows'] / s['seconds']:,.0f}" if s.get("rows") and s["seconds"] else ""
        lines.append(f"| {s['stage']} | {s['seconds']} | {s['peak_memory_mb']} | {s.get('rows') or ''} | {rate} |")
    lines += ["", "| same RFM by | seconds | peak memory (MB) | customers |", "| --- | ---: | ---: | ---: |"]
    for b in results["baselines"]:
        lines.append(f"| {b['method']} | {b['seconds']} | {b['peak_memory_mb']} | {b['customers']} |")
    lines += ["", results["ratio_note"], "",
              f"Agreement with the pipeline's gold.customer_rfm_features: {results['agreement']}", ""]
    (folder / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"results written to {folder / stem}.json and .md")


if __name__ == "__main__":
    sys.exit(main())
