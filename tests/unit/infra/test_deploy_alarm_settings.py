"""deploy.alarms: the quarantine rate threshold, defaulted, validated, named in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfmlake.deploy import load_environment
from rfmlake.errors import ConfigError

BASE = "prefix: rfmlake_t\ndeploy:\n  name: t\n"


def load(tmp_path: Path, deploy_lines: str):
    (tmp_path / "t.yaml").write_text(BASE + deploy_lines, encoding="utf-8")
    return load_environment("t", tmp_path)


def test_quarantine_rate_threshold_defaults_and_is_configurable(tmp_path: Path) -> None:
    assert load(tmp_path, "").deploy.alarms.quarantine_rate_percent == 5
    assert load(tmp_path, "  alarms: {quarantine_rate_percent: 0.5}\n").deploy.alarms.quarantine_rate_percent == 0.5
    assert load_environment("prod").deploy.alarms.quarantine_rate_percent == 5


@pytest.mark.parametrize(("lines", "message"), [
    ("  alarms: {quarantine_rate_percent: 0}\n", r"deploy\.alarms\.quarantine_rate_percent: .*greater than 0"),
    ("  alarms: {quarantine_rate_percent: 120}\n", r"deploy\.alarms\.quarantine_rate_percent: .*less than or equal to 100"),
    ("  alarms: {quarantine_rate: 5}\n", r"deploy\.alarms\.quarantine_rate: unknown key"),
])
def test_bad_thresholds_are_named(tmp_path: Path, lines: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, lines)
