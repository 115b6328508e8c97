"""The inline SVG charts: one mark per data point, placed inside the plot area at the right
coordinates, axes and accessible names, escaping, and empty or missing data."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from rfmlake.reporting.svg import Frame, Series, bar_chart, hbar_chart, line_chart, nice_ticks

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # also proves the SVG is well-formed XML


def marks(root: ET.Element, tag: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if "mark" in e.get("class", "").split()]


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


def test_series_length_must_match_categories() -> None:
    with pytest.raises(ValueError, match="series 's' has 1 value"):
        line_chart(["a", "b"], [Series("s", [1.0])], title="t", x_label="x", y_label="y")


@pytest.mark.parametrize(("low", "high"), [(0, 0.43), (-0.12, 0.51), (1234, 98765), (5, 5), (0, 1), (367.8, 436.3)])
def test_nice_ticks_cover_the_range_with_even_steps(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1 and 2 <= len(ticks) <= 12
