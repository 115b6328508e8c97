"""Small inline-SVG charts for static pages (`rfmlake dashboard`, `rfmlake report`): no JavaScript,
nothing fetched, deterministic output, every string escaped.

Each drawn datum is a mark: an element with class `mark`, a `data-value` and a `<title>` child that
browsers show on hover, so tests (and people with the inspector) can check that a chart really
shows data. Legend swatches carry class "legend", not "mark".

Two kinds of chart share the helpers:

- figure charts (the dashboard): `labelled_hbar_chart`, `heatmap`, `histogram`, `empty_chart`. A
  `<figure class="chart" data-chart=NAME>` with a caption, one `<svg>` and an optional note; one
  with nothing to show says so in a `<p class="empty">`.
- plot charts (the report): `line_chart`, `bar_chart`, `hbar_chart`. One `<svg role="img">` with a
  `<title>`, an `aria-label`, axes with tick labels and axis titles, and a legend for several
  series. Missing values (None, NaN) get no mark; a chart without any value says "no data".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from html import escape

# A colour per category, e.g. per RFM segment: a segment keeps its colour across charts.
PALETTE: tuple[str, ...] = ("#2f6f9f", "#e07b39", "#3a9d5d", "#c94c4c", "#8a6bbf", "#8c6d46", "#d17fb0",
                            "#6f6f6f", "#b5b531", "#2fb3c0", "#4b4b8f", "#9f2f6f")
# Okabe-Ito, for the series of a plot: distinguishable with the common colour-vision deficiencies.
SERIES_PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
HIGHLIGHT = "#D55E00"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


# -- numbers ----------------------------------------------------------------------------------------
def format_number(value: float, *, significant: int | None = None) -> str:
    """Short text for a number: 1234567 -> '1.23M', 12345 -> '12.3k', 1234 -> '1,234', 0.4213 -> '0.42'
    (two decimals for millions and below 100, one for thousands); with `significant` digits instead
    of fixed decimals: 12345678 -> '12.3M' (not '12.35M'), 0.4213 -> '0.421'."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        scaled, suffix, decimals = value / 1e6, "M", 2
    elif magnitude >= 1e4:
        scaled, suffix, decimals = value / 1e3, "k", 1
    elif magnitude >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    else:
        scaled, suffix, decimals = value, "", 2
    spec = f".{significant}g" if significant is not None else f".{decimals}f"
    return f"{scaled:{spec}}{suffix}"


def format_percent(value: float, *, short: bool = False) -> str:
    """0.4567 -> '45.7%'; `short` rounds to a whole percent from 10% (and at 0): '46%', but '4.6%'."""
    if short and (abs(value) >= 0.1 or value == 0):
        return f"{value:.0%}"
    return f"{value:.1%}"


def nice_step(span: float, bins: int) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k step that covers `span` in `bins` steps."""
    if span <= 0:
        return 1.0
    raw = span / bins
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high], a nice_step apart."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"tick range must be finite, got {low}..{high}")
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = nice_step(high - low, max(count, 1))
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round((first + i) * step, 12) for i in range(last - first + 1)]


class _Scale:
    """Linear map from data [low, high] to pixels [start, end]."""

    def __init__(self, low: float, high: float, start: float, end: float) -> None:
        self.low, self.high, self.start, self.end = low, high, start, end

    def __call__(self, value: float) -> float:
        span = self.high - self.low
        return self.start + (value - self.low) / span * (self.end - self.start)


# -- shared SVG pieces ------------------------------------------------------------------------------
def category_colors(categories: Sequence[str]) -> dict[str, str]:
    """A PALETTE colour per category, in order (pass to every chart that shows the categories)."""
    return {category: _color(PALETTE, i) for i, category in enumerate(categories)}


def _color(palette: Sequence[str], index: int) -> str:
    return palette[index % len(palette)]


def _svg(width: int, height: int, title: str, body: Sequence[str], *, name: str = "", kind: str = "",
         label: str = "", font_size: int | None = None) -> str:
    """One `<svg role="img">` titled `title` around `body`; `name` becomes its data-chart, `kind` its
    class (chart chart-KIND), `label` its aria-label."""
    named = f'data-chart="{_e(name)}" ' if name else ""
    classes = f'class="chart chart-{kind}" ' if kind else ""
    aria = f'aria-label="{_e(label)}" ' if label else ""
    style = f"{FONT};font-size:{font_size}px" if font_size else FONT
    return (f'<svg {named}xmlns="http://www.w3.org/2000/svg" {classes}role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" {aria}style="{style}"><title>{_e(title)}</title>'
            f"{''.join(body)}</svg>")


def _mark(tag: str, attributes: Mapping[str, object], tip: str, classes: str = "mark") -> str:
    """One drawn datum: `<tag class="mark" ...>` with its hover text `tip` as a `<title>` child."""
    attrs = "".join(f' {key}="{_e(value)}"' for key, value in attributes.items())
    return f'<{tag} class="{classes}"{attrs}><title>{_e(tip)}</title></{tag}>'


# -- figure charts (dashboard) ----------------------------------------------------------------------
def _figure(name: str, title: str, body: str, note: str = "", wide: bool = False) -> str:
    caption = f"<figcaption>{_e(title)}</figcaption>"
    extra = f'<p class="note">{_e(note)}</p>' if note else ""
    classes = "chart wide" if wide else "chart"
    return f'<figure class="{classes}" data-chart="{_e(name)}">{caption}{body}{extra}</figure>'


def empty_chart(name: str, title: str, message: str) -> str:
    return _figure(name, title, f'<p class="empty">{_e(message)}</p>')


def labelled_hbar_chart(name: str, title: str, items: Sequence[tuple[str, float]], *,
                        fmt: Callable[[float], str] = format_number, width: int = 560, note: str = "",
                        colors: Mapping[str, str] | None = None) -> str:
    """Horizontal bars, one per (label, value) in the order given, each labelled with its value (no
    value axis); values must be >= 0. `colors` maps labels to fills (see category_colors)."""
    if not items:
        return empty_chart(name, title, "no data")
    if any(not math.isfinite(v) or v < 0 for _, v in items):
        raise ValueError(f"{name}: bar values must be finite and >= 0")
    label_w, value_w, bar_h, gap = 150, 70, 20, 6
    plot_w = width - label_w - value_w
    top = max(v for _, v in items) or 1.0
    height = len(items) * (bar_h + gap) + gap
    parts: list[str] = []
    for i, (label, value) in enumerate(items):
        y = gap + i * (bar_h + gap)
        w = max(plot_w * value / top, 1.0)
        text = fmt(value)
        parts.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{_e(label)}</text>')
        parts.append(_mark("rect", {"data-label": label, "data-value": value, "x": label_w, "y": y,
                                    "width": f"{w:.1f}", "height": bar_h,
                                    "fill": (colors or {}).get(label, PALETTE[0])}, f"{label}: {text}"))
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 14}">{_e(text)}</text>')
    return _figure(name, title, _svg(width, height, title, parts, font_size=12), note)


def _mix(share: float) -> str:
    """White (0) to deep blue (1)."""
    share = min(max(share, 0.0), 1.0)
    low, high = (247, 251, 255), (8, 48, 107)
    r, g, b = (round(a + (c - a) * share) for a, c in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(name: str, title: str, rows: Sequence[str], columns: Sequence[str],
            values: Sequence[Sequence[float]], *, row_title: str, column_title: str,
            fmt: Callable[[float], str] = format_number, cell: int = 56, note: str = "",
            slanted_columns: bool = False, wide: bool = False) -> str:
    """A grid of cells shaded by value (rows top to bottom, columns left to right). Cells with a
    zero value are drawn blank and are not data marks. `slanted_columns` tilts long column labels."""
    if not rows or not columns:
        return empty_chart(name, title, "no data")
    if len(values) != len(rows) or any(len(row) != len(columns) for row in values):
        raise ValueError(f"{name}: values must be {len(rows)} rows of {len(columns)}")
    left, top_margin = 150, (130 if slanted_columns else 56)
    width = left + cell * len(columns) + (90 if slanted_columns else 10)
    height = top_margin + cell * len(rows) + 10
    peak = max((v for row in values for v in row), default=0.0) or 1.0
    parts = [f'<text x="{left + cell * len(columns) / 2:.0f}" y="14" text-anchor="middle" '
             f'font-weight="600">{_e(column_title)}</text>' if not slanted_columns else
             f'<text x="{left}" y="14" font-weight="600">{_e(column_title)}</text>',
             f'<text x="8" y="{top_margin - 8}" font-weight="600">{_e(row_title)}</text>']
    for j, label in enumerate(columns):
        x, y = left + j * cell + cell / 2, top_margin - 10
        if slanted_columns:
            parts.append(f'<text x="{x:.0f}" y="{y}" transform="rotate(-35 {x:.0f} {y})">{_e(label)}</text>')
        else:
            parts.append(f'<text x="{x:.0f}" y="{y}" text-anchor="middle">{_e(label)}</text>')
    for i, label in enumerate(rows):
        y = top_margin + i * cell
        parts.append(f'<text x="{left - 8}" y="{y + cell / 2 + 4:.0f}" text-anchor="end">{_e(label)}</text>')
        for j, value in enumerate(values[i]):
            x = left + j * cell
            if value <= 0:
                parts.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="#f3f3f3"/>')
                continue
            share = value / peak
            ink = "#ffffff" if share > 0.55 else "#1a1a1a"
            parts.append(_mark("rect", {"data-row": label, "data-column": columns[j], "data-value": value, "x": x,
                                        "y": y, "width": cell - 2, "height": cell - 2,
                                        "fill": _mix(0.12 + 0.88 * share)}, f"{label} / {columns[j]}: {fmt(value)}"))
            parts.append(f'<text x="{x + (cell - 2) / 2:.0f}" y="{y + cell / 2 + 2:.0f}" text-anchor="middle" '
                         f'fill="{ink}">{_e(fmt(value))}</text>')
    return _figure(name, title, _svg(width, height, title, parts, font_size=12), note, wide)


def histogram(name: str, title: str, edges: Sequence[float], counts: Sequence[int], *,
              x_title: str, fmt: Callable[[float], str] = format_number, width: int = 560,
              height: int = 220, note: str = "") -> str:
    """Vertical bars over bins [edges[i], edges[i+1]), heights = counts."""
    if not counts or sum(counts) == 0:
        return empty_chart(name, title, "no data")
    if len(edges) != len(counts) + 1:
        raise ValueError(f"{name}: need len(counts) + 1 edges")
    left, bottom, top_margin = 50, 40, 10
    plot_w, plot_h = width - left - 10, height - bottom - top_margin
    peak = max(counts)
    bar_w = plot_w / len(counts)
    parts = [f'<line x1="{left}" y1="{top_margin + plot_h}" x2="{left + plot_w}" y2="{top_margin + plot_h}" '
             'stroke="#888"/>',
             f'<text x="{left - 6}" y="{top_margin + 10}" text-anchor="end">{peak:,}</text>',
             f'<text x="{left - 6}" y="{top_margin + plot_h}" text-anchor="end">0</text>',
             f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">{_e(x_title)}</text>']
    for i, count in enumerate(counts):
        x = left + i * bar_w
        if count > 0:
            h = max(plot_h * count / peak, 1.0)
            parts.append(_mark("rect", {"data-value": count, "data-from": edges[i], "data-to": edges[i + 1],
                                        "x": f"{x + 1:.1f}", "y": f"{top_margin + plot_h - h:.1f}",
                                        "width": f"{max(bar_w - 2, 1):.1f}", "height": f"{h:.1f}",
                                        "fill": PALETTE[0]}, f"{fmt(edges[i])} to {fmt(edges[i + 1])}: {count:,}"))
    step = max(1, len(counts) // 6)
    for i in range(0, len(edges), step):
        parts.append(f'<text x="{left + i * bar_w:.1f}" y="{top_margin + plot_h + 14}" '
                     f'text-anchor="middle">{_e(fmt(edges[i]))}</text>')
    return _figure(name, title, _svg(width, height, title, parts, font_size=12), note)


def interval_chart(name: str, title: str, items: Sequence[tuple[str, float | None, float | None, float | None]], *,
                   fmt: Callable[[float], str] = format_percent, width: int = 560, note: str = "",
                   reference: float | None = None, reference_label: str = "",
                   colors: Mapping[str, str] | None = None) -> str:
    """An estimate with its interval per row (label, value, low, high): a dot on a line from low to
    high over a shared axis, labelled with the numbers. `reference` draws a dashed rule (e.g. the
    holdout's rate, or zero for a lift). Rows without a value are listed with a dash."""
    if not items:
        return empty_chart(name, title, "no data")
    values = [v for _, value, low, high in items for v in (value, low, high) if _finite(v)]
    if reference is not None:
        values.append(reference)
    if not values:
        return empty_chart(name, title, "no data")
    label_w, text_w, row_h = 110, 170, 30
    ticks = nice_ticks(min([*values, 0.0]), max([*values, 0.0]))
    plot_left, plot_right = label_w, width - text_w
    x = _Scale(ticks[0], ticks[-1], plot_left, plot_right)
    top = 10
    height = top + row_h * len(items) + 34
    axis_y = top + row_h * len(items) + 4
    parts = [f'<line x1="{plot_left}" y1="{axis_y}" x2="{plot_right}" y2="{axis_y}" stroke="#888"/>']
    for tick in ticks:
        tx = x(tick)
        parts.append(f'<line x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 4}" stroke="#888"/>')
        parts.append(f'<text x="{tx:.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#555">{_e(fmt(tick))}</text>')
    if reference is not None and _finite(reference):
        rx = x(reference)
        parts.append(f'<line class="reference" x1="{rx:.1f}" y1="{top}" x2="{rx:.1f}" y2="{axis_y}" '
                     f'stroke="{HIGHLIGHT}" stroke-dasharray="4 3"/>')
        if reference_label:
            parts.append(f'<text x="{rx + 4:.1f}" y="{axis_y - 4}" font-size="10" fill="{HIGHLIGHT}">'
                         f"{_e(reference_label)}</text>")
    for i, (label, value, low, high) in enumerate(items):
        y = top + row_h * i + row_h / 2
        color = (colors or {}).get(label, PALETTE[0])
        parts.append(f'<text x="{label_w - 8}" y="{y + 4:.1f}" text-anchor="end">{_e(label)}</text>')
        if not _finite(value):
            parts.append(f'<text x="{plot_left + 4}" y="{y + 4:.1f}" fill="#777">-</text>')
            continue
        value = float(value)  # type: ignore[arg-type]
        text = fmt(value)
        if _finite(low) and _finite(high):
            lo, hi = float(low), float(high)  # type: ignore[arg-type]
            parts.append(f'<line x1="{x(lo):.1f}" y1="{y:.1f}" x2="{x(hi):.1f}" y2="{y:.1f}" stroke="{color}" '
                         'stroke-width="2"/>')
            for end in (lo, hi):
                parts.append(f'<line x1="{x(end):.1f}" y1="{y - 6:.1f}" x2="{x(end):.1f}" y2="{y + 6:.1f}" '
                             f'stroke="{color}" stroke-width="2"/>')
            text = f"{fmt(value)} [{fmt(lo)}, {fmt(hi)}]"
            bounds = {"data-low": repr(lo), "data-high": repr(hi)}
        else:
            bounds = {}
        parts.append(_mark("circle", {"data-label": label, "data-value": repr(value), **bounds, "cx": f"{x(value):.1f}",
                                      "cy": f"{y:.1f}", "r": 5, "fill": color}, f"{label}: {text}"))
        parts.append(f'<text x="{plot_right + 8}" y="{y + 4:.1f}">{_e(text)}</text>')
    return _figure(name, title, _svg(width, height, title, parts, font_size=12), note)


def figure(name: str, title: str, body: str, note: str = "", wide: bool = False) -> str:
    """A dashboard figure around any chart (a plot chart's svg, a table)."""
    return _figure(name, title, body, note, wide)


# -- plot charts (report) ---------------------------------------------------------------------------
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


def _formatter(percent: bool) -> Callable[[float], str]:
    """Tick and hover text of a plot's values."""
    return partial(format_percent, short=True) if percent else partial(format_number, significant=3)


def _check(categories: Sequence[str], series: Sequence[Series]) -> None:
    for s in series:
        if len(s.values) != len(categories):
            raise ValueError(f"series {s.name!r} has {len(s.values)} value(s) for {len(categories)} categories")


def _ticks(categories: Sequence[str], series: Sequence[Series], include_zero: bool) -> list[float] | None:
    """Ticks of the value axis over every finite value (and zero), or None when there is nothing to draw."""
    values = [float(v) for s in series for v in s.values if _finite(v)]  # type: ignore[arg-type]
    if not categories or not values:
        return None
    low, high = min(values), max(values)
    if include_zero:
        low, high = min(low, 0.0), max(high, 0.0)
    return nice_ticks(low, high)


def _bottom(series: Sequence[Series]) -> int:
    """Room under the plot: tick labels and axis title, plus a legend row for several series."""
    return 72 if len(series) > 1 else 50


def _plot(title: str, description: str, frame: Frame, kind: str, body: Sequence[str], name: str) -> str:
    head = [f"<desc>{_e(description)}</desc>" if description else "",
            f'<text class="chart-title" x="{frame.width / 2:.1f}" y="22" text-anchor="middle" '
            f'font-size="15" font-weight="600" fill="#222">{_e(title)}</text>']
    return _svg(frame.width, frame.height, title, [*head, *body], name=name, kind=kind,
                label=f"{title}. {description}" if description else title)


def _no_data(title: str, description: str, frame: Frame, kind: str, name: str) -> str:
    return _plot(title, description, frame, kind, [
        f'<text class="no-data" x="{frame.width / 2:.1f}" y="{frame.height / 2:.1f}" text-anchor="middle" '
        'font-size="14" fill="#666">no data</text>'], name)


def _y_value_axis(frame: Frame, scale: _Scale, ticks: list[float], label: str,
                  fmt: Callable[[float], str]) -> list[str]:
    out = ['<g class="axis y-axis" font-size="11" fill="#444">',
           f'<line x1="{frame.plot_left:.1f}" y1="{frame.plot_top:.1f}" x2="{frame.plot_left:.1f}" '
           f'y2="{frame.plot_bottom:.1f}" stroke="#444"/>']
    for tick in ticks:
        y = scale(tick)
        out.append(f'<line x1="{frame.plot_left:.1f}" y1="{y:.1f}" x2="{frame.plot_right:.1f}" y2="{y:.1f}" '
                   'stroke="#e3e3e3"/>')
        out.append(f'<text x="{frame.plot_left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{_e(fmt(tick))}</text>')
    middle = (frame.plot_top + frame.plot_bottom) / 2
    out.append(f'<text class="axis-label" x="14" y="{middle:.1f}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 14 {middle:.1f})">{_e(label)}</text>')
    out.append("</g>")
    return out


def _x_value_axis(frame: Frame, scale: _Scale, ticks: list[float], label: str,
                  fmt: Callable[[float], str]) -> list[str]:
    out = ['<g class="axis x-axis" font-size="11" fill="#444">']
    for tick in ticks:
        x = scale(tick)
        out.append(f'<line x1="{x:.1f}" y1="{frame.plot_top:.1f}" x2="{x:.1f}" y2="{frame.plot_bottom:.1f}" '
                   'stroke="#e3e3e3"/>')
        out.append(f'<text x="{x:.1f}" y="{frame.plot_bottom + 16:.1f}" text-anchor="middle">{_e(fmt(tick))}</text>')
    out.append(f'<line x1="{frame.plot_left:.1f}" y1="{frame.plot_bottom:.1f}" x2="{frame.plot_right:.1f}" '
               f'y2="{frame.plot_bottom:.1f}" stroke="#444"/>')
    out.append(f'<text class="axis-label" x="{(frame.plot_left + frame.plot_right) / 2:.1f}" '
               f'y="{frame.plot_bottom + 36:.1f}" text-anchor="middle" font-size="12">{_e(label)}</text>')
    out.append("</g>")
    return out


def _x_category_axis(frame: Frame, positions: list[float], categories: Sequence[str], label: str,
                     zero_y: float) -> list[str]:
    out = ['<g class="axis x-axis" font-size="11" fill="#444">',
           f'<line x1="{frame.plot_left:.1f}" y1="{zero_y:.1f}" x2="{frame.plot_right:.1f}" y2="{zero_y:.1f}" '
           'stroke="#444"/>']
    for x, category in zip(positions, categories, strict=True):
        out.append(f'<text x="{x:.1f}" y="{frame.plot_bottom + 16:.1f}" text-anchor="middle">{_e(category)}</text>')
    out.append(f'<text class="axis-label" x="{(frame.plot_left + frame.plot_right) / 2:.1f}" '
               f'y="{frame.plot_bottom + 34:.1f}" text-anchor="middle" font-size="12">{_e(label)}</text>')
    out.append("</g>")
    return out


def _y_category_axis(frame: Frame, positions: list[float], categories: Sequence[str], zero_x: float) -> list[str]:
    out = ['<g class="axis y-axis" font-size="11" fill="#444">',
           f'<line x1="{zero_x:.1f}" y1="{frame.plot_top:.1f}" x2="{zero_x:.1f}" y2="{frame.plot_bottom:.1f}" '
           'stroke="#444"/>']
    for y, category in zip(positions, categories, strict=True):
        out.append(f'<text x="{frame.plot_left - 8:.1f}" y="{y + 4:.1f}" text-anchor="end">{_e(category)}</text>')
    out.append("</g>")
    return out


def _legend(frame: Frame, series: Sequence[Series]) -> list[str]:
    if len(series) < 2:
        return []
    out = ['<g class="legend-group" font-size="11" fill="#333">']
    x = frame.plot_left
    for i, s in enumerate(series):
        out.append(f'<rect class="legend" x="{x:.1f}" y="{frame.plot_bottom + 46:.1f}" width="10" height="10" '
                   f'fill="{_color(SERIES_PALETTE, i)}"/>')
        out.append(f'<text x="{x + 14:.1f}" y="{frame.plot_bottom + 55:.1f}">{_e(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    out.append("</g>")
    return out


def _bars(categories: Sequence[str], series: Sequence[Series], fmt: Callable[[float], str],
          place: Callable[[int, int, float], tuple[float, float, float, float]]) -> list[str]:
    """A `<rect class="mark">` per finite value, grouped by series; `place(series_index,
    category_index, value)` gives its x, y, width and height."""
    out: list[str] = []
    for i, s in enumerate(series):
        out.append(f'<g class="series" data-series="{_e(s.name)}">')
        prefix = f"{s.name}, " if len(series) > 1 else ""
        for j, (category, v) in enumerate(zip(categories, s.values, strict=True)):
            if not _finite(v):
                continue
            value = float(v)  # type: ignore[arg-type]
            x, y, width, height = place(i, j, value)
            out.append(_mark("rect", {"x": f"{x:.1f}", "y": f"{y:.1f}", "width": f"{width:.1f}",
                                      "height": f"{height:.1f}", "fill": _color(SERIES_PALETTE, i),
                                      "data-value": repr(value)}, f"{prefix}{category}: {fmt(value)}"))
        out.append("</g>")
    return out


def line_chart(categories: Sequence[str], series: Sequence[Series], *, title: str, x_label: str, y_label: str,
               description: str = "", highlight: str | None = None, highlight_label: str = "chosen",
               percent: bool = False, include_zero: bool = False, frame: Frame | None = None, name: str = "") -> str:
    """Points joined by lines over evenly spaced categories. `highlight` (a category) gets a dashed
    vertical rule labelled `highlight_label` and a larger, ringed mark, e.g. the chosen k. `name`
    becomes the svg's data-chart."""
    _check(categories, series)
    frame = frame or Frame(bottom=_bottom(series))
    ticks = _ticks(categories, series, include_zero)
    if ticks is None:
        return _no_data(title, description, frame, "line", name)
    fmt = _formatter(percent)
    y = _Scale(ticks[0], ticks[-1], frame.plot_bottom, frame.plot_top)
    step = (frame.plot_right - frame.plot_left) / len(categories)
    xs = [frame.plot_left + step * (i + 0.5) for i in range(len(categories))]

    parts = _y_value_axis(frame, y, ticks, y_label, fmt)
    parts += _x_category_axis(frame, xs, categories, x_label, frame.plot_bottom)
    if highlight is not None and highlight in categories:
        hx = xs[list(categories).index(highlight)]
        parts.append(f'<line class="highlight" x1="{hx:.1f}" y1="{frame.plot_top:.1f}" x2="{hx:.1f}" '
                     f'y2="{frame.plot_bottom:.1f}" stroke="{HIGHLIGHT}" stroke-dasharray="4 3"/>')
        # At the foot of the rule: the top is where the best point of a curve usually sits.
        anchor = "end" if hx > (frame.plot_left + frame.plot_right) / 2 else "start"
        shift = -4 if anchor == "end" else 4
        parts.append(f'<text class="highlight-label" x="{hx + shift:.1f}" y="{frame.plot_bottom - 6:.1f}" '
                     f'text-anchor="{anchor}" font-size="11" fill="{HIGHLIGHT}">{_e(highlight_label)}</text>')
    for i, s in enumerate(series):
        color = _color(SERIES_PALETTE, i)
        points = [(xs[j], y(float(v)), category, float(v))  # type: ignore[arg-type]
                  for j, (category, v) in enumerate(zip(categories, s.values, strict=True)) if _finite(v)]
        parts.append(f'<g class="series" data-series="{_e(s.name)}">')
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for px, py, category, value in points:
            chosen = category == highlight
            parts.append(_mark("circle", {"cx": f"{px:.1f}", "cy": f"{py:.1f}", "r": 6 if chosen else 4,
                                          "fill": color, "stroke": HIGHLIGHT if chosen else "#fff",
                                          "stroke-width": 2 if chosen else 1, "data-value": repr(value)},
                               f"{s.name}, {x_label} {category}: {fmt(value)}",
                               "mark highlighted" if chosen else "mark"))
        parts.append("</g>")
    parts += _legend(frame, series)
    return _plot(title, description, frame, "line", parts, name)


def bar_chart(categories: Sequence[str], series: Sequence[Series], *, title: str, x_label: str, y_label: str,
              description: str = "", percent: bool = False, frame: Frame | None = None, name: str = "") -> str:
    """Vertical bars from zero, grouped by category, one bar per series in each group."""
    _check(categories, series)
    frame = frame or Frame(bottom=_bottom(series))
    ticks = _ticks(categories, series, include_zero=True)
    if ticks is None:
        return _no_data(title, description, frame, "bar", name)
    fmt = _formatter(percent)
    y = _Scale(ticks[0], ticks[-1], frame.plot_bottom, frame.plot_top)
    band = (frame.plot_right - frame.plot_left) / len(categories)
    group = band * 0.8
    bar = group / max(len(series), 1)
    xs = [frame.plot_left + band * (i + 0.5) for i in range(len(categories))]
    zero = y(0.0)

    parts = _y_value_axis(frame, y, ticks, y_label, fmt)
    parts += _bars(categories, series, fmt, lambda i, j, value: (
        xs[j] - group / 2 + bar * i, min(y(value), zero), max(bar - 1, 1), abs(y(value) - zero)))
    parts += _x_category_axis(frame, xs, categories, x_label, zero)
    parts += _legend(frame, series)
    return _plot(title, description, frame, "bar", parts, name)


def hbar_chart(categories: Sequence[str], series: Sequence[Series], *, title: str, x_label: str,
               description: str = "", percent: bool = False, label_width: int = 190, width: int = 640,
               name: str = "") -> str:
    """Horizontal bars (room for long category names like segment labels), grouped by category."""
    _check(categories, series)
    row = 14 * max(len(series), 1) + 10
    bottom = _bottom(series)
    frame = Frame(width=width, height=40 + bottom + row * max(len(categories), 1), left=label_width, top=40,
                  bottom=bottom)
    ticks = _ticks(categories, series, include_zero=True)
    if ticks is None:
        return _no_data(title, description, frame, "hbar", name)
    fmt = _formatter(percent)
    x = _Scale(ticks[0], ticks[-1], frame.plot_left, frame.plot_right)
    zero = x(0.0)
    band = (frame.plot_bottom - frame.plot_top) / len(categories)
    bar = (band - 8) / max(len(series), 1)
    ys = [frame.plot_top + band * (j + 0.5) for j in range(len(categories))]

    parts = _x_value_axis(frame, x, ticks, x_label, fmt)
    parts += _y_category_axis(frame, ys, categories, zero)
    parts += _bars(categories, series, fmt, lambda i, j, value: (
        min(x(value), zero), frame.plot_top + band * j + 4 + bar * i, abs(x(value) - zero), max(bar - 1, 1)))
    parts += _legend(frame, series)
    return _plot(title, description, frame, "hbar", parts, name)
