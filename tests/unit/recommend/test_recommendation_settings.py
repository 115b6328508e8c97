"""The recommendations settings: defaults, and a bad value named by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfmlake.errors import ConfigError
from rfmlake.settings import load_settings


def test_defaults_keep_personalize_off() -> None:
    settings = load_settings().recommendations
    assert (settings.n, settings.max_per_category, settings.test_days) == (10, 4, 90)
    assert (settings.evaluate_every_days, settings.refit_every_days) == (7, 7)
    assert settings.personalize.enabled is False and settings.personalize.exchange_uri is None


@pytest.mark.parametrize(("text", "expected"), [
    ("recommendations:\n  n: 0\n", "recommendations.n: Input should be greater than or equal to 1"),
    ("recommendations:\n  view_weight: 2\n", "recommendations.view_weight: Input should be less than or equal to 1"),
    ("recommendations:\n  test_days: 3\n", "recommendations.test_days: Input should be greater than or equal to 7"),
    ("recommendations:\n  personalize:\n    exchange_uri: http://bucket/x\n",
     "recommendations.personalize.exchange_uri: String should match pattern"),
    ("recommendations:\n  personalize:\n    solution_arn: arn:aws:s3:::bucket\n",
     "recommendations.personalize.solution_arn: String should match pattern"),
    ("recommendations:\n  neighbours: 5\n", "recommendations.neighbours: unknown key"),
    ("recommendations:\n  refit_every_days: -1\n",
     "recommendations.refit_every_days: Input should be greater than or equal to 0"),
])
def test_a_bad_setting_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert expected in str(caught.value)


def test_a_deployed_exchange_and_solution_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("recommendations:\n  personalize:\n    enabled: true\n"
                    "    exchange_uri: s3://rfmlake-personalize-123456789012\n"
                    "    solution_arn: arn:aws:personalize:eu-west-1:123456789012:solution/rfmlake-recommendations\n")
    assert load_settings(path).recommendations.personalize.enabled
