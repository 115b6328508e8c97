"""The one pipeline definition: stage order, runtime, parameters, retries.

`rfmlake run` executes it in-process (rfmlake.pipeline.runner); the Step Functions state machine
for AWS is generated from the same tuple, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Runtime = Literal["spark", "python", "dbt", "segmentation"]


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    runtime: Runtime                 # which engine runs it on AWS: Glue (spark), dbt-athena, SageMaker, Lambda
    entry: str                       # "module:function" taking (ctx, state) and returning a StageResult
    glue_script: str | None = None   # the Glue entry script in glue_jobs/ for spark stages
    max_attempts: int = 1            # retries on AWS; locally a failed stage stops the run
    critical: bool = True            # a failure stops the run
    # What a stage touches in the lake, as "zone.table" patterns. One-process stages on a lake on S3
    # run in a local workspace (rfmlake.lake.workspace) holding the tables they read and the
    # `_system/` state folders they keep. The tables a stage commits must match `writes`: the runner
    # and the workspace refuse any other, and infra/ grants each AWS role exactly the zones its
    # stages read and write (rfmlake.pipeline.definition.zone_access), so the two cannot drift.
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    # Tables among `reads` that the stage's workspace does not copy: the stage scans them on S3 with
    # DuckDB (rfmlake.lake.duck), because they grow with the data, and still publishes its writes and
    # state through the workspace (`in_place` below: the whole stage, with nothing to publish). Never
    # among `writes` unless partitioned and only appended to (a workspace publishes the partitions
    # the stage wrote, and drops none).
    reads_in_place: tuple[str, ...] = ()
    # Lake folders of plain files (not tables) the stage writes, published from a workspace.
    exports: tuple[str, ...] = ()
    # Reads a lake on S3 where it lies (SQL through DuckDB httpfs) instead of from a workspace copy;
    # it may then commit no tables and keep no state, only its run reports.
    in_place: bool = False

    def __post_init__(self) -> None:
        if self.in_place and (self.writes or self.state or self.exports):
            raise ValueError(f"stage {self.name}: an in-place stage reads the lake where it lies and may not "
                             "declare writes, state or exports (those need a workspace to publish from)")


JOURNEY_READS: tuple[str, ...] = (
    "bronze.customers", "silver.customers", "gold.customer_rfm", "gold.segment_membership_history",
    "gold.customer_value", "gold.dim_customers", "gold.fct_orders", "gold.journey_assignments",
    # engagement triggers and conditions, and the products a message recommends (a person's list,
    # found through the identity graph: rfmlake.recommend.recommendations_for)
    "gold.customer_engagement", "gold.engagement_segment_history", "gold.product_recommendations",
    "gold.identity_graph",
)
# Interactions count for people (views through the identity graph: docs/recommendations.md).
_RECOMMENDATION_INPUTS = ("silver.order_items", "silver.products", "silver.events", "gold.fct_orders",
                          "gold.identity_graph", "gold.dim_customers", "gold.customer_rfm",
                          "gold.segment_membership_history")

PIPELINE: tuple[Stage, ...] = (
    Stage(
        "ingest_bronze",
        "landing files -> bronze tables (same rows as Parquet, with lineage)",
        runtime="spark",
        entry="rfmlake.pipeline.stages:ingest_bronze",
        glue_script="glue_jobs/landing_to_bronze.py",
        max_attempts=2,
        writes=("bronze.*",),
    ),
    Stage(
        "conform_silver",
        "bronze -> silver (typed, deduplicated, PII tokenized) + quarantine + reconciliation",
        runtime="spark",
        entry="rfmlake.pipeline.stages:conform_silver",
        glue_script="glue_jobs/bronze_to_silver.py",
        max_attempts=2,
        reads=("bronze.*",),
        writes=("silver.*", "bronze.quarantine"),  # quarantined rows keep raw values, so they stay in bronze
    ),
    Stage(
        "quality_silver",
        "the silver quality suites, run as SQL where the data lies; a critical failure stops the run",
        runtime="python",
        entry="rfmlake.pipeline.stages:quality_silver",
        reads=("bronze.quarantine", "silver.*"),
        in_place=True,
    ),
    Stage(
        "identity",
        "one person across customer records, devices and web-log users -> gold.identity_graph (+ matches, changes)",
        # The bronze-side role of the one-process stages (it already reads bronze for activation): fuzzy
        # matching reads the raw CRM values. DuckDB and splink; the same code runs on Spark (docs/identity.md).
        runtime="python",
        entry="rfmlake.pipeline.stages:identity",
        max_attempts=2,
        # gold.identity_matches: the pairs kept from the last run's scoring (rfmlake.identity.reuse).
        reads=("bronze.customers", "silver.customers", "silver.orders", "silver.events", "silver.access_logs",
               "gold.identity_graph", "gold.identity_changes", "gold.identity_matches"),
        # What grows with the data is scanned on S3 in place, never copied into the function's /tmp.
        reads_in_place=("bronze.customers", "silver.customers", "silver.orders", "silver.events",
                        "silver.access_logs", "gold.identity_matches"),
        # Only ids and match evidence go onward; the matching model holds no values.
        writes=("gold.identity_graph", "gold.identity_matches", "gold.identity_changes"),
        state=("models/identity",),
    ),
    Stage(
        "dbt_build",
        "dbt build: staging -> intermediate -> gold marts, with dbt tests",
        runtime="dbt",
        entry="rfmlake.pipeline.stages:dbt_build",
        max_attempts=2,
        reads=("silver.*", "gold.identity_graph"),  # marts are per person (docs/identity.md)
        writes=("gold.*",),  # the dbt marts (dbt/models/marts)
    ),
    Stage(
        "segmentation",
        "RFM scores, named segments, KMeans clusters -> gold.customer_rfm + history (and the engagement "
        "segments' history)",
        runtime="segmentation",
        entry="rfmlake.pipeline.stages:segmentation",
        max_attempts=2,
        # The history grows with customers x runs: the stage reads two partitions of it, in place.
        # gold.customer_engagement (one row per person) is copied as this as_of's partition of
        # gold.engagement_segment_history, read where it lies.
        reads=("gold.customer_rfm_features", "gold.segment_membership_history", "gold.segment_migration",
               "gold.customer_engagement"),
        reads_in_place=("gold.segment_membership_history", "gold.segment_migration", "gold.customer_engagement"),
        writes=("gold.customer_rfm", "gold.segment_membership_history", "gold.segment_migration",
                "gold.engagement_segment_history"),
        state=("models/segmentation",),
    ),
    Stage(
        "customer_value",
        "BG/NBD + Gamma-Gamma: p_alive, expected orders, predicted CLV -> gold.customer_value",
        runtime="segmentation",
        entry="rfmlake.pipeline.stages:customer_value",
        reads=("gold.*",),
        writes=("gold.customer_value",),
        state=("models/segmentation", "models/value"),  # the value model records the segmentation one
    ),
    Stage(
        "recommendations",
        "item-to-item similarity (co-purchase, co-view), evaluated on a time split against popularity "
        "-> gold.product_recommendations",
        runtime="segmentation",
        entry="rfmlake.pipeline.stages:recommendations",
        max_attempts=2,
        # Interactions grow with the data: every input is scanned where it lies on S3, none copied.
        # Between fits the current lists are read too: unchanged people keep their rows (ADR 0023).
        reads=(*_RECOMMENDATION_INPUTS, "gold.product_recommendations"),
        reads_in_place=(*_RECOMMENDATION_INPUTS, "gold.product_recommendations"),
        writes=("gold.product_recommendations",),
        # the stored fit and each table version's per-person inputs (refit on a schedule: ADR 0023)
        state=("models/recommendations",),
    ),
    Stage(
        "quality_gold",
        "the gold quality suites, run as SQL where the data lies; a critical failure stops the run",
        runtime="python",
        entry="rfmlake.pipeline.stages:quality_gold",
        reads=("gold.*",),
        in_place=True,
    ),
    Stage(
        "profiles",
        "gold.customer_profile (after segmentation and gold quality) -> a new profile store generation, swapped in",
        runtime="python",
        entry="rfmlake.pipeline.stages:profiles",
        max_attempts=2,
        # The profile's inputs, scanned in place on S3 (silver.events grows with the clickstream).
        reads=("silver.events", "gold.dim_customers", "gold.customer_rfm", "gold.customer_value",
               "gold.customer_engagement", "gold.identity_graph", "gold.product_recommendations"),
        reads_in_place=("silver.events", "gold.dim_customers", "gold.customer_rfm", "gold.customer_value",
                        "gold.customer_engagement", "gold.identity_graph", "gold.product_recommendations"),
        writes=("gold.customer_profile",),
    ),
    Stage(
        "activate",
        "push segment changes to marketing tools (local default: file export in gold/_activation)",
        runtime="python",
        entry="rfmlake.pipeline.stages:activate",
        max_attempts=2,
        # Only what it reads, each scanned in place on S3 (never whole gold, fct_orders included,
        # copied into the function's /tmp); its journal and snapshots are its state.
        reads=("gold.customer_rfm", "silver.customers", "bronze.customers"),
        reads_in_place=("gold.customer_rfm", "silver.customers", "bronze.customers"),
        state=("activation",),
        exports=("gold/_activation",),  # the file destination's exports (rfmlake.activation.destinations.file)
    ),
    Stage(
        "journeys",
        "advance the journeys (journeys/*.yaml): entries from segment changes, holdout and variants, "
        "sends (local default: the outbox in gold/_journeys), results with lift",
        runtime="python",
        entry="rfmlake.pipeline.stages:journeys",
        max_attempts=2,  # a retry resumes the interrupted tick from its journal on the lake
        reads=JOURNEY_READS,
        # scanned in place on S3 (the history and the orders grow with the data); the assignments are
        # partitioned and only appended to
        reads_in_place=JOURNEY_READS,
        writes=("gold.journey_assignments", "gold.journey_results"),
        # The erasure suppression list, checked at send time. The journey state, journal and outbox
        # are written straight to the lake, not published from the workspace (rfmlake.journeys.store).
        state=("governance",),
    ),
)


def stage_names() -> list[str]:
    return [stage.name for stage in PIPELINE]


def _zones(patterns: tuple[str, ...]) -> set[str]:
    return {pattern.split(".", 1)[0] for pattern in patterns}


# The run summary that ends every execution on AWS (rfmlake.pipeline.remote.summarize_execution, on
# the stage Lambda) counts the rows of every table and reads the quarantine, the reconciliation and
# the segments where they lie; it writes only the run folder (`_system/`).
RUN_SUMMARY_RUNTIME: Runtime = "python"
RUN_SUMMARY_READS: tuple[str, ...] = ("bronze.*", "silver.*", "gold.*")
# The same function records each run's start pointers and, after a failure, puts every table the run
# moved back (rfmlake.pipeline.rollback): it writes the pointers (and Glue tables) of every zone.
RUN_ROLLBACK_WRITES: tuple[str, ...] = ("bronze.*", "silver.*", "gold.*")


def zone_access(runtime: Runtime, pipeline: tuple[Stage, ...] = PIPELINE) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(zones read, zones written) by the stages of one runtime, from their declarations (and the run
    summary's reads and the rollback's writes for their runtime): what the AWS role of that runtime
    needs in S3, the Glue catalog and Lake Formation (infra/)."""
    stages = [stage for stage in pipeline if stage.runtime == runtime]
    writes = set().union(*(_zones(s.writes) for s in stages))
    reads = set().union(*(_zones(s.reads) for s in stages))
    if runtime == RUN_SUMMARY_RUNTIME:
        reads |= _zones(RUN_SUMMARY_READS)
        writes |= _zones(RUN_ROLLBACK_WRITES)
    reads -= writes
    return tuple(sorted(reads)), tuple(sorted(writes))


def undeclared_writes(stage: Stage, committed: set[str] | list[str]) -> list[str]:
    """The tables among `committed` ("zone.table") that the stage's `writes` does not declare."""
    from rfmlake.lake.workspace import table_matches

    return sorted(name for name in committed if not table_matches(name, stage.writes))
