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
POOL = "pool-0123456789abcdef0123456789abcdef"
SELECTED = {"file": {"channel": "email"}, "eventbridge": {"event_bus": "marketing", "source": "shop.segments"},
            "ses": {"contact_list": "vip"},
            "sms": {"origination_identity": POOL, "message": "Hello {segment}", "segments": "At Risk"},
            "pinpoint": {"application_id": APP, "channel": "phone", "acknowledge_retired": "true"},
            "customer_profiles": {"domain_name": "shop"}}


def test_the_deployed_environment_builds_the_configured_destinations() -> None:
    env = destination_env(SELECTED)
    assert destination_names_from_env(env) == list(SELECTED)
    built = {kind: destination_from_env(kind, env) for kind in SELECTED}
    assert (built["eventbridge"].event_bus, built["eventbridge"].source) == ("marketing", "shop.segments")
    assert built["ses"].contact_list == "vip" and built["customer_profiles"].domain_name == "shop"
    assert built["pinpoint"].application_id == APP and built["pinpoint"].channel == "phone"
    assert built["file"].channel == "email"
    assert built["sms"].origination_identity == POOL and built["sms"].segments == ("At Risk",)


@pytest.mark.parametrize(("kind", "options", "message"), [
    ("pinpoint", {"acknowledge_retired": "true"}, "destination 'pinpoint' needs application_id"),
    ("ses", {"list": "x"}, "destination 'ses' has no option 'list'; options: contact_list"),
    ("pinpoint", {"application_id": APP, "channel": "fax", "acknowledge_retired": "yes"}, "channel must be one of"),
    ("sms", {"message": "hi"}, "destination 'sms' needs origination_identity"),
    ("mms", {}, "unknown destination 'mms'"),
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


IAM_PREFIX = {"eventbridge": "events", "ses": "ses", "sms": "sms-voice", "pinpoint": "mobiletargeting",
              "customer_profiles": "profile"}


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
    assert destination_iam("pinpoint", {"application_id": APP, "acknowledge_retired": "true"}, **where)[1] == [
        f"arn:aws:mobiletargeting:eu-west-1:123456789012:apps/{APP}",
        f"arn:aws:mobiletargeting:eu-west-1:123456789012:apps/{APP}/*"]
    assert destination_iam("file", {}, **where) == ((), [])
    sms = {"origination_identity": POOL, "message": "hi", "configuration_set": "events"}
    assert destination_iam("sms", sms, **where) == (("sms-voice:SendTextMessage",), [
        f"arn:aws:sms-voice:eu-west-1:123456789012:pool/{POOL}",
        "arn:aws:sms-voice:eu-west-1:123456789012:opt-out-list/*",
        "arn:aws:sms-voice:eu-west-1:123456789012:configuration-set/events"])


@pytest.mark.parametrize("where", ["cli", "env", "deploy"])
def test_pinpoint_is_refused_naming_its_successors_unless_acknowledged(where: str, tmp_path: Path, capsys) -> None:
    """AWS ended Pinpoint's engagement features on 2026-10-30: every way of choosing it says so."""
    successors = r"'ses' \(Amazon SES\) for email, 'sms' \(AWS End User Messaging SMS, the pinpoint-sms-voice-v2 API\)"
    if where == "env":
        with pytest.raises(ActivationError, match=successors):
            destination_from_env("pinpoint", {"RFMLAKE_PINPOINT_APPLICATION_ID": APP})
        assert destination_from_env("pinpoint", {"RFMLAKE_PINPOINT_APPLICATION_ID": APP,
                                                 "RFMLAKE_PINPOINT_ACKNOWLEDGE_RETIRED": "true"}).application_id == APP
    elif where == "deploy":
        (tmp_path / "t.yaml").write_text("prefix: rfmlake_t\ndeploy:\n  name: t\n  activation:\n"
                                         f"    destinations: [pinpoint]\n    pinpoint: {{application_id: '{APP}'}}\n")
        with pytest.raises(ConfigError, match=r"deploy\.activation: destination 'pinpoint' is retired.*"
                                              r"Amazon Connect Customer Profiles"):
            load_environment("t", tmp_path)
    else:
        from rfmlake.cli.main import main

        lake = tmp_path / "lake"
        lake.mkdir()
        assert main(["activate", "--lake", str(lake), "--destination", "pinpoint"]) != 0
        err = capsys.readouterr().err
        assert "retired" in err and "Traceback" not in err
        with pytest.raises(SystemExit):
            main(["activate", "--help"])
        help_text = " ".join(capsys.readouterr().out.split())
        assert "'pinpoint' is RETIRED" in help_text and "End User Messaging SMS" in help_text


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
