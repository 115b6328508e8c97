"""Small inline-SVG charts for static pages: no JavaScript, no CDN, deterministic output.

Every chart is a `<figure class="chart" data-chart=NAME>` holding one `<svg>`; each drawn datum is
an element with class `mark` and a `data-value`, so tests (and people with the inspector) can check
that a chart really shows data. A chart with nothing to show says so in a `<p class="empty">`.

(rfmlake.reporting.svg draws the segmentation report's charts; the two are to be merged.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

PALETTE = ("#2f6f9f", "#e07b39", "#3a9d5d", "#c94c4c", "#8a6bbf", "#8c6d46", "#d17fb0", "#6f6f6f",
           "#b5b531", "#2fb3c0", "#4b4b8f", "#9f2f6f")
FONT = "font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def format_number(value: float) -> str:
    """1234567 -> '1.23M', 12345 -> '12.3k', 12.5 -> '12.5'."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.2f}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.1f}k"
    if magnitude >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}"


def format_percent(value: float) -> str:
    return f"{value:.1%}"


def _figure(name: str, title: str, body: str, note: str = "", wide: bool = False) -> str:
    caption = f"<figcaption>{_e(title)}</figcaption>"
    extra = f'<p class="note">{_e(note)}</p>' if note else ""
    classes = "chart wide" if wide else "chart"
    return f'<figure class="{classes}" data-chart="{_e(name)}">{caption}{body}{extra}</figure>'


def empty_chart(name: str, title: str, message: str) -> str:
    return _figure(name, title, f'<p class="empty">{_e(message)}</p>')


def _svg(width: int, height: int, title: str, parts: Sequence[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" style="{FONT};font-size:12px">'
            f"<title>{_e(title)}</title>{''.join(parts)}</svg>")


def hbar_chart(name: str, title: str, items: Sequence[tuple[str, float]], *,
               fmt: Callable[[float], str] = format_number, width: int = 560, note: str = "",
               colors: Mapping[str, str] | None = None) -> str:
    """Horizontal bars, one per (label, value), in the order given; values must be >= 0. `colors`
    maps labels to fills (keeps a segment's colour the same across charts)."""
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
        color = (colors or {}).get(label, PALETTE[0])
        parts.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{_e(label)}</text>')
        parts.append(f'<rect class="mark" data-label="{_e(label)}" data-value="{value}" x="{label_w}" y="{y}" '
                     f'width="{w:.1f}" height="{bar_h}" fill="{color}"><title>{_e(label)}: {_e(fmt(value))}'
                     "</title></rect>")
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 14}">{_e(fmt(value))}</text>')
    return _figure(name, title, _svg(width, height, title, parts), note)


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
            parts.append(f'<rect class="mark" data-row="{_e(label)}" data-column="{_e(columns[j])}" '
                         f'data-value="{value}" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                         f'fill="{_mix(0.12 + 0.88 * share)}"><title>{_e(label)} / {_e(columns[j])}: '
                         f"{_e(fmt(value))}</title></rect>")
            parts.append(f'<text x="{x + (cell - 2) / 2:.0f}" y="{y + cell / 2 + 2:.0f}" text-anchor="middle" '
                         f'fill="{ink}">{_e(fmt(value))}</text>')
    return _figure(name, title, _svg(width, height, title, parts), note, wide)


def nice_step(span: float, bins: int) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k step that covers `span` in `bins` steps."""
    if span <= 0:
        return 1.0
    raw = span / bins
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


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
            parts.append(f'<rect class="mark" data-value="{count}" data-from="{edges[i]}" data-to="{edges[i + 1]}" '
                         f'x="{x + 1:.1f}" y="{top_margin + plot_h - h:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                         f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{_e(fmt(edges[i]))} to '
                         f"{_e(fmt(edges[i + 1]))}: {count:,}</title></rect>")
    step = max(1, len(counts) // 6)
    for i in range(0, len(edges), step):
        parts.append(f'<text x="{left + i * bar_w:.1f}" y="{top_margin + plot_h + 14}" '
                     f'text-anchor="middle">{_e(fmt(edges[i]))}</text>')
    return _figure(name, title, _svg(width, height, title, parts), note)
