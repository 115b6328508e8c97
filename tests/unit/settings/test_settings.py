import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from rfmlake.errors import ConfigError
from rfmlake.settings import Settings, load_settings


def test_repo_local_config_is_valid() -> None:
    settings = load_settings(Path(__file__).parents[3] / "config" / "local.yaml")
    assert settings.rfm.score_bins == 5
    # no built-in rates: the reporting currency comes from the data unless set (docs/pipeline.md)
    assert settings.reporting_currency is None and settings.currency_rates == {}


def _setting_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            keys += [prefix + name, *_setting_keys(nested, f"{prefix}{name}.")]
        else:
            keys.append(prefix + name)
    return keys


def test_repo_local_config_documents_every_key() -> None:
    # README: "config/local.yaml documents every key". A key is there as a setting, or (the options a
    # channel takes only with another destination) named in a comment of its section.
    text = (Path(__file__).parents[3] / "config" / "local.yaml").read_text()
    data = yaml.safe_load(text)

    def present(key: str) -> bool:
        node = data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    keys = [k for k in _setting_keys(Settings) if k != "deploy"]  # config/dev.yaml and prod.yaml: deploy
    undocumented = [k for k in keys if not present(k) and not (
        "." in k and present(k.rsplit(".", 1)[0]) and re.search(rf"#.*\b{k.rsplit('.', 1)[1]}\b", text))]
    assert undocumented == []


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rfm:\n  score_bins: 1\n", "rfm.score_bins: Input should be greater than or equal to 2"),
        ("rfm:\n  returns_policy: keep\n", "rfm.returns_policy: Input should be 'exclude' or 'net'"),
        ("rfm:\n  counted_statuses: [shipped]\n", "rfm.counted_statuses: unknown status ['shipped']; allowed:"),
        ("rfm:\n  bins: 5\n", "rfm.bins: unknown key"),
        ("reporting_currency: EUR\ncurrency_rates:\n  EUR: 1\n  usd: 2\n", "currency code: 'usd' is not an ISO 4217 code"),
        ("reporting_currency: EUR\ncurrency_rates:\n  XYZ: 2\n", "'XYZ' is not an ISO 4217 currency code"),
        ("reporting_currency: EUR\ncurrency_rates:\n  USD: 0\n", "rate for USD must be > 0"),
        ("reporting_currency: euro\n", "reporting_currency: currency: 'euro' is not an ISO 4217 code"),
        ("currency_rates:\n  USD: 0.92\n", "currency_rates are units of reporting_currency per unit of each currency: "
         "set reporting_currency too (rates given for USD)"),
        ("reporting_currency: EUR\ncurrency_rates:\n  EUR: 0.9\n", "the reporting currency's own rate is 1"),
        ("rfm:\n  source: clicks\n", "rfm.source: Input should be 'orders' or 'events'"),
        ("rfm:\n  purchase_event_types: []\n", "rfm.purchase_event_types: list at least one non-empty event type"),
        ("segmentation:\n  k_min: 6\n  k_max: 3\n", "segmentation.k_min (6) must be <= segmentation.k_max (3)"),
        ("- a\n- b\n", "must hold a mapping"),
        ("rfm: [\n", "is not valid YAML"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert expected in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_overrides_apply_by_dotted_key() -> None:
    assert load_settings(None, {"segmentation.refit": True}).segmentation.refit is True
