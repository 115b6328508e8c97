"""Group assignment is a pure function of (journey id, salt, customer id): the same everywhere and
every time, with the shares the journey asks for."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter

from scipy import stats

from journey_lakes import win_back
from rfmlake.journeys.assignment import HOLDOUT, assign, bucket, group_of, treated_mask
from rfmlake.journeys.spec import Variant, parse_journey

IDS = [f"C{i:08d}" for i in range(100_000)]


def test_shares_follow_the_holdout_and_the_variant_split() -> None:
    journey = parse_journey(win_back(holdout_percent=10, variants=[{"id": "A", "percent": 70}, {"id": "B", "percent": 30}]))
    groups = Counter(group for group, _ in assign(journey, IDS).values())
    # each count is binomial: 10% holdout, then 70/30 of the other 90%
    for group, share in ((HOLDOUT, 0.10), ("A", 0.63), ("B", 0.27)):
        assert stats.binomtest(groups[group], len(IDS), share).pvalue > 0.001, (group, groups)


def test_the_same_customer_gets_the_same_group_in_another_process() -> None:
    here = [bucket("win_back", c, "s1") for c in IDS[:5]]
    code = ("from rfmlake.journeys.assignment import bucket; "
            f"print([bucket('win_back', c, 's1') for c in {IDS[:5]!r}])")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert there.strip() == repr(here)
    # the documented rule (docs/journeys.md): a change to it would move every customer of every running journey
    digest = hashlib.sha256(b"win_back_at_risk\x1fwinback-2026\x1fC00000001").digest()
    assert bucket("win_back_at_risk", "C00000001", "winback-2026") == int.from_bytes(digest[:8], "big") / 2**64


def test_a_new_salt_draws_again_and_a_new_split_moves_only_customers_at_the_boundary() -> None:
    variants = [Variant(id="A", percent=50), Variant(id="B", percent=50)]
    before = {c: group_of(bucket("j", c, "s1"), 10, variants) for c in IDS}
    resalted = {c: group_of(bucket("j", c, "s2"), 10, variants) for c in IDS}
    assert 0.4 < sum(before[c] != resalted[c] for c in IDS) / len(IDS) < 0.7
    wider = {c: group_of(bucket("j", c, "s1"), 20, variants) for c in IDS}
    moved = {c for c in IDS if before[c] != wider[c]}
    # 10% -> 20% holdout: [0.1, 0.2) joins the holdout (from A), and the A/B edge moves from 0.55
    # to 0.6 ([0.55, 0.6) goes from B to A); nobody else moves
    edges = {c for c in IDS if 0.1 <= bucket("j", c, "s1") < 0.2 or 0.55 <= bucket("j", c, "s1") < 0.6}
    assert moved == edges and 0.13 < len(moved) / len(IDS) < 0.17
    journey = parse_journey(win_back(holdout_percent=25))
    mask = treated_mask(journey, IDS[:1000])
    assert mask.tolist() == [g != HOLDOUT for g, _ in assign(journey, IDS[:1000]).values()]
