"""Segment migration on a hand-built two-run history, and stable cluster ids across refits."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from rfmlake.errors import RfmlakeError
from rfmlake.segmentation.clustering import RfmClusterer
from rfmlake.segmentation.migration import consecutive_migrations, migration_between, render_matrix

D1, D2, D3 = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)


def history() -> pd.DataFrame:
    rows = [
        # run 1: A, B Champions; C At Risk; D Lost
        (D1, "A", "Champions", "k0"), (D1, "B", "Champions", "k0"), (D1, "C", "At Risk", "k1"),
        (D1, "D", "Lost", "k1"),
        # run 2: A stays, B drops to At Risk, C recovers to Champions, D gone, E and F new
        (D2, "A", "Champions", "k0"), (D2, "B", "At Risk", "k1"), (D2, "C", "Champions", "k0"),
        (D2, "E", "New", "k1"), (D2, "F", "New", "k1"),
        # run 3: only E remains
        (D3, "E", "Loyal", "k0"),
    ]
    return pd.DataFrame(rows, columns=["as_of_date", "customer_id", "rfm_segment", "cluster_label"])


def as_dict(counts: pd.DataFrame) -> dict[tuple[str | None, str | None], int]:
    return {(f, t): int(c) for f, t, c in counts[["from_segment", "to_segment", "customers"]].itertuples(index=False)}


def test_migration_counts_between_two_runs() -> None:
    counts = migration_between(history(), D1, D2)
    assert as_dict(counts) == {
        ("Champions", "Champions"): 1, ("Champions", "At Risk"): 1, ("At Risk", "Champions"): 1,
        ("Lost", None): 1, (None, "New"): 2,
    }
    assert counts["customers"].sum() == 6  # A..F, each once
    by_cluster = as_dict(migration_between(history(), D1, D2, "cluster_label"))
    assert by_cluster == {("k0", "k0"): 1, ("k0", "k1"): 1, ("k1", "k0"): 1, ("k1", None): 1, (None, "k1"): 2}


def test_consecutive_migrations_cover_each_pair_and_dimension() -> None:
    table = consecutive_migrations(history()).to_pandas()
    pairs = set(zip(table["dimension"], table["from_as_of_date"], table["to_as_of_date"], strict=True))
    assert pairs == {(d, a, b) for d in ("rfm_segment", "cluster_label") for a, b in ((D1, D2), (D2, D3))}
    second = table[(table["dimension"] == "rfm_segment") & (table["from_as_of_date"] == D2)]
    assert as_dict(second) == {("New", "Loyal"): 1, ("New", None): 1, ("Champions", None): 2, ("At Risk", None): 1}
    one_run = history()[history()["as_of_date"] == D1]
    assert consecutive_migrations(one_run).num_rows == 0


def test_matrix_rendering_and_errors() -> None:
    text = render_matrix(migration_between(history(), D1, D2))
    header, *rows = text.splitlines()
    assert header.split()[-1] == "(gone)" and rows[-1].startswith("(new)")
    with pytest.raises(RfmlakeError, match=r"2024-05-01 is not an as_of date .*available: 2024-01-01, 2024-02-01"):
        migration_between(history(), D1, date(2024, 5, 1))
    with pytest.raises(RfmlakeError, match="must be before"):
        migration_between(history(), D2, D1)


def features(seed: int, n: int = 600, jitter: float = 0.0) -> pd.DataFrame:
    rng = np.random.RandomState(seed)
    groups = rng.randint(0, 3, n)
    recency = np.array([10, 200, 400])[groups] * rng.lognormal(0, 0.2, n)
    frequency = np.array([12, 3, 1])[groups] + rng.poisson(1, n)
    monetary = np.array([900, 200, 40])[groups] * rng.lognormal(0, 0.2, n)
    frame = pd.DataFrame({"customer_id": [f"C{i:04d}" for i in range(n)], "recency_days": recency.round(),
                          "frequency": frequency, "monetary": monetary.round(2)})
    if jitter:
        noise = np.random.RandomState(seed + 100).lognormal(0, jitter, (n, 2))
        frame["recency_days"] = (frame["recency_days"] * noise[:, 0]).round()
        frame["monetary"] = (frame["monetary"] * noise[:, 1]).round(2)
    return frame


def test_cluster_ids_and_labels_stable_under_small_perturbation_with_refit() -> None:
    base = features(1)
    first = RfmClusterer(k=3, random_state=1).fit(base)
    # Ids inherited from earlier runs need not follow this fit's value order: without alignment a
    # refit would renumber them 0, 1, 2 and every customer would appear to migrate.
    first.cluster_ids_ = [2, 0, 1]
    before = first.predict(base)
    # A perturbed copy, fitted with another seed so KMeans' own numbering is free to differ.
    perturbed = features(1, jitter=0.05)
    second = RfmClusterer(k=3, random_state=99).fit(perturbed).align_to(first)
    after = second.predict(perturbed)
    assert sorted(second.cluster_ids_) == [0, 1, 2]
    assert dict(zip(second.cluster_ids_, second.labels_, strict=True)) == dict(
        zip(first.cluster_ids_, first.labels_, strict=True))
    agreement = (before["cluster_id"].to_numpy() == after["cluster_id"].to_numpy()).mean()
    assert agreement > 0.95
    assert (before["cluster_label"] == after["cluster_label"]).mean() > 0.95
    # The alignment survives storage.
    restored = RfmClusterer.from_dict(second.to_dict())
    assert restored.predict(perturbed).equals(after)


def test_a_new_cluster_gets_a_fresh_id_and_a_unique_label() -> None:
    base = features(2)
    first = RfmClusterer(k=2, random_state=1).fit(base)
    second = RfmClusterer(k=3, random_state=1).fit(base).align_to(first, max_distance=0.5)
    assert len(set(second.cluster_ids_)) == 3 and max(second.cluster_ids_) <= 3
    assert len(set(second.labels_)) == 3
    assert any("aligned to the previous model" in note for note in second.notes_)


def test_cli_dimensions_match_the_package() -> None:
    # The CLI keeps its own copy so `rfmlake --help` does not import scikit-learn.
    from rfmlake.cli import segments
    from rfmlake.segmentation import migration

    assert segments.DIMENSIONS == migration.DIMENSIONS
