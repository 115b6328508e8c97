"""Run the dbt project (dbt/) for a pipeline run: silver -> staging -> intermediate -> gold.

Locally dbt-duckdb builds into a DuckDB file under the lake's system folder; the silver tables are
views over the lake's current Parquet versions, and every gold mart dbt built is exported back into
the lake as a new committed table version, so the lake stays the source of truth. On AWS the same
project runs with the `athena` target against the Glue databases.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from rfmlake.contract.entities import LINEAGE_COLUMNS, SILVER_TABLES
from rfmlake.errors import PipelineError
from rfmlake.lake import Lake, TableRef
from rfmlake.lake.catalog import register_views
from rfmlake.lake.duck import fetch
from rfmlake.modeling import parse_cache
from rfmlake.modeling.project import TARGETS, find_project_dir, schema_prefix, write_profiles
from rfmlake.modeling.results import DbtResult, NodeResult
from rfmlake.pipeline.context import RunContext
from rfmlake.settings import RfmSettings, Settings

# The silver tables the project reads. Without the purchases RFM works on (rfm.source: orders, or
# events) there is nothing to model; the others may legitimately be absent (a shop without
# clickstream or web logs, or in one currency: no rates) and are then read as empty.
SOURCE_TABLES: tuple[str, ...] = ("customers", "orders", "order_items", "products", "events", "access_logs",
                                  "currency_rates")

_DUCKDB_TYPES = {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE",
                 "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMPTZ"}


def dbt_dir(lake: Lake) -> Path:
    """dbt's working folder for a lake: profile, DuckDB file, target/ (never the repository)."""
    return lake.system_dir / "dbt"


def duckdb_path(lake: Lake) -> Path:
    return dbt_dir(lake) / "rfmlake.duckdb"


def dbt_vars(settings: Settings, as_of: date | None, target: str) -> dict[str, Any]:
    """The project vars for a run, from the typed settings and the run's as_of."""
    rfm: RfmSettings = settings.rfm
    return {
        "as_of_date": as_of.isoformat() if as_of is not None else None,
        "counted_statuses": list(rfm.counted_statuses),
        "lookback_days": rfm.lookback_days,
        "returns_policy": rfm.returns_policy,
        "rfm_source": rfm.source,
        "purchase_event_types": list(rfm.purchase_event_types),
        "reporting_currency": settings.reporting_currency,
        "default_currency": settings.default_currency,
        "currency_rates": dict(sorted(settings.currency_rates.items())),
        "schema_prefix": schema_prefix(target, settings.prefix),
    }


def _empty_view_sql(name: str) -> str:
    columns = []
    for column, type_name, _ in SILVER_TABLES[name] + LINEAGE_COLUMNS:
        sql_type = _DUCKDB_TYPES.get(type_name, type_name.upper())
        columns.append(f'CAST(NULL AS {sql_type}) AS "{column}"')
    return f'CREATE OR REPLACE VIEW silver."{name}" AS SELECT {", ".join(columns)} WHERE false'


# Gold tables written before dbt that the project reads as sources: the identity graph (the identity
# stage, rfmlake.identity). Absent (a lake built before it, a hand-run dbt), it reads as empty and
# every customer id is a person of its own.
GOLD_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "identity_graph": (("person_id", "VARCHAR"), ("member_kind", "VARCHAR"), ("member_id", "VARCHAR"),
                       ("primary_customer_id", "VARCHAR"), ("is_primary", "BOOLEAN"), ("joined_by", "VARCHAR"),
                       ("match_probability", "DOUBLE"), ("linked_to_kind", "VARCHAR"), ("linked_to_id", "VARCHAR"),
                       ("first_seen_at", "TIMESTAMP"), ("person_since", "TIMESTAMP")),
}


def _gold_source_views(con: duckdb.DuckDBPyConnection, lake: Lake, gold_schema: str) -> list[str]:
    """Views of the gold tables dbt reads as sources, in dbt's gold schema; returns those read as empty."""
    from rfmlake.lake.tables import parquet_scan

    empty: list[str] = []
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{gold_schema}"')
    for name, columns in GOLD_SOURCES.items():
        ref = lake.current("gold", name)
        if ref is not None:
            con.execute(f'CREATE OR REPLACE VIEW "{gold_schema}"."{name}" AS SELECT * FROM {parquet_scan(ref)}')
            continue
        select = ", ".join(f'CAST(NULL AS {sql_type}) AS "{column}"' for column, sql_type in columns)
        con.execute(f'CREATE OR REPLACE VIEW "{gold_schema}"."{name}" AS SELECT {select} WHERE false')
        empty.append(f"gold.{name}")
    return empty


def prepare_silver_views(lake: Lake, database: Path, source: str = "orders",
                         gold_schema: str = "gold") -> tuple[str, ...]:
    """Create schema `silver` in the dbt DuckDB file with a view per current silver table, and an
    empty typed view for each optional one that is absent; and the gold tables dbt reads as sources
    (GOLD_SOURCES) in its gold schema. `source` (rfm.source) names the silver table that is
    required. Returns the names read as empty."""
    present = {ref.name for ref in lake.tables("silver")}
    missing_required = [name for name in (source,) if name not in present]
    if missing_required:
        raise PipelineError(
            "dbt needs silver tables that are not in the lake at "
            f"{lake.root}: {', '.join('silver.' + n for n in missing_required)} (run conform_silver first)"
        )
    database.parent.mkdir(parents=True, exist_ok=True)
    empty: list[str] = []
    con = duckdb.connect(str(database))
    try:
        register_views(con, lake, zones=("silver",))
        for name in SOURCE_TABLES:
            if name not in present:
                con.execute(_empty_view_sql(name))
                empty.append(name)
        empty.extend(_gold_source_views(con, lake, gold_schema))
    finally:
        # dbt opens the same file next; DuckDB allows one writer process.
        con.close()
    return tuple(empty)


def _node_results(run_result: Any) -> tuple[NodeResult, ...]:
    nodes: list[NodeResult] = []
    for item in getattr(run_result, "results", None) or ():
        node = item.node
        adapter_response = getattr(item, "adapter_response", None) or {}
        rows = adapter_response.get("rows_affected")
        if getattr(item, "failures", None) is not None:
            rows = item.failures
        status = item.status.value if hasattr(item.status, "value") else str(item.status)
        nodes.append(
            NodeResult(
                unique_id=node.unique_id,
                name=node.name,
                resource_type=str(getattr(node.resource_type, "value", node.resource_type)),
                status=str(status),
                seconds=round(float(item.execution_time or 0.0), 3),
                rows=int(rows) if isinstance(rows, int) and rows >= 0 else None,
                message=item.message,
            )
        )
    return tuple(nodes)


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a command: it caches
    one environment per process, and DuckDB refuses a second connection with another config
    (our read-only export) while it lives."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a dependency
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        if env is not None:
            env.close()
        DuckDBConnectionManager.close_all_connections()


def invoke_dbt(
    args: list[str], *, project_dir: Path, profiles_dir: Path, target: str, target_path: Path, log_path: Path
) -> tuple[bool, Any, str | None]:
    """Run one dbt command in-process with output kept in log files. Returns (success, result, error).
    The project's parse comes from the parse cache when an earlier command made the same one
    (rfmlake.modeling.parse_cache), and a parse dbt makes goes into it."""
    from dbt.cli.main import dbtRunner

    log_path.mkdir(parents=True, exist_ok=True)
    full_args = [
        *args,
        "--project-dir", str(project_dir),
        "--profiles-dir", str(profiles_dir),
        "--target", target,
        "--target-path", str(target_path),
        "--log-path", str(log_path),
        "--log-level", "none",
        "--log-level-file", "info",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
    ]
    # dbt's console logger is silenced above; anything printed past it (warnings from adapters or
    # libraries) goes to a file next to dbt.log instead of the pipeline's stdout.
    key = parse_cache.parse_key(project_dir, profiles_dir, target, args)
    manifest = parse_cache.load(key)
    started = time.time()
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            outcome = dbtRunner(manifest=manifest).invoke(full_args)
    finally:
        _release_duckdb()
    if manifest is None:
        parse_cache.store(key, target_path, since=started)
    if captured.getvalue().strip():
        with (log_path / "stdout.log").open("a") as handle:
            handle.write(captured.getvalue())
    error = None
    if outcome.exception is not None:
        error = f"{type(outcome.exception).__name__}: {outcome.exception}"
    return bool(outcome.success), outcome.result, error


def _export_gold(
    lake: Lake, database: Path, nodes: tuple[NodeResult, ...], gold_schema: str
) -> tuple[tuple[TableRef, ...], dict[str, int]]:
    """Copy each gold table dbt built into a new lake version and commit it. Returns the committed
    tables and their row counts."""
    built = [n.name for n in nodes if n.resource_type == "model" and n.status == "success"]
    exported: list[TableRef] = []
    row_counts: dict[str, int] = {}
    con = duckdb.connect(str(database), read_only=True)
    try:
        gold_tables = {
            row[0]
            for row in fetch(con,
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = ? AND table_type = 'BASE TABLE'",
                [gold_schema],
            ).fetchall()
        }
        for name in sorted(set(built) & gold_tables):
            version_dir = Path(lake.new_version("gold", name))  # dbt-duckdb builds locally
            version_dir.mkdir(parents=True)
            target = str(version_dir / "part-00000.parquet").replace("'", "''")
            # ORDER BY ALL: the same build writes byte-for-byte the same rows in the same order.
            con.execute(
                f'COPY (SELECT * FROM "{gold_schema}"."{name}" ORDER BY ALL) '
                f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
            )
            exported.append(lake.commit("gold", name, version_dir))
            row = con.execute(f'SELECT count(*) FROM "{gold_schema}"."{name}"').fetchone()
            row_counts[name] = int(row[0]) if row else 0
    finally:
        con.close()
    return tuple(exported), row_counts


def _read_as_of(database: Path) -> date | None:
    con = duckdb.connect(str(database), read_only=True)
    try:
        row = con.execute("SELECT max(as_of_date) FROM intermediate.int_run__as_of").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return row[0] if row else None


def run_dbt(ctx: RunContext, command: str = "build", target: str = "local", select: str | None = None, *,
            unit_tests: bool = True, source_tests: bool = True) -> DbtResult:
    """Run `dbt <command>` for the run's settings and as_of; locally also prepare silver and export
    gold into the lake. Raises PipelineError listing what failed when a model or test fails.
    `unit_tests=False` leaves out dbt's unit tests: they check the models' SQL on fixed rows, not
    the data, so the pipeline leaves them to the test suite (tests/functional/modeling).
    `source_tests=False` leaves out the tests on the silver sources: the pipeline's quality_silver
    stage has checked the same rules on silver just before (docs/pipeline.md)."""
    if target not in TARGETS:
        raise PipelineError(f"unknown dbt target {target!r}; targets are {list(TARGETS)}")
    if command not in ("build", "run", "test", "compile", "parse"):
        raise PipelineError(f"unsupported dbt command {command!r}; use build, run, test, compile or parse")
    lake = ctx.lake
    work_dir = dbt_dir(lake)
    database = duckdb_path(lake)
    profiles_dir = work_dir / "profiles"
    target_path = work_dir / "target" / target
    log_path = ctx.run_dir / "dbt"
    write_profiles(profiles_dir, database, ctx.settings.prefix, memory_limit=ctx.settings.duckdb_memory_limit)

    empty_sources: tuple[str, ...] = ()
    if target == "local":
        empty_sources = prepare_silver_views(lake, database, ctx.settings.rfm.source,
                                             schema_prefix(target, ctx.settings.prefix) + "gold")

    # Vars also matter to parse: test arguments (e.g. the accepted reporting currency) render with them.
    args = [command, "--vars", json.dumps(dbt_vars(ctx.settings, ctx.as_of, target))]
    if select:
        args += ["--select", select]
    if not unit_tests and command in ("build", "test"):
        args += ["--exclude-resource-type", "unit_test"]
    if not source_tests and command in ("build", "test"):
        args += ["--exclude", "source:*"]
    if target == "athena" and command == "compile":
        args += ["--no-populate-cache"]
    success, run_result, error = invoke_dbt(
        args, project_dir=find_project_dir(), profiles_dir=profiles_dir, target=target,
        target_path=target_path, log_path=log_path,
    )
    nodes = _node_results(run_result)
    result = DbtResult(
        command=command, target=target, success=success, nodes=nodes, empty_sources=empty_sources,
        log_path=log_path, target_path=target_path, error=error,
    )
    if not success:
        raise PipelineError(result.failure_report())
    if target == "local" and command in ("build", "run"):
        gold_schema = schema_prefix(target, ctx.settings.prefix) + "gold"
        exported, row_counts = _export_gold(lake, database, nodes, gold_schema)
        # dbt-duckdb reports no row counts; the exported marts' counts are known here.
        nodes = tuple(
            replace(node, rows=row_counts[node.name])
            if node.resource_type == "model" and node.name in row_counts else node
            for node in nodes
        )
        result = DbtResult(
            command=command, target=target, success=True, nodes=nodes, exported=exported,
            as_of_date=_read_as_of(database), empty_sources=empty_sources,
            log_path=log_path, target_path=target_path,
        )
    return result


def compile_athena(out_dir: Path | None = None, settings: Settings | None = None) -> Path:
    """Parse and compile the project for the athena target, offline (no AWS call). Returns the
    dbt target folder holding manifest.json and compiled/ SQL."""
    settings = settings or Settings()
    out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="rfmlake-dbt-athena-"))
    profiles_dir = out_dir / "profiles"
    target_path = out_dir / "target"
    log_path = out_dir / "logs"
    # The local output must exist in the profile for it to load; it is never opened here.
    write_profiles(profiles_dir, out_dir / "unused.duckdb", settings.prefix)
    vars_json = json.dumps(dbt_vars(settings, None, "athena"))
    # `compile` parses first (writing manifest.json), so one invocation checks both; without a
    # populated cache it never connects. Unit tests are not compiled (they need the warehouse).
    success, run_result, error = invoke_dbt(
        ["compile", "--no-populate-cache", "--vars", vars_json],
        project_dir=find_project_dir(), profiles_dir=profiles_dir, target="athena",
        target_path=target_path, log_path=log_path,
    )
    if not success:
        failed = DbtResult("compile", "athena", False, _node_results(run_result), log_path=log_path, error=error)
        raise PipelineError(failed.failure_report())
    return target_path
