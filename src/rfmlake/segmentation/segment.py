"""The one code path from RFM features to gold.customer_rfm rows, shared by the local job
(rfmlake.segmentation.job) and the SageMaker processing entry (models/segmentation/processing.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rfmlake.errors import PipelineError
from rfmlake.rfm.rules import SegmentRules, rfm_cell
from rfmlake.rfm.scoring import RfmScorer
from rfmlake.segmentation.clustering import RfmClusterer
from rfmlake.segmentation.model import SegmentationModel, settings_used
from rfmlake.segmentation.report import SegmentationReport, centroid_rows, group_sizes, score_counts
from rfmlake.settings import Settings

FEATURES_TABLE = "customer_rfm_features"
OUTPUT_TABLE = "customer_rfm"
HISTORY_TABLE = "segment_membership_history"

FEATURE_COLUMNS: tuple[str, ...] = (
    "customer_id", "as_of_date", "first_order_date", "last_order_date",
    "recency_days", "frequency", "monetary", "avg_order_value",
)

MONEY = pa.decimal128(18, 2)
CUSTOMER_RFM_SCHEMA = pa.schema([
    pa.field("customer_id", pa.string(), nullable=False),
    pa.field("as_of_date", pa.date32(), nullable=False),
    pa.field("first_order_date", pa.date32()),
    pa.field("last_order_date", pa.date32()),
    pa.field("recency_days", pa.int32(), nullable=False),
    pa.field("frequency", pa.int32(), nullable=False),
    pa.field("monetary", MONEY, nullable=False),
    pa.field("avg_order_value", MONEY),
    pa.field("r_score", pa.int8(), nullable=False),
    pa.field("f_score", pa.int8(), nullable=False),
    pa.field("m_score", pa.int8(), nullable=False),
    pa.field("rfm_cell", pa.string(), nullable=False),
    pa.field("rfm_segment", pa.string(), nullable=False),
    pa.field("cluster_id", pa.int16(), nullable=False),
    pa.field("cluster_label", pa.string(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
])
HISTORY_SCHEMA = pa.schema([
    pa.field("as_of_date", pa.date32(), nullable=False),
    pa.field("customer_id", pa.string(), nullable=False),
    pa.field("rfm_segment", pa.string(), nullable=False),
    pa.field("cluster_label", pa.string(), nullable=False),
])

EMPTY_FEATURES_MESSAGE = (
    "no customer has a counted order in the window: gold.customer_rfm_features is empty. Check the "
    "as_of date, rfm.lookback_days and rfm.counted_statuses, and that orders reached silver"
)


def load_rules(settings: Settings) -> SegmentRules:
    return SegmentRules.load(settings.segmentation.rules_file, expected_n_bins=settings.rfm.score_bins)


def fit_model(features: pd.DataFrame, settings: Settings, rules: SegmentRules,
              previous: SegmentationModel | None = None) -> SegmentationModel:
    """Fit scorer and clusterer; with a `previous` model, clusters that barely moved keep its ids
    and labels (RfmClusterer.align_to), so segment migration between runs means something."""
    seg = settings.segmentation
    scorer = RfmScorer(n_bins=settings.rfm.score_bins).fit(features)
    clusterer = RfmClusterer(
        k=seg.k, k_min=seg.k_min, k_max=seg.k_max,
        random_state=seg.random_state, silhouette_sample_size=seg.silhouette_sample_size,
        min_cluster_share=seg.min_cluster_share, min_cluster_size=seg.min_cluster_size,
    ).fit(features)
    # A pseudo-cluster (clustering skipped, now or before) has no identity to carry over.
    if previous is not None and not clusterer.is_skipped and not previous.clusterer.is_skipped:
        clusterer.align_to(previous.clusterer)
    return SegmentationModel(
        scorer=scorer, rules=rules, clusterer=clusterer, settings=settings_used(settings),
        fitted_on={"as_of_date": _single_as_of(features).isoformat(), "customers": len(features)},
    )


def segment_features(
    features: pd.DataFrame,
    settings: Settings,
    stored_model: SegmentationModel | None = None,
    *,
    rules: SegmentRules | None = None,
) -> tuple[pd.DataFrame, SegmentationModel, SegmentationReport]:
    """Score, name and cluster one row per customer.

    Uses `stored_model` unless there is none, settings.segmentation.refit is true, or it was
    fitted with other n_bins, rules or clustering settings: then fits a new model on `features`
    and the report says why. Returns the gold.customer_rfm rows (columns of
    CUSTOMER_RFM_SCHEMA, sorted by customer_id), the model used and the report. The caller stores
    the model if `report.refitted`.
    """
    features = validate_features(features)
    rules = rules if rules is not None else load_rules(settings)

    reason: str | None
    if settings.segmentation.refit:
        reason = "settings.segmentation.refit is true"
    elif stored_model is None:
        reason = "no stored model"
    else:
        reason = stored_model.refit_reason(settings, rules)
    try:
        if reason is None:
            assert stored_model is not None
            model, refitted, why = stored_model, False, f"reused stored model {stored_model.model_version}"
        else:
            model, refitted, why = fit_model(features, settings, rules, stored_model), True, reason
        scores = model.scorer.transform(features)
        clusters = model.clusterer.predict(features)
    except ValueError as exc:
        raise PipelineError(f"segmentation cannot score gold.{FEATURES_TABLE}: {exc}") from None

    version = model.model_version
    out = features.loc[:, list(FEATURE_COLUMNS)].copy()
    out["r_score"] = scores["r_score"].astype("int8")
    out["f_score"] = scores["f_score"].astype("int8")
    out["m_score"] = scores["m_score"].astype("int8")
    out["rfm_cell"] = rfm_cell(out["r_score"], out["f_score"], out["m_score"])
    out["rfm_segment"] = model.rules.assign(scores)
    out["cluster_id"] = clusters["cluster_id"].astype("int16")
    out["cluster_label"] = clusters["cluster_label"]
    out["model_version"] = version
    out = out.reset_index(drop=True)

    monetary = pd.Series(_as_float(out["monetary"]))
    clusterer = model.clusterer
    notes = list(clusterer.notes_)
    if not refitted and clusterer.notes_:
        notes = [f"(from the fit of {version}) {n}" for n in clusterer.notes_]
    report = SegmentationReport(
        model_version=version,
        refitted=refitted,
        refit_reason=why,
        as_of_date=_single_as_of(features).isoformat(),
        customers_scored=len(out),
        k=clusterer.k_,
        k_selection=clusterer.k_selection_,
        selection_curve=[c.to_dict() for c in clusterer.selection_curve_],
        rules_version=model.rules.version,
        segment_sizes=group_sizes(out["rfm_segment"], monetary, list(model.rules.names)),
        cluster_sizes=group_sizes(out["cluster_label"], monetary, list(clusterer.labels_)),
        notes=notes,
        centroids=centroid_rows(list(clusterer.cluster_ids_), list(clusterer.labels_), clusterer.centroids_original_),
        score_distributions={column: score_counts(out[column], model.scorer.n_bins)
                             for column in ("r_score", "f_score", "m_score")},
        k_rule={"elbow": getattr(clusterer, "elbow_", None), "min_cluster_share": clusterer.min_cluster_share,
                "min_cluster_size": clusterer.min_cluster_size},
    )
    return out, model, report


def validate_features(features: pd.DataFrame) -> pd.DataFrame:
    """One row per customer with every column present and no missing key; sorted by customer_id."""
    missing = [c for c in FEATURE_COLUMNS if c not in features.columns]
    if missing:
        raise PipelineError(f"gold.{FEATURES_TABLE} lacks column(s) {missing}; expected {list(FEATURE_COLUMNS)}")
    if len(features) == 0:
        raise PipelineError(EMPTY_FEATURES_MESSAGE)
    for column in ("customer_id", "as_of_date", "recency_days", "frequency", "monetary"):
        nulls = int(features[column].isna().sum())
        if nulls:
            raise PipelineError(f"gold.{FEATURES_TABLE} has {nulls} row(s) with no {column}")
    duplicated = features["customer_id"].duplicated()
    if duplicated.any():
        raise PipelineError(
            f"gold.{FEATURES_TABLE} has customer_id {features.loc[duplicated, 'customer_id'].iloc[0]!r} "
            "more than once; it must hold one row per customer"
        )
    _single_as_of(features)
    ordered = features.assign(customer_id=features["customer_id"].astype(str))
    return ordered.sort_values("customer_id", kind="mergesort").reset_index(drop=True)


def _single_as_of(features: pd.DataFrame) -> date:
    values = pd.to_datetime(pd.Series(features["as_of_date"]).dropna().unique())
    if len(values) != 1:
        found = sorted(v.date().isoformat() for v in values)
        raise PipelineError(f"gold.{FEATURES_TABLE} must have one as_of_date, found {found}")
    return values[0].date()


def _as_float(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values.astype("object")).astype("float64").to_numpy()


def _as_decimal(values: pd.Series) -> list[Decimal | None]:
    def convert(value: Any) -> Decimal | None:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        if isinstance(value, Decimal):
            return value.quantize(Decimal("0.01"))
        return Decimal(f"{float(value):.2f}")

    return [convert(v) for v in values]


def _as_dates(values: pd.Series) -> pa.Array:
    converted = pd.to_datetime(values).dt.date
    return pa.array([None if pd.isna(v) else v for v in converted], type=pa.date32())


def customer_rfm_to_arrow(rfm: pd.DataFrame) -> pa.Table:
    """The rows in the exact gold.customer_rfm schema (decimals for money, dates as date32)."""
    arrays = []
    for field_ in CUSTOMER_RFM_SCHEMA:
        column = rfm[field_.name]
        if pa.types.is_decimal(field_.type):
            arrays.append(pa.array(_as_decimal(column), type=field_.type))
        elif pa.types.is_date32(field_.type):
            arrays.append(_as_dates(column))
        else:
            arrays.append(pa.array(column.tolist(), type=field_.type))
    return pa.Table.from_arrays(arrays, schema=CUSTOMER_RFM_SCHEMA)


def history_rows(rfm: pd.DataFrame) -> pa.Table:
    return pa.Table.from_arrays(
        [_as_dates(rfm["as_of_date"]), pa.array(rfm["customer_id"].tolist(), pa.string()),
         pa.array(rfm["rfm_segment"].tolist(), pa.string()),
         pa.array(rfm["cluster_label"].tolist(), pa.string())],
        schema=HISTORY_SCHEMA,
    )
