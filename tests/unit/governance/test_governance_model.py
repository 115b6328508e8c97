"""The lakeformation/ YAML loads, is valid, and each safety check fails with a precise message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from rfmlake.contract.entities import ENTITIES, SILVER_TABLES
from rfmlake.governance.model import (
    GovernanceError,
    load_governance,
    required_sensitive_columns,
)

REPO_CONFIG = Path(__file__).resolve().parents[3] / "lakeformation"


@pytest.fixture()
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "lakeformation"
    shutil.copytree(REPO_CONFIG, target)
    return target


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_shipped_config_is_valid_and_has_the_five_personas() -> None:
    config = load_governance(REPO_CONFIG)
    assert set(config.personas.personas) == {
        "data_engineer", "analyst", "data_scientist", "marketing_service", "profile_api_service",
    }


def test_every_contract_pii_column_is_tagged_pii_in_bronze() -> None:
    config = load_governance(REPO_CONFIG)
    for entity in ENTITIES.values():
        for column in entity.columns:
            if column.pii:
                assert config.column_sensitivity("bronze", entity.name, column.name.lower()) == "pii", column.name
    assert config.column_sensitivity("bronze", "quarantine", "raw") == "pii"
    # an extra landing column nobody classified yet is treated as PII
    assert config.column_sensitivity("bronze", "customers", "loyalty_tier") == "pii"


def test_every_silver_column_is_assigned_and_tokens_are_confidential() -> None:
    config = load_governance(REPO_CONFIG)
    for table, columns in SILVER_TABLES.items():
        for name, _type, _doc in columns:
            value = config.column_sensitivity("silver", table, name)
            assert value is not None, f"silver.{table}.{name}"
            if name.endswith("_token"):
                assert value == "confidential"


def test_pii_column_without_sensitivity_fails(config_dir: Path) -> None:
    _edit(config_dir / "assignments.yaml",
          lambda d: d["databases"]["bronze"]["tables"]["customers"]["columns"].pop("email"))
    # other_columns would cover it as pii; remove that too to leave the column untagged
    _edit(config_dir / "assignments.yaml",
          lambda d: d["databases"]["bronze"]["tables"]["customers"].pop("other_columns"))
    with pytest.raises(GovernanceError, match=r"PII column bronze\.customers\.email has no sensitivity tag"):
        load_governance(config_dir)


def test_pii_column_tagged_public_fails(config_dir: Path) -> None:
    def change(d):
        d["databases"]["bronze"]["tables"]["events"]["columns"]["ip"] = "public"
    _edit(config_dir / "assignments.yaml", change)
    with pytest.raises(GovernanceError, match=r"PII column bronze\.events\.ip is tagged 'public'"):
        load_governance(config_dir)


def test_public_token_fails(config_dir: Path) -> None:
    def change(d):
        d["databases"]["gold"]["tables"]["dim_customers"]["columns"]["email_token"] = "public"
    _edit(config_dir / "assignments.yaml", change)
    with pytest.raises(GovernanceError, match=r"gold\.dim_customers column email_token: a token"):
        load_governance(config_dir)


def test_grant_to_unknown_tag_value_fails(config_dir: Path) -> None:
    def change(d):
        d["personas"]["analyst"]["grants"][1]["expression"]["sensitivity"] = ["public", "secret"]
    _edit(config_dir / "personas.yaml", change)
    with pytest.raises(GovernanceError,
                       match=r"persona analyst grant 2: unknown value 'secret' for LF-tag 'sensitivity'"):
        load_governance(config_dir)


def test_grant_to_unknown_tag_key_fails(config_dir: Path) -> None:
    def change(d):
        d["personas"]["analyst"]["grants"][0]["expression"]["team"] = ["a"]
    _edit(config_dir / "personas.yaml", change)
    with pytest.raises(GovernanceError, match=r"persona analyst grant 1: unknown LF-tag 'team'"):
        load_governance(config_dir)


@pytest.mark.parametrize("expression", [
    {"layer": ["bronze"], "sensitivity": ["pii", "public"]},
    {"layer": ["gold"]},  # no sensitivity key: matches pii columns too
])
def test_persona_reading_pii_without_flag_fails(config_dir: Path, expression: dict) -> None:
    def change(d):
        d["personas"]["data_scientist"]["grants"][1]["expression"] = expression
    _edit(config_dir / "personas.yaml", change)
    with pytest.raises(GovernanceError, match=r"persona data_scientist grant 2: can read columns tagged "
                                              r"sensitivity=\['pii'\].*not marked `reads_pii: true`"):
        load_governance(config_dir)


def test_same_grant_is_fine_once_marked(config_dir: Path) -> None:
    def change(d):
        d["personas"]["data_scientist"]["grants"][1]["expression"] = {"layer": ["gold"]}
        d["personas"]["data_scientist"]["reads_pii"] = True
    _edit(config_dir / "personas.yaml", change)
    assert load_governance(config_dir).can_select("data_scientist", "gold", "dim_customers", "email_token")


def test_unknown_field_is_reported_with_its_file(config_dir: Path) -> None:
    _edit(config_dir / "personas.yaml", lambda d: d["personas"]["analyst"].update(reads_pi=True))
    with pytest.raises(GovernanceError, match=r"personas\.yaml: personas\.analyst\.reads_pi: Extra inputs"):
        load_governance(config_dir)


def test_all_problems_are_listed_together(config_dir: Path) -> None:
    def change(d):
        d["databases"]["bronze"]["tables"]["events"]["columns"]["ip"] = "public"
        d["databases"]["gold"]["tags"]["layer"] = "platinum"
    _edit(config_dir / "assignments.yaml", change)
    with pytest.raises(GovernanceError) as info:
        load_governance(config_dir)
    assert "bronze.events.ip is tagged 'public'" in str(info.value)
    assert "unknown value 'platinum' for LF-tag 'layer'" in str(info.value)


def test_can_select_follows_the_grants() -> None:
    config = load_governance(REPO_CONFIG)
    assert config.can_select("data_engineer", "bronze", "customers", "email")
    assert not config.can_select("analyst", "bronze", "customers", "email")
    assert config.can_select("analyst", "gold", "dim_customers", "email_token")
    assert not config.can_select("data_scientist", "gold", "dim_customers", "email_token")
    assert config.can_select("data_scientist", "gold", "dim_customers", "customer_id")
    assert config.can_select("marketing_service", "gold", "dim_customers", "marketing_opt_in")
    assert not config.can_select("marketing_service", "gold", "fct_orders", "order_id")
    assert config.can_select("profile_api_service", "gold", "fct_orders", "order_id")
    assert not config.can_select("analyst", "gold", "dim_customers", "a_column_nobody_assigned")


def test_required_sensitive_columns_come_from_the_contract() -> None:
    required = required_sensitive_columns()
    assert {"email", "phone", "first_name", "last_name"} <= set(required[("bronze", "customers")])
    assert "ip" in required[("bronze", "events")]
    assert required[("bronze", "quarantine")] == ("raw", "detail")
