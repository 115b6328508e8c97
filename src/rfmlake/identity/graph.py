"""The identity graph as SQL over an ingest engine (rfmlake.ingest.engine: DuckDB locally, Spark on
Glue; one dialect, transpiled for Spark like the ingest SQL, docs/adr/0011).

Members are ids of three kinds: `customer_id` (CRM records and guest ids on orders), `anonymous_id`
(a device or cookie on the clickstream) and `log_user` (the token of the authenticated user of an
access-log line). People are built in three steps:

1. customer records are joined by edges: the same email token, the same phone token (every record
   links to the smallest id sharing the token: linear, not quadratic, in a large group) and splink
   matches at or above identity.match_threshold; connected components by min-label propagation;
2. a device joins the person of the customer ids it was seen with on one event or one session, when
   they are all one person; a device seen with two people is a *shared device* and stays apart;
3. an access-log user joins the customer whose id it is (the token of the customer id).

person_id is stable (docs/identity.md): each component claims the previous person ids of its
members; an id goes to the component holding most of its former members; a component keeps the
oldest id it was given and the others are recorded as merged into it; a component given none gets
a new id, and when its members belonged to a person that went elsewhere, the split is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rfmlake.errors import PipelineError
from rfmlake.ingest.engine import Engine
from rfmlake.ingest.sql import lit

MAX_ITERATIONS = 100
KINDS: tuple[str, ...] = ("customer_id", "anonymous_id", "log_user")
# Rules, strongest first: which edge a member is reported as joined by.
RULES: tuple[str, ...] = ("same_email_token", "same_phone_token", "probabilistic_match", "same_event", "same_session",
                          "log_user_is_customer_id")
GRAPH_COLUMNS: tuple[str, ...] = (
    "person_id", "member_kind", "member_id", "primary_customer_id", "is_primary", "joined_by", "match_probability",
    "linked_to_kind", "linked_to_id", "first_seen_at", "person_since",
)


def _rule_rank(column: str) -> str:
    cases = " ".join(f"WHEN {lit(rule)} THEN {i}" for i, rule in enumerate(RULES))
    return f"CASE {column} {cases} ELSE {len(RULES)} END"


def rule_rank(column: str) -> str:
    return _rule_rank(column)


def _rule_name(rank_column: str) -> str:
    cases = " ".join(f"WHEN {i} THEN {lit(rule)}" for i, rule in enumerate(RULES))
    return f"CASE {rank_column} {cases} END"


@dataclass
class GraphResult:
    iterations: int
    customer_edges: int
    shared_devices: int
    merges: int
    splits: int
    new_people: int


def customer_edges(engine: Engine, pairs_table: str | None, match_threshold: float) -> int:
    """`id_edges` (a, b, rule, match_probability): undirected edges between customer records."""
    token_edges = " UNION ALL ".join(
        f"""SELECT customer_id AS a, min(customer_id) OVER (PARTITION BY {column}) AS b, {lit(rule)} AS rule,
               CAST(1.0 AS DOUBLE) AS match_probability
            FROM id_customers WHERE {column} IS NOT NULL"""
        for column, rule in (("email_token", "same_email_token"), ("phone_token", "same_phone_token")))
    probabilistic = ""
    if pairs_table is not None:
        probabilistic = f"""UNION ALL SELECT unique_id_l AS a, unique_id_r AS b, 'probabilistic_match' AS rule,
                CAST(match_probability AS DOUBLE) AS match_probability
            FROM {pairs_table} WHERE match_probability >= {float(match_threshold)!r}"""
    engine.create("id_edges", f"SELECT a, b, rule, match_probability FROM ({token_edges} {probabilistic}) e "
                              "WHERE a <> b")
    return int(engine.rows("SELECT count(*) AS n FROM id_edges")[0]["n"])


def customer_components(engine: Engine) -> int:
    """`id_labels` (node, label): each customer id and the smallest id of its connected component."""
    engine.create("id_undirected", "SELECT a, b FROM id_edges UNION SELECT b AS a, a AS b FROM id_edges")
    engine.create("id_labels_0", "SELECT customer_id AS node, customer_id AS label FROM id_customer_nodes")
    current = "id_labels_0"
    for iteration in range(1, MAX_ITERATIONS + 1):
        following = f"id_labels_{iteration}"
        engine.create(following, f"""
            SELECT l.node, least(l.label, coalesce(min(n.label), l.label)) AS label
            FROM {current} l
            LEFT JOIN id_undirected e ON e.a = l.node
            LEFT JOIN {current} n ON n.node = e.b
            GROUP BY l.node, l.label""")
        changed = engine.rows(f"""SELECT count(*) AS n FROM {following} f JOIN {current} c ON c.node = f.node
                                  WHERE c.label <> f.label""")[0]["n"]
        current = following
        if int(changed) == 0:
            engine.create("id_labels", f"SELECT node, label FROM {current}")
            return iteration
    raise PipelineError(f"identity components did not converge in {MAX_ITERATIONS} iterations")


def members(engine: Engine) -> int:
    """`id_members` (member_kind, member_id, component, joined_by, match_probability, linked_to_kind,
    linked_to_id, first_seen_at): every member with the component it belongs to and its strongest
    edge. Returns the number of shared devices."""
    # Customer members: the strongest edge inside the component (deterministic rules first).
    engine.create("id_customer_best", f"""
        SELECT node, rule, match_probability, other FROM (
            SELECT e.a AS node, e.rule, e.match_probability, e.b AS other,
                   row_number() OVER (PARTITION BY e.a ORDER BY {_rule_rank('e.rule')}, e.match_probability DESC,
                                      e.b) AS r
            FROM (SELECT a, b, rule, match_probability FROM id_edges
                  UNION ALL SELECT b AS a, a AS b, rule, match_probability FROM id_edges) e
        ) ranked WHERE r = 1""")
    # Devices: the customer components each was seen with.
    engine.create("id_device_people", """
        SELECT d.anonymous_id, l.label, min(d.rule_rank) AS rule_rank, min(d.customer_id) AS customer_id,
               min(d.first_seen_at) AS first_seen_at
        FROM id_device_links d JOIN id_labels l ON l.node = d.customer_id
        GROUP BY d.anonymous_id, l.label""")
    engine.create("id_device_owner", """
        SELECT anonymous_id, min(label) AS label, count(*) AS people, min(rule_rank) AS rule_rank,
               min(customer_id) AS customer_id
        FROM id_device_people GROUP BY anonymous_id""")
    engine.create("id_members", f"""
        SELECT 'customer_id' AS member_kind, n.customer_id AS member_id, 'c:' || l.label AS component,
               coalesce(b.rule, 'single') AS joined_by, b.match_probability,
               CASE WHEN b.other IS NOT NULL THEN 'customer_id' END AS linked_to_kind, b.other AS linked_to_id,
               n.first_seen_at
        FROM id_customer_nodes n
        JOIN id_labels l ON l.node = n.customer_id
        LEFT JOIN id_customer_best b ON b.node = n.customer_id
        UNION ALL
        SELECT 'anonymous_id' AS member_kind, v.anonymous_id AS member_id,
               CASE WHEN o.people = 1 THEN 'c:' || o.label ELSE 'a:' || v.anonymous_id END AS component,
               CASE WHEN o.people = 1 THEN {_rule_name('o.rule_rank')}
                    WHEN o.people > 1 THEN 'shared_device' ELSE 'single' END AS joined_by,
               CASE WHEN o.people = 1 THEN CAST(1.0 AS DOUBLE) END AS match_probability,
               CASE WHEN o.people = 1 THEN 'customer_id' END AS linked_to_kind,
               CASE WHEN o.people = 1 THEN o.customer_id END AS linked_to_id,
               v.first_seen_at
        FROM id_device_nodes v
        LEFT JOIN id_device_owner o ON o.anonymous_id = v.anonymous_id
        UNION ALL
        SELECT 'log_user' AS member_kind, u.log_user AS member_id, 'c:' || l.label AS component,
               'log_user_is_customer_id' AS joined_by, CAST(1.0 AS DOUBLE) AS match_probability,
               'customer_id' AS linked_to_kind, u.customer_id AS linked_to_id, u.first_seen_at
        FROM id_log_users u JOIN id_labels l ON l.node = u.customer_id""")
    return int(engine.rows("SELECT count(*) AS n FROM id_device_owner WHERE people > 1")[0]["n"])


def assign_person_ids(engine: Engine, run_id: str, run_at: str) -> dict[str, int]:
    """`id_people` (component, person_id, person_since) and `id_new_changes` (merges and splits), from
    `id_members` and the previous graph `id_previous` (member_kind, member_id, person_id, person_since)."""
    engine.create("id_claims", """
        SELECT m.component, p.person_id, min(p.person_since) AS person_since, count(*) AS strength
        FROM id_members m
        JOIN id_previous p ON p.member_kind = m.member_kind AND p.member_id = m.member_id
        GROUP BY m.component, p.person_id""")
    # Each previous id goes to the component holding most of its former members.
    engine.create("id_awarded", """
        SELECT component, person_id, person_since, strength FROM (
            SELECT *, row_number() OVER (PARTITION BY person_id ORDER BY strength DESC, component) AS r
            FROM id_claims) ranked
        WHERE r = 1""")
    # A component keeps the oldest id awarded to it; the others merged into it.
    engine.create("id_kept", """
        SELECT component, person_id, person_since,
               row_number() OVER (PARTITION BY component ORDER BY person_since, person_id) AS k
        FROM id_awarded""")
    # Components without an id: a new one from the member seen first (stable for a full rebuild of the
    # same data); when that id was ever used, salted with the run.
    engine.create("id_anchor", """
        SELECT component, member_kind || ':' || member_id AS anchor FROM (
            SELECT component, member_kind, member_id,
                   row_number() OVER (PARTITION BY component ORDER BY first_seen_at NULLS LAST,
                                      CASE member_kind WHEN 'customer_id' THEN 0 WHEN 'anonymous_id' THEN 1 ELSE 2 END,
                                      member_id) AS r
            FROM id_members) ranked
        WHERE r = 1""")
    engine.create("id_used_ids", """
        SELECT DISTINCT person_id FROM id_previous
        UNION SELECT other_person_id AS person_id FROM id_previous_changes WHERE other_person_id IS NOT NULL""")
    engine.create("id_fresh", f"""
        SELECT a.component,
               CASE WHEN u.person_id IS NULL THEN h.candidate
                    ELSE 'P' || substring(sha256(a.anchor || '#' || {lit(run_id)}), 1, 16) END AS person_id
        FROM id_anchor a
        JOIN (SELECT component, 'P' || substring(sha256(anchor), 1, 16) AS candidate FROM id_anchor) h
          ON h.component = a.component
        LEFT JOIN id_used_ids u ON u.person_id = h.candidate
        WHERE a.component NOT IN (SELECT component FROM id_kept WHERE k = 1)""")
    engine.create("id_people", f"""
        SELECT component, person_id, person_since FROM id_kept WHERE k = 1
        UNION ALL
        SELECT component, person_id, CAST({lit(run_at)} AS TIMESTAMP) AS person_since FROM id_fresh""")
    # Merges: ids awarded to a component that kept an older one. Splits: a component that claimed an
    # id another component was awarded (it lost members of that person).
    engine.create("id_new_changes", f"""
        SELECT CAST({lit(run_at)} AS TIMESTAMP) AS changed_at, {lit(run_id)} AS run_id, 'merge' AS change,
               p.person_id, k.person_id AS other_person_id, a.strength AS members
        FROM id_kept k JOIN id_people p ON p.component = k.component
        JOIN id_awarded a ON a.component = k.component AND a.person_id = k.person_id
        WHERE k.k > 1
        UNION ALL
        SELECT CAST({lit(run_at)} AS TIMESTAMP) AS changed_at, {lit(run_id)} AS run_id, 'split' AS change,
               c.person_id, p.person_id AS other_person_id, c.strength AS members
        FROM id_claims c
        JOIN id_people p ON p.component = c.component
        LEFT JOIN id_awarded a ON a.component = c.component AND a.person_id = c.person_id
        WHERE a.person_id IS NULL""")
    counts = {r["change"]: int(r["n"]) for r in engine.rows(
        "SELECT change, count(*) AS n FROM id_new_changes GROUP BY change")}
    fresh = int(engine.rows("SELECT count(*) AS n FROM id_fresh")[0]["n"])
    return {"merges": counts.get("merge", 0), "splits": counts.get("split", 0), "new_people": fresh}


def graph_query() -> str:
    """gold.identity_graph: one row per member, with its person, the person's primary customer id
    (the grain key of the per-person gold tables) and how it joined."""
    return """
        WITH primary_ids AS (
            SELECT component, member_id AS primary_customer_id FROM (
                SELECT m.component, m.member_id,
                       row_number() OVER (PARTITION BY m.component
                                          ORDER BY CASE WHEN c.customer_id IS NOT NULL THEN 0 ELSE 1 END,
                                                   c.created_at NULLS LAST, m.member_id) AS r
                FROM id_members m LEFT JOIN id_customers c ON c.customer_id = m.member_id
                WHERE m.member_kind = 'customer_id') ranked
            WHERE r = 1)
        SELECT p.person_id, m.member_kind, m.member_id, pr.primary_customer_id,
               m.member_kind = 'customer_id' AND m.member_id = pr.primary_customer_id AS is_primary,
               m.joined_by, m.match_probability, m.linked_to_kind, m.linked_to_id,
               CAST(m.first_seen_at AS TIMESTAMP) AS first_seen_at, CAST(p.person_since AS TIMESTAMP) AS person_since
        FROM id_members m
        JOIN id_people p ON p.component = m.component
        LEFT JOIN primary_ids pr ON pr.component = m.component"""


def summary_counts(engine: Engine) -> dict[str, Any]:
    rows = engine.rows("""SELECT member_kind, count(*) AS members, count(DISTINCT component) AS components
                          FROM id_members GROUP BY member_kind""")
    people = engine.rows("SELECT count(*) AS n FROM id_people")[0]["n"]
    multi = engine.rows("""SELECT count(*) AS n FROM (SELECT component FROM id_members WHERE member_kind = 'customer_id'
                           GROUP BY component HAVING count(*) > 1) x""")[0]["n"]
    return {"people": int(people), "members": {r["member_kind"]: int(r["members"]) for r in rows},
            "people_with_several_customer_ids": int(multi)}
