"""Activation of a saved audience (gold.audiences, built in the marketing app): only its members, under
its name, with their own sync state; a changed definition syncs the difference."""

from __future__ import annotations

from collections import Counter

import pytest
from test_sync_engine import Recorder, no_sleep_policy

from activation_lakes import round_robin, write_customers, write_rfm
from rfmlake.activation import sync
from rfmlake.activation.engine import state_dir
from rfmlake.audiences import AudienceError, AudienceFilters, measure, save_audience
from rfmlake.lake.catalog import connect


def save(lake, segments: tuple[str, ...], *, replace: bool = False) -> None:  # noqa: ANN001
    filters = AudienceFilters(segments=segments, consent="any")
    save_audience(lake, audience_id="vip", name="VIP", description="", filters=filters,
                  size=measure(connect(lake, zones=("gold",)), filters), actor="mia", replace=replace)


def test_a_saved_audience_syncs_only_its_members_under_its_name(lake) -> None:  # noqa: ANN001
    write_customers(lake, 12, no_consent={0})
    segments = round_robin(12)  # Champions, Loyal, At Risk, Hibernating in turn
    write_rfm(lake, segments)
    save(lake, ("Champions",))
    dest = Recorder()
    first = sync(lake, dest, policy=no_sleep_policy(), audience="vip")
    champions = sorted(c for c, s in segments.items() if s == "Champions" and c != "C000000")  # C000000: no consent
    assert sorted(c.customer_id for c in dest.received) == champions
    assert {c.segment for c in dest.received} == {"VIP"}
    assert first.destination == "mem@vip" and state_dir(lake, "mem@vip").is_dir()
    assert not state_dir(lake, "mem").exists()  # the destination's own segment sync is untouched
    assert sync(lake, dest, policy=no_sleep_policy(), audience="vip").status == "up_to_date"

    dest.received.clear()
    save(lake, ("Champions", "Loyal"), replace=True)  # the same gold version, a wider audience
    second = sync(lake, dest, policy=no_sleep_policy(), audience="vip")
    loyal = sorted(c for c, s in segments.items() if s == "Loyal")
    assert second.planned == {"entered": len(loyal)}
    assert sorted(c.customer_id for c in dest.received) == loyal
    dest.received.clear()
    save(lake, ("Loyal",), replace=True)
    third = sync(lake, dest, policy=no_sleep_policy(), audience="vip")
    assert Counter(c.kind for c in dest.received) == Counter({"exited": len(champions)})
    assert third.planned == {"exited": len(champions)}


def test_an_unknown_audience_is_a_clear_error(lake) -> None:  # noqa: ANN001
    write_customers(lake, 3)
    write_rfm(lake, round_robin(3))
    with pytest.raises(AudienceError, match="no saved audience 'nope'"):
        sync(lake, Recorder(), policy=no_sleep_policy(), audience="nope")
