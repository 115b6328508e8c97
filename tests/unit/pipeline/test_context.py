"""RunContext.home_lake: the lake a stage's run belongs to, with the caller's AWS session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3

from rfmlake.lake import Lake
from rfmlake.lake.workspace import WorkspaceLake
from rfmlake.pipeline.context import RunContext
from rfmlake.settings import load_settings


def test_a_workspace_copy_belongs_to_its_lake_on_s3_with_that_lakes_session(tmp_path: Path) -> None:
    session = boto3.Session(region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")
    remote = Lake("s3://lake-bucket/lake", boto3_session=session)
    local = WorkspaceLake(tmp_path / "workspace", remote=remote, in_place=())
    ctx = RunContext(landing_dir="s3://landing/", lake=local, settings=load_settings(),
                     workspace_of=remote.location)
    assert ctx.home_lake is remote  # the earlier runs' reports are read with the stage's own session


def test_a_named_workspace_location_keeps_the_runs_session(tmp_path: Path) -> None:
    session = boto3.Session(region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")
    ctx = RunContext(landing_dir="s3://landing/", lake=Lake(tmp_path / "w", boto3_session=session),
                     settings=load_settings(), workspace_of="s3://lake-bucket/lake")
    home = ctx.home_lake
    assert (home.location, home.boto3_session) == ("s3://lake-bucket/lake", session)


def test_a_local_run_belongs_to_its_own_lake(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    assert RunContext(landing_dir=tmp_path, lake=lake, settings=load_settings()).home_lake is lake


def test_recording_a_runs_kept_state_does_not_import_scikit_learn() -> None:
    """RecordRunStart and RollBackRun (rfmlake.pipeline.rollback) need the segmentation model's
    pointer path, not the model: scikit-learn's import took about 3 s of the step's cold start."""
    code = ("import sys; from rfmlake.pipeline.rollback import kept_state_paths; kept_state_paths(); "
            "from rfmlake.segmentation import ModelStore; "
            "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")})
    assert done.stdout.strip() == "[]"
