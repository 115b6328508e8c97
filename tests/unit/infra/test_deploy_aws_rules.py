"""deploy: sizes are held to what AWS accepts (botocore's enums + the cited rules in rfmlake.deploy.aws_rules),
so a bad value fails when the config loads, naming its key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rfmlake.cli.main import main
from rfmlake.deploy import aws_rules, load_environment
from rfmlake.deploy.environment import DbtSizing, GlueSizing, OpenSearchSizing, SageMakerSizing
from rfmlake.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
BASE = "prefix: rfmlake_t\ndeploy:\n  name: t\n"


def load(tmp_path: Path, deploy_lines: str):
    (tmp_path / "t.yaml").write_text(BASE + deploy_lines, encoding="utf-8")
    return load_environment("t", tmp_path)


def opensearch(**values: object) -> str:
    return "  serving:\n    opensearch: {" + ", ".join(f"{k}: {v}" for k, v in values.items()) + "}\n"


@pytest.mark.parametrize(("lines", "message"), [
    # not in botocore's enums, with a suggestion when one is close
    ("  glue: {worker_type: G.3X}\n", r"deploy\.glue\.worker_type: 'G\.3X' is not a Glue worker type .*'glue' model, WorkerType"),
    ("  dbt: {compute_type: BUILD_GENERAL1_SMAL}\n",
     r"deploy\.dbt\.compute_type: .*not a CodeBuild compute type.*did you mean 'BUILD_GENERAL1_SMALL'"),
    ("  sagemaker: {instance_type: ml.m5.larg}\n",
     r"deploy\.sagemaker\.instance_type: .*ProcessingInstanceType.*did you mean 'ml\.m5\.large'"),
    (opensearch(instance_type="t3.medium"),
     r"deploy\.serving\.opensearch\.instance_type: 't3\.medium' is not an OpenSearch Service instance type"),
    (opensearch(instance_type="m6g.larg.search"),  # a family botocore knows with a mistyped size
     r"instance_type: 'm6g\.larg\.search' is not an OpenSearch Service instance type.*did you mean 'm6g\.large"),
    # in the enum, but not usable by what the stacks build
    ("  glue: {worker_type: Z.2X}\n", r"deploy\.glue\.worker_type: Z\.2X is for Ray jobs"),
    ("  glue: {worker_type: G.025X}\n", r"deploy\.glue\.worker_type: G\.025X is for streaming jobs"),
    ("  glue: {worker_type: Standard}\n", r"deploy\.glue\.worker_type: Standard is not offered for Spark jobs"),
    ("  dbt: {compute_type: BUILD_LAMBDA_1GB}\n", r"deploy\.dbt\.compute_type: BUILD_LAMBDA_1GB: the dbt build runs on"),
    (opensearch(instance_type="t2.small.search"), r"instance_type: t2\.small\.search cannot encrypt data at rest"),
    (opensearch(instance_type="r3.large.search"), r"instance_type: r3\.large\.search cannot encrypt data at rest"),
    (opensearch(instance_type="i3.large.search"), r"instance_type: i3\.large\.search has instance storage only"),
    (opensearch(instance_type="r6gd.large.search"), r"instance_type: r6gd\.large\.search has instance storage only"),
    (opensearch(instance_type="m4.large.search"), r"instance_type: m4\.large\.search cannot use gp3"),
    (opensearch(instance_type="t3.large.search"), r"instance_type: t3\.large\.search: .*only as t3\.small\.search"),
    (opensearch(instance_type="ultrawarm1.medium.search"), r"instance_type: ultrawarm1\.medium\.search is an UltraWarm"),
    (opensearch(engine_version="OpenSearch_2"), r"engine_version: 'OpenSearch_2' is not an OpenSearch engine version"),
    (opensearch(engine_version="Elasticsearch_7.10"), r"engine_version: 'Elasticsearch_7\.10' is not an OpenSearch"),
    (opensearch(instance_count=3), r"instance_count: 3 data nodes cannot be spread evenly over the 2 Availability"),
    (opensearch(instance_count=0), r"instance_count: 0 data nodes cannot be spread evenly"),
    (opensearch(instance_count=12), r"instance_count: more than 10 data nodes needs dedicated master nodes"),
    (opensearch(volume_size_gb=9), r"volume_size_gb: EBS volumes are at least 10 GiB"),
    (opensearch(instance_type="t3.medium.search", volume_size_gb=201),
     r"volume_size_gb: 201 GiB is more than t3\.medium\.search takes: gp3 volumes of 10-200 GiB"),
    (opensearch(instance_type="m6g.large.search", volume_size_gb=1025), r"volume_size_gb: 1025 GiB is more than m6g\.large"),
])
def test_each_rule_rejects_a_bad_value_naming_the_key(tmp_path: Path, lines: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, lines)


@pytest.mark.parametrize("lines", [
    "  glue: {worker_type: G.16X}\n",
    "  glue: {worker_type: R.1X}\n",
    "  dbt: {compute_type: BUILD_GENERAL1_LARGE}\n",
    "  sagemaker: {instance_type: ml.c5.xlarge}\n",
    opensearch(engine_version="OpenSearch_3.1", instance_type="t3.small.search", instance_count=2, volume_size_gb=100),
    opensearch(instance_type="t3.medium.search", volume_size_gb=200),
    opensearch(instance_type="m6g.large.search", instance_count=10, volume_size_gb=1024),
    opensearch(instance_type="r6g.12xlarge.search", volume_size_gb=24 * 1024),  # above the old 16 TiB cap
    opensearch(instance_type="or1.medium.search", volume_size_gb=5000),  # no tabulated maximum: AWS checks it
])
def test_good_values_load(tmp_path: Path, lines: str) -> None:
    load(tmp_path, lines)


def test_deploy_synth_stops_on_a_bad_value_before_synthesizing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "t.yaml").write_text(BASE + opensearch(instance_type="t2.medium.search"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("rfmlake.deploy.cdk.synth", lambda *a, **k: pytest.fail("synthesized a bad config"))
    assert main(["deploy", "--env", "t", "--synth"]) == 1
    assert "deploy.serving.opensearch.instance_type: t2.medium.search cannot encrypt" in capsys.readouterr().err


def test_an_invalid_instance_type_does_not_add_a_volume_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, opensearch(instance_type="t2.small.search", volume_size_gb=5000))
    assert "instance_type" in str(info.value) and "volume_size_gb" not in str(info.value)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_shipped_configs_pass_every_rule(env: str) -> None:
    deploy = load_environment(env, REPO / "config").deploy
    # load_environment ran the validators; re-run the rules on the loaded values to show each one passes
    os_ = deploy.serving.opensearch
    aws_rules.check_opensearch_engine_version(os_.engine_version)
    aws_rules.check_opensearch_instance_type(os_.instance_type)
    aws_rules.check_opensearch_data_nodes(os_.instance_count)
    aws_rules.check_opensearch_volume_gib(os_.volume_size_gb, os_.instance_type)
    aws_rules.check_glue_worker_type(deploy.glue.worker_type)
    aws_rules.check_codebuild_compute_type(deploy.dbt.compute_type)
    aws_rules.check_sagemaker_processing_instance_type(deploy.sagemaker.instance_type)


@pytest.mark.parametrize("model", [GlueSizing, DbtSizing, SageMakerSizing, OpenSearchSizing])
def test_defaults_pass_their_own_rules(model: type) -> None:
    # pydantic does not validate defaults; validating a dump of them runs every rule on them
    model.model_validate(model().model_dump())


def test_every_tabulated_ebs_limit_is_a_type_the_rules_accept() -> None:
    for instance_type in aws_rules._GP3_MAX_GIB:
        assert aws_rules.check_opensearch_instance_type(instance_type) == instance_type


def test_without_botocore_the_error_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_rules._service_model.cache_clear()
    monkeypatch.setitem(sys.modules, "botocore.session", None)  # makes `import botocore.session` fail
    try:
        with pytest.raises(ConfigError, match=r"needs botocore: pip install 'rfmlake\[infra\]'"):
            load(tmp_path, opensearch(instance_type="t3.small.search"))
    finally:
        aws_rules._service_model.cache_clear()


def test_botocore_models_load_when_a_config_is_validated_not_on_import() -> None:
    code = (
        "import sys\n"
        "from rfmlake.deploy.environment import OpenSearchSizing\n"
        "OpenSearchSizing()\n"
        "assert 'botocore' not in sys.modules, 'imported at import time'\n"
        "OpenSearchSizing.model_validate({'instance_type': 't3.small.search'})\n"
        "assert 'botocore' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_newer_opensearch_family_than_botocore_knows_is_left_to_aws() -> None:
    from rfmlake.deploy.aws_rules import check_opensearch_instance_type

    # m7g is sold by AWS but missing from botocore 1.44's list; x9z stands for any family after it.
    for value in ("m7g.large.search", "x9z.2xlarge.search"):
        assert check_opensearch_instance_type(value) == value
