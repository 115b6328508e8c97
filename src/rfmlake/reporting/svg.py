"""Small inline-SVG charts for self-contained HTML reports: no JavaScript, no external files.

Every chart is one `<svg role="img">` with a `<title>` and an `aria-label`, axes with tick labels
and axis titles, and one mark per data point: a `<circle class="mark">` per point of a line chart,
a `<rect class="mark">` per bar of a bar chart (legend swatches carry class "legend", not "mark").
Each mark has a `<title>` child with its category, series and value, which browsers show on hover.
Missing values (None, NaN) get no mark; a chart without any value says "no data". Every string
that goes into the SVG is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
HIGHLIGHT = "#D55E00"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


@dataclass(frozen=True)
class Series:
    """One named series of values, one per category (None = missing)."""

    name: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Frame:
    """Chart size and the plot area inside it (margins hold the tick labels and axis titles)."""

    width: int = 640
    height: int = 320
    left: int = 72
    right: int = 20
    top: int = 40
    bottom: int = 56

    @property
    def plot_left(self) -> float:
        return float(self.left)

    @property
    def plot_right(self) -> float:
        return float(self.width - self.right)

    @property
    def plot_top(self) -> float:
        return float(self.top)

    @property
    def plot_bottom(self) -> float:
        return float(self.height - self.bottom)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"tick range must be finite, got {low}..{high}")
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round((first + i) * step, 12) for i in range(last - first + 1)]


def format_number(value: float) -> str:
    """Short tick/tooltip text: 1,234 / 12.3k / 4.5M / 0.42."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    if magnitude >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _percent(value: float) -> str:
    return f"{value:.0%}" if abs(value) >= 0.1 or value == 0 else f"{value:.1%}"


class _Scale:
    """Linear map from data [low, high] to pixels [start, end]."""

    def __init__(self, low: float, high: float, start: float, end: float) -> None:
        self.low, self.high, self.start, self.end = low, high, start, end

    def __call__(self, value: float) -> float:
        span = self.high - self.low
        return self.start + (value - self.low) / span * (self.end - self.start)


def _value_range(series: Sequence[Series], include_zero: bool) -> tuple[float, float] | None:
    values = [float(v) for s in series for v in s.values if _finite(v)]  # type: ignore[arg-type]
    if not values:
        return None
    low, high = min(values), max(values)
    if include_zero:
        low, high = min(low, 0.0), max(high, 0.0)
    return low, high


def _open(title: str, description: str, frame: Frame, kind: str) -> list[str]:
    label = f"{title}. {description}" if description else title
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" role="img" '
        f'viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}" height="{frame.height}" '
        f'aria-label="{escape(label)}" style="{FONT}">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(description)}</desc>" if description else "",
        f'<text class="chart-title" x="{frame.width / 2:.1f}" y="22" text-anchor="middle" '
        f'font-size="15" font-weight="600" fill="#222">{escape(title)}</text>',
    ]


def _empty(title: str, description: str, frame: Frame, kind: str) -> str:
    parts = _open(title, description, frame, kind)
    parts.append(f'<text class="no-data" x="{frame.width / 2:.1f}" y="{frame.height / 2:.1f}" '
                 'text-anchor="middle" font-size="14" fill="#666">no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def _y_axis(frame: Frame, scale: _Scale, ticks: list[float], label: str, percent: bool) -> list[str]:
    out = ['<g class="axis y-axis" font-size="11" fill="#444">',
           f'<line x1="{frame.plot_left:.1f}" y1="{frame.plot_top:.1f}" x2="{frame.plot_left:.1f}" '
           f'y2="{frame.plot_bottom:.1f}" stroke="#444"/>']
    for tick in ticks:
        y = scale(tick)
        text = _percent(tick) if percent else format_number(tick)
        out.append(f'<line x1="{frame.plot_left:.1f}" y1="{y:.1f}" x2="{frame.plot_right:.1f}" y2="{y:.1f}" '
                   'stroke="#e3e3e3"/>')
        out.append(f'<text x="{frame.plot_left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{escape(text)}</text>')
    middle = (frame.plot_top + frame.plot_bottom) / 2
    out.append(f'<text class="axis-label" x="14" y="{middle:.1f}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 14 {middle:.1f})">{escape(label)}</text>')
    out.append("</g>")
    return out


def _x_axis(frame: Frame, positions: list[float], categories: Sequence[str], label: str,
            zero_y: float) -> list[str]:
    out = ['<g class="axis x-axis" font-size="11" fill="#444">',
           f'<line x1="{frame.plot_left:.1f}" y1="{zero_y:.1f}" x2="{frame.plot_right:.1f}" y2="{zero_y:.1f}" '
           'stroke="#444"/>']
    for x, category in zip(positions, categories, strict=True):
        out.append(f'<text x="{x:.1f}" y="{frame.plot_bottom + 16:.1f}" text-anchor="middle">'
                   f"{escape(category)}</text>")
    out.append(f'<text class="axis-label" x="{(frame.plot_left + frame.plot_right) / 2:.1f}" '
               f'y="{frame.plot_bottom + 34:.1f}" text-anchor="middle" font-size="12">{escape(label)}</text>')
    out.append("</g>")
    return out


def _legend(frame: Frame, series: Sequence[Series]) -> list[str]:
    if len(series) < 2:
        return []
    out = ['<g class="legend-group" font-size="11" fill="#333">']
    x = frame.plot_left
    for i, s in enumerate(series):
        out.append(f'<rect class="legend" x="{x:.1f}" y="{frame.plot_bottom + 46:.1f}" width="10" height="10" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14:.1f}" y="{frame.plot_bottom + 55:.1f}">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    out.append("</g>")
    return out


def _bottom(series: Sequence[Series]) -> int:
    """Room under the plot: tick labels and axis title, plus a legend row for several series."""
    return 72 if len(series) > 1 else 50


def _check(categories: Sequence[str], series: Sequence[Series]) -> None:
    for s in series:
        if len(s.values) != len(categories):
            raise ValueError(f"series {s.name!r} has {len(s.values)} value(s) for {len(categories)} categories")


def line_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    description: str = "",
    highlight: str | None = None,
    highlight_label: str = "chosen",
    percent: bool = False,
    include_zero: bool = False,
    frame: Frame | None = None,
) -> str:
    """Points joined by lines over evenly spaced categories. `highlight` (a category) gets a dashed
    vertical rule labelled `highlight_label` and a larger, ringed mark, e.g. the chosen k."""
    _check(categories, series)
    frame = frame or Frame(bottom=_bottom(series))
    value_range = _value_range(series, include_zero)
    if not categories or value_range is None:
        return _empty(title, description, frame, "line")
    ticks = nice_ticks(*value_range)
    y = _Scale(ticks[0], ticks[-1], frame.plot_bottom, frame.plot_top)
    step = (frame.plot_right - frame.plot_left) / len(categories)
    xs = [frame.plot_left + step * (i + 0.5) for i in range(len(categories))]

    parts = _open(title, description, frame, "line")
    parts += _y_axis(frame, y, ticks, y_label, percent)
    parts += _x_axis(frame, xs, categories, x_label, frame.plot_bottom)
    if highlight is not None and highlight in categories:
        hx = xs[list(categories).index(highlight)]
        parts.append(f'<line class="highlight" x1="{hx:.1f}" y1="{frame.plot_top:.1f}" x2="{hx:.1f}" '
                     f'y2="{frame.plot_bottom:.1f}" stroke="{HIGHLIGHT}" stroke-dasharray="4 3"/>')
        # At the foot of the rule: the top is where the best point of a curve usually sits.
        anchor = "end" if hx > (frame.plot_left + frame.plot_right) / 2 else "start"
        shift = -4 if anchor == "end" else 4
        parts.append(f'<text class="highlight-label" x="{hx + shift:.1f}" y="{frame.plot_bottom - 6:.1f}" '
                     f'text-anchor="{anchor}" font-size="11" fill="{HIGHLIGHT}">{escape(highlight_label)}</text>')
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        points = [(xs[j], y(float(v)), category, float(v))  # type: ignore[arg-type]
                  for j, (category, v) in enumerate(zip(categories, s.values, strict=True)) if _finite(v)]
        parts.append(f'<g class="series" data-series="{escape(s.name)}">')
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for px, py, category, value in points:
            chosen = category == highlight
            text = _percent(value) if percent else format_number(value)
            parts.append(
                f'<circle class="mark{" highlighted" if chosen else ""}" cx="{px:.1f}" cy="{py:.1f}" '
                f'r="{6 if chosen else 4}" fill="{color}" stroke="{HIGHLIGHT if chosen else "#fff"}" '
                f'stroke-width="{2 if chosen else 1}" data-value="{value!r}">'
                f"<title>{escape(f'{s.name}, {x_label} {category}: {text}')}</title></circle>")
        parts.append("</g>")
    parts += _legend(frame, series)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    description: str = "",
    percent: bool = False,
    frame: Frame | None = None,
) -> str:
    """Vertical bars from zero, grouped by category, one bar per series in each group."""
    _check(categories, series)
    frame = frame or Frame(bottom=_bottom(series))
    value_range = _value_range(series, include_zero=True)
    if not categories or value_range is None:
        return _empty(title, description, frame, "bar")
    ticks = nice_ticks(*value_range)
    y = _Scale(ticks[0], ticks[-1], frame.plot_bottom, frame.plot_top)
    band = (frame.plot_right - frame.plot_left) / len(categories)
    group = band * 0.8
    bar = group / max(len(series), 1)
    xs = [frame.plot_left + band * (i + 0.5) for i in range(len(categories))]
    zero = y(0.0)

    parts = _open(title, description, frame, "bar")
    parts += _y_axis(frame, y, ticks, y_label, percent)
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        parts.append(f'<g class="series" data-series="{escape(s.name)}">')
        for j, (category, v) in enumerate(zip(categories, s.values, strict=True)):
            if not _finite(v):
                continue
            value = float(v)  # type: ignore[arg-type]
            top = min(y(value), zero)
            height = abs(y(value) - zero)
            x = xs[j] - group / 2 + bar * i
            text = _percent(value) if percent else format_number(value)
            name = f"{s.name}, " if len(series) > 1 else ""
            parts.append(
                f'<rect class="mark" x="{x:.1f}" y="{top:.1f}" width="{max(bar - 1, 1):.1f}" '
                f'height="{height:.1f}" fill="{color}" data-value="{value!r}">'
                f"<title>{escape(f'{name}{category}: {text}')}</title></rect>")
        parts.append("</g>")
    parts += _x_axis(frame, xs, categories, x_label, zero)
    parts += _legend(frame, series)
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    description: str = "",
    percent: bool = False,
    label_width: int = 190,
    width: int = 640,
) -> str:
    """Horizontal bars (room for long category names like segment labels), grouped by category."""
    _check(categories, series)
    row = 14 * max(len(series), 1) + 10
    bottom = _bottom(series)
    frame = Frame(width=width, height=40 + bottom + row * max(len(categories), 1), left=label_width, top=40,
                  bottom=bottom)
    value_range = _value_range(series, include_zero=True)
    if not categories or value_range is None:
        return _empty(title, description, frame, "hbar")
    ticks = nice_ticks(*value_range)
    x = _Scale(ticks[0], ticks[-1], frame.plot_left, frame.plot_right)
    zero = x(0.0)
    band = (frame.plot_bottom - frame.plot_top) / len(categories)
    bar = (band - 8) / max(len(series), 1)

    parts = _open(title, description, frame, "hbar")
    parts.append('<g class="axis x-axis" font-size="11" fill="#444">')
    for tick in ticks:
        tx = x(tick)
        text = _percent(tick) if percent else format_number(tick)
        parts.append(f'<line x1="{tx:.1f}" y1="{frame.plot_top:.1f}" x2="{tx:.1f}" y2="{frame.plot_bottom:.1f}" '
                     'stroke="#e3e3e3"/>')
        parts.append(f'<text x="{tx:.1f}" y="{frame.plot_bottom + 16:.1f}" text-anchor="middle">'
                     f"{escape(text)}</text>")
    parts.append(f'<line x1="{frame.plot_left:.1f}" y1="{frame.plot_bottom:.1f}" x2="{frame.plot_right:.1f}" '
                 f'y2="{frame.plot_bottom:.1f}" stroke="#444"/>')
    parts.append(f'<text class="axis-label" x="{(frame.plot_left + frame.plot_right) / 2:.1f}" '
                 f'y="{frame.plot_bottom + 36:.1f}" text-anchor="middle" font-size="12">{escape(x_label)}</text>')
    parts.append("</g>")
    parts.append('<g class="axis y-axis" font-size="11" fill="#444">')
    parts.append(f'<line x1="{zero:.1f}" y1="{frame.plot_top:.1f}" x2="{zero:.1f}" y2="{frame.plot_bottom:.1f}" '
                 'stroke="#444"/>')
    for j, category in enumerate(categories):
        cy = frame.plot_top + band * (j + 0.5)
        parts.append(f'<text x="{frame.plot_left - 8:.1f}" y="{cy + 4:.1f}" text-anchor="end">'
                     f"{escape(category)}</text>")
    parts.append("</g>")
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        parts.append(f'<g class="series" data-series="{escape(s.name)}">')
        for j, (category, v) in enumerate(zip(categories, s.values, strict=True)):
            if not _finite(v):
                continue
            value = float(v)  # type: ignore[arg-type]
            left = min(x(value), zero)
            length = abs(x(value) - zero)
            top = frame.plot_top + band * j + 4 + bar * i
            text = _percent(value) if percent else format_number(value)
            name = f"{s.name}, " if len(series) > 1 else ""
            parts.append(
                f'<rect class="mark" x="{left:.1f}" y="{top:.1f}" width="{length:.1f}" '
                f'height="{max(bar - 1, 1):.1f}" fill="{color}" data-value="{value!r}">'
                f"<title>{escape(f'{name}{category}: {text}')}</title></rect>")
        parts.append("</g>")
    parts += _legend(frame, series)
    parts.append("</svg>")
    return "".join(parts)
