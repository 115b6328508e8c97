"""The HTML quality report in a real headless Chromium: every chart rendered with one mark per
data point, nothing logged to the console, and a screenshot taken."""

from __future__ import annotations

import json
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

import browser
from rfmlake.reporting import HTML_FILE, QUALITY_FILE, write_quality_report


class ChartMarks(HTMLParser):
    """Per <svg data-chart=...>: how many circle/rect elements with class "mark" it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None
        self.marks: dict[str, Counter[str]] = {}
        self.titles: dict[str, str] = {}
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "svg":
            self.svgs += 1
            self.current = attributes.get("data-chart")
            if self.current:
                self.marks[self.current] = Counter()
                self.titles[self.current] = attributes.get("aria-label") or ""
        elif self.current and tag in {"circle", "rect"} and "mark" in (attributes.get("class") or "").split():
            self.marks[self.current][tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.current = None


@pytest.fixture(scope="module")
def report(reported_lake) -> tuple[Path, dict]:
    written = write_quality_report(reported_lake.root)
    assert written.html_path == reported_lake.run_dir / HTML_FILE
    return written.html_path, json.loads((reported_lake.run_dir / QUALITY_FILE).read_text())


def present(values: list) -> int:
    return sum(1 for v in values if v is not None)


def test_every_chart_renders_its_data_marks(report: tuple[Path, dict]) -> None:
    html_path, quality = report
    dom = browser.dump_dom(html_path)
    parsed = ChartMarks()
    parsed.feed(dom)
    seg, value = quality["segmentation"], quality["customer_value"]
    curve = seg["selection_curve"]
    n_bins = len(seg["score_distributions"]["r_score"])
    expected = {
        "k-inertia": Counter(circle=present([c["inertia"] for c in curve])),
        "k-silhouette": Counter(circle=present([c["silhouette"] for c in curve])),
        "k-calinski-harabasz": Counter(circle=present([c["calinski_harabasz"] for c in curve])),
        "cluster-sizes": Counter(rect=2 * len(seg["cluster_sizes"])),
        "segment-sizes": Counter(rect=2 * len(seg["segment_sizes"])),
        "scores": Counter(rect=3 * n_bins),
        "p-alive": Counter(rect=len(value["p_alive_histogram"]["counts"])),
        "calibration": Counter(circle=2 * len(value["calibration"]["buckets"])),
    }
    assert parsed.marks == expected
    assert parsed.svgs == len(expected)
    assert all(count > 0 for counts in expected.values() for count in counts.values())
    assert all(parsed.titles[name] for name in expected)  # every chart has an accessible name
    assert "Segmentation quality report" in dom and quality["run"]["run_id"] in dom


def test_page_logs_nothing_to_the_console(report: tuple[Path, dict]) -> None:
    html_path, _ = report
    assert browser.console_messages(html_path) == []


def test_screenshot(report: tuple[Path, dict], tmp_path: Path) -> None:
    html_path, _ = report
    png = browser.screenshot(html_path, tmp_path / "report.png", size="1280,3000")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # charts and tables, not a blank page (a blank 1280x3000 PNG is ~10 kB)
