"""The inline SVG charts of the dashboard and the report (rfmlake.charts): number formats and
ticks; one mark per data point, placed inside the plot area at the right coordinates, axes and
accessible names, escaping, and empty or missing data."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from rfmlake.charts import (
    Frame,
    Series,
    bar_chart,
    category_colors,
    format_number,
    format_percent,
    hbar_chart,
    heatmap,
    histogram,
    labelled_hbar_chart,
    line_chart,
    nice_step,
    nice_ticks,
)

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # also proves the SVG is well-formed XML


def marks(root: ET.Element, tag: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if "mark" in e.get("class", "").split()]


# -- numbers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "fixed", "significant"), [
    (12_345_678.0, "12.35M", "12.3M"), (-1_234_567.0, "-1.23M", "-1.23M"), (123_456.0, "123.5k", "123k"),
    (12_345.0, "12.3k", "12.3k"), (1234.4, "1,234", "1,234"), (7.0, "7", "7"), (0.4213, "0.42", "0.421"),
])
def test_format_number_fixed_decimals_or_significant_digits(value: float, fixed: str, significant: str) -> None:
    assert format_number(value) == fixed
    assert format_number(value, significant=3) == significant


@pytest.mark.parametrize(("value", "long", "short"), [(0.4567, "45.7%", "46%"), (0.046, "4.6%", "4.6%"),
                                                      (0.0, "0.0%", "0%"), (-0.25, "-25.0%", "-25%")])
def test_format_percent(value: float, long: str, short: str) -> None:
    assert format_percent(value) == long
    assert format_percent(value, short=True) == short


@pytest.mark.parametrize(("span", "bins", "step"), [(283.0, 20, 20.0), (100.0, 20, 5.0), (0.9, 20, 0.05), (0, 5, 1.0)])
def test_nice_step(span: float, bins: int, step: float) -> None:
    assert nice_step(span, bins) == pytest.approx(step)


@pytest.mark.parametrize(("low", "high"), [(0, 0.43), (-0.12, 0.51), (1234, 98765), (5, 5), (0, 1), (367.8, 436.3)])
def test_nice_ticks_cover_the_range_with_even_steps(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1 and 2 <= len(ticks) <= 12


# -- plot charts (report) --------------------------------------------------------------------------
def test_line_chart_has_one_circle_per_point_placed_by_value() -> None:
    frame = Frame()
    values = [884.6, 661.0, 507.4, 406.0, 354.0]
    root = parse(line_chart(["2", "3", "4", "5", "6"], [Series("inertia", values)], title="Inertia by k",
                            x_label="k", y_label="inertia", include_zero=True, frame=frame))
    circles = marks(root, "circle")
    assert len(circles) == 5
    xs = [float(c.get("cx")) for c in circles]
    ys = [float(c.get("cy")) for c in circles]
    assert xs == sorted(xs) and len(set(xs)) == 5
    assert all(frame.plot_left <= x <= frame.plot_right for x in xs)
    assert all(frame.plot_top <= y <= frame.plot_bottom for y in ys)
    # higher values are higher on the page (smaller y), and y is linear in the value
    assert ys == sorted(ys)
    slope = (ys[0] - ys[1]) / (values[0] - values[1])
    assert ys[2] == pytest.approx(ys[0] + slope * (values[2] - values[0]), abs=0.11)
    assert [float(c.get("data-value")) for c in circles] == values
    assert len(list(root.iter(f"{NS}polyline"))) == 1


def test_line_chart_marks_the_highlighted_category() -> None:
    root = parse(line_chart(["2", "3", "4"], [Series("silhouette", [0.3, 0.5, 0.4])], title="Silhouette",
                            x_label="k", y_label="silhouette", highlight="3", highlight_label="k=3 chosen"))
    highlighted = [c for c in marks(root, "circle") if "highlighted" in c.get("class", "")]
    assert len(highlighted) == 1 and highlighted[0].get("data-value") == "0.5"
    rule = [e for e in root.iter(f"{NS}line") if e.get("class") == "highlight"]
    assert len(rule) == 1 and rule[0].get("x1") == highlighted[0].get("cx")
    assert [t.text for t in root.iter(f"{NS}text") if t.get("class") == "highlight-label"] == ["k=3 chosen"]


def test_missing_values_get_no_mark_and_several_series_a_legend() -> None:
    root = parse(line_chart(["0", "1", "2"], [Series("predicted", [1.0, None, 2.0]),
                                              Series("actual", [1.5, 0.5, float("nan")])],
                            title="Calibration", x_label="bucket", y_label="orders"))
    assert len(marks(root, "circle")) == 4
    assert len([e for e in root.iter(f"{NS}rect") if e.get("class") == "legend"]) == 2
    assert [g.get("data-series") for g in root.iter(f"{NS}g") if g.get("class") == "series"] == ["predicted", "actual"]


def test_charts_have_title_aria_label_axes_and_axis_labels() -> None:
    svg = bar_chart(["1", "2"], [Series("customers", [3, 4])], title="Scores", x_label="score",
                    y_label="customers", description="Customers per score")
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Scores. Customers per score"
    assert root.find(f"{NS}title").text == "Scores"
    axes = [g for g in root.iter(f"{NS}g") if "axis" in g.get("class", "").split()]
    assert len(axes) == 2
    assert [t.text for t in root.iter(f"{NS}text") if t.get("class") == "axis-label"] == ["customers", "score"]
    tick_labels = [t.text for g in axes if "y-axis" in g.get("class") for t in g.iter(f"{NS}text")
                   if t.get("class") is None]
    assert tick_labels[0] == "0" and tick_labels[-1] == "4"


def test_bar_chart_has_one_rect_per_value_with_heights_proportional() -> None:
    frame = Frame()
    values = {"r": [10, 20, 30], "f": [40, 0, 5]}
    root = parse(bar_chart(["1", "2", "3"], [Series(k, v) for k, v in values.items()], title="Scores",
                           x_label="score", y_label="customers", frame=frame))
    rects = marks(root, "rect")
    assert len(rects) == 6
    for rect in rects:
        x, y = float(rect.get("x")), float(rect.get("y"))
        w, h = float(rect.get("width")), float(rect.get("height"))
        assert frame.plot_left <= x and x + w <= frame.plot_right
        assert frame.plot_top <= y and y + h <= frame.plot_bottom + 0.05
    heights = {float(r.get("data-value")): float(r.get("height")) for r in rects}
    assert heights[0.0] == 0.0
    assert heights[40.0] == pytest.approx(4 * heights[10.0], abs=0.2)
    assert heights[20.0] == pytest.approx(2 * heights[10.0], abs=0.2)
    # all bars stand on the zero line
    bottoms = {round(float(r.get("y")) + float(r.get("height")), 0) for r in rects}
    assert bottoms == {frame.plot_bottom}


def test_negative_bars_hang_below_zero() -> None:
    root = parse(bar_chart(["a", "b"], [Series("net", [-5.0, 10.0])], title="Net", x_label="g", y_label="v"))
    negative, positive = marks(root, "rect")
    assert float(negative.get("y")) == pytest.approx(float(positive.get("y")) + float(positive.get("height")),
                                                     abs=0.11)


def test_hbar_chart_bars_grow_right_from_zero_within_the_plot() -> None:
    names = ["Champions", "Loyal", "Lost"]
    svg = hbar_chart(names, [Series("customers", [0.2, 0.5, 0.3]), Series("revenue", [0.6, 0.3, None])],
                     title="Sizes", x_label="share", percent=True, label_width=150, width=600)
    root = parse(svg)
    rects = marks(root, "rect")
    assert len(rects) == 5
    width = float(root.get("width"))
    lefts = {float(r.get("x")) for r in rects}
    assert lefts == {150.0}
    assert all(150.0 + float(r.get("width")) <= width - 20 + 1e-6 for r in rects)
    longest = max(rects, key=lambda r: float(r.get("width")))
    assert longest.get("data-value") == "0.6"
    assert [t.text for t in root.iter(f"{NS}text") if t.text in names] == names
    assert "60%" in [t.text for t in root.iter(f"{NS}text")]


@pytest.mark.parametrize("chart", [
    lambda: line_chart([], [], title="Empty", x_label="x", y_label="y"),
    lambda: line_chart(["2", "3"], [Series("ch", [None, None])], title="Empty", x_label="x", y_label="y"),
    lambda: bar_chart([], [Series("s", [])], title="Empty", x_label="x", y_label="y"),
    lambda: hbar_chart(["a"], [Series("s", [None])], title="Empty", x_label="x"),
])
def test_empty_data_renders_a_titled_chart_saying_no_data(chart) -> None:
    root = parse(chart())
    assert marks(root, "circle") == [] and marks(root, "rect") == []
    assert root.find(f"{NS}title").text == "Empty"
    assert [t.text for t in root.iter(f"{NS}text") if t.get("class") == "no-data"] == ["no data"]


def test_every_string_is_escaped() -> None:
    evil = '<script>alert("x")</script> & "quotes"'
    svg = hbar_chart([evil], [Series(evil, [1.0]), Series("b", [2.0])], title=evil, x_label=evil,
                     description=evil)
    assert "<script>" not in svg
    root = parse(svg)
    assert root.find(f"{NS}title").text == evil
    assert root.get("aria-label") == f"{evil}. {evil}"
    assert evil in [t.text for t in root.iter(f"{NS}text")]


def test_name_becomes_the_data_chart_attribute() -> None:
    args = (["a"], [Series("s", [1.0])])
    assert parse(bar_chart(*args, title="t", x_label="x", y_label="y", name="scores")).get("data-chart") == "scores"
    assert parse(line_chart(*args, title="t", x_label="x", y_label="y")).get("data-chart") is None
    empty = hbar_chart(["a"], [Series("s", [None])], title="t", x_label="x", name="sizes")
    assert parse(empty).get("data-chart") == "sizes"


def test_series_length_must_match_categories() -> None:
    with pytest.raises(ValueError, match="series 's' has 1 value"):
        line_chart(["a", "b"], [Series("s", [1.0])], title="t", x_label="x", y_label="y")


# -- figure charts (dashboard) --------------------------------------------------------------------
def test_labelled_hbar_marks_and_escaping() -> None:
    svg = labelled_hbar_chart("x", "T <1>", [("a&b", 3.0), ("c", 0.0)])
    assert svg.count('class="mark"') == 2
    assert "a&amp;b" in svg and "T &lt;1&gt;" in svg


def test_labelled_hbar_rejects_negative_and_nan() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        labelled_hbar_chart("x", "t", [("a", -1.0)])
    with pytest.raises(ValueError, match="finite"):
        labelled_hbar_chart("x", "t", [("a", float("nan"))])


def test_empty_inputs_say_so() -> None:
    assert 'class="empty"' in labelled_hbar_chart("x", "t", [])
    assert 'class="empty"' in histogram("x", "t", [0, 1], [0], x_title="v")
    assert 'class="empty"' in heatmap("x", "t", [], [], [], row_title="r", column_title="c")


def test_heatmap_zero_cells_are_not_marks_and_shape_is_checked() -> None:
    svg = heatmap("h", "t", ["r1", "r2"], ["c1", "c2"], [[1, 0], [0, 4]], row_title="r", column_title="c")
    assert re.findall(r'data-value="([^"]+)"', svg) == ["1", "4"]
    with pytest.raises(ValueError, match="2 rows of 2"):
        heatmap("h", "t", ["r1", "r2"], ["c1", "c2"], [[1, 0]], row_title="r", column_title="c")



def test_histogram_needs_matching_edges() -> None:
    with pytest.raises(ValueError, match="edges"):
        histogram("x", "t", [0, 1], [1, 2], x_title="v")


def test_heatmap_is_deterministic() -> None:
    args = ("h", "t", ["a"], ["b"], [[2.0]])
    assert heatmap(*args, row_title="r", column_title="c") == heatmap(*args, row_title="r", column_title="c")


def test_category_colors_keep_a_category_colour_across_charts() -> None:
    names = [f"segment {i}" for i in range(13)]
    colors = category_colors(names)
    assert len(set(colors.values())) == 12 and colors["segment 12"] == colors["segment 0"]  # the palette wraps
    svg = labelled_hbar_chart("x", "t", [("segment 3", 1.0), ("segment 1", 2.0), ("other", 3.0)], colors=colors)
    fills = dict(re.findall(r'<rect class="mark" data-label="([^"]+)"[^>]* fill="([^"]+)"', svg))
    assert fills["segment 3"] == colors["segment 3"] and fills["segment 1"] == colors["segment 1"]
    assert fills["other"] == colors["segment 0"]  # not in the map: the first colour
