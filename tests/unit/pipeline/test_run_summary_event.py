"""The run summary step's reading of a Step Functions execution (rfmlake.pipeline.remote): bad
payloads get a clear error, stage times and errors come out as the runner records them, and the
run ids the trigger makes are the ones the app and the schedules accept."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from rfmlake.deploy.names import name_problem
from rfmlake.errors import ConfigError
from rfmlake.pipeline.context import RUN_ID, check_run_id, new_run_id, run_time_key
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.remote import execution_stages, handle_event
from rfmlake.pipeline.trigger import execution_name

START = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return datetime.fromtimestamp(START.timestamp() + seconds, UTC).isoformat().replace("+00:00", "Z")


def test_the_summary_step_names_what_is_wrong_with_its_payload() -> None:
    env = {"RFMLAKE_LAKE": "/nowhere"}
    good = {"step": "summarize_run", "run_id": execution_name(["s3://l/a.csv"], START), "run_failed": False,
            "started_at": at(0), "ended_at": at(5), "execution": {}}
    with pytest.raises(ConfigError, match="the run summary needs the run id .* got '../x'"):
        handle_event({**good, "run_id": "../x"}, env=env)
    with pytest.raises(ConfigError, match="'execution' \\(an object\\)"):
        handle_event({**good, "execution": "x"}, env=env)
    with pytest.raises(ConfigError, match="ended_at 'soon' is not an ISO 8601 time"):
        handle_event({**good, "ended_at": "soon"}, env=env)


def test_stage_seconds_run_from_the_previous_stage_s_end_and_errors_keep_the_service_s_message() -> None:
    first, second, third = (s.name for s in PIPELINE[:3])
    lambda_error = {"Error": "PipelineError", "Cause": json.dumps(
        {"errorMessage": "quality failed: 3 critical checks\nsilver.orders ...", "errorType": "PipelineError",
         "stackTrace": ["..."]})}
    runs, error = execution_stages(
        {"stage_finished_at": {first: {"at": at(12.5)}, second: {"at": at(40)}}, "failed_stage": third,
         "error": lambda_error}, START, datetime.fromisoformat(at(41.25)), run_failed=True)
    assert [(r.name, r.status, r.seconds, r.error) for r in runs] == [
        (first, "succeeded", 12.5, None), (second, "succeeded", 27.5, None),
        (third, "failed", 1.25, "PipelineError: quality failed: 3 critical checks")]
    assert error == "PipelineError: quality failed: 3 critical checks"

    # a non-critical stage's caught error fails that stage, the run goes on; a summary after success has no error
    runs, error = execution_stages({"stage_finished_at": {first: {"at": at(3)}},
                                    "errors": {first: {"Error": "States.Timeout", "Cause": "no answer"}}},
                                   START, datetime.fromisoformat(at(3)), run_failed=False)
    assert [(r.status, r.error) for r in runs] == [("failed", "States.Timeout: no answer")] and error is None

    # the run failed outside the stages (the run summary itself): the error says where
    runs, error = execution_stages({"stage_finished_at": {first: {"at": at(3)}}, "failed_stage": "run summary",
                                    "error": {"Error": "Lambda.Unknown", "Cause": "boom"}},
                                   START, datetime.fromisoformat(at(4)), run_failed=True)
    assert [r.status for r in runs] == ["succeeded"] and error == "run summary failed: Lambda.Unknown: boom"


def test_run_ids_of_both_runtimes_are_run_ids_and_sort_by_their_start() -> None:
    landing = execution_name(["s3://landing/orders/a.csv"], START)
    schedule = landing.replace("landing-", "schedule-", 1)  # what the trigger names a scheduled run
    local = new_run_id()
    assert all(RUN_ID.match(run_id) for run_id in (landing, schedule, local))
    assert not RUN_ID.match("landing 2026-12-01") and not RUN_ID.match("../runs")
    assert run_time_key("landing-2026-12-01") == ""  # a name given by hand: no time in it
    assert run_time_key(landing) == run_time_key(schedule) == "20261201"
    later = execution_name(["s3://landing/orders/a.csv"], datetime(2026, 12, 2, tzinfo=UTC))
    assert sorted([later, schedule, landing], key=run_time_key)[-1] == later


HAND_STARTED = ["manual-2026-12-07", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "rerun_after_fix", "A", "x" * 80]


@pytest.mark.parametrize("name", HAND_STARTED)
def test_executions_started_by_hand_are_runs(name: str) -> None:
    """An execution an operator starts from the console, under a name of their own or the console's
    default UUID, gets its start recorded, its rollback and its summary like the trigger's."""
    assert check_run_id(name) == name and RUN_ID.match(name)
    assert name_problem("execution", name) is None  # a name Step Functions takes
    assert run_time_key(name) == "" and run_time_key(name, "2026-12-07T10:00:00+00:00") == "20261207"


@pytest.mark.parametrize("name", ["", "x" * 81, "..", ".", "-leading-hyphen", "a/b", "a b", "name.with.dots",
                                  "it's", "a:b", "caf\u00e9", None, 7])
def test_run_ids_stay_safe_in_keys_paths_and_sql(name: object) -> None:
    """Longer than Step Functions takes, a path step, an option-like first character, characters
    Step Functions refuses, and those it takes that are unsafe in a path, SQL text or the AWS names a
    run id goes into: a clear error saying what a run id is."""
    with pytest.raises(ConfigError, match="1-80 letters, digits, '-' and '_', starting with a letter or digit"):
        check_run_id(name, "the run")


def test_the_stage_function_accepts_a_hand_started_execution_s_summary(tmp_path) -> None:  # noqa: ANN001
    """The summary step of an execution named by hand gets past the run id: it writes the summary."""
    from rfmlake.lake import Lake

    lake = Lake(tmp_path / "lake")
    result = handle_event({"step": "summarize_run", "run_id": "manual-2026-12-07", "run_failed": True,
                           "started_at": at(0), "ended_at": at(5),
                           "execution": {"failed_stage": "ingest_bronze", "error": {"Error": "X", "Cause": "y"}}},
                          env={"RFMLAKE_LAKE": str(tmp_path / "lake")})
    assert result["status"] == "failed"
    assert json.loads(lake.read_system("runs", "manual-2026-12-07", "summary.json"))["error"] == "X: y"
