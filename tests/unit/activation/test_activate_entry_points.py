"""`rfmlake activate`, the Lambda handler and the pipeline stage run the same package code."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from activation_lakes import round_robin, write_customers, write_rfm
from rfmlake.activation.config import destination_from_env, destination_names_from_env
from rfmlake.activation.errors import ActivationError
from rfmlake.activation.lambda_event import handle_event, new_gold_version
from rfmlake.cli.main import main
from rfmlake.pipeline.definition import stage_names

ROOT = Path(__file__).resolve().parents[3]


def _event(key: str) -> dict:
    return {"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": "lake"}, "object": {"key": key}}}


def test_cli_activate_file_destination_then_nothing_new(lake, capsys):
    write_customers(lake, 6, no_consent={0})
    write_rfm(lake, round_robin(6))
    assert main(["activate", "--lake", str(lake.root), "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert reports[0]["sent"] == 5 and reports[0]["skipped"] == {"no_marketing_consent": 1}
    assert main(["activate", "--lake", str(lake.root)]) == 0
    assert "up_to_date" in capsys.readouterr().out
    assert main(["activate", "--lake", str(lake.root), "--full"]) == 0
    assert "sent: 5" in capsys.readouterr().out


def test_cli_errors_are_one_line(lake, tmp_path, capsys):
    assert main(["activate", "--lake", str(tmp_path / "nope")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    lake.root.mkdir(parents=True)
    assert main(["activate", "--lake", str(lake.root)]) == 1
    assert "gold.customer_rfm does not exist" in capsys.readouterr().err


def test_destination_config_from_env_is_checked():
    with pytest.raises(ActivationError, match="RFMLAKE_PINPOINT_APPLICATION_ID"):
        destination_from_env("pinpoint", {"RFMLAKE_PINPOINT_ACKNOWLEDGE_RETIRED": "true"})
    with pytest.raises(ActivationError, match="unknown destination"):
        destination_names_from_env({"RFMLAKE_ACTIVATION_DESTINATIONS": "file,mailchimp"})
    dest = destination_from_env("ses", {"RFMLAKE_SES_CONTACT_LIST": "vip"})
    assert dest.contact_list == "vip"  # type: ignore[attr-defined]
    assert destination_names_from_env({}) == ["file"]


def test_event_parsing():
    assert new_gold_version(_event("lake/gold/customer_rfm/versions/V1/part-0.parquet")) == "V1"
    assert new_gold_version(_event("lake/gold/customer_rfm/_current")) == "_current"
    assert new_gold_version(_event("lake/gold/dim_customers/_current")) is None
    with pytest.raises(ActivationError, match="not an S3 Object Created event"):
        new_gold_version({"source": "aws.sqs"})


def test_lambda_handler_syncs_the_committed_version_once(lake, monkeypatch):
    write_customers(lake, 4)
    version = write_rfm(lake, round_robin(4))
    env = {"RFMLAKE_LAKE": str(lake.root), "RFMLAKE_ACTIVATION_DESTINATIONS": "file"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location("activate_handler", ROOT / "lambdas/activate_segments/handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    context = SimpleNamespace(function_name="f", memory_limit_in_mb=128, invoked_function_arn="arn", aws_request_id="r")
    result = module.handler(_event(f"x/gold/customer_rfm/versions/{version}/part-00000.parquet"), context)
    assert result["status"] == "done" and result["reports"][0]["sent"] == 4
    again = module.handler(_event("x/gold/customer_rfm/_current"), context)  # a duplicate trigger
    assert again["reports"][0]["status"] == "up_to_date" and again["reports"][0]["sent"] == 0
    assert handle_event(_event("x/gold/customer_rfm/versions/OTHER/p.parquet"), env)["status"] == "ignored"


def test_activate_runs_after_every_gold_stage_and_journeys_after_it():
    # journeys trigger on the segment changes activation has just pushed (docs/journeys.md)
    assert stage_names()[-2:] == ["activate", "journeys"]


def test_cli_activate_takes_the_lake_lock_that_runs_and_erasures_take(lake, monkeypatch, capsys):
    """A sync never overlaps a pipeline run or an erasure: while one holds the lake, `rfmlake
    activate` is refused and sends nothing; while a sync runs, an erasure is refused."""
    import rfmlake.activation.run as activation_run
    from rfmlake.errors import PipelineError, RfmlakeError
    from rfmlake.governance.erasure import erase_customer
    from rfmlake.lake.locks import lake_lock

    write_customers(lake, 4)
    write_rfm(lake, round_robin(4))
    outbox = lake.root / "gold" / "_activation"
    with lake_lock(lake, PipelineError("a run or an erasure holds the lake")):
        assert main(["activate", "--lake", str(lake.root)]) == 1
    assert "is using the lake" in capsys.readouterr().err
    assert not outbox.exists() or not any(outbox.rglob("*.jsonl"))

    real = activation_run.activate
    refused: list[str] = []

    def activate_while_someone_erases(*args, **kwargs):  # an erasure started while the sync runs
        with pytest.raises(RfmlakeError, match="is using the lake") as caught:
            erase_customer(lake, "C1")
        refused.append(str(caught.value))
        return real(*args, **kwargs)

    monkeypatch.setattr(activation_run, "activate", activate_while_someone_erases)
    assert main(["activate", "--lake", str(lake.root), "--json"]) == 0
    assert refused and json.loads(capsys.readouterr().out)[0]["sent"] == 4
