"""Saved queries: curated SQL for analysts, one file per query in rfmlake/analytics/queries/.

Each file starts with `-- title:` and `-- description:` comment lines and names tables as
`${bronze}.x`, `${silver}.x` or `${gold}.x`. Rendering substitutes the zone's database name: `gold`
locally (the DuckDB catalog of rfmlake.lake.catalog) and `<prefix>_gold` on Athena, so one file
runs on both. The SQL sticks to what DuckDB and Trino both accept (no engine-specific functions).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import duckdb
import pandas as pd

from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.lake.duck import fetch
from rfmlake.lake.tables import ZONES

_HEADER = re.compile(r"^--\s*(title|description):\s*(.*)$")
_CONTINUATION = re.compile(r"^--\s{2,}(.*)$")
_TABLE_REF = re.compile(r"\$\{(\w+)\}\.(\w+)")


@dataclass(frozen=True)
class SavedQuery:
    name: str
    title: str
    description: str
    template: str

    @property
    def tables(self) -> tuple[str, ...]:
        """The zone.table names the query reads, e.g. ('gold.fct_orders', 'silver.order_items')."""
        return tuple(sorted({f"{zone}.{table}" for zone, table in _TABLE_REF.findall(self.template)}))

    def render(self, prefix: str = "") -> str:
        """The SQL with each zone named `<prefix><zone>` ('' locally; 'rfmlake_' on Athena)."""
        return string.Template(self.template).substitute({zone: f"{prefix}{zone}" for zone in ZONES})


def _parse(name: str, text: str) -> SavedQuery:
    fields: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        header = _HEADER.match(line)
        continuation = _CONTINUATION.match(line)
        if header:
            current = header.group(1)
            fields[current] = header.group(2).strip()
        elif continuation and current is not None:
            fields[current] += " " + continuation.group(1).strip()
        elif line.startswith("--"):
            continue
        else:
            break
    missing = [key for key in ("title", "description") if not fields.get(key)]
    if missing:
        raise RfmlakeError(f"saved query {name!r} has no {' or '.join(missing)} header line")
    unknown = sorted({zone for zone, _ in _TABLE_REF.findall(text)} - set(ZONES))
    if unknown:
        raise RfmlakeError(f"saved query {name!r} names unknown zones {unknown}; zones are {list(ZONES)}")
    return SavedQuery(name=name, title=fields["title"], description=fields["description"], template=text)


@cache
def saved_queries() -> tuple[SavedQuery, ...]:
    """Every saved query, by name."""
    folder = resources.files("rfmlake.analytics") / "queries"
    found = sorted((entry.name[: -len(".sql")], entry) for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return tuple(_parse(name, entry.read_text(encoding="utf-8")) for name, entry in found)


def query_names() -> tuple[str, ...]:
    return tuple(query.name for query in saved_queries())


def get_query(name: str) -> SavedQuery:
    for query in saved_queries():
        if query.name == name:
            return query
    raise RfmlakeError(f"no saved query {name!r}; saved queries are: {', '.join(query_names())}")


def missing_tables(lake: Lake, query: SavedQuery) -> list[str]:
    present = {ref.qualified_name for ref in lake.tables()}
    return [table for table in query.tables if table not in present]


def run_saved_query(lake: Lake, name: str, con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Run a saved query on the lake's local catalog. A table the query needs that the lake lacks is
    reported by name (with the stage that writes it left to the message reader), not as a SQL error."""
    query = get_query(name)
    if not lake.root.is_dir():
        raise RfmlakeError(f"no lake at {lake} (run `rfmlake run` or `rfmlake demo` first)")
    missing = missing_tables(lake, query)
    if missing:
        raise RfmlakeError(
            f"saved query {name!r} reads {', '.join(missing)}, which the lake at {lake} does not have "
            "(run the whole pipeline: `rfmlake run`)"
        )
    own = con is None
    con = con if con is not None else connect(lake)
    try:
        return fetch(con, query.render("")).df()
    except duckdb.Error as exc:
        raise RfmlakeError(f"saved query {name!r} failed: {str(exc).splitlines()[0]}") from None
    finally:
        if own:
            con.close()


def athena_sql(name: str, prefix: str = "rfmlake") -> str:
    """The saved query as Athena runs it: zones are the Glue databases `<prefix>_<zone>`."""
    return get_query(name).render(f"{prefix}_")


def named_query_params(prefix: str = "rfmlake", work_group: str | None = None) -> list[dict[str, Any]]:
    """Athena CreateNamedQuery request parameters for every saved query (infra deploys them, e.g.
    as AWS::Athena::NamedQuery resources with the same fields)."""
    params: list[dict[str, Any]] = []
    for query in saved_queries():
        request: dict[str, Any] = {
            "Name": f"{prefix}-{query.name.replace('_', '-')}",
            "Description": f"{query.title}: {query.description}"[:1024],
            "Database": f"{prefix}_gold",
            "QueryString": query.render(f"{prefix}_"),
        }
        if work_group is not None:
            request["WorkGroup"] = work_group
        params.append(request)
    return params
