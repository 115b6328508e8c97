"""The segmentation stage, local runtime: gold.customer_rfm_features -> gold.customer_rfm,
gold.segment_membership_history and gold.segment_migration, with the model fitted once and reused
(rfmlake.segmentation.model)."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq

from rfmlake.errors import PipelineError
from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.reporting.quality import SEGMENTATION_REPORT
from rfmlake.segmentation.engagement import record_engagement_history
from rfmlake.segmentation.history import record_history
from rfmlake.segmentation.model import ModelStore
from rfmlake.segmentation.report import SegmentationReport
from rfmlake.segmentation.segment import (
    FEATURES_TABLE,
    OUTPUT_TABLE,
    customer_rfm_to_arrow,
    history_rows,
    segment_features,
)

REPORT_FILE = SEGMENTATION_REPORT  # the run folder's file, named where `rfmlake report` reads it


def model_store(lake: Lake) -> ModelStore:
    return ModelStore(lake.models_dir / "segmentation")


def read_features(lake: Lake) -> pd.DataFrame:
    ref = lake.current("gold", FEATURES_TABLE)
    if ref is None:
        raise PipelineError(
            f"gold.{FEATURES_TABLE} does not exist in the lake at {lake}; run the dbt stage first"
        )
    return pq.read_table(ref.path).to_pandas()


def run_segmentation(ctx: RunContext) -> SegmentationReport:
    """Score, segment and cluster every customer of gold.customer_rfm_features; write
    gold.customer_rfm (replaced), this as_of's partition of gold.segment_membership_history and the
    migration into it (rfmlake.segmentation.history) and of gold.engagement_segment_history
    (rfmlake.segmentation.engagement): each replaced for that as_of, the others untouched, so a
    re-run is idempotent. Stores the model if it was (re)fitted and makes it current. Writes
    the report to the run folder and returns it."""
    features = read_features(ctx.lake)
    store = model_store(ctx.lake)
    try:
        # Loaded even for a refit: the new clusters are aligned to it (stable ids and labels).
        stored = store.current()
    except PipelineError:
        if not ctx.settings.segmentation.refit:
            raise
        stored = None
    rfm, model, report = segment_features(features, ctx.settings, stored)
    if ctx.as_of is not None and report.as_of_date != ctx.as_of.isoformat():
        raise PipelineError(
            f"gold.{FEATURES_TABLE} is for as_of {report.as_of_date}, but this run is for "
            f"{ctx.as_of.isoformat()}; rebuild the marts for this as_of first"
        )
    if report.refitted:
        store.save(model)
    ctx.lake.write_arrow("gold", OUTPUT_TABLE, customer_rfm_to_arrow(rfm))
    record_history(ctx.lake, history_rows(rfm))
    record_engagement_history(ctx.lake)  # engagement segments of this as_of, for journeys' triggers
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    (ctx.run_dir / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report
