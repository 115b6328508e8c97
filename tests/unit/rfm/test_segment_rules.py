"""The named-segment rule table: shipped coverage, validation messages, first match wins."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from rfmlake.errors import ConfigError
from rfmlake.rfm.rules import SegmentRules, fm_score

SHIPPED_NAMES = [
    "Champions", "Loyal", "Potential Loyalist", "New", "Promising", "Need Attention",
    "About to Sleep", "Cannot Lose Them", "At Risk", "Hibernating", "Lost",
]


def write_rules(tmp_path: Path, segments: list[dict], n_bins: int = 2, version: int = 1) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"version": version, "n_bins": n_bins, "segments": segments}))
    return path


def test_shipped_table_names_every_cell_of_the_grid():
    rules = SegmentRules.load()
    assert rules.version == 1
    assert rules.n_bins == 5
    assert list(rules.names) == SHIPPED_NAMES
    assert rules.uncovered_cells() == []
    expected = {
        (5, 5): "Champions", (5, 4): "Champions", (4, 5): "Loyal", (3, 4): "Loyal",
        (5, 3): "Potential Loyalist", (4, 2): "Potential Loyalist", (5, 1): "New", (4, 1): "Promising",
        (3, 3): "Need Attention", (3, 2): "About to Sleep", (3, 1): "About to Sleep",
        (2, 5): "Cannot Lose Them", (1, 5): "Cannot Lose Them", (2, 4): "At Risk", (1, 3): "At Risk",
        (2, 2): "Hibernating", (2, 1): "Hibernating", (1, 2): "Lost", (1, 1): "Lost",
    }
    for (r, fm), name in expected.items():
        assert rules.segment_of(r, fm) == name, (r, fm)


def test_fm_score_is_the_mean_rounded_half_up():
    assert fm_score([1, 1, 3, 4, 5], [1, 2, 3, 5, 4]).tolist() == [1, 2, 3, 5, 5]


def test_assign_uses_r_and_fm():
    scores = pd.DataFrame({"r_score": [5, 1, 3, 2], "f_score": [5, 1, 3, 5], "m_score": [4, 2, 3, 5]},
                          index=[10, 11, 12, 13])
    segments = SegmentRules.load().assign(scores)
    assert segments.to_dict() == {10: "Champions", 11: "Lost", 12: "Need Attention", 13: "Cannot Lose Them"}


def test_a_gap_names_the_uncovered_cells(tmp_path: Path):
    path = write_rules(tmp_path, [
        {"name": "Top", "r": [2, 2], "fm": [1, 2]},
        {"name": "Low", "r": [1, 1], "fm": [2, 2]},
    ])
    with pytest.raises(ConfigError) as info:
        SegmentRules.load(path)
    assert str(path) in str(info.value)
    assert "(r=1, fm=1)" in str(info.value)
    assert "(r=1, fm=2)" not in str(info.value)


def test_overlapping_rules_first_match_wins(tmp_path: Path):
    broad = {"name": "Everyone", "r": [1, 2], "fm": [1, 2]}
    narrow = {"name": "Best", "r": [2, 2], "fm": [2, 2]}
    scores = pd.DataFrame({"r_score": [2, 1], "f_score": [2, 1], "m_score": [2, 1]})
    broad_first = SegmentRules.load(write_rules(tmp_path, [broad, narrow]))
    assert broad_first.assign(scores).tolist() == ["Everyone", "Everyone"]
    narrow_first = SegmentRules.load(write_rules(tmp_path, [narrow, broad]))
    assert narrow_first.assign(scores).tolist() == ["Best", "Everyone"]


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([{"name": "A", "r": [1, 2], "fm": [1, 2]}, {"name": "A", "r": [1, 1], "fm": [1, 1]}],
         r"rule #2 \('A'\).*unique"),
        ([{"name": "A", "r": [1, 3], "fm": [1, 2]}], r"rule #1 \('A'\): 'r' range \[1, 3\]"),
        ([{"name": "A", "r": [2, 1], "fm": [1, 2]}], r"rule #1 \('A'\): 'r' range"),
        ([{"name": "A", "r": "1-2", "fm": [1, 2]}], "'r' must be a"),
        ([{"name": "A", "r": [1, 2], "fm": [1, 2], "colour": "red"}], "unknown key"),
        ([{"r": [1, 2], "fm": [1, 2]}], "rule #1 needs a non-empty 'name'"),
        ([], "non-empty list"),
    ],
)
def test_invalid_tables_are_rejected_naming_file_and_rule(tmp_path: Path, segments, message):
    path = write_rules(tmp_path, segments)
    with pytest.raises(ConfigError, match=message) as info:
        SegmentRules.load(path)
    assert str(path) in str(info.value)


def test_not_yaml_missing_file_and_n_bins_mismatch(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        SegmentRules.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        SegmentRules.load(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="n_bins=5, but rfm.score_bins is 4"):
        SegmentRules.load(None, expected_n_bins=4)


def test_digest_changes_with_content_not_with_reload(tmp_path: Path):
    one = [{"name": "All", "r": [1, 2], "fm": [1, 2]}]
    other = [{"name": "Everyone", "r": [1, 2], "fm": [1, 2]}]
    first = SegmentRules.load(write_rules(tmp_path, one)).digest
    assert SegmentRules.load(write_rules(tmp_path, one)).digest == first
    assert SegmentRules.load(write_rules(tmp_path, other)).digest != first
    assert SegmentRules.from_dict(SegmentRules.load().to_dict()).digest == SegmentRules.load().digest
