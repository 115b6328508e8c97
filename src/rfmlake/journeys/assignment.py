"""Deterministic, stable group assignment: holdout or a variant from a hash of (journey id, salt,
customer id), so reruns, restarts, re-entries and other machines agree without storing anything,
and the generator can tell who would be treated (rfmlake.generate.journey_effect).

The hash is SHA-256; its first 8 bytes as an unsigned integer over 2**64 give a bucket uniform in
[0, 1). Buckets below the holdout share are the holdout; the rest is split over the variants in
their order by their percents. Changing the salt (or the journey id) draws everyone again;
changing the split moves only the customers whose bucket crosses a boundary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

from rfmlake.journeys.spec import Journey, Variant

HOLDOUT = "holdout"


def bucket(journey_id: str, customer_id: str, salt: str = "") -> float:
    digest = hashlib.sha256(f"{journey_id}\x1f{salt}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def group_of(value: float, holdout_percent: float, variants: Sequence[Variant]) -> str:
    """The group a bucket falls in: 'holdout' or a variant id."""
    holdout = holdout_percent / 100.0
    if value < holdout:
        return HOLDOUT
    position = (value - holdout) / (1.0 - holdout) * 100.0
    edge = 0.0
    for variant in variants:
        edge += variant.percent
        if position < edge:
            return variant.id
    return variants[-1].id  # float rounding at the top edge


def assign(journey: Journey, customer_ids: Iterable[str]) -> dict[str, tuple[str, float]]:
    """customer id -> (group, bucket) for one journey."""
    out: dict[str, tuple[str, float]] = {}
    for customer_id in customer_ids:
        b = bucket(journey.id, customer_id, journey.salt)
        out[customer_id] = (group_of(b, journey.holdout_percent, journey.variants), b)
    return out


def treated_mask(journey: Journey, customer_ids: Sequence[str]) -> np.ndarray:
    """True for the customers the journey would treat (not held out)."""
    return np.array([group_of(bucket(journey.id, c, journey.salt), journey.holdout_percent, journey.variants)
                     != HOLDOUT for c in customer_ids], dtype=bool)
