"""Settings for customer value: defaults and precise errors naming the key."""

from __future__ import annotations

import pytest

from rfmlake.errors import ConfigError
from rfmlake.settings import load_settings


def test_value_defaults() -> None:
    settings = load_settings()
    assert settings.value.horizon_days == 365 and settings.value.holdout_days is None


@pytest.mark.parametrize(("key", "value", "message"), [
    ("value.horizon_days", 0, "value.horizon_days: Input should be greater than or equal to 1"),
    ("value.horizon_days", 5000, "value.horizon_days: Input should be less than or equal to 3650"),
    ("value.holdout_days", 3, "value.holdout_days: Input should be greater than or equal to 7"),
    ("value.horizon", 30, "value.horizon: unknown key"),
])
def test_invalid_value_settings_name_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(overrides={key: value})
    assert message in str(error.value)
