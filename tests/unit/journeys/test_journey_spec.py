"""journeys/*.yaml: the shipped demo journey loads, and every mistake is reported with the file and
the key, never a traceback."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
import yaml

from journey_lakes import win_back
from rfmlake.cli.main import main
from rfmlake.journeys.errors import JourneyError
from rfmlake.journeys.run import segment_names
from rfmlake.journeys.spec import QuietHours, load_journeys, parse_journey, render
from rfmlake.settings import Settings

REPO = Path(__file__).resolve().parents[3]
SEGMENTS = segment_names(Settings())


def test_the_demo_journey_loads() -> None:
    journeys = load_journeys(REPO / "journeys", segment_names=SEGMENTS)
    journey = journeys.get("win_back_at_risk")
    assert journey.trigger.type == "segment_entered" and journey.trigger.segment == "At Risk"
    assert journey.holdout_percent == 10 and [v.id for v in journey.variants] == ["A", "B"]
    assert [s.action for s in journey.steps] == ["email", "wait", "branch", "sms", "event"]
    assert journey.channels["sms"].quiet_hours is not None
    assert set(journeys.templates) == {"winback_offer", "winback_free_shipping"}
    assert journey.steps[0].email.template_for("B") == "winback_free_shipping"


def test_validate_command_lists_the_journeys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journeys", "validate", "--dir", str(REPO / "journeys")]) == 0
    out = capsys.readouterr().out
    assert "win_back_at_risk [active]: segment_entered; holdout 10%, variants A 50%, B 50%" in out
    assert "offer (email) -> wait_a_week (wait) -> ordered_yet (branch) -> reminder (sms)" in out


@pytest.mark.parametrize(("change", "message"), [
    ({"trigger": {"type": "segment_joined", "segment": "At Risk"}},
     "trigger: unknown type 'segment_joined'; one of 'segment_entered', 'segment_exited'"),
    ({"trigger": {"segment": "At Risk"}}, "trigger: needs a 'type'"),
    ({"trigger": {"type": "segment_entered"}}, "trigger.segment_entered.segment: Field required"),
    ({"holdout_percent": 100}, "holdout_percent: Input should be less than 100"),
    ({"variants": [{"id": "A", "percent": 60}, {"id": "B", "percent": 30}]},
     "variants: variant percents must add up to 100, got 90"),
    ({"variants": [{"id": "holdout", "percent": 100}]}, "'holdout' is the control group's name"),
    ({"steps": [{"id": "a", "wait": {"days": 2}, "sms": {"text": "x"}}]},
     "steps.0: step 'a' needs exactly one of email, sms, call, event, wait, branch, exit (got ['sms', 'wait'])"),
    ({"steps": [{"id": "a", "wait": {"days": 2}}, {"id": "b", "branch": {"if": "ordered", "then": "a"}}]},
     "steps.1.branch.then: 'a' is not after this step; branches go forward only"),
    ({"steps": [{"id": "a", "branch": {"if": "ordered", "then": "nowhere"}}]},
     "steps.0.branch.then: no step 'nowhere'"),
    ({"steps": [{"id": "a", "branch": {"if": "clicked", "then": "exit"}}]},
     "steps.0.branch.if: Input should be 'ordered' or 'left_segment'"),
    ({"steps": [{"id": "a", "sms": {"text": "Hi {{first_name}}"}}]},
     "steps.0.sms.text: unknown placeholder(s) {{first_name}}; allowed: customer_id, segment"),
    ({"steps": [{"id": "a", "sms": {"text": "x" * 1601}}]}, "steps.0.sms.text: an SMS must have 1..1600 characters"),
    ({"steps": [{"id": "a", "email": {"template": "offer", "by_variant": {"C": "offer"}}}]},
     "steps.0.email.by_variant: unknown variant(s) ['C']"),
    ({"channels": {"sms": {"quiet_hours": {"start": "21:00", "end": "08:00", "timezone": "Mars/Olympus"}}}},
     "channels.sms.quiet_hours.timezone: unknown time zone 'Mars/Olympus'"),
    ({"channels": {"fax": {"max_messages": 1}}}, "channels.fax.[key]: Input should be 'email', 'sms', 'call' or 'event'"),
    ({"audience": {"where": [{"column": "email", "op": "=", "value": "x"}]}},
     "audience.where: condition 0: unknown column 'email'; allowed: rfm_segment"),
    ({"audience": {"where": [{"column": "monetary", "op": ">", "value": "lots"}]}},
     "audience.where.0: op '>' compares numbers; got 'lots'"),
    ({"audience": {"where": [{"column": "rfm_segment", "op": "in", "value": "Loyal"}]}},
     "audience.where.0: op 'in' needs a list value"),
    ({"colour": "blue"}, "colour: unknown key"),
    ({"id": "Win Back"}, "id: String should match pattern"),
])
def test_mistakes_are_named_by_key(change: dict, message: str) -> None:
    with pytest.raises(JourneyError) as error:
        parse_journey(win_back(**change), "journeys/win_back.yaml")
    text = str(error.value)
    assert text.startswith("invalid journey in journeys/win_back.yaml:")
    assert message in text, text


def test_a_folder_is_checked_as_a_whole(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "offer.yaml").write_text("subject: Hi\ntext: Come back\n")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(win_back(id="a", trigger={"type": "segment_entered",
                                                                                "segment": "At Riskk"})))
    with pytest.raises(JourneyError, match=r"a.yaml:\n  trigger.segment: 'At Riskk' is not an RFM segment"):
        load_journeys(tmp_path, segment_names=SEGMENTS)
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(win_back(id="a", steps=[{"id": "x", "email": {"template": "gone"}}])))
    with pytest.raises(JourneyError, match=r"steps.0.email: no template 'gone' in templates/ \(templates: offer\)"):
        load_journeys(tmp_path, segment_names=SEGMENTS)
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(win_back(id="a")))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(win_back(id="a")))
    with pytest.raises(JourneyError, match=r"journey id\(s\) \['a'\] appear in more than one file"):
        load_journeys(tmp_path, segment_names=SEGMENTS)
    (tmp_path / "b.yaml").write_text("id: [unclosed\n")
    with pytest.raises(JourneyError, match="b.yaml is not valid YAML"):
        load_journeys(tmp_path)
    (tmp_path / "b.yaml").unlink()
    (tmp_path / "templates" / "offer.yaml").write_text("subject: Hi {{email}}\ntext: x\n")
    with pytest.raises(JourneyError, match=r"invalid email template in .*offer.yaml:\n  subject: unknown placeholder"):
        load_journeys(tmp_path)
    with pytest.raises(JourneyError, match="journeys folder .*nowhere does not exist"):
        load_journeys(tmp_path / "nowhere")


def test_cli_reports_a_bad_journey_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(win_back(holdout_percent=-1)))
    assert main(["journeys", "validate", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "rfmlake journeys: error: invalid journey in" in err and "holdout_percent: Input should be" in err
    assert "Traceback" not in err


def test_quiet_hours_may_span_midnight_and_placeholders_render() -> None:
    night = QuietHours(start=time(21), end=time(8), timezone="Europe/Berlin")
    assert night.covers(time(23)) and night.covers(time(7, 59)) and not night.covers(time(8)) \
        and not night.covers(time(12))
    lunch = QuietHours(start=time(12), end=time(13))
    assert lunch.covers(time(12, 30)) and not lunch.covers(time(13))
    assert render("Hi {{ segment }}, {{customer_id}} {{amazonSESUnsubscribeUrl}}",
                  {"segment": "At Risk", "customer_id": "C1"}) == "Hi At Risk, C1 {{amazonSESUnsubscribeUrl}}"


def test_engagement_segments_are_checked_and_recommendation_fields_count_in_an_sms(tmp_path: Path) -> None:
    from rfmlake.journeys.spec import check_references

    cart = {"type": "segment_entered", "dimension": "engagement_segment", "segment": "Abandoned a cart"}
    journey = parse_journey(win_back(trigger=cart, audience={"where": [
        {"column": "lifetime_orders", "op": "=", "value": 0}]}), "ok.yaml")
    check_references(journey, {"offer": None}, SEGMENTS)  # type: ignore[dict-item]
    for change, key in (({"trigger": {**cart, "segment": "Abandoned cart"}}, "trigger.segment"),
                        ({"audience": {"where": [{"column": "engagement_segment", "op": "in",
                                                  "value": ["Buyer", "Browsing"]}]}},
                         "audience.where.engagement_segment")):
        with pytest.raises(JourneyError, match=f"{key}: 'Abandoned cart' is not an engagement segment|"
                                               f"{key}: 'Browsing' is not an engagement segment"):
            check_references(parse_journey(win_back(**change), "bad.yaml"), {"offer": None},  # type: ignore[dict-item]
                             None)
    # {{recommendations}} may fill three product names: an SMS is checked at that length
    parse_journey(win_back(steps=[{"id": "a", "sms": {"text": "x" * 1390 + " {{recommendations}}"}}]), "ok.yaml")
    with pytest.raises(JourneyError, match="an SMS must have 1..1600 characters"):
        parse_journey(win_back(steps=[{"id": "a", "sms": {"text": "x" * 1450 + " {{recommendations}}"}}]), "x.yaml")
    assert render("{{recommendation_1}} / {{recommendations}}",
                  {"recommendation_1": "Rain Jacket", "recommendations": "Rain Jacket, Fleece"}) == \
        "Rain Jacket / Rain Jacket, Fleece"
