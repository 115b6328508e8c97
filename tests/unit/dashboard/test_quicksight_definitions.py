"""The QuickSight requests validate against botocore's quicksight service model: the Stubber's
parameter validation (required members, types, unknown members, minimum lengths) and, on top,
every enum value, pattern and maximum length the model declares."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import duckdb
import pyarrow as pa
import pytest
import sqlglot
from botocore.model import Shape
from botocore.stub import Stubber

from rfmlake.dashboard import quicksight as qs
from rfmlake.dashboard.datasets import CUSTOMER_VALUE, DATASETS, JOURNEY_RESULTS
from rfmlake.errors import RfmlakeError

CONFIG = qs.QuickSightConfig(aws_account_id="123456789012", region="eu-west-1", prefix="acme",
                             athena_work_group="analysts", horizon_days=180,
                             principals=("arn:aws:quicksight:eu-west-1:123456789012:group/default/analysts",))
MODEL = botocore.session.get_session().get_service_model("quicksight")
RESPONSES = {"create_data_source": {"Arn": "a", "DataSourceId": "x", "Status": 200},
             "create_data_set": {"Arn": "a", "DataSetId": "x", "Status": 201},
             "create_analysis": {"Arn": "a", "AnalysisId": "x", "Status": 200},
             "create_dashboard": {"Arn": "a", "DashboardId": "x", "Status": 200}}


def _strict(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if shape.type_name == "structure":
        for key, item in value.items():
            _strict(shape.members[key], item, f"{path}.{key}", problems)
    elif shape.type_name == "list":
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            problems.append(f"{path}: more than {shape.metadata['max']} items")
        for i, item in enumerate(value):
            _strict(shape.member, item, f"{path}[{i}]", problems)
    elif shape.type_name == "map":
        for key, item in value.items():
            _strict(shape.key, key, f"{path}<key>", problems)
            _strict(shape.value, item, f"{path}[{key}]", problems)
    elif shape.type_name == "string":
        if getattr(shape, "enum", None) and value not in shape.enum:
            problems.append(f"{path}: {value!r} not in {shape.enum}")
        if "pattern" in shape.metadata and not re.fullmatch(shape.metadata["pattern"], value, re.DOTALL):
            problems.append(f"{path}: {value!r} does not match {shape.metadata['pattern']}")
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            problems.append(f"{path}: longer than {shape.metadata['max']}")


@pytest.mark.parametrize(("operation", "params"), qs.all_requests(CONFIG),
                         ids=[f"{op}-{i}" for i, (op, _) in enumerate(qs.all_requests(CONFIG))])
def test_request_matches_the_service_model(operation: str, params: dict[str, Any]) -> None:
    client = boto3.client("quicksight", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        stubber.add_response(operation, RESPONSES[operation], params)
        getattr(client, operation)(**params)
        stubber.assert_no_pending_responses()
    shape = MODEL.operation_model("".join(part.title() for part in operation.split("_"))).input_shape
    problems: list[str] = []
    _strict(shape, params, operation, problems)
    assert problems == []


def test_strict_check_catches_a_bad_enum() -> None:
    params = qs.analysis_params(CONFIG)
    params["Definition"]["Sheets"][0]["Visuals"][0]["BarChartVisual"]["ChartConfiguration"]["Orientation"] = "SIDEWAYS"
    problems: list[str] = []
    _strict(MODEL.operation_model("CreateAnalysis").input_shape, params, "CreateAnalysis", problems)
    assert problems and "SIDEWAYS" in problems[0]


def test_datasets_are_custom_sql_on_the_prefixed_databases() -> None:
    for dataset in DATASETS:
        table = next(iter(qs.data_set_params(CONFIG, dataset)["PhysicalTableMap"].values()))["CustomSql"]
        assert "acme_gold." in table["SqlQuery"] and "${" not in table["SqlQuery"]
        code = "\n".join(line for line in table["SqlQuery"].splitlines() if not line.startswith("--"))
        assert not re.search(r"\bgold\.", code.replace("acme_gold.", ""))
        assert table["DataSourceArn"] == "arn:aws:quicksight:eu-west-1:123456789012:datasource/acme-athena"
        sqlglot.parse_one(table["SqlQuery"], read="trino")  # Athena's dialect
    value = qs.data_set_params(CONFIG, CUSTOMER_VALUE)
    assert "predicted_clv_180d" in json.dumps(value)


def test_visuals_use_declared_datasets_and_columns() -> None:
    definition = qs.definition(CONFIG)
    declared = {d["Identifier"] for d in definition["DataSetIdentifierDeclarations"]}
    columns = {(d.name, c) for d in DATASETS for c, _ in d.columns}
    used = re.findall(r'"DataSetIdentifier": "(\w+)", "ColumnName": "(\w+)"', json.dumps(definition))
    assert used and set(used) <= columns and {d for d, _ in used} == declared
    segments, journeys = definition["Sheets"]
    kinds = [next(iter(v)) for v in segments["Visuals"]]
    assert kinds == ["BarChartVisual", "BarChartVisual", "HeatMapVisual", "SankeyDiagramVisual",
                     "HistogramVisual", "BarChartVisual", "BarChartVisual"]
    # the journeys sheet: rate per group and lift (latest day), rate by day, the table of results
    assert journeys["SheetId"] == "journeys" and [next(iter(v)) for v in journeys["Visuals"]] == [
        "BarChartVisual", "BarChartVisual", "LineChartVisual", "TableVisual"]
    assert {d for d, _ in re.findall(r'"DataSetIdentifier": "(\w+)", "ColumnName": "(\w+)"',
                                       json.dumps(journeys))} == {"journey_results"}
    visual_ids = [next(iter(v.values()))["VisualId"] for sheet in definition["Sheets"] for v in sheet["Visuals"]]
    assert len(visual_ids) == len(set(visual_ids))
    for sheet in definition["Sheets"]:
        for visual in sheet["Visuals"]:
            wells = next(iter(visual.values()))["ChartConfiguration"]["FieldWells"]
            fields = re.findall(r'"FieldId": "([^"]+)"', json.dumps(wells))
            assert len(fields) == len(set(fields)), visual
    # the latest-day filter scopes visuals that exist on the journeys sheet
    (group,) = definition["FilterGroups"]
    (scope,) = group["ScopeConfiguration"]["SelectedSheets"]["SheetVisualScopingConfigurations"]
    assert scope["SheetId"] == "journeys" and set(scope["VisualIds"]) == {
        "journey-conversion-rate", "journey-lift", "journey-results"} and set(scope["VisualIds"]) <= set(visual_ids)
    assert group["Filters"][0]["NumericEqualityFilter"]["Column"] == {"DataSetIdentifier": "journey_results",
                                                                      "ColumnName": "latest_day"}


def test_the_journey_dataset_marks_each_journeys_latest_day_and_the_sheet_keeps_journeys_apart() -> None:
    """The dataset's SQL run on DuckDB (the local dashboard's engine) over a small gold.journey_results
    of two journeys with the same name."""
    from datetime import date

    from rfmlake.journeys.results import RESULT_SCHEMA

    rows = [{"journey_id": j, "journey_name": "Win back", "day": date(2026, 6, d), "variant": v,
             "group": "holdout" if v == "holdout" else "treatment", "entered": 10, "revenue": None}
            for j, days in (("a", (1, 8)), ("b", (1, 8, 15))) for d in days for v in ("holdout", "A")]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA gold")
    con.register("results", pa.Table.from_pylist(rows, schema=RESULT_SCHEMA))
    con.execute("CREATE TABLE gold.journey_results AS SELECT * FROM results")
    cursor = con.execute(JOURNEY_RESULTS.render())
    names = [d[0] for d in cursor.description]
    assert names == [name for name, _ in JOURNEY_RESULTS.columns]
    got = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    latest = {(r["journey_id"], r["day"].day, r["variant"]) for r in got if r["latest_day"] == 1}
    assert latest == {("a", 8, "holdout"), ("a", 8, "A"), ("b", 15, "holdout"), ("b", 15, "A")}
    # every visual of the sheet splits by journey (small multiples, the table's first column) on a
    # column that tells the two apart and shows the name
    split = set()
    for visual in qs.journey_visuals():
        wells = next(iter(next(iter(visual.values()))["ChartConfiguration"]["FieldWells"].values()))
        (dimension,) = wells.get("SmallMultiples") or wells["GroupBy"][:1]
        split.add(next(iter(dimension.values()))["Column"]["ColumnName"])
    assert split and all({r[column] for r in got} == {"Win back (a)", "Win back (b)"} for column in split)


def test_write_definitions(tmp_path: Path) -> None:
    paths = qs.write_definitions(CONFIG, tmp_path)
    assert [p.name for p in paths][0] == "00-create-data-source-acme-athena.json"
    assert paths[-1].name == "08-create-dashboard-acme-segments.json"
    assert json.loads(paths[-1].read_text()) == qs.dashboard_params(CONFIG)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("aws_account_id", "12345", "12 digits"), ("prefix", "Acme-Prod", "prefix must match"),
    ("import_mode", "LIVE", "DIRECT_QUERY or SPICE"), ("horizon_days", 0, "horizon_days"),
])
def test_bad_config_is_refused(field: str, value: Any, message: str) -> None:
    kwargs: dict[str, Any] = {"aws_account_id": "123456789012", "region": "eu-west-1", field: value}
    with pytest.raises(RfmlakeError, match=message):
        qs.QuickSightConfig(**kwargs)
