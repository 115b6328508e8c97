"""deploy.quicksight (optional) and deploy.serving: typed, with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfmlake.deploy import load_environment
from rfmlake.errors import ConfigError

BASE = "prefix: rfmlake_t\ndeploy:\n  name: t\n"


def load(tmp_path: Path, deploy_lines: str):
    (tmp_path / "t.yaml").write_text(BASE + deploy_lines, encoding="utf-8")
    return load_environment("t", tmp_path)


def test_quicksight_is_optional_and_serving_has_defaults(tmp_path: Path) -> None:
    deploy = load(tmp_path, "").deploy
    assert deploy.quicksight is None
    assert deploy.serving.opensearch.instance_count == 2
    assert deploy.serving.api.rate_limit > 0


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_shipped_environments_configure_quicksight_and_serving(env: str) -> None:
    deploy = load_environment(env).deploy
    assert deploy.quicksight is not None and deploy.quicksight.principals
    assert deploy.serving.pii_key_secret.endswith(f"{env}/pii-key")


@pytest.mark.parametrize(("lines", "message"), [
    ("  quicksight: {principals: ['arn:aws:iam::123456789012:role/x']}\n",
     r"deploy\.quicksight\.principals: .*not a QuickSight user or group ARN"),
    ("  quicksight: {principals: []}\n", r"deploy\.quicksight\.principals: .*at least 1"),
    ("  quicksight: {principals: ['arn:aws:quicksight:{region}:{account}:group/default/a'], import_mode: FAST}\n",
     r"deploy\.quicksight\.import_mode"),
    ("  serving: {opensearch: {instance_count: 3}}\n", r"deploy\.serving\.opensearch\.instance_count: .*multiple of 2"),
    ("  serving: {opensearch: {instance_type: t3.medium}}\n", r"deploy\.serving\.opensearch\.instance_type"),
    ("  serving: {api: {rate_limit: 0}}\n", r"deploy\.serving\.api\.rate_limit"),
    ("  serving: {api: {stage_name: v1}}\n", r"deploy\.serving\.api\.stage_name: unknown key"),
])
def test_bad_values_are_named(tmp_path: Path, lines: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, lines)
