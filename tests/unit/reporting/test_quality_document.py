"""Finding the run to report on, the words for the chosen k, clear errors, and escaping in the
HTML page, on hand-written run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rfmlake.reporting import ReportError, build_quality_report, find_run, render_html, write_quality_report

CURVE = [
    {"k": 2, "inertia": 900.0, "silhouette": 0.41, "calinski_harabasz": 300.0, "rows": 500},
    {"k": 3, "inertia": 650.0, "silhouette": 0.45, "calinski_harabasz": 310.0, "rows": 500},
    {"k": 4, "inertia": 500.0, "silhouette": 0.38, "calinski_harabasz": 330.0, "rows": 500},
]


def segmentation_report(**overrides: object) -> dict:
    report = {
        "model_version": "seg-000000000001", "refitted": True, "refit_reason": "no stored model",
        "as_of_date": "2024-06-01", "customers_scored": 2000, "k": 3, "k_selection": "automatic (silhouette)",
        "selection_curve": CURVE, "rules_version": 1,
        "segment_sizes": [{"name": "Champions", "customers": 5, "customer_share": 1.0, "monetary": 10.0,
                           "monetary_share": 1.0}],
        "cluster_sizes": [{"name": "Recent loyal high spenders", "customers": 5, "customer_share": 1.0,
                           "monetary": 10.0, "monetary_share": 1.0}],
        "notes": [],
        "centroids": [{"cluster_id": 0, "cluster_label": "Recent loyal high spenders", "recency_days": 10.0,
                       "frequency": 3.0, "monetary": 2.0}],
        "score_distributions": {"r_score": [1, 1, 1, 1, 1], "f_score": [5, 0, 0, 0, 0], "m_score": [1, 1, 1, 1, 1]},
    }
    report.update(overrides)
    return report


def make_run(lake: Path, run_id: str, *, ok: bool = True, segmentation: dict | None = None) -> Path:
    run = lake / "_system" / "runs" / run_id
    run.mkdir(parents=True)
    summary = ({"run_id": run_id, "started_at": "2024-06-01T00:00:00+00:00",
                "stages": [{"name": "segmentation", "status": "succeeded"}]} if ok
               else {"run_id": run_id, "stages": [{"name": "dbt_build", "status": "failed"}], "error": "boom"})
    (run / "summary.json").write_text(json.dumps(summary))
    if segmentation is not None:
        (run / "segmentation_report.json").write_text(json.dumps(segmentation))
    return run


def test_latest_successful_run_is_the_default(tmp_path: Path) -> None:
    make_run(tmp_path, "20240101T000000Z-aaaaaa", segmentation=segmentation_report())
    wanted = make_run(tmp_path, "20240102T000000Z-bbbbbb", segmentation=segmentation_report())
    make_run(tmp_path, "20240103T000000Z-cccccc", ok=False)
    assert find_run(tmp_path) == wanted
    assert find_run(tmp_path, "20240101T000000Z-aaaaaa").name == "20240101T000000Z-aaaaaa"


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no lake at .*does not exist"):
        find_run(tmp_path / "missing")
    with pytest.raises(ReportError, match="has no runs yet"):
        find_run(tmp_path)
    make_run(tmp_path, "20240103T000000Z-cccccc", ok=False)
    with pytest.raises(ReportError, match="none of the 1 run"):
        find_run(tmp_path)
    with pytest.raises(ReportError, match="not a run id"):
        find_run(tmp_path, "../x")
    run = find_run(tmp_path, "20240103T000000Z-cccccc")  # asked for by id: allowed, but it has no report
    with pytest.raises(ReportError, match="run 20240103T000000Z-cccccc has no segmentation_report.json"):
        build_quality_report(tmp_path, run)
    (run / "segmentation_report.json").write_text("{not json")
    with pytest.raises(ReportError, match="is not valid JSON"):
        build_quality_report(tmp_path, run)


def test_out_folder_must_exist(tmp_path: Path) -> None:
    make_run(tmp_path, "20240101T000000Z-aaaaaa", segmentation=segmentation_report())
    with pytest.raises(ReportError, match="does not exist"):
        write_quality_report(tmp_path, html_out=tmp_path / "nope" / "r.html")
    written = write_quality_report(tmp_path, html_out=tmp_path)  # a folder: the default file name in it
    assert written.html_path == tmp_path / "segmentation_quality.html" and written.html_path.is_file()


def test_k_reason_of_a_model_fitted_before_the_elbow_rule(tmp_path: Path) -> None:
    run = make_run(tmp_path, "20240101T000000Z-aaaaaa", segmentation=segmentation_report())
    reason = build_quality_report(tmp_path, run)["segmentation"]["k_reason"]
    assert reason == ("k=3 was chosen automatically among k=2..4, each fitted and scored on a seeded sample of "
                      "500 customers: it has the highest silhouette (0.450). Calinski-Harabasz would prefer k=4.")


RULE = {"min_cluster_share": 0.02, "min_cluster_size": 10}
SHARED_CURVE = [{**c, "smallest_share": share} for c, share in zip(CURVE, (0.3, 0.12, 0.01), strict=True)]


def test_k_reason_names_the_elbow_and_the_share_rule(tmp_path: Path) -> None:
    seg = segmentation_report(k_selection="automatic (elbow)", selection_curve=SHARED_CURVE,
                              k_rule={**RULE, "elbow": 3})
    run = make_run(tmp_path, "20240101T000000Z-aaaaaa", segmentation=seg)
    quality = build_quality_report(tmp_path, run)["segmentation"]
    assert quality["k_reason"] == (
        "k=3 was chosen automatically among k=2..4, each fitted and scored on a seeded sample of 500 customers: "
        "it is the elbow of the inertia curve (Kneedle) and every cluster holds at least 2% of customers and "
        "10 customers (its smallest cluster: 12.0%); silhouette 0.450. Calinski-Harabasz would prefer k=4.")
    assert [c["smallest_share"] for c in quality["selection_curve"]] == [0.3, 0.12, 0.01]
    assert "smallest cluster" in render_html(build_quality_report(tmp_path, run))


def test_k_reason_says_why_the_elbow_was_passed_over(tmp_path: Path) -> None:
    seg = segmentation_report(k_selection="automatic (silhouette)", selection_curve=SHARED_CURVE,
                              k_rule={**RULE, "elbow": 4})
    run = make_run(tmp_path, "20240101T000000Z-aaaaaa", segmentation=seg)
    reason = build_quality_report(tmp_path, run)["segmentation"]["k_reason"]
    assert "the inertia elbow k=4 leaves a cluster of only 1.0% of customers, so k is the one with the highest " \
           "silhouette (0.450) among the k where every cluster holds at least 2% of customers" in reason


def test_skipped_clustering_is_explained_without_a_curve(tmp_path: Path) -> None:
    note = "clustering skipped: 5 customer(s), 5 distinct point(s); at least 30 customers are needed"
    seg = segmentation_report(k=1, k_selection="skipped", selection_curve=[], notes=[note])
    run = make_run(tmp_path, "20240101T000000Z-aaaaaa", segmentation=seg)
    report = build_quality_report(tmp_path, run)
    assert report["segmentation"]["k_reason"] == f"No clusters: {note}."
    assert "No clusters" in render_html(report)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"k": 5, "k_selection": "fixed", "selection_curve": []}, "k=5 was fixed in the settings (segmentation.k)"),
    ({"k": 2, "k_selection": "limited by data", "notes": ["only 2 distinct points"]},
     "k=2 was limited by the data (only 2 distinct points)."),
    ({"refitted": False, "refit_reason": "reused stored model seg-1"}, "The model was reused, not refitted"),
])
def test_other_k_reasons(tmp_path: Path, overrides: dict, expected: str) -> None:
    run = make_run(tmp_path, "20240101T000000Z-aaaaaa", segmentation=segmentation_report(**overrides))
    assert expected in build_quality_report(tmp_path, run)["segmentation"]["k_reason"]


def test_report_without_value_or_newer_fields_still_renders(tmp_path: Path) -> None:
    old = segmentation_report()
    del old["centroids"], old["score_distributions"]
    old["selection_curve"] = [{k: v for k, v in c.items() if k != "calinski_harabasz"} for c in CURVE]
    run = make_run(tmp_path, "20240101T000000Z-aaaaaa", segmentation=old)
    report = build_quality_report(tmp_path, run)
    assert report["customer_value"] is None
    assert report["segmentation"]["centroids"] == [] and report["segmentation"]["score_distributions"] == {}
    assert any("centroids unavailable" in n for n in report["notes"])
    assert any("Calinski-Harabasz is not recorded" in n for n in report["notes"])
    html = render_html(report)
    assert "This run has no customer value report." in html and "Not recorded for this run." in html


def test_every_string_in_the_page_is_escaped(tmp_path: Path) -> None:
    evil = '<img src=x onerror="alert(1)">'
    seg = segmentation_report(
        refit_reason=evil, notes=[evil],
        segment_sizes=[{"name": evil, "customers": 5, "customer_share": 1.0, "monetary": 1.0, "monetary_share": 1.0}],
    )
    seg["centroids"][0]["cluster_label"] = evil
    run = make_run(tmp_path, "20240101T000000Z-aaaaaa", segmentation=seg)
    html = render_html(build_quality_report(tmp_path, run))
    assert "<img" not in html
    assert html.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") >= 5
