"""`rfmlake sql`: query the lake with the database.table names Athena uses (silver.orders, ...)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.lake.duck import fetch


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sql",
        help="run a SQL query over the lake (DuckDB; Athena table names)",
        description="Run a query over the lake's current tables: bronze.*, silver.*, gold.*.",
    )
    parser.add_argument("query", nargs="?",
                        help='e.g. "SELECT rfm_segment, count(*) FROM gold.customer_rfm GROUP BY 1"')
    parser.add_argument("--query", dest="saved_query", metavar="NAME",
                        help="run a saved query instead (rfmlake.analytics; --list-queries names them)")
    parser.add_argument("--list-queries", action="store_true", help="list the saved queries and exit")
    parser.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    parser.add_argument("--max-rows", type=int, default=1000, metavar="N",
                        help="rows shown in table format (default 1000; csv/json print all)")
    parser.add_argument("--as", dest="persona", metavar="PERSONA",
                        help="see only what this persona may read (lakeformation/personas.yaml)")
    parser.set_defaults(func=run)


def query_lake(lake: Lake, query: str, persona: str | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    if not lake.root.is_dir():
        raise RfmlakeError(f"no lake at {lake} (run `rfmlake run` or `rfmlake demo` first)")
    con = connect(lake, persona=persona)
    try:
        # read whole (rfmlake.lake.duck.fetch): a streamed UNION ALL of joins can deadlock DuckDB
        relation = fetch(con, query)
        if relation is None:  # a statement without rows (SET, CREATE VIEW ...)
            return [], []
        return list(relation.columns), relation.fetchall()
    except duckdb.Error as exc:
        known = ", ".join(ref.qualified_name for ref in lake.tables()) or "none"
        if persona is not None:
            rows = fetch(con, "SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1").fetchall()
            known = ", ".join(r[0] for r in rows) or "none"
            known += f" (as {persona})"
        raise RfmlakeError(f"query failed: {str(exc).splitlines()[0]}\n  tables in this lake: {known}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _sql_to_run(args: argparse.Namespace, lake: Lake) -> str:
    from rfmlake.analytics.saved_queries import get_query, missing_tables

    if args.saved_query is None:
        if not args.query:
            raise RfmlakeError('give a query ("SELECT ...") or --query NAME (--list-queries names them)')
        return str(args.query)
    if args.query:
        raise RfmlakeError("give a SQL query or --query NAME, not both")
    saved = get_query(args.saved_query)
    missing = missing_tables(lake, saved) if lake.root.is_dir() else []
    if missing:
        raise RfmlakeError(f"saved query {saved.name!r} reads {', '.join(missing)}, which the lake at "
                           f"{lake.root} does not have (run the whole pipeline: `rfmlake run`)")
    return saved.render("")


def run(args: argparse.Namespace) -> int:
    if args.list_queries:
        from rfmlake.analytics.saved_queries import saved_queries

        for saved in saved_queries():
            print(f"{saved.name}\n    {saved.title}: {saved.description}")
        return 0
    lake = Lake(args.lake)
    columns, rows = query_lake(lake, _sql_to_run(args, lake), persona=args.persona)
    if args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in row] for row in rows])
    elif args.format == "json":
        records = [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]
        json.dump(records, sys.stdout, default=str)
        sys.stdout.write("\n")
    else:
        table = Table(show_lines=False)
        for column in columns:
            table.add_column(column)
        for row in rows[: args.max_rows]:
            table.add_row(*("" if v is None else str(v) for v in row))
        console = Console()
        console.print(table)
        shown = min(len(rows), args.max_rows)
        console.print(f"{len(rows):,} rows" + (f" ({shown:,} shown)" if shown < len(rows) else ""))
    return 0
