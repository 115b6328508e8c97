"""A failed run on AWS commits nothing (docs/adr/0016): every environment's state machine records the
run's start before the first stage and rolls back on the failure path; on an S3 lake served by moto,
an execution of the dev state machine whose stages commit as their jobs do (through the lake's
commit on S3 and Glue; dbt-athena's mart replacement as its Glue calls make it) and whose later
stage fails leaves every table as before the run (content, pointer, Glue location; a table the run
created is gone), puts the segmentation model pointer and the identity model back, keeps the start
versions through a vacuum and refuses an erasure while the run is in flight, says what it restored
in the run summary, and makes only calls the stage Lambda's synthesized role allows. A rollback that
itself fails still fails the execution, notifies, and says so in the summary."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest

from activation_lakes import round_robin, write_rfm
from aws_calls import assert_role_allows, recorded
from infra_synth import Synth, deployed_stage_function
from rfmlake.audiences import AudienceFilters, load_audiences, save_audience
from rfmlake.audiences.query import AudienceSize
from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake
from rfmlake.lake.storage import Storage
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.trigger import execution_name
from rfmlake.settings import load_settings
from state_machine_walk import assert_rollback_on_the_failure_path, walk

STARTED = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
FAILURE = {"Error": "States.TaskFailed", "Cause": json.dumps({"ErrorMessage": "recommendations ran out of memory"})}
MART = "customer_rfm_features"  # a dbt-athena mart: a Glue table whose data is under gold/_dbt/


def test_every_environment_s_state_machine_rolls_a_failed_run_back(synth_env: Synth) -> None:
    assert_rollback_on_the_failure_path(synth_env.platform.orchestration.definition, PIPELINE)


def stage_function(synth: Synth, aws: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Lake, dict[str, Any]]:
    """An empty S3 lake (buckets, Glue databases, deployed settings) and the stage Lambda's handler with
    the environment the compute stack gives it."""
    return deployed_stage_function(synth, aws, monkeypatch, module_name="pipeline_stage_handler_rollback")


def customers(n: int, city: str) -> pa.Table:
    return pa.table({"customer_id": [f"C{i:06d}" for i in range(n)], "city": [city] * n})


def orders(days: list[str]) -> pa.Table:
    return pa.table({"order_id": [f"O{i}" for i in range(len(days))], "_load_date": days,
                     "order_total": [10.0 * (i + 1) for i in range(len(days))]})


def build_mart(lake: Lake, rows: int) -> str:
    """What dbt-athena's table materialization leaves for a mart: its data in a fresh folder under
    gold/_dbt/<database>/<table>/<uuid>/ (s3_data_naming: schema_table_unique) and a Glue table
    there; a mart it replaces is dropped from Glue first, its data kept (dbt/macros). Returns the location."""
    database = lake.catalog.database("gold")
    location = Storage.join(lake.location, "gold", "_dbt", database, MART, str(uuid.uuid4()))
    lake.write_version(location, pa.table({"customer_id": [f"C{i:06d}" for i in range(rows)],
                                           "frequency": list(range(rows))}))
    lake.catalog.drop_table("gold", MART)
    lake.catalog.client.create_table(DatabaseName=database, TableInput={
        "Name": MART, "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
        "StorageDescriptor": {"Columns": [{"Name": "customer_id", "Type": "string"},
                                          {"Name": "frequency", "Type": "bigint"}],
                              "Location": location + "/"}})
    return location


def snapshot(lake: Lake) -> dict[str, Any]:
    """Every table as a reader sees it: rows, pointer object, Glue location (and partitions)."""
    glue = lake.catalog.client
    tables: dict[str, Any] = {}
    for ref in lake.tables():
        database = lake.catalog.database(ref.zone)
        table = glue.get_table(DatabaseName=database, Name=ref.name)["Table"]
        partitions = sorted((tuple(p["Values"]), p["StorageDescriptor"]["Location"]) for p in
                            glue.get_partitions(DatabaseName=database, TableName=ref.name)["Partitions"])
        pointer = lake.storage.read_bytes(Storage.join(lake.table_uri(ref.zone, ref.name), "_current"))
        tables[ref.qualified_name] = {
            "rows": sorted(lake.read_arrow(ref).to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str)),
            "pointer": json.loads(pointer) if pointer else None,
            "location": table["StorageDescriptor"]["Location"], "partitions": partitions}
    return tables


def test_a_failed_execution_leaves_every_table_as_before_the_run(
        synth: Synth, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    handler, lake, buckets = stage_function(synth, aws, monkeypatch)
    # The lake earlier runs left: unpartitioned and partitioned lake tables, a dbt mart, the models.
    older = lake.write_arrow("silver", "customers", customers(3, "Lille"))  # a version before the start one
    lake.write_arrow("silver", "customers", customers(5, "Lyon"))
    lake.write_partitions("bronze", "orders", ("_load_date",), orders(["2026-11-29", "2026-11-30"]))
    write_rfm(lake, round_robin(8), as_of=date(2026, 11, 30))
    replaced = build_mart(lake, 3)  # an earlier run's mart, replaced by the next: no table reads it
    mart_location = build_mart(lake, 4)
    lake.write_system(b"model-a\n", "models", "segmentation", "current")
    before = snapshot(lake)
    assert set(before) == {"bronze.orders", "silver.customers", "gold.customer_rfm", f"gold.{MART}"}
    assert lake.storage.files(replaced) and not lake.storage.exists(Storage.join(lake.location, "_system", "models",
                                                                                  "identity", "model.json"))
    run_id = execution_name(["s3://dev-landing/orders/orders-3.csv"], STARTED)
    in_flight_vacuum: list[str] = []

    def stage(name: str) -> None:
        """What each stage's job commits on S3 (the same Lake commit the Glue jobs and workspaces use)."""
        if name == "ingest_bronze":
            lake.write_partitions("bronze", "orders", ("_load_date",), orders(["2026-11-30", "2026-12-01"]),
                                  drop={"_load_date=2026-11-29"})
        elif name == "conform_silver":
            lake.write_arrow("silver", "customers", customers(7, "Paris"))
            lake.write_arrow("silver", "created_by_run", customers(2, "Nice"))  # a table the run creates
        elif name == "identity":
            lake.write_system(b'{"weights": [1]}', "models", "identity", "model.json")
        elif name == "dbt_build":
            build_mart(lake, 9)
            # Mid-run, between two stages: a vacuum keeps the start versions, an erasure waits.
            in_flight_vacuum.extend(lake.vacuum(keep=1, min_age_seconds=0.0))
            from rfmlake.governance.erasure_aws import erase_on_s3

            with pytest.raises(RfmlakeError, match=f"pipeline run {run_id} is in flight"):
                erase_on_s3(lake, "C000001", None, "test", allow_missing=False, profile_store=None,
                            athena_results=None, settings=load_settings(overrides={"prefix": lake.catalog.prefix}))
        elif name == "segmentation":
            write_rfm(lake, round_robin(11, offset=3), as_of=date(2026, 12, 1))
            lake.write_system(b"model-b\n", "models", "segmentation", "current")
            # Meanwhile a marketer saves an audience in the app (no lake lock): not the run's to undo.
            save_audience(lake, audience_id="vip", name="VIP", description="", actor="mia",
                          filters=AudienceFilters(segments=("Champions",), consent="any"),
                          size=AudienceSize(customers=3, revenue=30.0, clv=None, total_customers=11,
                                            as_of="2026-12-01"))

    requests: list[dict[str, Any]] = []

    def invoke(payload: dict[str, Any]) -> Any:
        calls: list[dict[str, Any]] = []
        try:
            with recorded(os.environ["AWS_ENDPOINT_URL"]) as calls:
                return handler(payload, None)
        finally:
            requests.extend(calls)  # filled when the recording ends

    walked = walk(synth.platform.orchestration.definition, execution_name=run_id, started_at=STARTED,
                  fail=("recommendations", FAILURE), invoke=invoke, on_stage=stage)
    assert walked.end == "RunFailed" and "NotifyFailure" in walked.visited, walked.visited
    assert not walked.errors, walked.errors

    after = snapshot(lake)
    saved = after.pop("gold.audiences")  # the marketer's save stays
    assert [a["audience_id"] for a in saved["rows"]] == ["vip"]
    assert [a.name for a in load_audiences(lake)] == ["VIP"]
    assert after == before  # rows, pointer objects, Glue locations and partitions: as before the run
    assert lake.current("silver", "created_by_run") is None
    assert not lake.catalog.client.get_tables(DatabaseName=lake.catalog.database("silver"),
                                              Expression="created_by_run")["TableList"]
    assert before[f"gold.{MART}"]["location"] == mart_location + "/"
    assert lake.read_system("models", "segmentation", "current") == b"model-a\n"
    assert lake.read_system("models", "identity", "model.json") is None
    assert lake.read_system("run_in_flight.json") is None  # the run is over: nothing pinned any more
    assert not lake.storage.files(replaced)  # RecordRunStart deleted the dbt data no table read
    assert in_flight_vacuum == [older.uri]  # the vacuum removed what no rollback needs, kept the start versions

    summary = json.loads(lake.read_system("runs", run_id, "summary.json"))
    assert summary["error"] == "States.TaskFailed: recommendations ran out of memory"
    rollback = summary["rollback"]
    assert rollback["status"] == "rolled back"
    assert sorted(rollback["restored"]) == sorted(before)
    assert rollback["dropped"] == ["silver.created_by_run"]
    assert rollback["state_restored"] == ["models/identity/model.json", "models/segmentation/current"]
    start = json.loads(lake.read_system("runs", run_id, "start.json"))
    assert set(start["tables"]) == set(before)
    compute = synth.platform.compute
    calls = assert_role_allows(synth, compute, compute.stage_function_role, requests, buckets=buckets,
                               source="stage function: run start, rollback, summary")
    assert {"glue:UpdateTable", "glue:DeleteTable", "s3:PutObject", "s3:DeleteObject"} <= {c.action for c in calls}


def test_a_rollback_that_fails_still_fails_the_run_notifies_and_says_so(
        synth: Synth, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    handler, lake, _ = stage_function(synth, aws, monkeypatch)
    lake.write_arrow("silver", "customers", customers(5, "Lyon"))
    run_id = execution_name(["s3://dev-landing/orders/orders-4.csv"], STARTED)

    def stage(name: str) -> None:
        if name == "conform_silver":
            lake.write_arrow("silver", "customers", customers(7, "Paris"))
            # the start record is lost: RollBackRun cannot know what to put back
            lake.storage.delete_file(lake.system_uri("runs", run_id, "start.json"))

    walked = walk(synth.platform.orchestration.definition, execution_name=run_id, started_at=STARTED,
                  fail=("dbt_build", FAILURE), invoke=lambda payload: handler(payload, None), on_stage=stage)
    assert walked.end == "RunFailed", walked.visited
    after_rollback = walked.visited[walked.visited.index("RollBackRun"):]
    assert after_rollback[1:3] == ["RecordFailedRunSummary", "NotifyFailure"], after_rollback
    assert "has no start record" in walked.errors["RollBackRun"]["Cause"]
    summary = json.loads(lake.read_system("runs", run_id, "summary.json"))
    assert summary["rollback"]["status"] == "failed" and "has no start record" in summary["rollback"]["error"]
    assert "the rollback failed too" in summary["error"]
    # the marker stays (its start versions kept) until an operator rolls back or it expires
    assert json.loads(lake.read_system("run_in_flight.json"))["run_id"] == run_id


def test_a_run_after_a_failed_rollback_refuses_until_the_rollback_is_finished(
        synth: Synth, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed rollback leaves the marker saying so; the next execution must not replace it (its
    writes would never be rolled back): it fails before any stage, naming the run and the way out, in
    its error and its summary. Finishing the rollback as the error says puts the lake back as before
    the failed run, and runs start again."""
    handler, lake, _ = stage_function(synth, aws, monkeypatch)
    lake.write_arrow("silver", "customers", customers(5, "Lyon"))
    lake.write_partitions("bronze", "orders", ("_load_date",), orders(["2026-11-29", "2026-11-30"]))
    before = snapshot(lake)
    failed_run = execution_name(["s3://dev-landing/orders/orders-5.csv"], STARTED)
    lost: dict[str, bytes] = {}

    def failing(name: str) -> None:
        if name == "ingest_bronze":
            lake.write_partitions("bronze", "orders", ("_load_date",), orders(["2026-12-01"]))
        elif name == "conform_silver":
            lake.write_arrow("silver", "customers", customers(7, "Paris"))
            start = lake.system_uri("runs", failed_run, "start.json")
            lost["start"] = lake.storage.read_bytes(start)
            lake.storage.delete_file(start)  # what the rollback needs is out of reach

    walked = walk(synth.platform.orchestration.definition, execution_name=failed_run, started_at=STARTED,
                  fail=("dbt_build", FAILURE), invoke=lambda payload: handler(payload, None), on_stage=failing)
    assert walked.end == "RunFailed" and "RollBackRun" in walked.errors, walked.visited
    marker = json.loads(lake.read_system("run_in_flight.json"))
    assert marker["run_id"] == failed_run and "has no start record" in marker["rollback_error"]
    half_written = snapshot(lake)
    assert half_written != before

    next_run = execution_name(["s3://dev-landing/orders/orders-6.csv"], STARTED)
    ran: list[str] = []
    refused = walk(synth.platform.orchestration.definition, execution_name=next_run, started_at=STARTED,
                   invoke=lambda payload: handler(payload, None), on_stage=ran.append)
    assert refused.end == "RunFailed" and not ran, refused.visited
    assert refused.visited[refused.visited.index("RecordRunStart") + 1] == "Failed: RecordRunStart"
    error = refused.errors["RecordRunStart"]
    assert error["Error"] == "UnfinishedRunError"
    message = json.loads(error["Cause"])["errorMessage"]
    resolve = json.dumps({"step": "roll_back_run", "run_id": failed_run})
    assert f"run {failed_run} was not rolled back" in message and resolve in message
    assert lake.system_uri("run_in_flight.json") in message and "has no start record" in message
    summary = json.loads(lake.read_system("runs", next_run, "summary.json"))
    assert summary["error"].startswith(f"run start failed: UnfinishedRunError: run {failed_run} was not rolled back")
    assert resolve in summary["error"]
    assert snapshot(lake) == half_written  # the refused run wrote nothing
    assert json.loads(lake.read_system("run_in_flight.json")) == marker  # and kept the marker
    assert lake.read_system("runs", next_run, "start.json") is None
    from rfmlake.governance.erasure_aws import erase_on_s3

    with pytest.raises(RfmlakeError, match=f"pipeline run {failed_run} was not rolled back"):  # it would vacuum
        erase_on_s3(lake, "C000001", None, "test", allow_missing=False, profile_store=None, athena_results=None,
                    settings=load_settings(overrides={"prefix": lake.catalog.prefix}))

    # The way out the error names: the cause fixed, the rollback invoked again by hand.
    lake.write_system(lost["start"], "runs", failed_run, "start.json")
    finished = handler({"step": "roll_back_run", "run_id": failed_run}, None)
    assert finished["status"] == "rolled back" and finished["restored"] == ["bronze.orders", "silver.customers"]
    assert snapshot(lake) == before
    assert lake.read_system("run_in_flight.json") is None

    again: list[str] = []
    later = walk(synth.platform.orchestration.definition, execution_name=next_run + "-again", started_at=STARTED,
                 fail=("dbt_build", FAILURE), invoke=lambda payload: handler(payload, None), on_stage=again.append)
    assert "RecordRunStart" not in later.errors and again[:2] == ["ingest_bronze", "conform_silver"], later.visited
    assert later.results["RecordRunStart"]["earlier_run"] is None


def test_a_run_that_ended_without_its_rollback_is_rolled_back_before_the_next_run_starts(
        synth: Synth, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An execution stopped by hand (or timed out) runs no Catch: its stages stay committed and its
    marker stays. The next execution's RecordRunStart rolls it back before recording its own start."""
    handler, lake, _ = stage_function(synth, aws, monkeypatch)
    lake.write_arrow("silver", "customers", customers(5, "Lyon"))
    lake.write_system(b"model-a\n", "models", "segmentation", "current")
    before = snapshot(lake)
    stopped = "manual-2026-12-01"  # started by hand, stopped by hand after two stages
    handler({"step": "record_run_start", "run_id": stopped}, None)
    lake.write_arrow("silver", "customers", customers(7, "Paris"))
    lake.write_arrow("silver", "created_by_run", customers(2, "Nice"))
    lake.write_system(b"model-b\n", "models", "segmentation", "current")

    seen: dict[str, Any] = {}

    def first_stage(name: str) -> None:
        if not seen:
            seen["lake"], seen["model"] = snapshot(lake), lake.read_system("models", "segmentation", "current")

    next_run = execution_name(["s3://dev-landing/orders/orders-7.csv"], STARTED)
    walked = walk(synth.platform.orchestration.definition, execution_name=next_run, started_at=STARTED,
                  fail=("ingest_bronze", FAILURE), invoke=lambda payload: handler(payload, None), on_stage=first_stage)
    assert "RecordRunStart" not in walked.errors, walked.errors
    earlier = walked.results["RecordRunStart"]["earlier_run"]
    assert (earlier["run_id"], earlier["status"], earlier["dropped"]) == (stopped, "rolled back",
                                                                         ["silver.created_by_run"])
    assert seen["lake"] == before and seen["model"] == b"model-a\n"  # before the next run's first stage
    assert json.loads(lake.read_system("runs", stopped, "rollback.json"))["restored"] == ["silver.customers"]
    start = json.loads(lake.read_system("runs", next_run, "start.json"))
    assert start["earlier_run"]["run_id"] == stopped
