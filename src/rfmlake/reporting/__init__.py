"""Reports for people and machines about a run: the segmentation quality report (JSON + a
self-contained HTML page with inline SVG charts)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rfmlake.reporting.html import render_html
from rfmlake.reporting.quality import (
    QUALITY_FILE,
    ReportError,
    build_quality_report,
    find_run,
    write_quality_json,
)

HTML_FILE = "segmentation_quality.html"


@dataclass(frozen=True)
class WrittenReport:
    run_dir: Path
    json_path: Path
    html_path: Path


def write_quality_report(lake_root: str | Path, run_id: str | None = None,
                         html_out: str | Path | None = None, truth: str | Path | None = None) -> WrittenReport:
    """Build the quality report of run `run_id` (default: the latest successful run), write its
    JSON into the run folder and its HTML to `html_out` (default: the run folder). `truth`: an
    identity ground-truth file to measure merges against (docs/identity.md)."""
    root = Path(lake_root)
    run_dir = find_run(root, run_id)
    report = build_quality_report(root, run_dir, Path(truth) if truth is not None else None)
    json_path = write_quality_json(run_dir, report)
    html_path = Path(html_out) if html_out is not None else run_dir / HTML_FILE
    if html_path.is_dir():
        html_path = html_path / HTML_FILE
    if not html_path.parent.is_dir():
        raise ReportError(f"cannot write the report to {html_path}: folder {html_path.parent} does not exist")
    html_path.write_text(render_html(report), encoding="utf-8")
    return WrittenReport(run_dir=run_dir, json_path=json_path, html_path=html_path)


__all__ = [
    "HTML_FILE",
    "QUALITY_FILE",
    "ReportError",
    "WrittenReport",
    "build_quality_report",
    "find_run",
    "render_html",
    "write_quality_json",
    "write_quality_report",
]
