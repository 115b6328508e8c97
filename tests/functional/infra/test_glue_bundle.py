"""The Glue jobs start without PyPI: each installs, with `pip --no-deps`, exactly the rfmlake wheel and the
wheels of the `glue` extra's closure (rfmlake_infra.build), and the Glue entry scripts run, as their jobs
start them, with nothing importable beyond those and what Glue 5.0 provides.

The scripts run under local pyspark in a fresh interpreter (tests/glue_probe.py) on a generated landing,
with every top-level module of every other installed distribution blocked (dbt, great-expectations,
DuckDB, scikit-learn, ...): an import the Spark stages need but the bundle lacks fails the job here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

from distributions import blocked_modules, missing, requirements_closure, third_party
from infra_synth import REPO, Synth, resources
from rfmlake.pipeline.definition import PIPELINE

pytest.importorskip("aws_cdk")
SPARK_STAGES = [stage for stage in PIPELINE if stage.runtime == "spark"]
NEVER_ON_GLUE = {"dbt-core", "dbt-duckdb", "dbt-athena-community", "great-expectations", "duckdb", "scikit-learn",
                 "scipy", "fastapi", "opensearch-py"}


def glue_extra() -> list[str]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["glue"]


def on_glue() -> set[str]:
    """Distributions a Glue job can import: the package, the `glue` extra's closure, what Glue provides."""
    from rfmlake_infra.build import GLUE_PROVIDED

    provided = [name for name in GLUE_PROVIDED if name != "pyspark"] + ["pyspark"]
    return {"rfmlake"} | requirements_closure(glue_extra()) | requirements_closure(provided)


def job(synth: Synth, stage: str) -> dict[str, Any]:
    from rfmlake_infra.compute import job_name

    name = job_name(synth.platform.environment, next(s for s in PIPELINE if s.name == stage))
    (props,) = [j["Properties"] for j in resources(synth.templates[synth.platform.compute.stack_name],
                                                   "AWS::Glue::Job").values() if j["Properties"]["Name"] == name]
    return props


def test_each_job_installs_exactly_the_bundle_without_resolving(synth: Synth) -> None:
    from rfmlake_infra.build import GLUE_PROVIDED

    bundle = synth.artifacts.glue_bundle
    names = {canonicalize_name(parse_wheel_filename(w.name)[0]) for w in bundle}
    wanted = requirements_closure(glue_extra()) - GLUE_PROVIDED - requirements_closure(sorted(GLUE_PROVIDED))
    assert names == wanted, "the bundle is not the glue extra's closure less what Glue provides"
    assert not names & NEVER_ON_GLUE
    for stage in SPARK_STAGES:
        arguments = job(synth, stage.name)["DefaultArguments"]
        modules = json.dumps(arguments["--additional-python-modules"])
        assert f"/wheels/{synth.wheel_name}" in modules
        assert all(f"/glue-python/{wheel.name}" in modules for wheel in bundle)
        assert modules.count(".whl") == len(bundle) + 1  # nothing else, and no name pip would look up
        assert arguments["--python-modules-installer-option"] == "--no-deps"


@pytest.mark.spark
def test_the_glue_scripts_run_with_only_the_bundle_and_glue(synth: Synth, tmp_path: Path) -> None:
    """Each Spark stage's script, started as its Glue job starts it, runs to the end on a landing with
    bad rows of every kind: bronze holds every landed row, silver quarantines exactly the injected
    ones, and each file reconciles (the one test that runs the entry scripts themselves, unchanged)."""
    from rfmlake.cli.main import main as rfmlake
    from rfmlake.lake import Lake

    allowed = on_glue()
    assert not allowed & NEVER_ON_GLUE
    blocked = tmp_path / "blocked.json"
    blocked.write_text(json.dumps(sorted(blocked_modules(allowed))))
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    assert rfmlake(["generate", "--out", str(landing), "--order-lines", "1000", "--bad-rows"]) == 0
    compute = synth.platform.compute
    printed = {}
    for stage in SPARK_STAGES:
        work = tmp_path / stage.name
        work.mkdir()
        (work / "settings.yaml").write_text(compute.settings_text)  # --extra-files puts it in the working dir
        arguments = []
        for key in job(synth, stage.name)["DefaultArguments"]:
            if key in ("--lake", "--landing", "--config", "--metrics"):
                local = {"--lake": str(lake), "--landing": str(landing), "--config": "settings.yaml",
                         "--metrics": "local"}[key]  # the S3 locations, as local folders; no CloudWatch here
                arguments += [key, local]
        arguments += ["--run_id", "glue-probe"]
        command = [sys.executable, "-I", str(REPO / "tests" / "glue_probe.py"), str(REPO / stage.glue_script),
                   str(work), str(blocked), "--", *arguments]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYSPARK_PYTHON": sys.executable})
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads((work / "probe.json").read_text())
        assert report["import_error"] is None, (
            f"{stage.glue_script} imports a distribution the Glue bundle lacks: add it to the `glue` extra "
            f"({report['import_error']})")
        assert report["outcome"] == "exit 0", (report["outcome"], done.stderr[-3000:])
        owners, unknown = third_party(report["modules"])
        assert unknown == [] and missing(owners, allowed) == {}
        printed[stage.name] = done.stdout

    generated = json.loads((landing / "_generator_manifest.json").read_text())
    for entity, rows in generated["rows_per_entity"].items():
        assert f"bronze.{entity}: {rows} rows from " in printed["ingest_bronze"], entity
    summary = json.loads(printed["conform_silver"])
    injected = {f"{entity}/{reason}": count for entity, reasons in generated["injected_bad_rows"].items()
                for reason, count in reasons.items()}
    assert summary["quarantine"] == injected
    metrics = summary["metrics"]  # --metrics local: recorded, not sent to CloudWatch
    assert metrics["published_to"] == "local" and "publish_error" not in metrics
    assert metrics["rows_in"] == sum(generated["rows_per_entity"].values())
    assert metrics["rows_quarantined"] == sum(injected.values())
    assert all(f["rows_in"] == f["rows_accepted"] + f["rows_quarantined"] for f in summary["reconciliation"])
    lake = Lake(lake)
    assert lake.current("silver", "orders") is not None and lake.current("bronze", "quarantine") is not None
