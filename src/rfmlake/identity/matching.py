"""Probabilistic matching of CRM duplicates with splink (Fellegi-Sunter), run where PII may be read.

The records are the raw values of bronze.customers (normalised the way the PII tokens are), so
this runs only in the identity stage, on the bronze-side role. What leaves it is ids, match
probabilities and the match weight each field's comparison added (`mw_*`): never a value.
The stored model holds only splink's settings and m/u probabilities (no term-frequency tables, which
would hold values), so it may live in `_system/models/identity/`.

`CustomerMatcher` follows the scikit-learn convention: parameters in `__init__`, `fit` learns the
model into `model_` and returns self, `predict` scores with it and never refits.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from rfmlake.errors import PipelineError

# The fields compared, in the order of the gamma columns. The records table has unique_id plus these
# (email_user is derived: the part of the email before '@').
FIELDS: tuple[str, ...] = ("first_name", "last_name", "email", "phone", "postal_code", "city")
RECORD_COLUMNS: tuple[str, ...] = ("unique_id", "first_name", "last_name", "email", "email_user", "phone",
                                   "postal_code", "city", "country", "postal_block", "name_city_block")
MODEL_FORMAT = 1

# Shipped parameters (m: share of true matches at the level; u: share of non-matches), from a fit on
# generated data with planted duplicates (docs/identity.md). Used as they are below
# settings.identity.min_training_records and as the starting point of a fit above it.
_PRIORS: dict[str, list[tuple[float, float]]] = {
    # (m, u) per non-null level, best level first, "else" last
    "first_name": [(0.66, 0.014), (0.32, 0.0008), (0.018, 0.006), (0.002, 0.979)],
    "last_name": [(0.60, 0.017), (0.39, 0.001), (0.008, 0.015), (0.002, 0.967)],
    "email": [(0.55, 0.00001), (0.16, 0.00001), (0.28, 0.00006), (0.0005, 0.0001), (0.0095, 0.9998)],
    "phone": [(0.995, 0.00002), (0.005, 0.99998)],
    "postal_code": [(0.87, 0.00002), (0.09, 0.0005), (0.04, 0.9995)],
    "city": [(0.99, 0.025), (0.01, 0.975)],
}
_PRIOR_LAMBDA = 1.5e-5  # probability that two random customer records are one person


def _damerau_levenshtein(column: str, distance: int) -> Any:
    """splink's Damerau-Levenshtein level, guarded by the lengths: two values whose lengths differ by
    more than `distance` are never within it, so the costly distance is computed only for the pairs
    that can be (random pairs of emails mostly differ in length: u estimation ran 3.7x faster). The
    same level on DuckDB and Spark; its label is splink's."""
    import splink.comparison_level_library as cll

    class LengthGuarded(cll.DamerauLevenshteinLevel):
        def create_sql(self, sql_dialect: Any) -> str:
            distance_sql = super().create_sql(sql_dialect)
            col = self.col_expression
            return f"abs(length({col.name_l}) - length({col.name_r})) <= {self.distance_threshold} AND {distance_sql}"

    return LengthGuarded(column, distance)


def _levels(field: str) -> list[Any]:
    import splink.comparison_level_library as cll

    if field in ("first_name", "last_name"):
        levels = [cll.ExactMatchLevel(field), cll.JaroWinklerLevel(field, 0.92), cll.JaroWinklerLevel(field, 0.8)]
    elif field == "email":
        # A slip of the keyboard keeps the domain; the same user at another domain is a new address of
        # the same person; a user one letter off at another domain is someone else as often as not
        # (hanna.williams@a vs anna.williams@b).
        levels = [cll.ExactMatchLevel("email"), _damerau_levenshtein("email", 1),
                  cll.ExactMatchLevel("email_user"), _damerau_levenshtein("email_user", 1)]
    elif field == "phone":
        levels = [cll.ExactMatchLevel("phone")]
    elif field == "postal_code":
        levels = [cll.ExactMatchLevel("postal_code"), _damerau_levenshtein("postal_code", 1)]
    elif field == "city":
        levels = [cll.ExactMatchLevel("city")]
    else:  # pragma: no cover - FIELDS is closed
        raise ValueError(field)
    priors = _PRIORS[field]
    configured = [level.configure(m_probability=m, u_probability=u) for level, (m, u) in
                  zip([*levels, cll.ElseLevel()], priors, strict=True)]
    return [cll.NullLevel(field), *configured]


# Which pairs are compared at all. Equality on what few records share keeps the pairs near-linear
# in the records: a duplicate with a mistyped name still shares its email, phone, email user or
# postal code, and one with a new email and address still shares its full name and city. (Names are
# Zipf-distributed: a first name and a city, or even a first and last name, make blocks of hundreds;
# at 200k customers those rules compared 20M pairs, 95% of the stage's time.) The postal code and
# the full name with the city are shared by more people the more customers there are (a block grows
# with the data, its pairs with its square): records_query sets `postal_block` and `name_city_block`
# only where at most identity.max_block_size records share them (at 2M customers, full name + city
# blocks compared 15M pairs, 80% of the stage; a name shared by dozens in one city says little).
# Plain SQL, the same on DuckDB and Spark; a stored model is scored with these, whatever it was
# stored with (not learned).
PREDICTION_BLOCKS: tuple[str, ...] = (
    "l.email = r.email",
    "l.phone = r.phone",
    "l.email_user = r.email_user",
    "l.postal_block = r.postal_block",
    "l.name_city_block = r.name_city_block",
)


def splink_settings() -> Any:
    """The model's structure: comparisons, blocking rules (which pairs are compared at all)."""
    import splink.comparison_library as cl
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=_PRIOR_LAMBDA,
        comparisons=[cl.CustomComparison(comparison_levels=_levels(f), output_column_name=f) for f in FIELDS],
        blocking_rules_to_generate_predictions=list(PREDICTION_BLOCKS),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=True,  # the per-field weights mw_*: evidence without values
        additional_columns_to_retain=[],
    )


def _quiet_splink() -> None:
    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.ERROR)


def model_version(model: dict[str, Any]) -> str:
    text = json.dumps(model, sort_keys=True, default=str)
    return "idm-" + hashlib.sha256(text.encode()).hexdigest()[:12]


class CustomerMatcher:
    """Finds pairs of customer records that are one person.

    Parameters: `match_threshold` (pairs at or above it are joined), `review_threshold` (pairs from
    it up are kept as evidence to review), `min_training_records` (below it the shipped parameters
    are used without training), `seed` and `max_u_pairs` (u sampling: random pairs per comparison)."""

    def __init__(self, match_threshold: float = 0.9995, review_threshold: float = 0.5,
                 min_training_records: int = 1_000, seed: int = 42, max_u_pairs: float = 3e5) -> None:
        self.match_threshold = match_threshold
        self.review_threshold = review_threshold
        self.min_training_records = min_training_records
        self.seed = seed
        self.max_u_pairs = max_u_pairs

    @classmethod
    def from_model(cls, model: dict[str, Any], **params: Any) -> CustomerMatcher:
        """A matcher with a stored model (what `fit` learned on an earlier run)."""
        if model.get("format") != MODEL_FORMAT or "splink" not in model:
            raise PipelineError("the stored identity model has an unknown format; run with identity.refit: true")
        matcher = cls(**params)
        matcher.model_ = model
        matcher.model_version_ = model_version(model)
        matcher.trained_ = bool(model.get("trained"))
        return matcher

    def fit(self, db_api: Any, records_table: str, n_records: int) -> CustomerMatcher:
        """Learn u by random sampling and m by expectation maximisation on pairs that share an email,
        then a phone (mostly the same person: their other fields teach what a duplicate looks like).
        Below min_training_records, keep the shipped parameters."""
        from splink import Linker, block_on

        _quiet_splink()
        linker = Linker(db_api.register(records_table, dataset_display_name="customer_records"), splink_settings(),
                        log_level=logging.ERROR)
        trained = n_records >= self.min_training_records
        notes: list[str] = []
        if trained:
            try:
                linker.training.estimate_u_using_random_sampling(max_pairs=self.max_u_pairs, seed=self.seed)
                linker.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
                linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
            except Exception as exc:  # noqa: BLE001 - splink raises many kinds when the data cannot train
                trained = False
                notes.append(f"training failed ({str(exc).splitlines()[0][:200]}); the shipped parameters are used")
                linker = Linker(db_api.register(records_table, dataset_display_name="customer_records_prior"),
                                splink_settings(), log_level=logging.ERROR)
        else:
            notes.append(f"{n_records} customer records (< identity.min_training_records "
                         f"{self.min_training_records}): the shipped parameters are used, untrained")
        splink_model = linker.misc.save_model_to_json()
        _floor_m(splink_model)
        self.model_ = {"format": MODEL_FORMAT, "trained": trained, "records": n_records, "splink": splink_model}
        self.model_version_ = model_version(self.model_)
        self.trained_ = trained
        self.notes_ = notes
        return self

    def predict(self, db_api: Any, records_table: str, blocks: Sequence[str] = PREDICTION_BLOCKS) -> str:
        """Score the pairs `blocks` compare (PREDICTION_BLOCKS, or those restricted to the pairs to score
        again: rfmlake.identity.reuse); returns the backend table of pairs at or above review_threshold
        with columns unique_id_l, unique_id_r, match_probability, match_weight and mw_<field>."""
        from splink import Linker

        if not hasattr(self, "model_"):
            raise PipelineError("CustomerMatcher.predict before fit")
        _quiet_splink()
        settings = copy.deepcopy(self.model_["splink"])
        settings["blocking_rules_to_generate_predictions"] = list(blocks)
        linker = Linker(db_api.register(records_table, dataset_display_name="customer_records_predict"),
                        settings, log_level=logging.ERROR)
        scored = linker.inference.predict(threshold_match_probability=self.review_threshold, warning_mode="never")
        return str(scored.physical_name)


def _floor_m(model: dict[str, Any]) -> None:
    """EM sets m to 0 for a level no training pair showed (a weight of minus infinity): a duplicate
    with, say, a changed email could then never match whatever else agreed. Keep a small floor."""
    for comparison in model.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            if level.get("is_null_level"):
                continue
            m = level.get("m_probability")
            if m is not None and m < 1e-4:
                level["m_probability"] = 1e-4
