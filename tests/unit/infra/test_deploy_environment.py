"""config/<env>.yaml: pipeline settings + a typed deploy section, with precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfmlake.cli.main import main
from rfmlake.deploy import load_environment
from rfmlake.errors import ConfigError
from rfmlake.settings import load_settings

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_shipped_environments_load(env: str) -> None:
    environment = load_environment(env, REPO / "config")
    assert environment.deploy.name == env
    assert environment.resource_prefix == environment.prefix.replace("_", "-")
    settings = environment.pipeline_settings(journeys_dir="s3://artifacts/journeys/")
    assert "deploy" not in settings
    assert load_settings_from(settings).journeys.dir == "s3://artifacts/journeys/"
    load_settings(REPO / "config" / f"{env}.yaml")  # the pipeline can run with the same file


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_deployed_jobs_read_the_pii_key_from_the_apis_secret(env: str) -> None:
    """The jobs tokenize with the key the profile API looks emails up with: one secret for both."""
    environment = load_environment(env, REPO / "config")
    settings = environment.pipeline_settings(journeys_dir="s3://artifacts/journeys/")
    assert settings["pii_key_secret"] == environment.deploy.serving.pii_key_secret == f"rfmlake/{env}/pii-key"
    assert load_settings_from(settings).pii_key_secret == f"rfmlake/{env}/pii-key"


def load_settings_from(document: dict) -> object:
    from rfmlake.settings import Settings

    return Settings.model_validate(document)


def test_local_settings_are_untouched() -> None:
    assert load_settings(REPO / "config" / "local.yaml").deploy is None


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "dev.yaml").write_text(text)
    return tmp_path


def test_missing_deploy_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no `deploy:` section"):
        load_environment("dev", write(tmp_path, "prefix: rfmlake_dev\n"))


def test_bad_deploy_keys_are_named(tmp_path: Path) -> None:
    text = "deploy:\n  name: dev\n  account: '12'\n  glue: {number_of_workers: 1}\n  colour: blue\n"
    with pytest.raises(ConfigError) as info:
        load_environment("dev", write(tmp_path, text))
    message = str(info.value)
    assert "deploy.account" in message and "deploy.glue.number_of_workers" in message
    assert "deploy.colour: unknown key" in message


def test_name_must_match_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="deploy.name is 'prod'"):
        load_environment("dev", write(tmp_path, "deploy: {name: prod}\n"))


def test_a_journeys_folder_of_its_own_is_refused(tmp_path: Path) -> None:
    """Deployed, the journeys are those of the folder the marketing app edits; another would split them."""
    with pytest.raises(ConfigError, match=r"journeys.dir: remove it; .* s3://<artifacts bucket>/journeys/"):
        load_environment("dev", write(tmp_path, "journeys: {dir: s3://elsewhere/journeys/}\ndeploy: {name: dev}\n"))


def test_bad_environment_name() -> None:
    with pytest.raises(ConfigError, match="environment name"):
        load_environment("../etc")


def test_deploy_without_cdk_cli_says_so(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert main(["deploy", "--env", "dev"]) == 1
    assert "AWS CDK CLI (`cdk`) is not installed" in capsys.readouterr().err


def test_deploy_without_credentials_says_so(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/cdk")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["deploy", "--env", "dev"]) == 1
    assert "no AWS credentials found" in capsys.readouterr().err


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_deployed_runs_choose_the_reporting_currency_as_local_runs_do(env: str) -> None:
    """dbt gets the same currency vars on AWS as locally: no fixed reporting currency, so a USD-only
    shop is reported in USD without rates on both runtimes (config/dev.yaml used to fix EUR, and
    such a shop's deployed run stopped asking for USD rates that a local run never needed)."""
    from rfmlake.modeling.dbt_runner import dbt_vars

    currency = ("reporting_currency", "default_currency", "currency_rates")
    deployed = dbt_vars(load_settings(REPO / "config" / f"{env}.yaml"), None, "athena")
    local = dbt_vars(load_settings(REPO / "config" / "local.yaml"), None, "local")
    assert {k: deployed[k] for k in currency} == {k: local[k] for k in currency}
    assert deployed["reporting_currency"] is None
