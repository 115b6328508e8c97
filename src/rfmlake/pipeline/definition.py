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
    # One-process stages on a lake on S3 run in a local workspace (rfmlake.lake.workspace): the
    # tables they read ("zone.table" patterns) and the `_system/` state folders they keep.
    reads: tuple[str, ...] = ()
    state: tuple[str, ...] = ()


PIPELINE: tuple[Stage, ...] = (
    Stage(
        "ingest_bronze",
        "landing files -> bronze tables (same rows as Parquet, with lineage)",
        runtime="spark",
        entry="rfmlake.pipeline.stages:ingest_bronze",
        glue_script="glue_jobs/landing_to_bronze.py",
        max_attempts=2,
    ),
    Stage(
        "conform_silver",
        "bronze -> silver (typed, deduplicated, PII tokenized) + quarantine + reconciliation",
        runtime="spark",
        entry="rfmlake.pipeline.stages:conform_silver",
        glue_script="glue_jobs/bronze_to_silver.py",
        max_attempts=2,
    ),
    Stage(
        "quality_silver",
        "great-expectations suites on silver; a critical failure stops the run",
        runtime="python",
        entry="rfmlake.pipeline.stages:quality_silver",
        reads=("bronze.quarantine", "silver.*"),
    ),
    Stage(
        "dbt_build",
        "dbt build: staging -> intermediate -> gold marts, with dbt tests",
        runtime="dbt",
        entry="rfmlake.pipeline.stages:dbt_build",
        max_attempts=2,
    ),
    Stage(
        "segmentation",
        "RFM scores, named segments, KMeans clusters -> gold.customer_rfm + history",
        runtime="segmentation",
        entry="rfmlake.pipeline.stages:segmentation",
        max_attempts=2,
        reads=("gold.*",),
        state=("models/segmentation",),
    ),
    Stage(
        "customer_value",
        "BG/NBD + Gamma-Gamma: p_alive, expected orders, predicted CLV -> gold.customer_value",
        runtime="segmentation",
        entry="rfmlake.pipeline.stages:customer_value",
        reads=("gold.*",),
        state=("models/segmentation", "models/value"),  # the value model records the segmentation one
    ),
    Stage(
        "quality_gold",
        "great-expectations suites on gold; a critical failure stops the run",
        runtime="python",
        entry="rfmlake.pipeline.stages:quality_gold",
        reads=("gold.*",),
    ),
    Stage(
        "profiles",
        "gold.customer_profile (after segmentation and gold quality) -> a new profile store generation, swapped in",
        runtime="python",
        entry="rfmlake.pipeline.stages:profiles",
        max_attempts=2,
        reads=("silver.events", "gold.*"),
    ),
    Stage(
        "activate",
        "push segment changes to marketing tools (local default: file export in gold/_activation)",
        runtime="python",  # on AWS: the activate_segments Lambda, triggered by the new gold version
        entry="rfmlake.pipeline.stages:activate",
        max_attempts=2,
        reads=("bronze.customers", "silver.customers", "gold.*"),
        state=("activation",),
    ),
)


def stage_names() -> list[str]:
    return [stage.name for stage in PIPELINE]
