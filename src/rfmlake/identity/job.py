"""The identity stage: customer records, devices and web-log users -> people (gold.identity_graph).

Runs on the bronze side (it reads the raw CRM values of bronze.customers for fuzzy matching and the
PII key for the log-user tokens) and writes only ids and match evidence onward. Its SQL runs on an
ingest engine (rfmlake.ingest.engine): DuckDB in the pipeline, Spark with splink's Spark backend
for a cluster (tests/functional/identity/test_identity_engines.py holds the two to the same graph):

- gold.identity_graph: one row per member id (customer_id, anonymous_id, log_user) with its
  person_id, the person's primary customer id and the rule or match probability that joined it;
- gold.identity_matches: the scored CRM pairs at or above identity.review_threshold (ids, match
  probability and weight, the comparison level per field; no values), joined or left for review;
- gold.identity_changes: every merge and split of a person id, run after run.

The matching model (splink parameters, no values) is kept in `_system/models/identity/model.json`
and reused until identity.refit. docs/identity.md describes the rules, thresholds and stability.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from rfmlake.identity import graph, reuse
from rfmlake.identity.matching import RECORD_COLUMNS, CustomerMatcher
from rfmlake.ingest.engine import Engine
from rfmlake.ingest.sql import normalize_pii, token
from rfmlake.lake import Lake
from rfmlake.lake.duck import reads_s3
from rfmlake.pipeline.context import RunContext

log = logging.getLogger(__name__)

GRAPH_TABLE = "identity_graph"
MATCHES_TABLE = "identity_matches"
CHANGES_TABLE = "identity_changes"
MODEL_PATH = ("models", "identity", "model.json")
_SAME_EVENT = graph.RULES.index("same_event")
_SAME_SESSION = graph.RULES.index("same_session")


@dataclass
class IdentityReport:
    customer_records: int = 0
    model_version: str = ""
    model_trained: bool = False
    model_refitted: bool = False
    pairs_scored: int = 0
    pairs_joined: int = 0
    pairs_for_review: int = 0
    customer_edges: int = 0
    iterations: int = 0
    shared_devices: int = 0
    records_rescored: int = 0   # records new or changed since the last run's scoring (all without one)
    pairs_kept: int = 0         # pairs at or above review_threshold kept from the last run, not scored again
    changes: dict[str, int] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_records": self.customer_records, "model_version": self.model_version,
            "model_trained": self.model_trained, "model_refitted": self.model_refitted,
            "pairs_scored": self.pairs_scored, "pairs_joined": self.pairs_joined,
            "pairs_for_review": self.pairs_for_review, "customer_edges": self.customer_edges,
            "iterations": self.iterations, "shared_devices": self.shared_devices,
            "records_rescored": self.records_rescored, "pairs_kept": self.pairs_kept, **self.counts,
            "changes": self.changes, "notes": self.notes, "seconds": self.seconds,
        }


def _scan_inputs(engine: Engine, lake: Lake) -> None:
    engine.scan("id_silver_customers", lake.current("silver", "customers"),
                ["customer_id", "email_token", "phone_token", "created_at", "_row_hash"])
    engine.scan("id_bronze_customers", lake.current("bronze", "customers"),
                ["email", "phone", "first_name", "last_name", "postal_code", "city", "country", "_row_hash",
                 "_loaded_at"])
    engine.scan("id_orders", lake.current("silver", "orders"), ["customer_id", "order_ts"])
    engine.scan("id_events", lake.current("silver", "events"),
                ["event_ts", "customer_id", "anonymous_id", "session_id"])
    engine.scan("id_access_logs", lake.current("silver", "access_logs"), ["remote_user_token", "request_ts"])
    engine.scan("id_previous", lake.current("gold", GRAPH_TABLE),
                ["member_kind", "member_id", "person_id", "person_since"])
    engine.scan("id_previous_changes", lake.current("gold", CHANGES_TABLE),
                ["changed_at", "run_id", "change", "person_id", "other_person_id", "members"])


def _prepare(engine: Engine, key: bytes) -> None:
    engine.create("id_customers", """
        SELECT customer_id, email_token, phone_token, CAST(created_at AS TIMESTAMP) AS created_at
        FROM id_silver_customers WHERE customer_id IS NOT NULL""")
    # Every customer id the lake knows: CRM records, guests on orders, ids signed in on the clickstream.
    engine.create("id_customer_nodes", """
        SELECT customer_id, min(first_seen_at) AS first_seen_at FROM (
            SELECT customer_id, created_at AS first_seen_at FROM id_customers
            UNION ALL SELECT customer_id, CAST(order_ts AS TIMESTAMP) FROM id_orders WHERE customer_id IS NOT NULL
            UNION ALL SELECT customer_id, CAST(event_ts AS TIMESTAMP) FROM id_events WHERE customer_id IS NOT NULL
        ) ids GROUP BY customer_id""")
    engine.create("id_device_nodes", """
        SELECT anonymous_id, min(CAST(event_ts AS TIMESTAMP)) AS first_seen_at
        FROM id_events WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id""")
    # A customer id and a device on one event, or on one session.
    engine.create("id_device_links", f"""
        SELECT anonymous_id, customer_id, min(rule_rank) AS rule_rank, min(first_seen_at) AS first_seen_at FROM (
            SELECT anonymous_id, customer_id, {_SAME_EVENT} AS rule_rank,
                   min(CAST(event_ts AS TIMESTAMP)) AS first_seen_at
            FROM id_events WHERE anonymous_id IS NOT NULL AND customer_id IS NOT NULL
            GROUP BY anonymous_id, customer_id
            UNION ALL
            SELECT d.anonymous_id, c.customer_id, {_SAME_SESSION} AS rule_rank, least(d.seen, c.seen) AS first_seen_at
            FROM (SELECT session_id, anonymous_id, min(CAST(event_ts AS TIMESTAMP)) AS seen FROM id_events
                  WHERE session_id IS NOT NULL AND anonymous_id IS NOT NULL GROUP BY session_id, anonymous_id) d
            JOIN (SELECT session_id, customer_id, min(CAST(event_ts AS TIMESTAMP)) AS seen FROM id_events
                  WHERE session_id IS NOT NULL AND customer_id IS NOT NULL GROUP BY session_id, customer_id) c
              ON c.session_id = d.session_id
        ) links GROUP BY anonymous_id, customer_id""")
    # The access log's authenticated user is tokenized at ingest; the same token of each customer id
    # (computed here, where the key may be used) finds whose it is.
    engine.create("id_log_users", f"""
        SELECT l.remote_user_token AS log_user, c.customer_id, min(CAST(l.request_ts AS TIMESTAMP)) AS first_seen_at
        FROM id_access_logs l
        JOIN (SELECT customer_id, {token('customer_id', key, 'user')} AS user_token FROM id_customer_nodes) c
          ON c.user_token = l.remote_user_token
        WHERE l.remote_user_token IS NOT NULL
        GROUP BY l.remote_user_token, c.customer_id""")


def records_query(max_block_size: int) -> str:
    """The matching records: each silver customer's raw values from the bronze row that won, normalised
    as the PII tokens are (so an exact match here is a token match in silver), and the keys of the
    blocks that grow with the data (postal code + country, full name + city: matching.PREDICTION_BLOCKS),
    null where more than `max_block_size` records share them or a part is null (`||` of a null is null,
    on DuckDB and Spark alike, as an equality on a null matches nothing)."""
    n = int(max_block_size)
    return f"""
        SELECT r.*,
               CASE WHEN count(*) OVER (PARTITION BY postal_code, country) <= {n}
                    THEN postal_code || '|' || country END AS postal_block,
               CASE WHEN count(*) OVER (PARTITION BY first_name, last_name, city) <= {n}
                    THEN first_name || '|' || last_name || '|' || city END AS name_city_block
        FROM ({_normalised_records()}) AS r"""


def _normalised_records() -> str:
    email = normalize_pii("b.email", "email")
    return f"""
        SELECT s.customer_id AS unique_id,
               {normalize_pii('b.first_name', 'name')} AS first_name,
               {normalize_pii('b.last_name', 'name')} AS last_name,
               {email} AS email,
               CASE WHEN {email} LIKE '%@%' THEN regexp_extract({email}, '^([^@]+)@', 1) END AS email_user,
               {normalize_pii('b.phone', 'phone')} AS phone,
               CASE WHEN regexp_replace(upper(b.postal_code), '[^0-9A-Z]', '', 'g') <> ''
                    THEN regexp_replace(upper(b.postal_code), '[^0-9A-Z]', '', 'g') END AS postal_code,
               {normalize_pii('b.city', 'name')} AS city,
               upper(trim(b.country)) AS country
        FROM id_silver_customers s
        JOIN (SELECT *, row_number() OVER (PARTITION BY _row_hash ORDER BY _loaded_at DESC) AS r
              FROM id_bronze_customers) b
          ON b._row_hash = s._row_hash AND b.r = 1
        WHERE s.customer_id IS NOT NULL"""


def _db_api(engine: Engine) -> Any:
    if engine.name == "duckdb":
        from splink import DuckDBAPI

        return DuckDBAPI(engine.con)  # type: ignore[attr-defined]
    from splink import SparkAPI

    # Lineage is broken by persisting: no checkpoint folder to set up on Glue or local Spark.
    return SparkAPI(spark_session=engine.spark, break_lineage_method="persist")  # type: ignore[attr-defined]


def _matcher(ctx: RunContext, n_records: int, db_api: Any, report: IdentityReport) -> CustomerMatcher:
    settings = ctx.settings.identity
    params = {"match_threshold": settings.match_threshold, "review_threshold": settings.review_threshold,
              "min_training_records": settings.min_training_records, "max_u_pairs": settings.u_sample_pairs}
    stored = ctx.lake.read_system(*MODEL_PATH)
    if stored is not None and not settings.refit:
        model = json.loads(stored)
        # A model fitted on little data is refitted once the data allows training.
        if model.get("trained") or n_records < settings.min_training_records:
            return CustomerMatcher.from_model(model, **params)
    matcher = CustomerMatcher(**params).fit(db_api, "id_records", n_records)
    ctx.lake.write_system(json.dumps(matcher.model_, indent=1, sort_keys=True).encode(), *MODEL_PATH)
    report.model_refitted = True
    report.notes.extend(matcher.notes_)
    return matcher


def _timed(report: IdentityReport, name: str, started: float) -> float:
    now = time.perf_counter()
    report.seconds[name] = round(now - started, 3)
    return now


def resolve_identity(ctx: RunContext, engine: Engine) -> IdentityReport:
    """Build and commit gold.identity_graph, identity_matches and identity_changes."""
    from rfmlake.ingest.pii import resolve_pii_key

    lake = ctx.lake
    report = IdentityReport()
    started = time.perf_counter()
    key = resolve_pii_key(lake, ctx.settings)
    if engine.name == "duckdb" and reads_s3(lake):
        from rfmlake.lake.duckdb_s3 import enable_s3

        enable_s3(engine.con)  # type: ignore[attr-defined]  # the inputs read in place on S3
    _scan_inputs(engine, lake)
    _prepare(engine, key)
    engine.create("id_records", records_query(ctx.settings.identity.max_block_size))
    report.customer_records = int(engine.rows("SELECT count(*) AS n FROM id_records")[0]["n"])
    started = _timed(report, "inputs", started)

    pairs_table: str | None = None
    matcher: CustomerMatcher | None = None
    scoring_key: str | None = None
    if report.customer_records >= 2:
        db_api = _db_api(engine)
        matcher = _matcher(ctx, report.customer_records, db_api, report)
        report.model_version, report.model_trained = matcher.model_version_, matcher.trained_
        scoring_key = reuse.scoring_key(matcher.model_version_, ctx.settings.identity.review_threshold,
                                        records_query(ctx.settings.identity.max_block_size))
        _score(ctx, engine, db_api, matcher, scoring_key, report)
        pairs_table = "id_pairs"
        threshold = float(ctx.settings.identity.match_threshold)
        row = engine.rows(f"""SELECT count(*) AS n, coalesce(sum(CASE WHEN match_probability >= {threshold!r}
                                THEN 1 ELSE 0 END), 0) AS joined FROM id_pairs""")[0]
        report.pairs_scored, report.pairs_joined = int(row["n"]), int(row["joined"])
        report.pairs_for_review = report.pairs_scored - report.pairs_joined
    started = _timed(report, "matching", started)

    report.customer_edges = graph.customer_edges(engine, pairs_table, ctx.settings.identity.match_threshold)
    report.iterations = graph.customer_components(engine)
    report.shared_devices = graph.members(engine)
    run_at = ctx.started_at.strftime("%Y-%m-%d %H:%M:%S")
    report.changes = graph.assign_person_ids(engine, ctx.run_id, run_at)
    report.counts = graph.summary_counts(engine)
    started = _timed(report, "graph", started)

    _commit(ctx, engine, pairs_table, matcher, scoring_key)
    _timed(report, "write", started)
    log.info("identity: %s people from %s", report.counts.get("people"), report.counts.get("members"))
    return report


def _score(ctx: RunContext, engine: Engine, db_api: Any, matcher: CustomerMatcher, key: str,
           report: IdentityReport) -> None:
    """`id_pairs`: the scored pairs at or above review_threshold. Pairs the last run scored with the
    same model and whose records are unchanged are kept rather than scored again (identity.reuse)."""
    columns = ", ".join(reuse.PAIR_COLUMNS)
    if not reuse.load_previous(ctx.lake, engine, key):
        report.records_rescored = report.customer_records
        engine.create("id_pairs", f"SELECT {columns} FROM {matcher.predict(db_api, 'id_records')}")
        return
    report.records_rescored = reuse.mark_records(engine)
    scored = matcher.predict(db_api, "id_rescore", reuse.rescoring_blocks())
    engine.create("id_pairs_kept", reuse.kept_pairs_query(scored, matcher.model_version_))
    report.pairs_kept = int(engine.rows("SELECT count(*) AS n FROM id_pairs_kept")[0]["n"])
    engine.create("id_pairs", f"SELECT {columns} FROM {scored} UNION ALL SELECT {columns} FROM id_pairs_kept")


def _matches_query(pairs_table: str | None, matcher: CustomerMatcher | None, threshold: float, run_id: str) -> str:
    from rfmlake.identity.matching import FIELDS

    if pairs_table is None or matcher is None:
        levels = ", ".join(f"CAST(NULL AS DOUBLE) AS {f}_weight" for f in FIELDS)
        return (f"SELECT CAST(NULL AS VARCHAR) AS customer_id_l, CAST(NULL AS VARCHAR) AS customer_id_r, "
                f"CAST(NULL AS DOUBLE) AS match_probability, CAST(NULL AS DOUBLE) AS match_weight, {levels}, "
                f"CAST(NULL AS VARCHAR) AS decision, CAST(NULL AS VARCHAR) AS model_version, "
                f"CAST(NULL AS VARCHAR) AS run_id WHERE false")
    # Per field, the match weight (log2 Bayes factor) its comparison level added: evidence, no values.
    levels = ", ".join(f"CAST(mw_{f} AS DOUBLE) AS {f}_weight" for f in FIELDS)
    return f"""
        SELECT unique_id_l AS customer_id_l, unique_id_r AS customer_id_r,
               CAST(match_probability AS DOUBLE) AS match_probability, CAST(match_weight AS DOUBLE) AS match_weight,
               {levels},
               CASE WHEN match_probability >= {threshold!r} THEN 'joined' ELSE 'review' END AS decision,
               '{matcher.model_version_}' AS model_version, '{run_id}' AS run_id
        FROM {pairs_table}"""


def _commit(ctx: RunContext, engine: Engine, pairs_table: str | None, matcher: CustomerMatcher | None,
            scoring_key: str | None) -> None:
    lake = ctx.lake
    columns = ", ".join(graph.GRAPH_COLUMNS)
    queries = {
        GRAPH_TABLE: f"SELECT {columns} FROM ({graph.graph_query()}) g ORDER BY person_id, member_kind, member_id",
        MATCHES_TABLE: _matches_query(pairs_table, matcher, ctx.settings.identity.match_threshold, ctx.run_id)
        + (" ORDER BY customer_id_l, customer_id_r" if pairs_table else ""),
        CHANGES_TABLE: """
            SELECT CAST(changed_at AS TIMESTAMP) AS changed_at, run_id, change, person_id, other_person_id,
                   CAST(members AS BIGINT) AS members
            FROM id_previous_changes WHERE run_id IS NOT NULL
            UNION ALL SELECT changed_at, run_id, change, person_id, other_person_id, CAST(members AS BIGINT)
            FROM id_new_changes
            ORDER BY changed_at, person_id, other_person_id""",
    }
    written: dict[str, str] = {}
    for name, query in queries.items():
        target = lake.new_version("gold", name)
        engine.write(query, target)
        written[name] = target
    before = lake.current("gold", MATCHES_TABLE)
    with lake.transaction():
        committed = {name: lake.commit("gold", name, target) for name, target in written.items()}
    if scoring_key is not None:  # for the next run; a crash before it is written costs one full scoring
        reuse.write_state(lake, engine, committed[MATCHES_TABLE].version, scoring_key,
                          keep=before.version if before is not None else None)


__all__ = ["CHANGES_TABLE", "GRAPH_TABLE", "MATCHES_TABLE", "RECORD_COLUMNS", "IdentityReport", "resolve_identity"]
