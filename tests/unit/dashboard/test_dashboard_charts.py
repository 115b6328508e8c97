from __future__ import annotations

import re

import pytest

from rfmlake.dashboard import charts


def test_hbar_marks_and_escaping() -> None:
    svg = charts.hbar_chart("x", "T <1>", [("a&b", 3.0), ("c", 0.0)])
    assert svg.count('class="mark"') == 2
    assert "a&amp;b" in svg and "T &lt;1&gt;" in svg


def test_hbar_rejects_negative_and_nan() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        charts.hbar_chart("x", "t", [("a", -1.0)])
    with pytest.raises(ValueError, match="finite"):
        charts.hbar_chart("x", "t", [("a", float("nan"))])


def test_empty_inputs_say_so() -> None:
    assert 'class="empty"' in charts.hbar_chart("x", "t", [])
    assert 'class="empty"' in charts.histogram("x", "t", [0, 1], [0], x_title="v")
    assert 'class="empty"' in charts.heatmap("x", "t", [], [], [], row_title="r", column_title="c")


def test_heatmap_zero_cells_are_not_marks_and_shape_is_checked() -> None:
    svg = charts.heatmap("h", "t", ["r1", "r2"], ["c1", "c2"], [[1, 0], [0, 4]], row_title="r", column_title="c")
    assert re.findall(r'data-value="([^"]+)"', svg) == ["1", "4"]
    with pytest.raises(ValueError, match="2 rows of 2"):
        charts.heatmap("h", "t", ["r1", "r2"], ["c1", "c2"], [[1, 0]], row_title="r", column_title="c")


@pytest.mark.parametrize(("span", "bins", "step"), [(283.0, 20, 20.0), (100.0, 20, 5.0), (0.9, 20, 0.05), (0, 5, 1.0)])
def test_nice_step(span: float, bins: int, step: float) -> None:
    assert charts.nice_step(span, bins) == pytest.approx(step)


def test_histogram_needs_matching_edges() -> None:
    with pytest.raises(ValueError, match="edges"):
        charts.histogram("x", "t", [0, 1], [1, 2], x_title="v")


def test_deterministic() -> None:
    args = ("h", "t", ["a"], ["b"], [[2.0]])
    assert charts.heatmap(*args, row_title="r", column_title="c") == charts.heatmap(*args, row_title="r", column_title="c")
