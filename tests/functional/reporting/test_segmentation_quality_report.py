"""The segmentation quality report of a real run (segmentation + customer_value stages over a
hand-built gold layer): the JSON document's content and `rfmlake report`."""

from __future__ import annotations

import json
import math

import pyarrow.parquet as pq
import pytest

from rfmlake.cli.main import main
from rfmlake.lake import Lake
from rfmlake.reporting import HTML_FILE, QUALITY_FILE, build_quality_report, write_quality_report


@pytest.fixture(scope="module")
def quality(reported_lake) -> dict:
    written = write_quality_report(reported_lake.root)
    assert written.run_dir == reported_lake.run_dir
    assert written.json_path == reported_lake.run_dir / QUALITY_FILE
    return json.loads(written.json_path.read_text())


def test_k_selection_curve_has_all_three_scores_and_the_choice_is_explained(quality: dict) -> None:
    seg = quality["segmentation"]
    curve = seg["selection_curve"]
    assert [c["k"] for c in curve] == [3, 4, 5, 6]
    for point in curve:
        assert point["inertia"] > 0 and -1 <= point["silhouette"] <= 1 and point["calinski_harabasz"] > 0
        assert 0 < point["smallest_share"] <= 1 / point["k"]
        assert point["rows"] == seg["customers_scored"]
    # inertia can only fall as k grows (n_init=10 on the same points)
    inertias = [c["inertia"] for c in curve]
    assert inertias == sorted(inertias, reverse=True)
    assert seg["k_selection"] in {"automatic (elbow)", "automatic (silhouette)"}
    assert seg["k_rule"]["min_cluster_share"] == 0.02
    chosen = next(c for c in curve if c["k"] == seg["k"])
    assert chosen["smallest_share"] >= 0.02
    assert min(s["customer_share"] for s in seg["cluster_sizes"]) >= 0.02
    assert f"k={seg['k']} was chosen automatically among k=3..6" in seg["k_reason"]
    assert f"{chosen['silhouette']:.3f}" in seg["k_reason"] and "Calinski-Harabasz" in seg["k_reason"]
    if seg["k_selection"] == "automatic (elbow)":
        assert seg["k_rule"]["elbow"] == seg["k"] and "elbow of the inertia curve" in seg["k_reason"]


def test_centroids_are_in_original_units_and_match_the_clusters(quality: dict, reported_lake) -> None:
    seg = quality["segmentation"]
    centroids = seg["centroids"]
    assert len(centroids) == seg["k"]
    assert [c["cluster_label"] for c in centroids] == [s["name"] for s in seg["cluster_sizes"]]
    rfm = pq.read_table(Lake(reported_lake.root).require("gold", "customer_rfm").path).to_pandas()
    for centroid in centroids:
        members = rfm[rfm["cluster_id"] == centroid["cluster_id"]]
        assert set(members["cluster_label"]) == {centroid["cluster_label"]}
        # original units: a centroid lies inside its members' range (days, orders, money), not in z-scores
        for column in ("recency_days", "frequency", "monetary"):
            values = members[column].astype(float)
            assert values.min() - 1e-6 <= centroid[column] <= values.max() + 1e-6, column
    assert centroids[0]["monetary"] == max(c["monetary"] for c in centroids)  # cluster 0 is the most valuable


def test_sizes_revenue_shares_and_score_distributions_add_up(quality: dict, reported_lake) -> None:
    seg = quality["segmentation"]
    rfm = pq.read_table(Lake(reported_lake.root).require("gold", "customer_rfm").path).to_pandas()
    total = float(rfm["monetary"].astype(float).sum())
    for sizes, column in ((seg["segment_sizes"], "rfm_segment"), (seg["cluster_sizes"], "cluster_label")):
        assert sum(s["customers"] for s in sizes) == seg["customers_scored"] == len(rfm)
        assert math.isclose(sum(s["monetary_share"] for s in sizes), 1.0, abs_tol=1e-9)
        for size in sizes:
            group = rfm[rfm[column] == size["name"]]
            assert size["customers"] == len(group)
            assert math.isclose(size["monetary_share"], float(group["monetary"].astype(float).sum()) / total,
                                rel_tol=1e-6, abs_tol=1e-9)
    scores = seg["score_distributions"]
    assert set(scores) == {"r_score", "f_score", "m_score"}
    for column, counts in scores.items():
        assert len(counts) == 5
        assert counts == [int((rfm[column] == s).sum()) for s in range(1, 6)]


def test_value_model_fit_and_calibration_come_from_the_value_report(quality: dict, reported_lake) -> None:
    value = quality["customer_value"]
    stored = json.loads((reported_lake.run_dir / "customer_value_report.json").read_text())
    assert value["model_version"] == stored["model_version"]
    assert value["bgnbd"] == stored["bgnbd"] and value["gamma_gamma"] == stored["gamma_gamma"]
    buckets = value["calibration"]["buckets"]
    assert buckets and all(b["predicted_mean"] >= 0 and b["actual_mean"] >= 0 for b in buckets)
    assert quality["run"] == {
        "run_id": reported_lake.run_id, "status": "succeeded", "started_at": quality["run"]["started_at"],
        "as_of_date": "2024-06-01", "lake": str(reported_lake.root),
    }
    assert quality["notes"] == []  # nothing had to be recovered from elsewhere for a current run


def test_html_report_is_self_contained_and_escaped(quality: dict, reported_lake) -> None:
    html = (reported_lake.run_dir / HTML_FILE).read_text()
    assert "<script" not in html.lower()
    for external in ("http://", "https://", "src=", "@import", "url("):
        assert external not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert reported_lake.run_id in html and quality["segmentation"]["model_version"] in html
    assert html.count("<svg ") == 8  # 3 k curves, 2 size charts, scores, p_alive, calibration


def test_cli_writes_the_report_and_prints_its_path(reported_lake, tmp_path, capsys) -> None:
    out = tmp_path / "quality.html"
    assert main(["report", "--lake", str(reported_lake.root), "--run", reported_lake.run_id,
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert str(reported_lake.run_dir / QUALITY_FILE) in captured.err
    assert out.read_text().startswith("<!DOCTYPE html>")
    # the JSON is rebuilt from the run folder alone, so a second build says the same
    assert json.loads((reported_lake.run_dir / QUALITY_FILE).read_text()) == build_quality_report(
        reported_lake.root, reported_lake.run_dir)


@pytest.mark.parametrize(("args", "message"), [
    (["--lake", "{tmp}/missing"], "no lake at"),
    (["--lake", "{tmp}"], "has no runs yet"),
    (["--lake", "{root}", "--run", "20990101T000000Z-nope00"], "no run 20990101T000000Z-nope00"),
])
def test_cli_errors_are_clear(args: list[str], message: str, reported_lake, tmp_path, capsys) -> None:
    argv = [a.format(tmp=tmp_path, root=reported_lake.root) for a in args]
    assert main(["report", *argv]) == 1
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""
