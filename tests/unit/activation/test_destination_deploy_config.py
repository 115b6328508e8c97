"""Activation destinations as a deployment configures them (deploy.activation): the environment the
activating function gets builds exactly those destinations, bad settings are named when the config
loads, and the IAM each destination is granted covers every API call its module makes, no more."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import boto3
import pytest

from rfmlake.activation.config import (
    DESTINATION_IAM,
    DESTINATION_KINDS,
    check_destination,
    destination_env,
    destination_from_env,
    destination_iam,
    destination_names_from_env,
)
from rfmlake.activation.errors import ActivationError
from rfmlake.deploy import load_environment
from rfmlake.errors import ConfigError

APP = "0123456789abcdef0123456789abcdef"
SELECTED = {"file": {"channel": "email"}, "eventbridge": {"event_bus": "marketing", "source": "shop.segments"},
            "ses": {"contact_list": "vip"}, "pinpoint": {"application_id": APP, "channel": "phone"},
            "customer_profiles": {"domain_name": "shop"}}


def test_the_deployed_environment_builds_the_configured_destinations() -> None:
    env = destination_env(SELECTED)
    assert destination_names_from_env(env) == list(SELECTED)
    built = {kind: destination_from_env(kind, env) for kind in SELECTED}
    assert (built["eventbridge"].event_bus, built["eventbridge"].source) == ("marketing", "shop.segments")
    assert built["ses"].contact_list == "vip" and built["customer_profiles"].domain_name == "shop"
    assert built["pinpoint"].application_id == APP and built["pinpoint"].channel == "phone"
    assert built["file"].channel == "email"


@pytest.mark.parametrize(("kind", "options", "message"), [
    ("pinpoint", {}, "destination 'pinpoint' needs application_id"),
    ("ses", {"list": "x"}, "destination 'ses' has no option 'list'; options: contact_list"),
    ("pinpoint", {"application_id": APP, "channel": "fax"}, "channel must be one of"),
    ("sms", {}, "unknown destination 'sms'"),
])
def test_bad_destination_settings_are_named(kind: str, options: dict, message: str) -> None:
    with pytest.raises(ActivationError, match=message):
        check_destination(kind, options)


def _client_operations(kind: str) -> set[str]:
    """The API operations a destination module calls (`self.client.<method>`), by botocore's names."""
    module = importlib.import_module(f"rfmlake.activation.destinations.{kind}")
    tree = ast.parse(Path(module.__file__).read_text())
    methods = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
               and isinstance(node.value, ast.Attribute) and node.value.attr == "client"}
    (cls,) = [c for c in vars(module).values() if isinstance(c, type) and getattr(c, "service", None)
              and c.__module__ == module.__name__]
    client = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="eu-west-1").client(cls.service)
    mapping = client.meta.method_to_api_mapping
    assert methods and methods <= set(mapping), methods - set(mapping)
    return {mapping[m] for m in methods}


IAM_PREFIX = {"eventbridge": "events", "ses": "ses", "pinpoint": "mobiletargeting", "customer_profiles": "profile"}


@pytest.mark.parametrize("kind", [k for k in DESTINATION_KINDS if k != "file"])
def test_granted_actions_are_exactly_the_calls_the_destination_makes(kind: str) -> None:
    actions, _ = DESTINATION_IAM[kind]
    assert set(actions) == {f"{IAM_PREFIX[kind]}:{op}" for op in _client_operations(kind)}


def test_resources_are_the_configured_ones_with_defaults_from_the_destination() -> None:
    where = {"partition": "aws", "region": "eu-west-1", "account": "123456789012"}
    assert destination_iam("eventbridge", {}, **where)[1] == ["arn:aws:events:eu-west-1:123456789012:event-bus/default"]
    other = "arn:aws:events:eu-west-1:210987654321:event-bus/central"
    assert destination_iam("eventbridge", {"event_bus": other}, **where)[1] == [other]
    assert destination_iam("ses", {}, **where)[1] == ["arn:aws:ses:eu-west-1:123456789012:contact-list/rfmlake-segments"]
    assert destination_iam("pinpoint", {"application_id": APP}, **where)[1] == [
        f"arn:aws:mobiletargeting:eu-west-1:123456789012:apps/{APP}",
        f"arn:aws:mobiletargeting:eu-west-1:123456789012:apps/{APP}/*"]
    assert destination_iam("file", {}, **where) == ((), [])


def test_deploy_activation_is_checked_when_the_config_loads(tmp_path: Path) -> None:
    base = "prefix: rfmlake_t\ndeploy:\n  name: t\n"
    (tmp_path / "t.yaml").write_text(base)
    assert load_environment("t", tmp_path).deploy.activation.selected() == {"file": {}}
    (tmp_path / "t.yaml").write_text(base + "  activation: {destinations: [file, customer_profiles]}\n")
    with pytest.raises(ConfigError, match=r"deploy\.activation: destination 'customer_profiles' needs domain_name"):
        load_environment("t", tmp_path)
    (tmp_path / "t.yaml").write_text(base + "  activation: {destinations: [file, file]}\n")
    with pytest.raises(ConfigError, match="lists one twice"):
        load_environment("t", tmp_path)
    assert load_environment("dev").deploy.activation.selected() == {"file": {}, "eventbridge": {"event_bus": "default"}}
