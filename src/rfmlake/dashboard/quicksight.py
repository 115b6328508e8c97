"""QuickSight as code: the segment dashboard's data source, datasets, analysis and dashboard as
request parameters of the QuickSight API (CreateDataSource, CreateDataSet, CreateAnalysis,
CreateDashboard). The datasets are custom SQL on Athena with the same queries the local dashboard
runs (rfmlake.dashboard.datasets), and the visuals are the local page's charts:

  sheet "Segments": segment sizes (bar), revenue share (bar), RFM heatmap r_score x f_score (heat
  map), migration flow (sankey: from_segment -> to_segment, weighted by customers), value
  distribution (histogram of predicted_clv), average predicted value per segment (bar) and people
  per engagement segment (bar);
  sheet "Journeys" (gold.journey_results): conversion rate per group and lift of each variant over
  the holdout on each journey's latest day (bars, one small multiple per journey), the conversion
  rate by day per group (lines), and the latest results with their intervals, p-values and notes
  (table), each split by journey id (shown as "<name> (<id>)"). A filter group keeps the latest-day
  visuals on each journey's last day.

Nothing here calls AWS: infra deploys these dicts, either as CloudFormation properties
(AWS::QuickSight::DataSource/DataSet/Analysis/Dashboard take the API's field names) or by calling
the API with them; see docs/analysts.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rfmlake.dashboard.datasets import (
    CUSTOMER_VALUE,
    DATASETS,
    ENGAGEMENT_SEGMENTS,
    JOURNEY_RESULTS,
    RFM_HEATMAP,
    SEGMENT_MIGRATION,
    SEGMENT_SUMMARY,
    Dataset,
)
from rfmlake.errors import RfmlakeError

ANALYSIS_ACTIONS = (
    "quicksight:RestoreAnalysis", "quicksight:UpdateAnalysisPermissions", "quicksight:DeleteAnalysis",
    "quicksight:DescribeAnalysisPermissions", "quicksight:QueryAnalysis", "quicksight:DescribeAnalysis",
    "quicksight:UpdateAnalysis",
)
DASHBOARD_ACTIONS = (
    "quicksight:DescribeDashboard", "quicksight:ListDashboardVersions", "quicksight:QueryDashboard",
)
DATASET_ACTIONS = (
    "quicksight:DescribeDataSet", "quicksight:DescribeDataSetPermissions", "quicksight:PassDataSet",
    "quicksight:DescribeIngestion", "quicksight:ListIngestions",
)
_ACCOUNT = re.compile(r"^\d{12}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


@dataclass(frozen=True)
class QuickSightConfig:
    aws_account_id: str
    region: str
    prefix: str = "rfmlake"  # Glue databases <prefix>_gold ...; resource ids <prefix>-...
    athena_work_group: str = "primary"
    horizon_days: int = 365  # gold.customer_value's predicted_clv_<N>d
    # Users/groups who may open the analysis and dashboard (QuickSight principal ARNs).
    principals: tuple[str, ...] = ()
    import_mode: str = "DIRECT_QUERY"  # or SPICE

    def __post_init__(self) -> None:
        if not _ACCOUNT.match(self.aws_account_id):
            raise RfmlakeError(f"aws_account_id must be 12 digits, got {self.aws_account_id!r}")
        if not _PREFIX.match(self.prefix):
            raise RfmlakeError(f"prefix must match {_PREFIX.pattern} (it names Glue databases), got {self.prefix!r}")
        if self.import_mode not in ("DIRECT_QUERY", "SPICE"):
            raise RfmlakeError(f"import_mode must be DIRECT_QUERY or SPICE, got {self.import_mode!r}")
        if self.horizon_days < 1:
            raise RfmlakeError(f"horizon_days must be >= 1, got {self.horizon_days}")

    def arn(self, kind: str, resource_id: str) -> str:
        return f"arn:aws:quicksight:{self.region}:{self.aws_account_id}:{kind}/{resource_id}"

    def resource_id(self, name: str) -> str:
        return f"{self.prefix}-{name}".replace("_", "-")


def data_source_params(config: QuickSightConfig) -> dict[str, Any]:
    """CreateDataSource: Athena through the analysts' work group."""
    return {
        "AwsAccountId": config.aws_account_id,
        "DataSourceId": config.resource_id("athena"),
        "Name": f"{config.prefix} lake (Athena)",
        "Type": "ATHENA",
        "DataSourceParameters": {"AthenaParameters": {"WorkGroup": config.athena_work_group}},
    }


def data_set_params(config: QuickSightConfig, dataset: Dataset) -> dict[str, Any]:
    """CreateDataSet: one custom-SQL physical table on the Athena data source."""
    params: dict[str, Any] = {
        "AwsAccountId": config.aws_account_id,
        "DataSetId": config.resource_id(dataset.name),
        "Name": f"{config.prefix}: {dataset.title}"[:128],
        "ImportMode": config.import_mode,
        "PhysicalTableMap": {
            dataset.name.replace("_", "-"): {
                "CustomSql": {
                    "DataSourceArn": config.arn("datasource", config.resource_id("athena")),
                    "Name": dataset.name,
                    "SqlQuery": dataset.render(f"{config.prefix}_", config.horizon_days),
                    "Columns": [{"Name": name, "Type": kind} for name, kind in dataset.columns],
                }
            }
        },
    }
    if config.principals:
        params["Permissions"] = [{"Principal": p, "Actions": list(DATASET_ACTIONS)} for p in config.principals]
    return params


def _column(dataset: Dataset, name: str) -> dict[str, str]:
    if name not in {column for column, _ in dataset.columns}:
        raise RfmlakeError(f"dataset {dataset.name} has no column {name!r}")
    return {"DataSetIdentifier": dataset.name, "ColumnName": name}


def _dimension(dataset: Dataset, name: str, numerical: bool = False, date: bool = False) -> dict[str, Any]:
    if date:
        return {"DateDimensionField": {"FieldId": f"{dataset.name}.{name}.dim", "Column": _column(dataset, name),
                                       "DateGranularity": "DAY"}}
    kind = "NumericalDimensionField" if numerical else "CategoricalDimensionField"
    return {kind: {"FieldId": f"{dataset.name}.{name}.dim", "Column": _column(dataset, name)}}


def _measure(dataset: Dataset, name: str, aggregation: str = "SUM") -> dict[str, Any]:
    return {"NumericalMeasureField": {
        "FieldId": f"{dataset.name}.{name}.{aggregation.lower()}",
        "Column": _column(dataset, name),
        "AggregationFunction": {"SimpleNumericalAggregation": aggregation},
    }}


def _title(text: str) -> dict[str, Any]:
    return {"Visibility": "VISIBLE", "FormatText": {"PlainText": text}}


def _bar(visual_id: str, title: str, dataset: Dataset, category: str, value: str,
         aggregation: str = "SUM", per: str | None = None) -> dict[str, Any]:
    """A horizontal bar per `category`; with `per`, one small multiple per value of that column."""
    measure = _measure(dataset, value, aggregation)
    wells: dict[str, Any] = {"Category": [_dimension(dataset, category)], "Values": [measure]}
    if per is not None:
        wells["SmallMultiples"] = [_dimension(dataset, per)]
    return {"BarChartVisual": {
        "VisualId": visual_id,
        "Title": _title(title),
        "ChartConfiguration": {
            "FieldWells": {"BarChartAggregatedFieldWells": wells},
            "Orientation": "HORIZONTAL",
            "SortConfiguration": {"CategorySort": [
                {"FieldSort": {"FieldId": measure["NumericalMeasureField"]["FieldId"], "Direction": "DESC"}}]},
        },
    }}


def visuals() -> list[dict[str, Any]]:
    """The dashboard's visuals, in the order of the local page."""
    return [
        _bar("segment-sizes", "Customers per RFM segment", SEGMENT_SUMMARY, "rfm_segment", "customers"),
        _bar("revenue-share", "Share of revenue per RFM segment", SEGMENT_SUMMARY, "rfm_segment", "revenue_share"),
        {"HeatMapVisual": {
            "VisualId": "rfm-heatmap",
            "Title": _title(RFM_HEATMAP.title),
            "ChartConfiguration": {"FieldWells": {"HeatMapAggregatedFieldWells": {
                "Rows": [_dimension(RFM_HEATMAP, "r_score", numerical=True)],
                "Columns": [_dimension(RFM_HEATMAP, "f_score", numerical=True)],
                "Values": [_measure(RFM_HEATMAP, "customers")],
            }}},
        }},
        {"SankeyDiagramVisual": {
            "VisualId": "segment-migration",
            "Title": _title("Migration between RFM segments (latest two scoring dates)"),
            "ChartConfiguration": {"FieldWells": {"SankeyDiagramAggregatedFieldWells": {
                "Source": [_dimension(SEGMENT_MIGRATION, "from_segment")],
                "Destination": [_dimension(SEGMENT_MIGRATION, "to_segment")],
                "Weight": [_measure(SEGMENT_MIGRATION, "customers")],
            }}},
        }},
        {"HistogramVisual": {
            "VisualId": "value-distribution",
            "Title": _title("Predicted customer value: distribution"),
            "ChartConfiguration": {
                "FieldWells": {"HistogramAggregatedFieldWells": {
                    "Values": [_measure(CUSTOMER_VALUE, "predicted_clv")]}},
                "BinOptions": {"SelectedBinType": "BIN_COUNT", "BinCount": {"Value": 20}},
            },
        }},
        _bar("value-by-segment", "Average predicted value per RFM segment", CUSTOMER_VALUE, "rfm_segment",
             "predicted_clv", aggregation="AVERAGE"),
        _bar("engagement-segments", ENGAGEMENT_SEGMENTS.title, ENGAGEMENT_SEGMENTS, "engagement_segment", "people"),
    ]


# Figures of one (journey, day, group) row: the table shows each row's own value (MAX of one row)
_JOURNEY_COUNTS = ("entered", "sent", "conversions")
_JOURNEY_FIGURES = ("conversion_rate", "conversion_rate_low", "conversion_rate_high", "lift", "lift_low", "lift_high",
                    "p_value", "minimum_detectable_effect", "revenue_per_customer", "revenue_lift")
JOURNEYS_SHEET = "journeys"
LATEST_DAY_VISUALS = ("journey-conversion-rate", "journey-lift", "journey-results")
# The column the Journeys sheet splits by: "<name> (<id>)", one per journey id (two journeys may
# share a name, and grouped by name they would merge into one)
JOURNEY = "journey"


def journey_visuals() -> list[dict[str, Any]]:
    """The Journeys sheet, after the local page's section: per journey, each group's conversion rate
    and each variant's lift over the holdout on the latest day, the rate by day, and the numbers.
    QuickSight draws no interval bars, so the intervals are columns of the table."""
    rows = JOURNEY_RESULTS
    return [
        _bar("journey-conversion-rate", "Conversion rate per group (latest day)", rows, "variant",
             "conversion_rate", aggregation="MAX", per=JOURNEY),
        _bar("journey-lift", "Lift over the holdout, rate points (latest day)", rows, "variant", "lift",
             aggregation="MAX", per=JOURNEY),
        {"LineChartVisual": {
            "VisualId": "journey-rate-by-day",
            "Title": _title("Conversion rate by day, per group"),
            "ChartConfiguration": {"FieldWells": {"LineChartAggregatedFieldWells": {
                "Category": [_dimension(rows, "day", date=True)],
                "Values": [_measure(rows, "conversion_rate", "MAX")],
                "Colors": [_dimension(rows, "variant")],
                "SmallMultiples": [_dimension(rows, JOURNEY)],
            }}},
        }},
        {"TableVisual": {
            "VisualId": "journey-results",
            "Title": _title(rows.title + " (latest day)"),
            "ChartConfiguration": {"FieldWells": {"TableAggregatedFieldWells": {
                "GroupBy": [_dimension(rows, JOURNEY), _dimension(rows, "day", date=True),
                            _dimension(rows, "variant"), _dimension(rows, "note")],
                "Values": [*(_measure(rows, c, "SUM") for c in _JOURNEY_COUNTS),
                           *(_measure(rows, c, "MAX") for c in _JOURNEY_FIGURES)],
            }}},
        }},
    ]


def journey_filter_groups() -> list[dict[str, Any]]:
    """Keeps the latest-day visuals of the Journeys sheet on each journey's last day (latest_day = 1)."""
    return [{
        "FilterGroupId": "journeys-latest-day",
        "Filters": [{"NumericEqualityFilter": {
            "FilterId": "journeys-latest-day", "Column": _column(JOURNEY_RESULTS, "latest_day"), "Value": 1,
            "MatchOperator": "EQUALS", "NullOption": "NON_NULLS_ONLY"}}],
        "ScopeConfiguration": {"SelectedSheets": {"SheetVisualScopingConfigurations": [
            {"SheetId": JOURNEYS_SHEET, "Scope": "SELECTED_VISUALS", "VisualIds": list(LATEST_DAY_VISUALS)}]}},
        "Status": "ENABLED",
        "CrossDataset": "SINGLE_DATASET",
    }]


def definition(config: QuickSightConfig) -> dict[str, Any]:
    """The analysis/dashboard definition: the datasets, a sheet of segment visuals and one of
    journey results."""
    return {
        "DataSetIdentifierDeclarations": [
            {"Identifier": dataset.name, "DataSetArn": config.arn("dataset", config.resource_id(dataset.name))}
            for dataset in DATASETS
        ],
        "Sheets": [{"SheetId": "segments", "Name": "Segments", "Title": "Customer segments",
                    "Visuals": visuals()},
                   {"SheetId": JOURNEYS_SHEET, "Name": "Journeys", "Title": "Journeys: conversion and lift",
                    "Visuals": journey_visuals()}],
        "FilterGroups": journey_filter_groups(),
    }


def analysis_params(config: QuickSightConfig) -> dict[str, Any]:
    params: dict[str, Any] = {
        "AwsAccountId": config.aws_account_id,
        "AnalysisId": config.resource_id("segments"),
        "Name": f"{config.prefix}: customer segments",
        "Definition": definition(config),
    }
    if config.principals:
        params["Permissions"] = [{"Principal": p, "Actions": list(ANALYSIS_ACTIONS)} for p in config.principals]
    return params


def dashboard_params(config: QuickSightConfig, version_description: str = "") -> dict[str, Any]:
    params: dict[str, Any] = {
        "AwsAccountId": config.aws_account_id,
        "DashboardId": config.resource_id("segments"),
        "Name": f"{config.prefix}: customer segments",
        "Definition": definition(config),
        "DashboardPublishOptions": {"AdHocFilteringOption": {"AvailabilityStatus": "ENABLED"},
                                    "ExportToCSVOption": {"AvailabilityStatus": "ENABLED"}},
    }
    if version_description:
        params["VersionDescription"] = version_description[:512]
    if config.principals:
        params["Permissions"] = [{"Principal": p, "Actions": list(DASHBOARD_ACTIONS)} for p in config.principals]
    return params


def all_requests(config: QuickSightConfig) -> list[tuple[str, dict[str, Any]]]:
    """Every request in deployment order, as (operation, params): data source, datasets, analysis, dashboard."""
    return [
        ("create_data_source", data_source_params(config)),
        *[("create_data_set", data_set_params(config, dataset)) for dataset in DATASETS],
        ("create_analysis", analysis_params(config)),
        ("create_dashboard", dashboard_params(config)),
    ]


def write_definitions(config: QuickSightConfig, out_dir: Path) -> list[Path]:
    """Write each request as <out_dir>/NN-<operation>-<id>.json (for review or for infra to load)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for index, (operation, params) in enumerate(all_requests(config)):
        resource = next(str(v) for k, v in params.items() if k.endswith("Id") and k != "AwsAccountId")
        path = out_dir / f"{index:02d}-{operation.replace('_', '-')}-{resource}.json"
        path.write_text(json.dumps(params, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written

