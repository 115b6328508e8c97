"""Benchmark the quality stages (quality_silver, quality_gold) on lakes the pipeline built: the SQL
runner (rfmlake.quality.run_quality) beside the engine it replaced, great-expectations on pandas
(the checked columns pulled into a DataFrame and validated by GX, as rfmlake.quality.gx does).

Each (lake, zone, engine) runs in a fresh process, so its peak RSS (the process's own high-water
mark, interpreter and imports included) and its wall time from interpreter start (the fixed cost
a small run pays) are its own. The two engines' outcomes are compared check by check.

    python bench/bench_quality.py --lake /tmp/q1m/lake --lake /tmp/q20k/lake
    python bench/bench_quality.py --replicate /tmp/q1m/lake --factor 10 --out /tmp/q10m/lake

--replicate builds a lake N times the size of a built one without running the pipeline: every silver
and gold table (currency_rates excepted) N times, with "~<i>" appended to its *_id columns in copy
i > 0, so keys stay unique and order lines still find their orders.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
ZONES = ("silver", "gold")
ENGINES = ("sql", "gx-pandas")
_NOT_REPLICATED = {"silver.currency_rates"}  # the rate table: one row per currency, whatever the data size


def _context(zone: str) -> Any:
    from rfmlake.quality import QualityContext
    from rfmlake.rfm.rules import SegmentRules
    from rfmlake.settings import load_settings

    settings = load_settings()
    rules = SegmentRules.load(settings.segmentation.rules_file, expected_n_bins=settings.rfm.score_bins)
    return QualityContext.from_settings(settings, segment_names=tuple(rules.names))


def _gx_pandas(lake: Any, zone: str, context: Any) -> list[dict[str, Any]]:
    """The engine before the SQL runner: per table, the checked columns (and derived columns, computed
    by DuckDB) as one pandas DataFrame, validated by great-expectations."""
    from rfmlake.lake.catalog import connect
    from rfmlake.quality import suites_for
    from rfmlake.quality.gx import GxValidator
    from rfmlake.quality.runner import TableValidation

    validator = GxValidator()
    con = connect(lake, zones=(zone,))
    tables = []
    try:
        for suite in suites_for(zone, context):
            if lake.current(suite.zone, suite.table) is None:
                continue
            validation = TableValidation(con, lake, suite)
            runnable = [i for i, c in enumerate(suite.checks)
                        if not validation.why_not_runnable(c) and c.expectation != "expect_table_columns_to_match_set"]
            frame = con.execute(validation.frame_sql(runnable, scoped=False, read_out=True)).df()
            outcomes = validator.validate(suite, frame, [(i, suite.checks[i]) for i in runnable])
            del frame
            tables.append({"table": suite.qualified_name,
                           "checks": {i: [o.success, o.unexpected_count] for i, o in sorted(outcomes.items())}})
    finally:
        con.close()
    return tables


def _sql(lake: Any, zone: str, context: Any) -> list[dict[str, Any]]:
    from rfmlake.quality import run_quality

    report = run_quality(lake, zone, context=context, memory_limit=os.environ.get("BENCH_MEMORY_LIMIT") or None)
    tables = []
    for table in report.tables:
        if table.status != "validated":
            continue
        # A report lists the schema check first, then the suite's checks in their order.
        checks = table.expectations[1:]
        tables.append({"table": table.table,
                       "checks": {i: [o.success, o.unexpected_count] for i, o in enumerate(checks)
                                  if o.error is None}})
    return tables


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(engine: str, zone: str, lake_path: str) -> int:
    """One measurement, in this process; prints it as JSON on the last line."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from rfmlake.lake import Lake

    lake = Lake(lake_path)
    context = _context(zone)
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    tables = (_sql if engine == "sql" else _gx_pandas)(lake, zone, context)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": round(seconds, 2), "cpu_seconds": round(_cpu_seconds() - cpu_before, 2),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "tables": tables}))
    return 0


def measure(engine: str, zone: str, lake: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", engine, zone, str(lake)],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{engine} on {lake} {zone} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(wall, 2)
    return result


def _rows(lake_path: Path, zone: str) -> int:
    from rfmlake.lake import Lake

    lake = Lake(lake_path)
    return sum(lake.count_rows(ref) for ref in lake.tables(zone))


def _agreement(sql: list[dict[str, Any]], gx: list[dict[str, Any]]) -> list[str]:
    """Checks where the engines differ (success or unexpected count), as "table #index"."""
    theirs = {t["table"]: t["checks"] for t in gx}
    differing = []
    for table in sql:
        reference = {int(k): v for k, v in theirs.get(table["table"], {}).items()}
        for index, answer in table["checks"].items():
            if int(index) in reference and reference[int(index)] != answer:
                differing.append(f"{table['table']} #{index}: sql {answer} vs gx {reference[int(index)]}")
    return differing


def replicate(source: Path, target: Path, factor: int) -> None:
    import duckdb

    from rfmlake.lake import Lake
    from rfmlake.lake.tables import parquet_scan

    src, out = Lake(source), Lake(target)
    con = duckdb.connect()
    con.execute("SET memory_limit = '2GB'")
    con.execute("SET preserve_insertion_order = false")
    for zone in ZONES:
        for ref in src.tables(zone):
            copies = 1 if ref.qualified_name in _NOT_REPLICATED else factor
            scan = parquet_scan(ref)  # a partitioned table comes out unpartitioned, its partition columns as columns
            columns = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
            ids = [name for name, type_, *_ in columns if name.endswith("_id") and type_ == "VARCHAR"]
            replace = ", ".join(f"CASE WHEN _copy = 0 THEN \"{c}\" ELSE \"{c}\" || '~' || _copy END AS \"{c}\""
                                for c in ids)
            select = f"* EXCLUDE (_copy) REPLACE ({replace})" if ids else "* EXCLUDE (_copy)"
            version = out.new_version(zone, ref.name)
            Path(version).mkdir(parents=True)
            con.execute(f"COPY (SELECT {select} FROM {scan} AS _t, range({copies}) AS _r(_copy)) "
                        f"TO '{version}/part-00000.parquet' (FORMAT parquet, COMPRESSION zstd)")
            out.commit(zone, ref.name, version)
            print(f"{ref.qualified_name}: x{copies}, ids suffixed: {', '.join(ids) or '-'}", flush=True)
    con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", type=Path, action="append", default=[], help="a lake the pipeline built")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--label", default="quality", help="results file name: <date>-<host>-<label>.json/.md")
    parser.add_argument("--memory-limit", help="DuckDB's memory_limit for the sql engine (default: the runner's)")
    parser.add_argument("--replicate", type=Path, help="build --out as --factor copies of this lake, then stop")
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "ZONE", "LAKE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    if args.replicate:
        if args.out is None:
            parser.error("--replicate needs --out")
        replicate(args.replicate, args.out, args.factor)
        return 0
    if not args.lake:
        parser.error("give at least one --lake")

    sys.path.insert(0, str(ROOT))
    from run_bench import machine

    engines = args.engines.split(",")
    if args.memory_limit:
        os.environ["BENCH_MEMORY_LIMIT"] = args.memory_limit  # the child processes inherit it
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": machine(), "label": args.label,
                               "load_average": [round(x, 1) for x in os.getloadavg()],
                               "memory_limit": args.memory_limit or "the runner's default (1GB)", "runs": []}
    for lake in args.lake:
        for zone in ZONES:
            rows = _rows(lake, zone)
            measured = {engine: measure(engine, zone, lake) for engine in engines}
            entry: dict[str, Any] = {"lake": str(lake), "zone": zone, "rows": rows, "engines": {}}
            for engine, m in measured.items():
                entry["engines"][engine] = {k: m[k] for k in ("seconds", "cpu_seconds", "process_seconds",
                                                              "peak_rss_mb")}
                print(f"{lake} quality_{zone} {engine}: {m['seconds']} s ({m['cpu_seconds']} s CPU, "
                      f"{m['process_seconds']} s with start-up), peak RSS {m['peak_rss_mb']} MB, {rows:,} rows",
                      flush=True)
            if {"sql", "gx-pandas"} <= set(measured):
                entry["differing_checks"] = _agreement(measured["sql"]["tables"], measured["gx-pandas"]["tables"])
            results["runs"].append(entry)
    write_results(results, args.results)
    return 0


def write_results(results: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{results['started_at'][:10]}-{results['machine']['host']}-{results['label']}"
    (folder / f"{stem}.json").write_text(json.dumps(results, indent=2))
    m = results["machine"]
    lines = [
        "# rfmlake benchmark: quality_silver and quality_gold",
        "",
        f"- started: {results['started_at']}",
        f"- machine: {m['cpus']} CPUs, {m['memory_gb']} GB, {m['platform']}, Python {m['python']}",
        f"- load average when it started: {results['load_average']} (a shared machine: CPU seconds are the "
        "figure other work disturbs least)",
        f"- DuckDB memory_limit of the sql engine: {results['memory_limit']}",
        "- each measurement is a fresh process: seconds = the checks (wall), CPU = user + system seconds of the "
        "checks, process = from interpreter start (imports included), peak RSS = the process's high-water mark",
        "",
        "| lake | stage | rows | engine | seconds | CPU seconds | process seconds | peak RSS (MB) "
        "| vs gx-pandas (wall, CPU, RSS) |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for run in results["runs"]:
        reference = run["engines"].get("gx-pandas")
        for engine, e in run["engines"].items():
            ratio = ""
            if reference and engine != "gx-pandas":
                ratio = (f"{e['seconds'] / reference['seconds']:.2f}x, "
                         f"{e['cpu_seconds'] / reference['cpu_seconds']:.2f}x, "
                         f"{e['peak_rss_mb'] / reference['peak_rss_mb']:.2f}x")
            lines.append(f"| {run['lake']} | quality_{run['zone']} | {run['rows']:,} | {engine} | {e['seconds']} | "
                         f"{e['cpu_seconds']} | {e['process_seconds']} | {e['peak_rss_mb']} | {ratio} |")
    lines.append("")
    for run in results["runs"]:
        if "differing_checks" in run:
            differing = run["differing_checks"]
            lines.append(f"- {run['lake']} {run['zone']}: engines agree on every check" if not differing
                         else f"- {run['lake']} {run['zone']}: engines differ on {differing}")
    lines.append("")
    (folder / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"results written to {folder / stem}.json and .md")


if __name__ == "__main__":
    sys.exit(main())
