"""Small recommender inputs shared by the Personalize tests (unit: local files, functional: S3)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from rfmlake.recommend.job import LakeInputs

REGION = "eu-west-1"
RUN = "20261207T010116Z-7ed58c"


def inputs() -> LakeInputs:
    at = pd.Timestamp
    return LakeInputs(
        interactions=pd.DataFrame({
            "customer_id": ["C1", "C1", "C2"], "product_id": ["P1", "P2", "P1"], "kind": ["purchase", "view", "purchase"],
            "occurred_at": [at("2026-01-01 10:00"), at("2026-01-02"), at("2026-02-01")]}),
        products=pd.DataFrame({"product_id": ["P1", "P2", "P3"], "product_name": ["Lamp", "Mug", "Kite"],
                               "category": ["Home", "Kitchen", None], "brand": ["Fjord", None, "Ember"]}),
        segments=pd.Series({"C1": "Champions", "C2": "Lost"}), customers=["C1", "C2", "C3"], as_of=date(2026, 3, 1))
