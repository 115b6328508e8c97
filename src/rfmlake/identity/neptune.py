"""The identity graph in Amazon Neptune's Gremlin bulk-load CSV format, for the Neptune loader.

Two files (https://docs.aws.amazon.com/neptune/latest/userguide/bulk-load-tutorial-format-gremlin.html):

- `vertices.csv` (`~id,~label,...`): one vertex per person (label `person`) and per member (label
  = its kind: `customer_id`, `anonymous_id`, `log_user`; id `<kind>:<member id>`, so a customer id
  and a device id can never collide);
- `edges.csv` (`~id,~from,~to,~label,...`): `member_of` from every member to its person, and
  `linked_by` from a member to the member whose edge joined it, with the rule and probability.

DuckDB streams both from gold.identity_graph (no table in Python). Only ids and evidence: the same
columns the lake's graph holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake

VERTICES = "vertices.csv"
EDGES = "edges.csv"

_VERTICES_SQL = """
SELECT person_id AS "~id", 'person' AS "~label", CAST(NULL AS VARCHAR) AS "member_id:String",
       strftime(min(person_since), '%Y-%m-%dT%H:%M:%SZ') AS "since:Date",
       max(primary_customer_id) AS "primary_customer_id:String"
FROM gold.identity_graph GROUP BY person_id
UNION ALL
SELECT member_kind || ':' || member_id, member_kind, member_id,
       strftime(first_seen_at, '%Y-%m-%dT%H:%M:%SZ'), CAST(NULL AS VARCHAR)
FROM gold.identity_graph
ORDER BY 2, 1"""

_EDGES_SQL = """
SELECT 'member_of:' || member_kind || ':' || member_id AS "~id", member_kind || ':' || member_id AS "~from",
       person_id AS "~to", 'member_of' AS "~label", joined_by AS "rule:String",
       match_probability AS "match_probability:Double"
FROM gold.identity_graph
UNION ALL
SELECT 'linked_by:' || member_kind || ':' || member_id, member_kind || ':' || member_id,
       linked_to_kind || ':' || linked_to_id, 'linked_by', joined_by, match_probability
FROM gold.identity_graph WHERE linked_to_id IS NOT NULL
ORDER BY 4, 1"""


@dataclass(frozen=True)
class NeptuneExport:
    vertices: Path
    edges: Path
    vertex_count: int
    edge_count: int


def export_neptune(lake: Lake, out_dir: str | Path) -> NeptuneExport:
    """Write vertices.csv and edges.csv of the lake's current identity graph into `out_dir`."""
    from rfmlake.lake.catalog import connect

    if lake.current("gold", "identity_graph") is None:
        raise RfmlakeError(f"the lake at {lake.location} has no gold.identity_graph yet; run the pipeline first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = connect(lake, zones=("gold",))
    counts: list[int] = []
    try:
        for name, query in ((VERTICES, _VERTICES_SQL), (EDGES, _EDGES_SQL)):
            target = str(out / name).replace("'", "''")
            con.execute(f"COPY ({query}) TO '{target}' (FORMAT csv, HEADER true, DELIMITER ',')")
            counts.append(int(con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]))  # type: ignore[index]
    finally:
        con.close()
    return NeptuneExport(out / VERTICES, out / EDGES, counts[0], counts[1])
