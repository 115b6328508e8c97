"""Argument parsing of the Glue entry scripts (argparse path: awsglue is not installed locally)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfmlake.ingest.jobs import JobArgs, build_context, parse_job_args


def test_parse_all_arguments_and_ignore_glue_extras() -> None:
    args = parse_job_args(
        ["job.py", "--landing", "/l", "--lake", "/k", "--config", "c.yaml", "--run-id", "r1", "--JOB_NAME", "x"]
    )
    assert args == JobArgs("/l", "/k", "c.yaml", "r1")


def test_landing_is_required_for_bronze_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_job_args(["job.py", "--lake", "/k"])
    assert "--landing" in capsys.readouterr().err
    assert parse_job_args(["job.py", "--lake", "/k"], require_landing=False).landing is None


def test_build_context(tmp_path: Path) -> None:
    ctx = build_context(JobArgs(str(tmp_path / "landing"), str(tmp_path / "lake"), None, "run-7"))
    assert ctx.run_id == "run-7"
    assert ctx.lake.root == (tmp_path / "lake").resolve()
    assert ctx.settings.default_currency == "EUR"


def test_build_context_keeps_s3_locations_intact() -> None:
    ctx = build_context(JobArgs("s3://landing-bucket/in/", "s3://lake-bucket/lake", None, None))
    assert ctx.landing_dir == "s3://landing-bucket/in/"  # as Glue passes it; Path would make it s3:/...
    assert ctx.lake.location == "s3://lake-bucket/lake" and not ctx.lake.is_local
    assert ctx.lake.catalog is not None  # pointers are Glue table locations on AWS
