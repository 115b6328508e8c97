"""The journeys pages' port over journeys as code (rfmlake.journeys): create from a template with a
holdout, variants and a saved audience as the trigger, start and pause without touching the rest of
the file, and results from gold.journey_results."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from rfmlake.app.journeys import FolderJourneys, JourneyEditError, audience_trigger, journeys_port
from rfmlake.audiences import AudienceFilters
from rfmlake.settings import Settings

REPO = Path(__file__).resolve().parents[3]


def test_an_audience_becomes_a_value_condition_trigger() -> None:
    trigger, audience = audience_trigger("VIP", AudienceFilters(segments=("Champions",), clv_min=100,
                                                                 countries=("DE",)))
    assert trigger == {"type": "value_condition", "where": [
        {"column": "rfm_segment", "op": "in", "value": ["Champions"]},
        {"column": "predicted_clv", "op": ">=", "value": 100}]}
    assert audience == {"require_consent": True, "where": [{"column": "country_code", "op": "in", "value": ["DE"]}]}
    for filters, message in ((AudienceFilters(min_events=1, segments=("Loyal",)), "engagement"),
                             (AudienceFilters(consent="not_opted_in", segments=("Loyal",)), "without marketing"),
                             (AudienceFilters(countries=("DE",)), "needs a filter on segment")):
        with pytest.raises(JourneyEditError, match=message):
            audience_trigger("x", filters)


def test_without_the_journeys_package_or_a_folder_the_port_says_why(lake) -> None:  # noqa: ANN001
    port = journeys_port(lake, Settings(), None)
    if not port.available:
        assert "journeys" in port.reason
        with pytest.raises(JourneyEditError, match=port.reason[:20]):
            port.get("anything")


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    pytest.importorskip("rfmlake.journeys")
    if not (REPO / "journeys").is_dir():
        pytest.skip("the repository has no journeys/ folder")
    shutil.copytree(REPO / "journeys", tmp_path / "journeys")
    return tmp_path / "journeys"


def test_create_start_and_pause_a_journey_from_a_template(lake, folder: Path) -> None:  # noqa: ANN001
    port = FolderJourneys(folder, lake, Settings())
    template = port.list()[0]
    created = port.create(template_id=template.id, journey_id="vip_welcome", name="VIP welcome", holdout_percent=20,
                          variants=[("A", 100)], audience=("VIP", AudienceFilters(segments=("Champions",))))
    assert (created.status, created.holdout_percent, created.variants) == ("paused", 20, [("A", 100)])
    assert created.trigger == "matches rfm_segment in ['Champions']"
    data = yaml.safe_load((folder / "vip_welcome.yaml").read_text())
    assert [s["id"] for s in data["steps"]] == [s for s, _ in template.steps]  # the template's steps
    # a message of a variant the new journey does not have falls back to the default one
    assert all(set((s.get(a) or {}).get("by_variant", {})) <= {"A"} for s in data["steps"] for a in ("email", "sms"))
    text = (folder / "vip_welcome.yaml").read_text()
    assert port.set_status("vip_welcome", "active").status == "active"
    after = (folder / "vip_welcome.yaml").read_text()
    assert after.replace("status: active", "status: paused") == text  # nothing else changed
    original = Path(template.source).read_text()
    port.set_status(template.id, "paused")
    assert Path(template.source).read_text().splitlines()[0] == original.splitlines()[0]  # comments kept
    with pytest.raises(JourneyEditError, match="exists already"):
        port.create(template_id=template.id, journey_id="vip_welcome", name="again", holdout_percent=10,
                    variants=[("A", 100)])
    with pytest.raises(JourneyEditError, match="percents must add up to 100"):
        port.create(template_id=template.id, journey_id="bad_split", name="bad", holdout_percent=10,
                    variants=[("A", 60), ("B", 60)])
    assert not (folder / "bad_split.yaml").exists()
    assert port.results("vip_welcome").latest_day is None  # no run yet
