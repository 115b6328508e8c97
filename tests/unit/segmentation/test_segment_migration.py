"""Segment migration from the partitioned history (computed by DuckDB from two partitions), the
history's append-only writes, backfills, the conversion of an unpartitioned history, and stable
cluster ids across refits."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake
from rfmlake.segmentation.clustering import RfmClusterer
from rfmlake.segmentation.history import migration_between, record_history
from rfmlake.segmentation.migration import MIGRATION_SCHEMA, render_matrix
from rfmlake.segmentation.segment import HISTORY_SCHEMA

D1, D2, D3 = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)
ROWS = [
    # run 1: A, B Champions; C At Risk; D Lost
    (D1, "A", "Champions", "k0"), (D1, "B", "Champions", "k0"), (D1, "C", "At Risk", "k1"),
    (D1, "D", "Lost", "k1"),
    # run 2: A stays, B drops to At Risk, C recovers to Champions, D gone, E and F new
    (D2, "A", "Champions", "k0"), (D2, "B", "At Risk", "k1"), (D2, "C", "Champions", "k0"),
    (D2, "E", "New", "k1"), (D2, "F", "New", "k1"),
    # run 3: only E remains
    (D3, "E", "Loyal", "k0"),
]


def run_rows(day: date) -> pa.Table:
    rows = [r for r in ROWS if r[0] == day]
    return pa.Table.from_pylist([dict(zip(HISTORY_SCHEMA.names, r, strict=True)) for r in rows], schema=HISTORY_SCHEMA)


def recorded(lake: Lake, *days: date) -> Lake:
    for day in days:
        record_history(lake, run_rows(day))
    return lake


def as_dict(counts: pd.DataFrame) -> dict[tuple[str | None, str | None], int]:
    return {(f, t): int(c) for f, t, c in counts[["from_segment", "to_segment", "customers"]].itertuples(index=False)}


def migration_rows(lake: Lake) -> pd.DataFrame:
    table = lake.read_arrow(lake.require("gold", "segment_migration")).select(MIGRATION_SCHEMA.names)
    return table.to_pandas()


def history_table(lake: Lake) -> pa.Table:
    return lake.read_arrow(lake.require("gold", "segment_membership_history")).select(HISTORY_SCHEMA.names)


def test_migration_counts_between_two_runs(lake: Lake) -> None:
    recorded(lake, D1, D2)
    counts = migration_between(lake, D1, D2)
    assert as_dict(counts) == {
        ("Champions", "Champions"): 1, ("Champions", "At Risk"): 1, ("At Risk", "Champions"): 1,
        ("Lost", None): 1, (None, "New"): 2,
    }
    assert counts["customers"].sum() == 6  # A..F, each once
    by_cluster = as_dict(migration_between(lake, D1, D2, "cluster_label"))
    assert by_cluster == {("k0", "k0"): 1, ("k0", "k1"): 1, ("k1", "k0"): 1, ("k1", None): 1, (None, "k1"): 2}


def test_each_run_adds_one_history_partition_and_the_migration_into_it(lake: Lake) -> None:
    recorded(lake, D1)
    assert lake.require("gold", "segment_migration").partitions == ()  # one run: no pair yet
    recorded(lake, D2, D3)
    history = lake.require("gold", "segment_membership_history")
    assert [p.key for p in history.partitions] == [f"as_of_date={d.isoformat()}" for d in (D1, D2, D3)]
    assert history_table(lake).schema.types == HISTORY_SCHEMA.types and lake.count_rows(history) == len(ROWS)
    migration = lake.require("gold", "segment_migration")
    assert [p.key for p in migration.partitions] == [f"to_as_of_date={d.isoformat()}" for d in (D2, D3)]
    table = migration_rows(lake)
    assert migration_rows(lake).columns.tolist() == MIGRATION_SCHEMA.names
    assert lake.read_arrow(migration).select(MIGRATION_SCHEMA.names).schema.types == MIGRATION_SCHEMA.types
    pairs = set(zip(table["dimension"], table["from_as_of_date"], table["to_as_of_date"], strict=True))
    assert pairs == {(d, a, b) for d in ("rfm_segment", "cluster_label") for a, b in ((D1, D2), (D2, D3))}
    second = table[(table["dimension"] == "rfm_segment") & (table["from_as_of_date"] == D2)]
    assert as_dict(second) == {("New", "Loyal"): 1, ("New", None): 1, ("Champions", None): 2, ("At Risk", None): 1}
    assert list(table["dimension"].iloc[:1]) == ["rfm_segment"]


def test_a_rerun_replaces_its_partition_and_gives_the_same_tables(lake: Lake) -> None:
    recorded(lake, D1, D2)
    before = (history_table(lake), migration_rows(lake))
    history_version = lake.require("gold", "segment_membership_history").partitions[1].version
    recorded(lake, D2)
    after = lake.require("gold", "segment_membership_history")
    assert after.partitions[1].version != history_version  # replaced, not added to
    assert history_table(lake).equals(before[0])
    pd.testing.assert_frame_equal(migration_rows(lake), before[1])


def test_a_backfilled_as_of_rewires_the_migration_around_it(lake: Lake, tmp_path) -> None:
    recorded(lake, D1, D3, D2)  # D2 arrives last
    in_order = recorded(Lake(tmp_path / "in_order"), D1, D2, D3)
    pd.testing.assert_frame_equal(migration_rows(lake), migration_rows(in_order))


def test_an_unpartitioned_history_is_converted_on_the_first_write(lake: Lake, tmp_path) -> None:
    # The layout of lakes written before partitioning: one table version holding every as_of.
    reference = recorded(Lake(tmp_path / "reference"), D1, D2, D3)
    legacy_history = pa.concat_tables([run_rows(D1), run_rows(D2)])
    lake.write_arrow("gold", "segment_membership_history", legacy_history)
    old_migration = reference.read_arrow(reference.require("gold", "segment_migration"))
    lake.write_arrow("gold", "segment_migration", old_migration.filter(
        pa.compute.equal(old_migration.column("to_as_of_date"), pa.scalar(D2, pa.date32()))))
    recorded(lake, D3)
    history = lake.require("gold", "segment_membership_history")
    assert history.is_partitioned and history_table(lake).equals(history_table(reference))
    pd.testing.assert_frame_equal(migration_rows(lake), migration_rows(reference))


def test_matrix_rendering_and_errors(lake: Lake) -> None:
    recorded(lake, D1, D2)
    text = render_matrix(migration_between(lake, D1, D2))
    header, *rows = text.splitlines()
    assert header.split()[-1] == "(gone)" and rows[-1].startswith("(new)")
    with pytest.raises(RfmlakeError, match=r"2024-05-01 is not an as_of date .*available: 2024-01-01, 2024-02-01"):
        migration_between(lake, D1, date(2024, 5, 1))
    with pytest.raises(RfmlakeError, match="must be before"):
        migration_between(lake, D2, D1)
    with pytest.raises(RfmlakeError, match="dimension must be one of"):
        migration_between(lake, D1, D2, "value")


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
